"""How well deals convert: win rate and deal size, cycle time per stage, the funnel, period over period."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, type_coerce

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

o, ld = t.opportunities, t.leads
WIN_RATE_BY = ("none", "owner", "team", "region", "quarter")
CLOSED = [s.value for s in CLOSED_STAGES]
FUNNEL_STAGES = ("initiated", "solution", "bid", "negotiate", "won")
# The bits of opportunities.reached_stages: the Stage order, as migration 0015's triggers set them.
REACHED_BIT = {s.value: 1 << i for i, s in enumerate(Stage)}


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
    key = {"owner": [r.c.owner_id], "team": [r.c.owner_id], "region": [r.c.region], "quarter": [r.c.month]}
    groups: dict[tuple[str, str], list] = {}
    for (*k, stage), (c, am, _) in ru.sums(uow, a, [*key.get(by, []), r.c.stage], ru.rows_of(a, CLOSED, p)).items():
        if not c:
            continue
        acc = groups.setdefault(_win_key(by, k, a), [0, 0, 0, Decimal(0)])
        acc[CLOSED.index(stage)] += c
        if stage == Stage.WON.value:
            acc[3] += am
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
        tid = a.team_of.get(k[0])
        return ("", "—") if tid is None else (str(tid), a.team_names[tid])
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
    # Which stages each deal has history for, from a bit per stage kept by triggers (migration 0015).
    reached = [func.count().filter(o.c.reached_stages.op("&")(REACHED_BIT[s]) != 0) for s in FUNNEL_STAGES]
    opportunities, *steps_reached = uow.session.execute(
        select(func.count(), *reached).where(*q.where(a.owned(o.c.owner_id), *q.in_times(o.c.created_at, p)))).one()
    reached = dict(zip(FUNNEL_STAGES, steps_reached))
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
    now_, then = _kpis(uow, a, [p, before])
    kpis = []
    for name in now_:
        cur, prev = now_[name], then[name]
        change = None if cur is None or prev is None else cur - prev
        kpis.append(KpiChange(kpi=name, current=cur, previous=prev, change=change,
                              change_pct=None if change is None else q.ratio(change, prev)))
    return PeriodComparison(period=p, previous=before, kpis=kpis, **a.fields())


def _kpis(uow, a: Asker, periods: list[Period]) -> list[dict[str, Decimal | None]]:
    """The figures of each period, from the monthly rollups (migration 0019): one statement per rollup
    for every period (periods are whole months, so month keys select them exactly)."""
    d = t.deal_monthly_rollup
    spans = [(f"{p.start:%Y-%m}", f"{p.end:%Y-%m}") for p in periods]
    acc = [[Decimal(0), 0, Decimal(0), 0] for _ in periods]  # new pipeline, won, won amount, lost
    for month, currency, created, won, won_amount, lost in uow.session.execute(
            select(d.c.month, d.c.currency, type_coerce(func.sum(d.c.created_amount), q.EXACT),
                   func.coalesce(func.sum(d.c.won_n), 0), type_coerce(func.sum(d.c.won_amount), q.EXACT),
                   func.coalesce(func.sum(d.c.lost_n), 0))
            .where(*q.where(a.owned(d.c.owner_id), d.c.month >= min(s for s, _ in spans),
                            d.c.month < max(e for _, e in spans)))
            .group_by(d.c.month, d.c.currency)):
        for (start, end), x in zip(spans, acc):
            if start <= month < end:
                x[0] += q.convert(created, currency, a.rates)
                x[1] += int(won)
                x[2] += q.convert(won_amount, currency, a.rates)
                x[3] += int(lost)
    out = []
    for (new, won, won_amount, lost), (invoiced, collected) in zip(acc, cash.invoiced_and_collected(uow, a, periods)):
        won_amount = q.money(won_amount)
        out.append({"new_pipeline": q.money(new), "won_amount": won_amount, "won_count": Decimal(won),
                    "win_rate": q.ratio(won, won + lost), "average_deal": q.ratio(won_amount, won, q.CENT),
                    "invoiced": invoiced, "collected": collected})
    return out
