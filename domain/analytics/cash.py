"""Receivables and revenue: aging and DSO, collection rate per AR, won → contracted → invoiced → collected.

Invoices and payment allocations carry their deal's owner (`owner_id`, and `collected_on` on
allocations), copies kept exact by database triggers (migration 0013): no question here joins
receivables to contracts and deals. SQL sums per currency; Python converts each sum once with the
book rates (a CASE per row cost more than the scan) and rounds once at the end.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, select, type_coerce

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import Asker, ask
from domain.analytics.views import Aging, AgingRow, CollectionRate, CollectionRow, Reconciliation
from domain.db import tables as t
from domain.model.billing import BUCKETS
from domain.model.vocab import Stage

o, c, i, al = t.opportunities, t.contracts, t.invoices, t.payment_allocations
BUCKET_NAMES = [name for name, _, _ in BUCKETS]
SIGNED = ("signed", "executing", "completed", "closed")
DSO_DAYS = 90
LIVE = i.c.status != "void"


def _sum(column, where=None):
    # Exact to the digit: SQLite's float sums come back to 10 places, not rounded to cents.
    total = func.sum(column)
    return type_coerce(total if where is None else total.filter(where), q.EXACT)


def _buckets(as_of: date, balance) -> list:
    """Σ balance per bucket of days overdue (as_of − due_on), as dunning buckets them: one column each.

    Bounds on the date itself, one filtered sum per bucket, a row per owner and currency: grouping
    by a label per row instead cost twice as much at 1M deals, and fetched five times the rows.
    """
    sums, newer = [], None  # newer: the first due date of the bucket before (less overdue)
    for _, _, most in BUCKETS:  # at most `most` days overdue (None: no limit)
        oldest = None if most is None else as_of - timedelta(days=most)
        bounds = [b for b in (None if oldest is None else i.c.due_on >= oldest,
                              None if newer is None else i.c.due_on < newer) if b is not None]
        sums.append(_sum(balance, and_(*bounds)))
        newer = oldest
    return sums


def _aging_row(key: str, label: str, buckets: dict[str, Decimal]) -> AgingRow:
    full = {b: q.money(buckets.get(b, 0)) for b in BUCKET_NAMES}
    total = q.money(sum(full.values(), Decimal(0)))
    return AgingRow(key=key, label=label, buckets=full, total=total, overdue=total - full["current"])


def aging(as_of: date | None = None, *, actor: Actor, uow, team: int | str | None = None,
          owner: int | None = None) -> Aging:
    """Open receivables by days past due and by AR, with days sales outstanding."""
    a = ask(uow, actor, team=team, owner=owner)
    day = as_of or a.today
    per: dict[int, dict[str, Decimal]] = {}
    for owner_id, currency, *sums in uow.session.execute(
            select(i.c.owner_id, i.c.currency, *_buckets(day, i.c.amount - i.c.paid_amount))
            .where(*q.where(LIVE, i.c.amount > i.c.paid_amount, i.c.issued_on <= day, a.owned(i.c.owner_id)))
            .group_by(i.c.owner_id, i.c.currency)).all():
        buckets = per.setdefault(owner_id, {})
        for name, s in zip(BUCKET_NAMES, sums):
            if s is not None:
                buckets[name] = buckets.get(name, Decimal(0)) + q.convert(s, currency, a.rates)
    owners = sorted((_aging_row(str(k), a.names.get(k, str(k)), v) for k, v in per.items()),
                    key=lambda r: (-r.total, r.label))
    total = _aging_row("all", "", {b: sum((v.get(b, Decimal(0)) for v in per.values()), Decimal(0))
                                   for b in BUCKET_NAMES})
    recent = q.money(_converted_sums(uow, a, select(i.c.currency, _sum(i.c.amount)).where(*q.where(
        LIVE, i.c.issued_on > day - timedelta(days=DSO_DAYS), i.c.issued_on <= day, a.owned(i.c.owner_id)))))
    dso = q.ratio(total.total * DSO_DAYS, recent, q.TENTH)
    return Aging(as_of=day, owners=owners, total=total, dso_days=dso, invoiced_90_days=recent, **a.fields())


def collection_rate(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
                    owner: int | None = None) -> CollectionRate:
    """Of the invoices due in the period, the share already collected, per AR."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    per: dict[int, list[Decimal]] = {}
    for owner_id, currency, due, paid in uow.session.execute(
            select(i.c.owner_id, i.c.currency, _sum(i.c.amount), _sum(i.c.paid_amount))
            .where(*q.where(LIVE, a.owned(i.c.owner_id), *q.in_dates(i.c.due_on, p)))
            .group_by(i.c.owner_id, i.c.currency)):
        acc = per.setdefault(owner_id, [Decimal(0), Decimal(0)])
        acc[0] += q.convert(due, currency, a.rates)
        acc[1] += q.convert(paid, currency, a.rates)
    owners = sorted((_collection_row(str(k), a.names.get(k, str(k)), d, pd) for k, (d, pd) in per.items()),
                    key=lambda r: (-r.due, r.label))
    total = _collection_row("all", "", sum((d for d, _ in per.values()), Decimal(0)),
                            sum((pd for _, pd in per.values()), Decimal(0)))  # exact, rounded once
    return CollectionRate(period=p, owners=owners, total=total, **a.fields())


