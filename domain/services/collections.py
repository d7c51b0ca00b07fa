"""Collections (回款管理): aging by the deal's AR, promises to pay, dunning levels with reminder events."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.errors import InvalidTransition, ValidationFailed
from domain.model import billing as b
from domain.model.billing import PromiseToPay
from domain.model.events import InvoiceReminderDue
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services import opportunities as opp_svc
from domain.services.base import audit, begin, emit, job_date, parse
from domain.services.billing import _visible_invoice
from domain.services.schemas import Input, Money, View


class AgingLine(View):
    invoice_id: int
    invoice_number: str
    contract_number: str
    opportunity_id: int
    account_name: str
    owner_id: int
    owner_name: str
    currency: str
    balance: Decimal
    due_on: date
    days_overdue: int
    bucket: str
    dunning_level: int
    promise: str | None  # "open until 2026-12-01", "broken", "kept"


class AgingTotals(View):
    owner_id: int
    owner_name: str
    currency: str
    buckets: dict[str, Decimal]
    total: Decimal


class AgingReport(View):
    as_of: date
    lines: list[AgingLine]
    by_owner: list[AgingTotals]
    buckets: dict[str, dict[str, Decimal]]  # currency → bucket → open balance


def aging_report(*, actor: Actor, uow, as_of: date | None = None, owner_id: int | None = None) -> AgingReport:
    """Open invoices by days past due (current, 1-30, 31-60, 61-90, 90+), per accountable AR."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    today = as_of or uow.now().date()
    names = {u.id: u.display_name() for u in uow.users.all()}
    lines: list[AgingLine] = []
    for invoice in uow.invoices.open_all():
        contract = uow.contracts.get(invoice.contract_id)
        opp = uow.opportunities.get(contract.opportunity_id)
        if not ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage):
            continue
        if owner_id is not None and opp.owner_id != owner_id:
            continue
        days = invoice.days_overdue(today)
        promises = uow.finance.promises_for(invoice.id)
        promise = None
        if promises:
            last = promises[-1]
            state = last.state(invoice, today)
            promise = f"open until {last.promised_on}" if state == "open" else state
        lines.append(AgingLine(
            invoice_id=invoice.id, invoice_number=invoice.number, contract_number=contract.number,
            opportunity_id=opp.id, account_name=uow.accounts.get(invoice.account_id).name, owner_id=opp.owner_id,
            owner_name=names.get(opp.owner_id, "?"), currency=invoice.currency, balance=invoice.balance,
            due_on=invoice.due_on, days_overdue=days, bucket=b.bucket_for(days), dunning_level=invoice.dunning_level,
            promise=promise))
    empty = {name: Decimal("0") for name, _, _ in b.BUCKETS}
    totals: dict[tuple[int, str], dict[str, Decimal]] = {}
    buckets: dict[str, dict[str, Decimal]] = {}
    for line in lines:
        totals.setdefault((line.owner_id, line.currency), dict(empty))[line.bucket] += line.balance
        buckets.setdefault(line.currency, dict(empty))[line.bucket] += line.balance
    by_owner = [AgingTotals(owner_id=o, owner_name=names.get(o, "?"), currency=cur, buckets=bk,
                            total=sum(bk.values(), Decimal("0")))
                for (o, cur), bk in sorted(totals.items(), key=lambda kv: -sum(kv[1].values(), Decimal("0")))]
    lines.sort(key=lambda x: (-x.days_overdue, x.invoice_id))
    return AgingReport(as_of=today, lines=lines, by_owner=by_owner, buckets=buckets)


class PromiseCreate(Input):
    amount: Money = Field(gt=0)
    promised_on: date = Field(description="the date the customer promised to pay by")
    note: str | None = Field(None, max_length=2000)


class PromiseView(View):
    invoice_number: str
    amount: Decimal
    promised_on: date
    state: str
    message: str = ""


