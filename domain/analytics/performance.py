"""How well deals convert: win rate and deal size, cycle time per stage, the funnel, period over period."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from domain.actor import Actor
from domain.analytics import cash
from domain.analytics import rollup as ru
from domain.analytics import sql as q
from domain.analytics.periods import Period, previous
from domain.analytics.scope import Asker, ask
from domain.analytics.views import Funnel, FunnelStep, KpiChange, PeriodComparison, WinRate, WinRateRow
from domain.db import tables as t
from domain.errors import ValidationFailed
from domain.model.opportunities import CLOSED_STAGES
from domain.model.vocab import Stage

o, u, tm, sh, ld = t.opportunities, t.users, t.teams, t.stage_history, t.leads
WIN_RATE_BY = ("none", "owner", "team", "region", "quarter")
CLOSED = [s.value for s in CLOSED_STAGES]
FUNNEL_STAGES = ("initiated", "solution", "bid", "negotiate", "won")


def _win_row(key: str, label: str, won: int, lost: int, abandoned: int, won_amount) -> WinRateRow:
    amount = q.money(won_amount)
    return WinRateRow(key=key, label=label, won=won, lost=lost, abandoned=abandoned,
                      win_rate=q.ratio(won, won + lost), won_amount=amount,
                      average_deal=q.ratio(amount, won, q.CENT))


def win_rate(by: str = "none", period: Period | str = "this_year", *, actor: Actor, uow,
             team: int | str | None = None, owner: int | None = None) -> WinRate:
    """Deals closed in the period: won / (won + lost), won amount and average deal size, per group."""
    if by not in WIN_RATE_BY:
        raise ValidationFailed(f"Cannot break the win rate down by {by!r}", field="by", allowed=list(WIN_RATE_BY))
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    r = ru.r
    frm = r
    if by == "owner":
        keys = [r.c.owner_id]
    elif by == "team":
        frm = r.join(u, u.c.id == r.c.owner_id).outerjoin(tm, tm.c.id == u.c.team_id)
        keys = [tm.c.id, tm.c.name]
    elif by == "region":
        keys = [r.c.region]
    elif by == "quarter":
        keys = [r.c.month]
    else:
        keys = []
    count, amount, _ = ru.measures(a.rates)
    stmt = (select(*keys, r.c.stage, count, amount).select_from(frm)
            .where(*ru.rows_of(a, CLOSED, p)).group_by(*keys, r.c.stage).having(func.sum(r.c.n) > 0))
    groups: dict[tuple[str, str], list] = {}
    for *k, stage, c, am in uow.session.execute(stmt):
        key, label = _win_key(by, k, a)
        acc = groups.setdefault((key, label), [0, 0, 0, Decimal(0)])
        acc[CLOSED.index(stage)] += c
        if stage == Stage.WON.value:
            acc[3] += Decimal(str(am or 0))
    rows = [_win_row(k, lbl, *v) for (k, lbl), v in groups.items()]
    total = _win_row("", "", sum(r.won for r in rows), sum(r.lost for r in rows), sum(r.abandoned for r in rows),
                     sum((v[3] for v in groups.values()), Decimal(0)))
    if by == "quarter":
        rows.sort(key=lambda r: r.key)
    else:
        rows.sort(key=lambda r: (r.label == "—", -r.won_amount, r.label))
    return WinRate(period=p, by=by, rows=rows if by != "none" else [], total=total, **a.fields())


def _win_key(by: str, k: list, a: Asker) -> tuple[str, str]:
    if by == "owner":
        return str(k[0]), a.names.get(k[0], str(k[0]))
    if by == "team":
        return ("", "—") if k[0] is None else (str(k[0]), k[1])
    if by == "region":
        return k[0], k[0] or "—"
    if by == "quarter":
        label = q.quarter_label(*ru.month_parts(k[0]))
        return label, label
    return "", ""


def funnel(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
           owner: int | None = None) -> Funnel:
    """Leads created in the period → converted; opportunities created → reached each stage → won."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    leads, converted = uow.session.execute(
        select(func.count(), func.count().filter(ld.c.status == "converted"))
        .where(*q.where(a.owned(ld.c.owner_id), *q.in_times(ld.c.created_at, p)))).one()
    cohort = select(o.c.id).where(*q.where(a.owned(o.c.owner_id), *q.in_times(o.c.created_at, p)))
    opportunities = uow.session.execute(select(func.count()).select_from(cohort.subquery())).scalar_one()
    reached = dict(uow.session.execute(
        select(sh.c.to_stage, func.count(func.distinct(sh.c.opportunity_id)))
        .where(sh.c.opportunity_id.in_(cohort), sh.c.to_stage.in_(FUNNEL_STAGES)).group_by(sh.c.to_stage)).all())
    counts = [("leads", leads), ("converted", converted), ("opportunities", opportunities),
              *((s, reached.get(s, 0)) for s in FUNNEL_STAGES)]
    steps, prev = [], None
    for name, c in counts:
        steps.append(FunnelStep(step=name, count=c, of_previous=None if prev is None else q.ratio(c, prev),
                                of_first=q.ratio(c, counts[0][1])))
        prev = c
    return Funnel(period=p, steps=steps, **a.fields())


def period_over_period(period: Period | str = "this_quarter", *, actor: Actor, uow,
                       team: int | str | None = None, owner: int | None = None) -> PeriodComparison:
    """This period against the one before: new pipeline, won, win rate, deal size, invoiced, collected."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    before = previous(p)
    now_, then = _kpis(uow, a, p), _kpis(uow, a, before)
    kpis = []
    for name in now_:
        cur, prev = now_[name], then[name]
        change = None if cur is None or prev is None else cur - prev
        kpis.append(KpiChange(kpi=name, current=cur, previous=prev, change=change,
                              change_pct=None if change is None else q.ratio(change, prev)))
    return PeriodComparison(period=p, previous=before, kpis=kpis, **a.fields())


def _kpis(uow, a: Asker, p: Period) -> dict[str, Decimal | None]:
    amount = q.converted(o.c.amount, o.c.currency, a.rates)
    new = uow.session.execute(select(func.sum(amount)).where(
        *q.where(a.owned(o.c.owner_id), *q.in_times(o.c.created_at, p)))).scalar_one()
    won = lost = 0
    won_amount = Decimal(0)
    r = ru.r
    for stage, c, am, _ in uow.session.execute(select(r.c.stage, *ru.measures(a.rates))
                                               .where(*ru.rows_of(a, CLOSED, p)).group_by(r.c.stage)):
        if stage == Stage.WON.value:
            won, won_amount = int(c), q.money(am)
        elif stage == Stage.LOST.value:
            lost = int(c)
    return {"new_pipeline": q.money(new), "won_amount": won_amount, "won_count": Decimal(won),
            "win_rate": q.ratio(won, won + lost), "average_deal": q.ratio(won_amount, won, q.CENT),
            "invoiced": cash.invoiced_in(uow, a, p), "collected": cash.collected_in(uow, a, p)}



