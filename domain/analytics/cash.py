"""Receivables and revenue: aging and DSO, collection rate per AR, won → contracted → invoiced → collected."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, select

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import Asker, ask
from domain.analytics.views import Aging, AgingRow, CollectionRate, CollectionRow, Reconciliation
from domain.db import tables as t
from domain.model.billing import BUCKETS
from domain.model.vocab import Stage

o, c, i, pay, al = t.opportunities, t.contracts, t.invoices, t.payments, t.payment_allocations
BUCKET_NAMES = [name for name, _, _ in BUCKETS]
SIGNED = ("signed", "executing", "completed", "closed")
DSO_DAYS = 90


def _invoices_of_deals():
    return i.join(c, c.c.id == i.c.contract_id).join(o, o.c.id == c.c.opportunity_id)


def _bucket(as_of: date):
    """Days overdue = as_of − due_on, into the same buckets as dunning uses."""
    whens = []
    for name, lo, hi in BUCKETS:
        if lo is None:
            whens.append((i.c.due_on >= as_of, name))  # not yet overdue
        elif hi is None:
            whens.append((i.c.due_on <= as_of - timedelta(days=lo), name))
        else:
            whens.append((and_(i.c.due_on <= as_of - timedelta(days=lo), i.c.due_on >= as_of - timedelta(days=hi)),
                          name))
    return case(*whens)


def _aging_row(key: str, label: str, buckets: dict[str, Decimal]) -> AgingRow:
    full = {b: q.money(buckets.get(b, 0)) for b in BUCKET_NAMES}
    total = q.money(sum(full.values(), Decimal(0)))
    return AgingRow(key=key, label=label, buckets=full, total=total, overdue=total - full["current"])


def aging(as_of: date | None = None, *, actor: Actor, uow, team: int | str | None = None,
          owner: int | None = None) -> Aging:
    """Open receivables by days past due and by AR, with days sales outstanding."""
    a = ask(uow, actor, team=team, owner=owner)
    day = as_of or a.today
    balance = q.converted(i.c.amount - i.c.paid_amount, i.c.currency, a.rates)
    bucket = _bucket(day)
    open_ = q.where(i.c.status != "void", i.c.amount > i.c.paid_amount, i.c.issued_on <= day, a.owned(o.c.owner_id))
    per: dict[int, dict[str, Decimal]] = {}
    for owner_id, b, s in uow.session.execute(
            select(o.c.owner_id, bucket, func.sum(balance)).select_from(_invoices_of_deals())
            .where(*open_).group_by(o.c.owner_id, bucket)):
        per.setdefault(owner_id, {})[b] = Decimal(str(s or 0))
    owners = sorted((_aging_row(str(k), a.names.get(k, str(k)), v) for k, v in per.items()),
                    key=lambda r: (-r.total, r.label))
    total = _aging_row("all", "", {b: sum((v.get(b, Decimal(0)) for v in per.values()), Decimal(0))
                                   for b in BUCKET_NAMES})
    issued = q.converted(i.c.amount, i.c.currency, a.rates)
    recent = q.money(uow.session.execute(
        select(func.sum(issued)).select_from(_invoices_of_deals())
        .where(*q.where(i.c.status != "void", i.c.issued_on > day - timedelta(days=DSO_DAYS), i.c.issued_on <= day,
                        a.owned(o.c.owner_id)))).scalar_one())
    dso = q.ratio(total.total * DSO_DAYS, recent, q.TENTH)
    return Aging(as_of=day, owners=owners, total=total, dso_days=dso, invoiced_90_days=recent, **a.fields())


def collection_rate(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
                    owner: int | None = None) -> CollectionRate:
    """Of the invoices due in the period, the share already collected, per AR."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    due = q.converted(i.c.amount, i.c.currency, a.rates)
    paid = q.converted(i.c.paid_amount, i.c.currency, a.rates)
    rows = uow.session.execute(
        select(o.c.owner_id, func.sum(due), func.sum(paid)).select_from(_invoices_of_deals())
        .where(*q.where(i.c.status != "void", a.owned(o.c.owner_id), *q.in_dates(i.c.due_on, p)))
        .group_by(o.c.owner_id)).all()
    owners = sorted((_collection_row(str(k), a.names.get(k, str(k)), d, pd) for k, d, pd in rows),
                    key=lambda r: (-r.due, r.label))
    total = _collection_row("all", "", sum((Decimal(str(d or 0)) for _, d, _ in rows), Decimal(0)),
                            sum((Decimal(str(pd or 0)) for _, _, pd in rows), Decimal(0)))  # exact, rounded once
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
    count, won_amount = uow.session.execute(
        select(func.count(), func.sum(q.converted(o.c.amount, o.c.currency, a.rates))).where(*won)).one()
    signed = c.c.status.in_(SIGNED)

    def conv(col):
        return func.sum(q.converted(col, c.c.currency, a.rates))

    contracted, invoiced, collected, recognised, with_contract = uow.session.execute(
        select(func.sum(case((signed, q.converted(c.c.value, c.c.currency, a.rates)), else_=0)),
               conv(c.c.invoiced_total), conv(c.c.paid_total), conv(c.c.recognised_total),
               func.count(func.distinct(case((signed, c.c.opportunity_id)))))
        .select_from(c.join(o, o.c.id == c.c.opportunity_id)).where(*won)).one()
    w, ct, inv, col = q.money(won_amount), q.money(contracted), q.money(invoiced), q.money(collected)
    return Reconciliation(period=p, won_deals=int(count or 0), deals_without_contract=int(count or 0) - int(with_contract or 0),
                          won=w, contracted=ct, invoiced=inv, collected=col, recognised=q.money(recognised),
                          gap_won_contracted=w - ct, gap_contracted_invoiced=ct - inv, gap_invoiced_collected=inv - col,
                          **a.fields())


def invoiced_in(uow, a: Asker, p: Period) -> Decimal:
    return q.money(uow.session.execute(
        select(func.sum(q.converted(i.c.amount, i.c.currency, a.rates))).select_from(_invoices_of_deals())
        .where(*q.where(i.c.status != "void", a.owned(o.c.owner_id), *q.in_dates(i.c.issued_on, p)))).scalar_one())


def collected_in(uow, a: Asker, p: Period) -> Decimal:
    frm = al.join(pay, pay.c.id == al.c.payment_id).join(i, i.c.id == al.c.invoice_id) \
        .join(c, c.c.id == i.c.contract_id).join(o, o.c.id == c.c.opportunity_id)
    return q.money(uow.session.execute(
        select(func.sum(q.converted(al.c.amount, al.c.currency, a.rates))).select_from(frm)
        .where(*q.where(pay.c.status == "confirmed", a.owned(o.c.owner_id),
                        *q.in_dates(pay.c.received_on, p)))).scalar_one())
