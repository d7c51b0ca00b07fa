"""Open pipeline: by stage and other dimensions, the forecast against targets, top and stuck deals."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import case, func, literal, select, type_coerce, union_all

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
        rows = product.rows(uow, a, p)
        total = _row("", "", sum(r.count for r in rows), sum(r.amount for r in rows),
                     sum(r.weighted for r in rows))
    else:
        rows, total = _dimension_rows(uow, a, by, ru.rows_of(a, q.OPEN, p))
    return Breakdown(metric="pipeline", by=by, period=p, rows=rows, total=total, **a.fields())


def _dimension_rows(uow, a: Asker, by: str, clauses) -> tuple[list[BreakdownRow], BreakdownRow]:
    """From the rollup: a handful of rows per owner and month, whatever the number of deals."""
    r = ru.r
    key = {"stage": r.c.stage, "owner": r.c.owner_id, "team": r.c.owner_id, "region": r.c.region}.get(by, r.c.month)
    groups = ru.sums(uow, a, [key], clauses)
    total = _row("", "", *ru.total(groups))
    if by == "stage":
        return [_row(s, s, *groups.get((s,), (0, 0, 0))) for s in q.OPEN], total
    merged: dict[tuple[str, str], list] = {}
    for (k,), measures in groups.items():
        if by == "owner":
            label = (str(k), a.names.get(k, str(k)))
        elif by == "team":
            tid = a.team_of.get(k)
            label = ("", NONE_LABEL) if tid is None else (str(tid), a.team_names[tid])
        elif by == "region":
            label = (k, k or NONE_LABEL)
        else:  # quarter / month of the expected close date
            parts = ru.month_parts(k)
            name = "" if parts is None else (q.quarter_label if by == "quarter" else q.month_label)(*parts)
            label = (name, name or NONE_LABEL)
        acc = merged.setdefault(label, [0, Decimal(0), Decimal(0)])
        for i, v in enumerate(measures):
            acc[i] += v
    # A rollup row whose deals all moved on stays, at zero: not a row of the answer.
    rows = [_row(k, label, *v) for (k, label), v in merged.items() if v[0]]
    if by in ("quarter", "month"):
        return sorted(rows, key=lambda r: (r.key == "", r.key)), total
    return _by_amount(rows), total


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
        line[category] += amt  # Decimals already, from ru.sums
        line["weighted"] += wt
        counts[category] += count
        amounts[category] += amt

    r = ru.r
    # Grouped by category, not stage, in SQL: a third fewer rows to fetch for the whole company.
    category = case(CATEGORY_OF, value=r.c.stage, else_=literal("won")).label("category")
    for (owner_id, cat), (c, am, w) in ru.sums(uow, a, [r.c.owner_id, category],
                                               ru.rows_of(a, [*q.OPEN, Stage.WON.value], p)).items():
        if c:  # won counts in full in the weighted forecast
            add(owner_id, cat, c, am, am if cat == "won" else w)
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
                                                          *q.where(a.by_person(tg.c.user_id)))
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


def _deal_lines(uow, a: Asker, clauses, limit: int, days: int | None = None) -> list[DealLine]:
    ids = _top_ids(uow, a, clauses, limit)
    acc = t.accounts
    found = {row[0]: row for row in uow.session.execute(
        select(o.c.id, o.c.name, acc.c.name, o.c.owner_id, o.c.stage, o.c.currency, o.c.amount, o.c.probability,
               o.c.expected_close_date, o.c.stage_changed_at)
        .select_from(o.join(acc, acc.c.id == o.c.account_id)).where(o.c.id.in_(ids)))} if ids else {}
    lines = []
    for oid in ids:
        _, name, account, owner_id, stage, cur, amt, prob, close, changed = found[oid]
        reasons = []
        if days is not None and changed <= a.now - timedelta(days=days):
            reasons.append("no_move")
        if days is not None and close is not None and close < a.today:
            reasons.append("past_close")
        lines.append(DealLine(opportunity_id=oid, ref=f"OPP-{oid:05d}", name=name, account_name=account,
                              owner_id=owner_id, owner_name=a.names.get(owner_id, str(owner_id)), stage=stage,
                              amount=q.money(q.convert(amt, cur, a.rates)), deal_currency=cur,
                              deal_amount=q.money(amt), probability=prob, expected_close_date=close,
                              days_in_stage=(a.now - changed).days, reasons=reasons))
    return lines


def _top_ids(uow, a: Asker, clauses, limit: int) -> list[int]:
    """The largest deals by converted amount: each currency's largest by its own amount, merged here.

    Within one currency the order by amount is the order by converted amount, so an index ordered by
    (currency, amount) gives each currency's first `limit` rows without sorting every candidate.
    """
    parts = [select(o.c.id, o.c.currency, o.c.amount).where(*clauses, o.c.currency == cur)
             .order_by(o.c.amount.desc(), o.c.id).limit(limit).subquery() for cur in sorted(a.rates)]
    rows = uow.session.execute(union_all(*(select(p) for p in parts))).all()
    ranked = sorted(rows, key=lambda r: (-q.convert(r.amount, r.currency, a.rates), r.id))
    return [r.id for r in ranked[:limit]]


def _limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", field="limit", details=keyed("analytics.limit_range"))
    return limit


def top_deals(period: Period | str = "this_month", limit: int = 5, *, actor: Actor, uow,
              team: int | str | None = None, owner: int | None = None) -> DealList:
    """The largest open deals in scope expected to close in the period."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    lines = _deal_lines(uow, a, _open_deals(a, p), _limit(limit))
    count, total, _ = ru.total(ru.sums(uow, a, [], ru.rows_of(a, q.OPEN, p)))  # the rollup's months = close dates
    return DealList(metric="top_deals", period=p, days=None, count=count, amount=q.money(total), deals=lines,
                    **a.fields())


def stuck_deals(days: int = 30, limit: int = 20, *, actor: Actor, uow, team: int | str | None = None,
                owner: int | None = None) -> DealList:
    """Open deals with no stage change for `days` days, or already past their expected close date."""
    if not 1 <= days <= 3650:
        raise ValidationFailed("days must be between 1 and 3650", field="days", details=keyed("analytics.days_range"))
    a = ask(uow, actor, team=team, owner=owner)
    cutoff = a.now - timedelta(days=days)
    stuck = (o.c.stage_changed_at <= cutoff) | (o.c.expected_close_date < a.today)
    lines = _deal_lines(uow, a, [*_open_deals(a, None), stuck], _limit(limit), days=days)
    # Most open deals are stuck: the open pipeline (rollup) less the few that moved lately and are not late.
    count, total, _ = ru.total(ru.sums(uow, a, [], ru.rows_of(a, q.OPEN, None)))
    moving = [*_open_deals(a, None), o.c.stage_changed_at > cutoff,
              (o.c.expected_close_date >= a.today) | o.c.expected_close_date.is_(None)]
    for currency, n, amount in uow.session.execute(
            select(o.c.currency, func.count(), type_coerce(func.sum(o.c.amount), q.EXACT)).where(*moving)
            .group_by(o.c.currency)):
        count -= n
        total -= q.convert(amount, currency, a.rates)
    return DealList(metric="stuck_deals", period=None, days=days, count=count, amount=q.money(total), deals=lines,
                    **a.fields())
