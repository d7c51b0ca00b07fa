"""Payments (回款): recorded by finance (or proposed by the AR), allocated oldest-first or explicitly.

Invariants: Σ allocations + unapplied credit = amount; no invoice is ever paid beyond its amount;
the same bank reference twice is one payment. Locks: payment, then contracts, then invoices, by id.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from domain.actor import Actor
from domain.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.model import billing as b
from domain.model.billing import Invoice, Payment
from domain.model.events import PaymentRecorded
from domain.model.message_keys import keyed
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, emit, get_or_404, next_ref, parse, snapshot
from domain.services.contract_access import find_contract
from domain.services.schemas import Currency, Input, Money, View

PAYMENT_FIELDS = ("status", "amount", "allocated", "unapplied")
Method = Literal["bank_transfer", "acceptance_bill", "check", "card", "cash", "other"]


class AllocationIn(Input):
    invoice_id: int | str = Field(description="invoice id or number (INV-…)")
    amount: Money = Field(gt=0)


class PaymentCreate(Input):
    account_id: int | None = Field(None, gt=0, description="the paying customer; or give contract_id")
    contract_id: int | str | None = Field(None, description="pay this contract's invoices (oldest first)")
    amount: Money = Field(gt=0)
    currency: Currency
    received_on: date
    method: Method = "bank_transfer"
    bank_ref: str = Field(min_length=1, max_length=100, description="the bank's reference; unique")

    @field_validator("bank_ref")
    @classmethod
    def _one_spelling(cls, v: str) -> str:
        """'boc 0001' and 'BOC  0001' are the same bank line: trimmed, single spaces, upper case."""
        return " ".join(v.split()).upper()
    allocations: list[AllocationIn] | None = Field(None, max_length=200,
                                                   description="explicit split; omit for oldest-first")
    note: str | None = Field(None, max_length=2000)


class PaymentAllocate(Input):
    allocations: list[AllocationIn] | None = Field(None, max_length=200)
    contract_id: int | str | None = None


class AllocationView(View):
    invoice_id: int
    invoice_number: str
    amount: Decimal


class PaymentView(View):
    id: int
    number: str
    account_id: int
    currency: str
    amount: Decimal
    received_on: date
    method: str
    bank_ref: str
    status: str
    allocated: Decimal
    unapplied: Decimal
    confirmed_at: datetime | None
    allocations: list[AllocationView]
    message: str = ""


def to_view(uow, payment: Payment, message: str = "") -> PaymentView:
    numbers = {a.invoice_id: uow.invoices.get(a.invoice_id).number for a in payment.allocations}
    return PaymentView(
        id=payment.id, number=payment.number, account_id=payment.account_id, currency=payment.currency,
        amount=payment.amount, received_on=payment.received_on, method=payment.method, bank_ref=payment.bank_ref,
        status=payment.status, allocated=payment.allocated, unapplied=payment.unapplied,
        confirmed_at=payment.confirmed_at,
        allocations=[AllocationView(invoice_id=a.invoice_id, invoice_number=numbers[a.invoice_id], amount=a.amount)
                     for a in payment.allocations], message=message)


def _contract_of(uow, ref: int | str | None):
    if ref is None:
        return None
    contract = find_contract(uow, ref)
    if contract is None:
        raise NotFound(f"Contract {ref} does not exist", field="contract_id",
                       details=keyed("contract.not_found", ref=ref))
    return contract


def _account_of(uow, ctx: Ctx, cmd: PaymentCreate) -> int:
    if cmd.contract_id is not None:
        contract = _contract_of(uow, cmd.contract_id)
        if cmd.account_id is not None and cmd.account_id != contract.account_id:
            raise ValidationFailed(f"{contract.ref} belongs to another account", field="account_id",
                                   details=keyed("payment.contract_other_account", ref=contract.ref))
        if cmd.currency != contract.currency:
            raise ValidationFailed(f"{contract.ref} is in {contract.currency}; the payment is in {cmd.currency}",
                                   field="currency", details=keyed("payment.currency_mismatch", ref=contract.ref,
                                                                   expected=contract.currency, currency=cmd.currency))
        return contract.account_id
    if cmd.account_id is None:
        raise ValidationFailed("Say who paid: account_id or contract_id", field="account_id",
                               details=keyed("payment.who_paid"))
    get_or_404(uow.accounts, cmd.account_id, "Account", field="account_id")
    return cmd.account_id


def _find_invoice(uow, ref: int | str, field: str) -> Invoice:
    invoice = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        invoice = uow.invoices.get(int(ref))
    elif isinstance(ref, str):
        invoice = uow.invoices.by_number(ref)
    if invoice is None:
        raise NotFound(f"Invoice {ref} does not exist", field=field, details=keyed("invoice.not_found", ref=ref))
    return invoice


def _plan_allocation(uow, payment: Payment, explicit: list[AllocationIn] | None,
                     contract_id: int | str | None) -> list[tuple[Invoice, Decimal | None]]:
    """Which invoices get money (amount None = as much as fits, oldest first), checked before any lock."""
    if explicit is None:
        invoices = uow.invoices.open_for_account(payment.account_id, payment.currency)
        if contract_id is not None:
            contract = _contract_of(uow, contract_id)
            invoices = [i for i in invoices if i.contract_id == contract.id]
        return [(i, None) for i in invoices]
    plan, seen = [], set()
    for n, line in enumerate(explicit):
        field = f"allocations.{n}.invoice_id"
        invoice = _find_invoice(uow, line.invoice_id, field)
        if invoice.id in seen:
            raise ValidationFailed(f"{invoice.ref} is listed twice", field=field)
        seen.add(invoice.id)
        if invoice.account_id != payment.account_id:
            raise ValidationFailed(f"{invoice.ref} is another customer's invoice", field=field,
                                   details=keyed("payment.other_customer_invoice", ref=invoice.ref))
        if invoice.currency != payment.currency:
            raise ValidationFailed(f"{invoice.ref} is in {invoice.currency}; the payment is in {payment.currency}",
                                   field="currency",
                                   details=keyed("payment.currency_mismatch", ref=invoice.ref,
                                                 expected=invoice.currency, currency=payment.currency))
        plan.append((invoice, line.amount))
    total = sum((a for _, a in plan), Decimal("0"))
    if total > payment.unapplied:
        raise ValidationFailed(f"The allocations add up to {total}, more than the {payment.unapplied} available on "
                               f"{payment.ref}", field="allocations",
                               details=keyed("payment.over_allocated", total=total, available=payment.unapplied,
                                             ref=payment.ref))
    return plan


def _allocate(uow, ctx: Ctx, payment: Payment, plan: list[tuple[Invoice, Decimal | None]]) -> list[Invoice]:
    """Lock contracts then invoices (id order), re-read balances under the lock, then move the money."""
    if not plan:
        return []
    contracts = {x.id: x for x in uow.contracts.lock_many(i.contract_id for i, _ in plan)}
    collected_before = {cid: str(x.paid_total) for cid, x in contracts.items()}
    locked = {i.id: i for i in uow.invoices.lock_many(i.id for i, _ in plan)}
    touched = []
    for n, (candidate, wanted) in enumerate(plan):
        invoice = locked[candidate.id]
        if payment.unapplied == 0:
            break
        if invoice.status == b.VOID and wanted is not None:
            raise ValidationFailed(f"{invoice.ref} is void: no payment goes to a void invoice",
                                   field=f"allocations.{n}.invoice_id",
                                   details=keyed("payment.void_invoice", ref=invoice.ref))
        if not invoice.is_open:
            if wanted is None:
                continue  # paid or voided meanwhile by a concurrent change: oldest-first moves on
            raise ValidationFailed(f"{invoice.ref} is already {invoice.status}", field=f"allocations.{n}.invoice_id")
        if wanted is not None and wanted > invoice.balance:
            raise ValidationFailed(f"{wanted} is more than the {invoice.balance} still open on {invoice.ref}; an "
                                   f"invoice is never over-allocated (leave the rest as credit)",
                                   field=f"allocations.{n}.amount",
                                   details=keyed("payment.invoice_over_allocated", amount=wanted,
                                                 balance=invoice.balance, ref=invoice.ref))
        amount = min(payment.unapplied, invoice.balance) if wanted is None else wanted
        before = snapshot(invoice, ("status", "paid_amount"))
        payment.allocate(invoice, amount, ctx.user.id, uow.now())
        contract = contracts[invoice.contract_id]
        contract.paid_total += amount
        audit(uow, ctx, "invoice", invoice.id, "payment", before,
              {**snapshot(invoice, ("status", "paid_amount")), "payment": payment.ref})
        touched.append(invoice)
    for cid in sorted({i.contract_id for i in touched}):
        audit(uow, ctx, "contract", cid, "collect", {"paid_total": collected_before[cid]},
              {"paid_total": str(contracts[cid].paid_total), "payment": payment.ref})
    uow.flush()
    return touched


def _visible_to_seller(uow, ctx: Ctx, account_id: int) -> None:
    """An AR proposes payments only for customers whose deals they can see."""
    deals = [uow.opportunities.get(x.opportunity_id) for x in uow.contracts.for_account(account_id)]
    if not any(ctx.scope.sees_opportunity(o.owner_id, o.member_ids(), o.stage) for o in deals):
        raise PermissionDenied("You have no contract with this customer to propose a payment for",
                               details=keyed("payment.no_contract_with_customer"))


def _existing(uow, cmd: PaymentCreate, account_id: int, *, finance: bool) -> Payment | None:
    """The live payment on this bank line (rejected proposals do not count). Only finance reads its details."""
    same = uow.payments.by_bank_ref(cmd.bank_ref)
    if same is None:
        return None
    if (same.account_id, same.amount, same.currency, same.received_on) != (account_id, cmd.amount, cmd.currency,
                                                                           cmd.received_on):
        detail = f" with other details ({same.currency} {same.amount} on {same.received_on})" if finance else ""
        said = (keyed("payment.bank_ref_taken_other", {"payment": same.ref}, bank_ref=cmd.bank_ref, ref=same.ref,
                      currency=same.currency, amount=same.amount, received_on=same.received_on) if finance
                else keyed("payment.bank_ref_taken", {"payment": same.ref}, bank_ref=cmd.bank_ref, ref=same.ref))
        raise Conflict(f"Bank reference {cmd.bank_ref} is already recorded as {same.ref}{detail}", field="bank_ref",
                       details=said)
    return same


def record_payment(data: PaymentCreate | dict, *, actor: Actor, uow) -> PaymentView:
    """Finance records money received and allocates it; what no invoice needs stays as unapplied credit."""
    ctx = begin(uow, actor, UseCase.RECORD_PAYMENT)
    cmd = parse(PaymentCreate, data)
    account_id = _account_of(uow, ctx, cmd)
    if cmd.received_on > uow.now().date():
        raise ValidationFailed(f"received_on {cmd.received_on} is in the future", field="received_on",
                               details=keyed("payment.received_in_future", received_on=cmd.received_on))
    same = _existing(uow, cmd, account_id, finance=True)
    if same is not None and same.status == b.PROPOSED:
        # The bank statement shows what an AR reported: recording it confirms the proposal.
        payment = _locked_payment(uow, same.id)
        if payment.status == b.PROPOSED:  # re-read under the lock: a racing click may have confirmed it
            payment.confirm(ctx.user.id, uow.now())  # like confirm_payment: the contract the proposal names
            return _settle(uow, ctx, payment, cmd.allocations, cmd.contract_id or payment.contract_id, "confirm")
        same = payment
    if same is not None:
        return to_view(uow, same, message=f"Bank reference {cmd.bank_ref} is already recorded as {same.ref} "
                                          f"({same.status}); nothing posted twice")
    payment = _new_payment(uow, ctx, cmd, account_id)
    payment.confirm(ctx.user.id, uow.now())
    return _settle(uow, ctx, payment, cmd.allocations, cmd.contract_id, "record")


def _new_payment(uow, ctx: Ctx, cmd: PaymentCreate, account_id: int, *, remember_contract: bool = False) -> Payment:
    # Only a proposal remembers its contract (for the confirmation): the foreign key would otherwise
    # share-lock the contract row for the whole posting and hold up a void racing it.
    contract = _contract_of(uow, cmd.contract_id) if remember_contract else None
    return uow.payments.add(Payment(
        number=next_ref(uow, "PAY"), account_id=account_id, currency=cmd.currency, amount=cmd.amount,
        received_on=cmd.received_on, method=cmd.method, bank_ref=cmd.bank_ref, status=b.PROPOSED,
        created_by=ctx.user.id, created_at=uow.now(), note=cmd.note,
        contract_id=contract.id if contract else None))


def _settle(uow, ctx: Ctx, payment: Payment, explicit, contract_id, action: str) -> PaymentView:
    if explicit is not None:
        for n, line in enumerate(explicit):  # a void target is refused before anything moves
            invoice = _find_invoice(uow, line.invoice_id, f"allocations.{n}.invoice_id")
            if invoice.status == b.VOID:
                raise ValidationFailed(f"{invoice.ref} is void: no payment goes to a void invoice",
                                       field=f"allocations.{n}.invoice_id",
                                       details=keyed("payment.void_invoice", ref=invoice.ref))
    touched = _allocate(uow, ctx, payment, _plan_allocation(uow, payment, explicit, contract_id))
    audit(uow, ctx, "payment", payment.id, action, None, snapshot(payment, PAYMENT_FIELDS))
    emit(uow, PaymentRecorded(payment_id=payment.id, account_id=payment.account_id, amount=str(payment.amount),
                              currency=payment.currency, unapplied=str(payment.unapplied)))
    parts = [f"{i.ref} → {i.status}" for i in touched]
    message = f"{payment.ref} recorded: {payment.currency} {payment.amount}" + (f"; {', '.join(parts)}" if parts else "")
    if payment.unapplied:
        message += f"; {payment.currency} {payment.unapplied} kept as unapplied credit"
    return to_view(uow, payment, message=message)


def propose_payment(data: PaymentCreate | dict, *, actor: Actor, uow) -> PaymentView:
    """The AR reports money the customer says it sent; finance confirms it against the bank."""
    ctx = begin(uow, actor, UseCase.PROPOSE_PAYMENT)
    cmd = parse(PaymentCreate, data)
    if cmd.allocations is not None:  # nowhere to keep them until confirmation: refuse, never drop silently
        raise ValidationFailed("Finance allocates a proposed payment when it confirms it against the bank; "
                               "leave allocations out of the proposal", field="allocations")
    account_id = _account_of(uow, ctx, cmd)
    _visible_to_seller(uow, ctx, account_id)
    if cmd.received_on > uow.now().date():
        raise ValidationFailed(f"received_on {cmd.received_on} is in the future", field="received_on",
                               details=keyed("payment.received_in_future", received_on=cmd.received_on))
    same = _existing(uow, cmd, account_id, finance=False)
    if same is not None:
        if same.created_by == ctx.user.id or _sees_payment(uow, ctx, same):
            return to_view(uow, same, message=f"Bank reference {cmd.bank_ref} is already known as {same.ref}")
        raise Conflict(f"Bank reference {cmd.bank_ref} is already recorded", field="bank_ref",
                       details=keyed("payment.bank_ref_recorded", bank_ref=cmd.bank_ref))
    payment = _new_payment(uow, ctx, cmd, account_id, remember_contract=True)
    audit(uow, ctx, "payment", payment.id, "propose", None, snapshot(payment, PAYMENT_FIELDS))
    return to_view(uow, payment, message=f"{payment.ref} proposed; finance will confirm it against the bank")


def _locked_payment(uow, payment_id: int | str) -> Payment:
    payment = None
    if isinstance(payment_id, int) or (isinstance(payment_id, str) and payment_id.strip().isdigit()):
        payment = uow.payments.get_for_update(int(payment_id))
    elif isinstance(payment_id, str) and payment_id.strip():
        found = uow.payments.by_number(payment_id)
        payment = uow.payments.get_for_update(found.id) if found else None
    if payment is None:
        raise NotFound(f"Payment {payment_id} does not exist", field="payment_id",
                       details=keyed("payment.not_found", ref=payment_id))
    return payment


def confirm_payment(payment_id: int | str, data: PaymentAllocate | dict | None = None, *, actor: Actor,
                    uow) -> PaymentView:
    """Finance confirms a proposed payment and allocates it."""
    ctx = begin(uow, actor, UseCase.RECORD_PAYMENT)
    cmd = parse(PaymentAllocate, data or {})
    payment = _locked_payment(uow, payment_id)
    payment.confirm(ctx.user.id, uow.now())
    return _settle(uow, ctx, payment, cmd.allocations, cmd.contract_id or payment.contract_id, "confirm")


def reject_payment(payment_id: int | str, reason: str, *, actor: Actor, uow) -> PaymentView:
    """Finance turns down a proposed payment the bank does not show."""
    ctx = begin(uow, actor, UseCase.RECORD_PAYMENT)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Say why the payment is rejected", field="reason")
    payment = _locked_payment(uow, payment_id)
    if payment.status != b.PROPOSED:
        raise InvalidTransition(f"{payment.ref} is {payment.status}; only a proposed payment can be rejected",
                                field="status", allowed=[b.PROPOSED])
    payment.status = b.REJECTED
    audit(uow, ctx, "payment", payment.id, "reject", {"status": b.PROPOSED},
          {"status": payment.status, "reason": reason.strip()})
    return to_view(uow, payment, message=f"{payment.ref} rejected: {reason.strip()}")


def allocate_payment(payment_id: int | str, data: PaymentAllocate | dict | None = None, *, actor: Actor,
                     uow) -> PaymentView:
    """Apply a payment's unapplied credit to open invoices (oldest first, or as listed)."""
    ctx = begin(uow, actor, UseCase.RECORD_PAYMENT)
    cmd = parse(PaymentAllocate, data or {})
    payment = _locked_payment(uow, payment_id)
    if payment.status != b.CONFIRMED:
        raise InvalidTransition(f"{payment.ref} is {payment.status}; confirm it first", field="status",
                                allowed=[b.CONFIRMED])
    if payment.unapplied == 0:
        raise ValidationFailed(f"{payment.ref} has no unapplied credit left", field="payment_id")
    before = snapshot(payment, PAYMENT_FIELDS)
    touched = _allocate(uow, ctx, payment, _plan_allocation(uow, payment, cmd.allocations, cmd.contract_id))
    audit(uow, ctx, "payment", payment.id, "allocate", before, snapshot(payment, PAYMENT_FIELDS))
    return to_view(uow, payment, message=f"{payment.ref}: applied to {', '.join(i.ref for i in touched) or 'nothing'}"
                                         f"; {payment.unapplied} credit left")