def record_promise(invoice_id: int | str, data: PromiseCreate | dict, *, actor: Actor, uow) -> PromiseView:
    """The AR (accountable for cash) or finance records the customer's promise to pay; dunning waits for it."""
    ctx = begin(uow, actor, UseCase.RECORD_PROMISE)
    cmd = parse(PromiseCreate, data)
    invoice, _contract, opp = _visible_invoice(uow, ctx, invoice_id, for_update=True)
    if Role.FINANCE not in ctx.user.roles:
        opp_svc.require_manager_of(ctx, opp, "record a promise to pay")
    if not invoice.is_open:
        raise InvalidTransition(f"{invoice.ref} is {invoice.status}; nothing is left to promise", field="status")
    today = uow.now().date()
    if cmd.promised_on < today:
        raise ValidationFailed(f"promised_on {cmd.promised_on} is in the past", field="promised_on")
    if cmd.amount > invoice.balance:
        raise ValidationFailed(f"{cmd.amount} is more than the {invoice.balance} open on {invoice.ref}",
                               field="amount")
    promise = uow.finance.add(PromiseToPay(invoice_id=invoice.id, amount=cmd.amount, promised_on=cmd.promised_on,
                                           paid_before=invoice.paid_amount, recorded_by=ctx.user.id,
                                           recorded_at=uow.now(), note=cmd.note))
    audit(uow, ctx, "invoice", invoice.id, "promise_to_pay", None,
          {"amount": str(cmd.amount), "promised_on": cmd.promised_on.isoformat(), "promise": promise.id})
    return PromiseView(invoice_number=invoice.number, amount=promise.amount, promised_on=promise.promised_on,
                       state=promise.state(invoice, today),
                       message=f"Promise to pay {invoice.currency} {cmd.amount} on {invoice.ref} by {cmd.promised_on} "
                               f"recorded; reminders wait until then")


class DunningRun(View):
    as_of: date
    raised: list[str]  # "INV-2026-00001 → level 2 (firm reminder)"
    held: list[str]  # invoices waiting on an open promise to pay


def run_dunning(*, actor: Actor, uow, as_of: date | None = None) -> DunningRun:
    """Daily job: raise each overdue invoice's dunning level with its age; each new level is one reminder event.

    Levels only go up; an open promise to pay holds the invoice where it is until the promised date.
    """
    ctx = begin(uow, actor, UseCase.RUN_JOBS)
    today = job_date(uow, as_of)
    raised, held, due = [], [], []
    for candidate in uow.invoices.open_all():
        if b.dunning_level_for(candidate.days_overdue(today)) <= candidate.dunning_level:
            continue
        if any(p.state(candidate, today) == "open" for p in uow.finance.promises_for(candidate.id)):
            held.append(candidate.ref)
            continue
        due.append(candidate)
    deals = {i.id: uow.contracts.get(i.contract_id).opportunity_id for i in due}
    for opp_id in sorted(set(deals.values())):  # deals in id order, as every job does (no lock cycles)
        uow.opportunities.get_for_update(opp_id)
    for candidate in due:
        uow.contracts.get_for_update(candidate.contract_id)
        invoice = uow.invoices.get_for_update(candidate.id)
        target = b.dunning_level_for(invoice.days_overdue(today))  # re-read under the lock
        if not invoice.is_open or target <= invoice.dunning_level:
            continue
        before = {"dunning_level": invoice.dunning_level}
        invoice.dunning_level, invoice.last_dunned_on = target, today
        audit(uow, ctx, "invoice", invoice.id, "dunning", before, {"dunning_level": target})
        emit(uow, InvoiceReminderDue(invoice_id=invoice.id, owner_id=uow.opportunities.get(deals[invoice.id]).owner_id,
                                     level=target, days_overdue=invoice.days_overdue(today),
                                     balance=str(invoice.balance), currency=invoice.currency))
        raised.append(f"{invoice.ref} → level {target} ({b.DUNNING_LEVELS[target]})")
    return DunningRun(as_of=today, raised=raised, held=held)
