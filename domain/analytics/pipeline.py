"""Open pipeline: by stage and other dimensions, the forecast against targets, top and stuck deals."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select

from domain.actor import Actor
from domain.analytics import product
from domain.analytics.breakdown import NONE_LABEL, by_amount as _by_amount, row as _row
from domain.analytics import rollup as ru
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import Asker, ask
from domain.analytics.views import (Breakdown, BreakdownRow, CategoryTotal, DealLine, DealList, Forecast,
                                    ForecastLine)
from domain.db import tables as t
from domain.errors import ValidationFailed
from domain.model.message_keys import keyed
from domain.model.vocab import Stage

o, u, tm = t.opportunities, t.users, t.teams
PIPELINE_BY = ("stage", "owner", "team", "region", "product", "quarter", "month")
CATEGORY_OF = {Stage.NEGOTIATE.value: "commit", Stage.BID.value: "best_case", Stage.QUALIFY.value: "pipeline",
               Stage.INITIATED.value: "pipeline", Stage.SOLUTION.value: "pipeline"}
CATEGORIES = ("won", "commit", "best_case", "pipeline")


def _amount(a: Asker):
    return q.converted(o.c.amount, o.c.currency, a.rates)


def _open_deals(a: Asker, period: Period | None) -> list:
    clauses = [o.c.stage.in_(q.OPEN), a.owned(o.c.owner_id)]
    if period is not None:
        clauses += q.in_dates(o.c.expected_close_date, period)
    return q.where(*clauses)


def pipeline(by: str = "stage", period: Period | str | None = None, *, actor: Actor, uow,
             team: int | str | None = None, owner: int | None = None) -> Breakdown:
    """Open deals in scope grouped by one dimension: count, amount and weighted amount."""
    if by not in PIPELINE_BY:
        raise ValidationFailed(f"Cannot break the pipeline down by {by!r}", field="by", allowed=list(PIPELINE_BY))
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    if by == "product":
        rows = product.rows(uow, a, _open_deals(a, p))
        total = _row("", "", sum(r.count for r in rows), sum(r.amount for r in rows),
                     sum(r.weighted for r in rows))
    else:
        clauses = ru.rows_of(a, q.OPEN, p)
        rows = _dimension_rows(uow, a, by, clauses, ru.measures(a.rates))
        total = _row("", "", *uow.session.execute(select(*ru.measures(a.rates)).where(*clauses)).one())
    return Breakdown(metric="pipeline", by=by, period=p, rows=rows, total=total, **a.fields())


def _dimension_rows(uow, a: Asker, by: str, clauses, measures) -> list[BreakdownRow]:
    """From the rollup: a handful of rows per owner and month, whatever the number of deals."""
    r = ru.r
    if by == "stage":
        got = {s: (c, am, w) for s, c, am, w in
               uow.session.execute(select(r.c.stage, *measures).where(*clauses).group_by(r.c.stage))}
        return [_row(s, s, *got.get(s, (0, 0, 0))) for s in q.OPEN]
    some = func.sum(r.c.n) > 0  # a rollup row whose deals all moved on stays, at zero
    if by == "owner":
        found = uow.session.execute(select(r.c.owner_id, *measures).where(*clauses).group_by(r.c.owner_id)
                                    .having(some))
        rows = [_row(k, a.names.get(k, str(k)), c, am, w) for k, c, am, w in found]
    elif by == "team":
        stmt = (select(tm.c.id, tm.c.name, *measures).select_from(r.join(u, u.c.id == r.c.owner_id)
                .outerjoin(tm, tm.c.id == u.c.team_id)).where(*clauses).group_by(tm.c.id, tm.c.name).having(some))
        rows = [_row(k or "", name or NONE_LABEL, c, am, w) for k, name, c, am, w in uow.session.execute(stmt)]
    elif by == "region":
        found = uow.session.execute(select(r.c.region, *measures).where(*clauses).group_by(r.c.region).having(some))
        rows = [_row(k, k or NONE_LABEL, c, am, w) for k, c, am, w in found]
    else:  # quarter / month of the expected close date
        found = uow.session.execute(select(r.c.month, *measures).where(*clauses).group_by(r.c.month)
                                    .having(some)).all()
        label = q.quarter_label if by == "quarter" else q.month_label
        merged: dict[str, list] = {}
        for month, c, am, w in found:
            parts = ru.month_parts(month)
            key = "" if parts is None else label(*parts)
            acc = merged.setdefault(key, [0, Decimal(0), Decimal(0)])
            acc[0] += c
            acc[1] += Decimal(str(am or 0))
            acc[2] += Decimal(str(w or 0))
        rows = [_row(k, k or NONE_LABEL, *v) for k, v in merged.items()]
        return sorted(rows, key=lambda r: (r.key == "", r.key))
    return _by_amount(rows)


def forecast(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
             owner: int | None = None) -> Forecast:
    """Won, commit, best case and pipeline for a period, weighted, against the targets."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    per: dict[int, dict[str, Decimal]] = {}
    counts = dict.fromkeys(CATEGORIES, 0)
    amounts = dict.fromkeys(CATEGORIES, Decimal(0))

    def add(owner_id: int, category: str, count: int, amt, wt) -> None:
        line = per.setdefault(owner_id, {**dict.fromkeys(CATEGORIES, Decimal(0)), "weighted": Decimal(0)})
        line[category] += Decimal(str(amt or 0))
        line["weighted"] += Decimal(str(wt or 0))
        counts[category] += count
        amounts[category] += Decimal(str(amt or 0))

    r = ru.r
    for owner_id, stage, c, am, w in uow.session.execute(
            select(r.c.owner_id, r.c.stage, *ru.measures(a.rates)).where(*ru.rows_of(a, q.OPEN, p))
            .group_by(r.c.owner_id, r.c.stage).having(func.sum(r.c.n) > 0)):
        add(owner_id, CATEGORY_OF[stage], c, am, w)
    for owner_id, c, am, _ in uow.session.execute(
            select(r.c.owner_id, *ru.measures(a.rates)).where(*ru.rows_of(a, [Stage.WON.value], p))
            .group_by(r.c.owner_id).having(func.sum(r.c.n) > 0)):
        add(owner_id, "won", c, am, am)
    user_targets, team_targets = _targets(uow, a, p)
    lines = []
    for owner_id in set(per) | set(user_targets):
        got = per.get(owner_id, {**dict.fromkeys(CATEGORIES, Decimal(0)), "weighted": Decimal(0)})
        lines.append(_line(str(owner_id), a.names.get(owner_id, str(owner_id)), got,
                           user_targets.get(owner_id, Decimal(0))))
    lines.sort(key=lambda x: (-x.weighted_forecast, x.label))
    teams = _team_lines(uow, a, per, team_targets)
    target = sum(user_targets.values(), Decimal(0))
    wf = q.money(sum((v["weighted"] for v in per.values()), Decimal(0)))
    return Forecast(period=p, categories=[CategoryTotal(category=c, count=counts[c], amount=q.money(amounts[c]))
                                          for c in CATEGORIES],
                    weighted_forecast=wf, target=q.money(target),
                    attainment=q.ratio(q.money(amounts["won"]), target), coverage=q.ratio(wf, target),
                    owners=lines, teams=teams, **a.fields())


