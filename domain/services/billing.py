"""Invoices per payment-plan milestone: issued when the trigger happens, never more than the contract value."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.errors import InvalidTransition, NotFound, ValidationFailed
from domain.model import billing as b
from domain.model import contracts as c
from domain.model.billing import Invoice
from domain.model.contracts import Contract, PaymentMilestone
from domain.model.events import InvoiceIssued, InvoiceVoided
from domain.model.message_keys import keyed
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, emit, job_date, next_ref, parse, snapshot
from domain.services.contract_access import visible_contract
from domain.services.schemas import Input, View

INVOICE_FIELDS = ("status", "amount", "paid_amount", "due_on", "dunning_level", "void_reason")


class InvoiceView(View):
    id: int
    number: str
    contract_id: int
    milestone_seq: int
    milestone_label: str
    account_id: int
    currency: str
    amount: Decimal
    paid_amount: Decimal
    balance: Decimal
    status: str
    issued_on: date
    due_on: date
    days_overdue: int
    overdue: bool
    dunning_level: int
    void_reason: str | None
    message: str = ""


def to_view(uow, invoice: Invoice, message: str = "") -> InvoiceView:
    contract = uow.contracts.get(invoice.contract_id)
    milestone = next((m for m in contract.milestones if m.id == invoice.milestone_id), None)
    days = invoice.days_overdue(uow.now().date())
    return InvoiceView(
        id=invoice.id, number=invoice.number, contract_id=invoice.contract_id,
        milestone_seq=milestone.seq if milestone else 0, milestone_label=milestone.label if milestone else "?",
        account_id=invoice.account_id, currency=invoice.currency, amount=invoice.amount,
        paid_amount=invoice.paid_amount, balance=invoice.balance, status=invoice.status, issued_on=invoice.issued_on,
        due_on=invoice.due_on, days_overdue=days, overdue=days > 0, dunning_level=invoice.dunning_level,
        void_reason=invoice.void_reason, message=message)


def live_invoice(uow, milestone: PaymentMilestone) -> Invoice | None:
    return next((i for i in uow.invoices.for_contract(milestone.contract_id)
                 if i.milestone_id == milestone.id and i.status != b.VOID), None)


def _issue(uow, ctx: Ctx, contract: Contract, milestone: PaymentMilestone, on: date) -> Invoice:
    if contract.invoiced_total + milestone.amount > contract.value:
        raise ValidationFailed(
            f"Invoicing {milestone.amount} on {contract.ref} would bring the invoiced total to "
            f"{contract.invoiced_total + milestone.amount}, above the contract value {contract.value}",
            field="amount")
    invoice = uow.invoices.add(Invoice(
        number=next_ref(uow, "INV"), contract_id=contract.id, milestone_id=milestone.id,
        account_id=contract.account_id, currency=contract.currency, amount=milestone.amount, issued_on=on,
        due_on=on + timedelta(days=contract.payment_terms_days), created_by=ctx.user.id))
    before = {"invoiced_total": str(contract.invoiced_total)}
    contract.invoiced_total += milestone.amount
    audit(uow, ctx, "invoice", invoice.id, "issue", None, snapshot(invoice, INVOICE_FIELDS))
    audit(uow, ctx, "contract", contract.id, "invoice", before, {"invoiced_total": str(contract.invoiced_total)})
    emit(uow, InvoiceIssued(invoice_id=invoice.id, contract_id=contract.id, amount=str(invoice.amount),
                            currency=invoice.currency, due_on=invoice.due_on.isoformat()))
    return invoice


def fire_trigger(uow, ctx: Ctx, contract: Contract, trigger: str, on: date) -> list[Invoice]:
    """The trigger happened: its milestones become due and are invoiced at once."""
    issued = []
    for milestone in contract.milestones:
        if milestone.trigger != trigger or milestone.triggered_on is not None:
            continue
        if trigger == c.ON_DATE and milestone.due_date > on:
            continue
        milestone.triggered_on = on
        if milestone.amount > 0 and live_invoice(uow, milestone) is None:
            issued.append(_issue(uow, ctx, contract, milestone, on))
    return issued


class InvoiceIssue(Input):
    seq: int = Field(ge=1, description="payment-plan milestone number (1 = first)")
    issued_on: date | None = Field(None, description="defaults to today")


def issue_invoice(contract_id: int | str, data: InvoiceIssue | dict, *, actor: Actor, uow) -> InvoiceView:
    """Finance issues the invoice of a milestone whose trigger has happened (again, after a void)."""
    ctx = begin(uow, actor, UseCase.ISSUE_INVOICE)
    cmd = parse(InvoiceIssue, data)
    contract, _ = visible_contract(uow, ctx, contract_id, for_update=True)
    if contract.status not in c.IN_FORCE:
        raise InvalidTransition(f"{contract.ref} is {contract.status}; only a signed contract is invoiced",
                                field="status", allowed=sorted(c.IN_FORCE))
    milestone = contract.milestone(cmd.seq)
    if milestone is None:
        raise NotFound(f"{contract.ref} has no payment milestone {cmd.seq}", field="seq",
                       allowed=[m.seq for m in contract.milestones])
    today = uow.now().date()
    on = cmd.issued_on or today
    if on > today:
        raise ValidationFailed(f"issued_on {on} is in the future", field="issued_on")
    if milestone.triggered_on is None and not (milestone.trigger == c.ON_DATE and milestone.due_date <= on):
        raise ValidationFailed(f"Milestone {milestone.seq} ({milestone.label}) waits for its trigger: "
                               f"{milestone.trigger}" + (f" on {milestone.due_date}" if milestone.due_date else ""),
                               field="seq")
    existing = live_invoice(uow, milestone)
    if existing is not None:
        return to_view(uow, existing, message=f"Milestone {milestone.seq} is already invoiced: {existing.ref}")
    if milestone.triggered_on is None:
        milestone.triggered_on = on
    if on < milestone.triggered_on:
        raise ValidationFailed(f"issued_on {on} is before the trigger date {milestone.triggered_on}",
                               field="issued_on")
    invoice = _issue(uow, ctx, contract, milestone, on)
    return to_view(uow, invoice, message=f"{invoice.ref} issued: {invoice.currency} {invoice.amount}, "
                                         f"due {invoice.due_on}")


def bill_due_milestones(*, actor: Actor, uow, as_of: date | None = None) -> int:
    """Daily job: invoice the date-triggered milestones that have come due. Returns how many invoices."""
    ctx = begin(uow, actor, UseCase.RUN_JOBS)
    on = job_date(uow, as_of)
    due = [x for x in uow.contracts.in_force()
           if any(m.trigger == c.ON_DATE and m.triggered_on is None and m.due_date <= on for m in x.milestones)]
    # Every deal locked first, in id order, before any invoice number is drawn: a use case holding one
    # of these deals and waiting for the number counter can then never wait on us in a cycle.
    for opp_id in sorted({x.opportunity_id for x in due}):
        uow.opportunities.get_for_update(opp_id)
    issued = 0
    for contract in uow.contracts.lock_many(x.id for x in due):
        if contract.status in c.IN_FORCE:
            issued += len(fire_trigger(uow, ctx, contract, c.ON_DATE, on))
    return issued


def _visible_invoice(uow, ctx: Ctx, invoice_id: int | str, *, for_update: bool = False):
    invoice = None
    if isinstance(invoice_id, str) and invoice_id.strip().isdigit():
        invoice_id = int(invoice_id)
    if isinstance(invoice_id, int):
        invoice = uow.invoices.get(invoice_id) if invoice_id > 0 else None
    elif isinstance(invoice_id, str) and invoice_id.strip():
        invoice = uow.invoices.by_number(invoice_id)
    if invoice is None:
        raise NotFound(f"Invoice {invoice_id} does not exist", field="invoice_id",
                       details=keyed("invoice.not_found", ref=invoice_id))
    contract, opp = visible_contract(uow, ctx, invoice.contract_id, for_update=for_update)
    if for_update:
        invoice = uow.invoices.get_for_update(invoice.id)
    return invoice, contract, opp


class InvoiceVoid(Input):
    reason: str = Field(min_length=3, max_length=1000, description="why the invoice is void")


def void_invoice(invoice_id: int | str, data: InvoiceVoid | dict, *, actor: Actor, uow) -> InvoiceView:
    """Finance voids an unpaid invoice with a reason; its milestone can be invoiced again."""
    ctx = begin(uow, actor, UseCase.VOID_INVOICE)
    cmd = parse(InvoiceVoid, data)
    invoice, contract, _ = _visible_invoice(uow, ctx, invoice_id, for_update=True)
    before = snapshot(invoice, INVOICE_FIELDS)
    invoice.void(cmd.reason, ctx.user.id, uow.now())
    contract_before = {"invoiced_total": str(contract.invoiced_total)}
    contract.invoiced_total -= invoice.amount
    audit(uow, ctx, "invoice", invoice.id, "void", before, snapshot(invoice, INVOICE_FIELDS))
    audit(uow, ctx, "contract", contract.id, "void_invoice", contract_before,
          {"invoiced_total": str(contract.invoiced_total)})
    emit(uow, InvoiceVoided(invoice_id=invoice.id, contract_id=contract.id, amount=str(invoice.amount),
                            currency=invoice.currency, reason=cmd.reason))
    return to_view(uow, invoice, message=f"{invoice.ref} voided: {cmd.reason}")


def get_invoice(invoice_id: int | str, *, actor: Actor, uow) -> InvoiceView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    invoice, _, _ = _visible_invoice(uow, ctx, invoice_id)
    return to_view(uow, invoice)


def list_invoices(contract_id: int | str, *, actor: Actor, uow) -> list[InvoiceView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, _ = visible_contract(uow, ctx, contract_id)
    return [to_view(uow, i) for i in uow.invoices.for_contract(contract.id)]