def get_payment(payment_id: int | str, *, actor: Actor, uow) -> PaymentView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    payment = None
    if isinstance(payment_id, int) or (isinstance(payment_id, str) and payment_id.strip().isdigit()):
        payment = uow.payments.get(int(payment_id))
    elif isinstance(payment_id, str) and payment_id.strip():  # its number, PAY-…
        payment = uow.payments.by_number(payment_id)
    if payment is None:
        raise NotFound(f"Payment {payment_id} does not exist", field="payment_id",
                       details=keyed("payment.not_found", ref=payment_id))
    if not _sees_payment(uow, ctx, payment):
        raise PermissionDenied(f"{payment.ref} pays invoices of deals you cannot see")
    return to_view(uow, payment)


def payments_for_account(account_id: int, *, actor: Actor, uow) -> list[PaymentView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    get_or_404(uow.accounts, account_id, "Account", field="account_id")
    return [to_view(uow, p) for p in uow.payments.for_account(account_id) if _sees_payment(uow, ctx, p)]


def _sees_payment(uow, ctx: Ctx, payment: Payment) -> bool:
    """Finance and operations see every payment; others those they proposed or that touch deals they see."""
    if ctx.scope.sees_all or Role.FINANCE in ctx.user.roles or payment.created_by == ctx.user.id:
        return True
    contract_ids = {uow.invoices.get(a.invoice_id).contract_id for a in payment.allocations}
    contract_ids |= {payment.contract_id} if payment.contract_id else set()
    if not contract_ids:
        return False
    for contract_id in contract_ids:
        opp = uow.opportunities.get(uow.contracts.get(contract_id).opportunity_id)
        if not ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage):
            return False
    return True


def unapplied_credit(uow, account_id: int, currency: str) -> Decimal:
    return sum((p.unapplied for p in uow.payments.for_account(account_id)
                if p.status == b.CONFIRMED and p.currency == currency), Decimal("0"))