def _line(key: str, label: str, got: dict[str, Decimal], target: Decimal) -> ForecastLine:
    won, wf = q.money(got["won"]), q.money(got["weighted"])
    return ForecastLine(key=key, label=label, won=won, commit=q.money(got["commit"]),
                        best_case=q.money(got["best_case"]), pipeline=q.money(got["pipeline"]),
                        weighted_forecast=wf, target=q.money(target), attainment=q.ratio(won, target),
                        coverage=q.ratio(wf, target))


def _targets(uow, a: Asker, p: Period) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    tg = t.targets
    inside = [tg.c.period_start >= p.start, tg.c.period_end <= p.end]
    users = dict(uow.session.execute(
        select(tg.c.user_id, func.sum(tg.c.amount)).where(tg.c.user_id.is_not(None), *inside,
                                                          *q.where(a.owned(tg.c.user_id)))
        .group_by(tg.c.user_id)).all())
    teams = dict(uow.session.execute(
        select(tg.c.team_id, func.sum(tg.c.amount)).where(tg.c.team_id.is_not(None), *inside)
        .group_by(tg.c.team_id)).all())
    return ({k: q.money(v) for k, v in users.items()}, {k: q.money(v) for k, v in teams.items()})


def _team_lines(uow, a: Asker, per: dict[int, dict[str, Decimal]], team_targets: dict[int, Decimal]) -> list[ForecastLine]:
    """Each team with a member in scope: its own target against its in-scope members' numbers."""
    members: dict[int, list[int]] = {}
    for uid, tid in uow.session.execute(select(u.c.id, u.c.team_id).where(u.c.team_id.is_not(None))):
        if a.sees(uid):
            members.setdefault(tid, []).append(uid)
    names = dict(uow.session.execute(select(tm.c.id, tm.c.name)).all())
    out = []
    for tid, uids in members.items():
        got = {k: sum((per[x][k] for x in uids if x in per), Decimal(0)) for k in (*CATEGORIES, "weighted")}
        if tid not in team_targets and not any(got.values()):
            continue
        out.append(_line(str(tid), names[tid], got, team_targets.get(tid, Decimal(0))))
    return sorted(out, key=lambda x: (-x.weighted_forecast, x.label))