def _collection_row(key: str, label: str, due, collected) -> CollectionRow:
    d, col = q.money(due), q.money(collected)
    return CollectionRow(key=key, label=label, due=d, collected=col, rate=q.ratio(col, d))


def reconciliation(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
                   owner: int | None = None) -> Reconciliation:
    """Deals won in the period: won vs contracted vs invoiced vs collected vs recognised."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    won = q.where(o.c.stage == Stage.WON.value, a.owned(o.c.owner_id), *q.in_times(o.c.stage_changed_at, p))
    count, won_amount = 0, Decimal(0)
    for currency, n, amount in uow.session.execute(
            select(o.c.currency, func.count(), _sum(o.c.amount)).where(*won).group_by(o.c.currency)):
        count += n
        won_amount += q.convert(amount, currency, a.rates)
    signed = c.c.status.in_(SIGNED)
    sums = [Decimal(0)] * 4
    with_contract = 0
    # A deal has at most one contract (contracts.opportunity_id is unique): counts add up across currencies.
    for currency, n, *values in uow.session.execute(
            select(c.c.currency, func.count(func.distinct(case((signed, c.c.opportunity_id)))),
                   _sum(case((signed, c.c.value), else_=0)), _sum(c.c.invoiced_total), _sum(c.c.paid_total),
                   _sum(c.c.recognised_total))
            .select_from(c.join(o, o.c.id == c.c.opportunity_id)).where(*won).group_by(c.c.currency)):
        with_contract += n
        sums = [s + q.convert(v, currency, a.rates) for s, v in zip(sums, values)]
    w, ct, inv, col, rec = (q.money(x) for x in (won_amount, *sums))
    return Reconciliation(period=p, won_deals=count, deals_without_contract=count - with_contract,
                          won=w, contracted=ct, invoiced=inv, collected=col, recognised=rec,
                          gap_won_contracted=w - ct, gap_contracted_invoiced=ct - inv, gap_invoiced_collected=inv - col,
                          **a.fields())


def _converted_sums(uow, a: Asker, stmt) -> Decimal:
    """Σ over (currency, sum) rows, each converted once: `stmt` selects currency and one sum."""
    return sum((q.convert(s, cur, a.rates) for cur, s in uow.session.execute(stmt.group_by(stmt.selected_columns[0]))),
               Decimal(0))


def invoiced_and_collected(uow, a: Asker, periods: list[Period]) -> list[tuple[Decimal, Decimal]]:
    """Per period: Σ non-void invoices issued in it, Σ payment allocations collected in it (owner in scope).

    Collected = allocations whose payment is confirmed and was received in the period (collected_on,
    migration 0013). Both read from receivables_monthly (per month, owner and currency; triggers keep it,
    migration 0019): periods are whole months, so month keys select them exactly; one statement for
    every period, each sum converted once and rounded once.
    """
    r = t.receivables_monthly
    spans = [(f"{p.start:%Y-%m}", f"{p.end:%Y-%m}") for p in periods]
    acc = [[Decimal(0), Decimal(0)] for _ in periods]
    for month, currency, invoiced, collected in uow.session.execute(
            select(r.c.month, r.c.currency, _sum(r.c.invoiced), _sum(r.c.collected))
            .where(*q.where(a.owned(r.c.owner_id), r.c.month >= min(s for s, _ in spans),
                            r.c.month < max(e for _, e in spans)))
            .group_by(r.c.month, r.c.currency)):
        for (start, end), sums in zip(spans, acc):
            if start <= month < end:
                sums[0] += q.convert(invoiced, currency, a.rates)
                sums[1] += q.convert(collected, currency, a.rates)
    return [(q.money(inv), q.money(col)) for inv, col in acc]