def _deal_lines(uow, a: Asker, clauses, limit: int, days: int | None = None) -> tuple[int, Decimal, list[DealLine]]:
    amount = _amount(a)
    count, total = uow.session.execute(select(func.count(), func.sum(amount)).where(*clauses)).one()
    acc = t.accounts
    # The top ids first from narrow rows; names and accounts only for those (not for every candidate).
    top = select(o.c.id, amount.label("converted")).where(*clauses).order_by(amount.desc(), o.c.id).limit(limit) \
        .subquery()
    rows = uow.session.execute(
        select(o.c.id, o.c.name, acc.c.name, o.c.owner_id, o.c.stage, top.c.converted, o.c.currency,
               o.c.amount, o.c.probability, o.c.expected_close_date, o.c.stage_changed_at)
        .select_from(top.join(o, o.c.id == top.c.id).join(acc, acc.c.id == o.c.account_id))
        .order_by(top.c.converted.desc(), o.c.id)).all()
    lines = []
    for (oid, name, account, owner_id, stage, conv, cur, amt, prob, close, changed) in rows:
        reasons = []
        if days is not None and changed <= a.now - timedelta(days=days):
            reasons.append("no_move")
        if days is not None and close is not None and close < a.today:
            reasons.append("past_close")
        lines.append(DealLine(opportunity_id=oid, ref=f"OPP-{oid:05d}", name=name, account_name=account,
                              owner_id=owner_id, owner_name=a.names.get(owner_id, str(owner_id)), stage=stage,
                              amount=q.money(conv), deal_currency=cur, deal_amount=q.money(amt), probability=prob,
                              expected_close_date=close, days_in_stage=(a.now - changed).days, reasons=reasons))
    return int(count or 0), q.money(total), lines


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", field="limit", details=keyed("analytics.limit_range"))
    return limit


def top_deals(period: Period | str = "this_month", limit: int = 5, *, actor: Actor, uow,
              team: int | str | None = None, owner: int | None = None) -> DealList:
    """The largest open deals in scope expected to close in the period."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    count, total, lines = _deal_lines(uow, a, _open_deals(a, p), _limit(limit))
    return DealList(metric="top_deals", period=p, days=None, count=count, amount=total, deals=lines, **a.fields())


def stuck_deals(days: int = 30, limit: int = 20, *, actor: Actor, uow, team: int | str | None = None,
                owner: int | None = None) -> DealList:
    """Open deals with no stage change for `days` days, or already past their expected close date."""
    if not 1 <= days <= 3650:
        raise ValidationFailed("days must be between 1 and 3650", field="days", details=keyed("analytics.days_range"))
    a = ask(uow, actor, team=team, owner=owner)
    cutoff = a.now - timedelta(days=days)
    stuck = (o.c.stage_changed_at <= cutoff) | (o.c.expected_close_date < a.today)
    count, total, lines = _deal_lines(uow, a, [*_open_deals(a, None), stuck], _limit(limit), days=days)
    return DealList(metric="stuck_deals", period=None, days=days, count=count, amount=total, deals=lines,
                    **a.fields())



