"""Where the money stands (回款状态) for a contract, an invoice or a customer: one read for "has X paid?".

Amounts come from the invoice rows themselves (void invoices count for nothing), so they agree with
the contract's ledger totals and with the aging report. Only deals the caller can see count: an
account's status covers the contracts of its deals in the caller's sight, and a payment shows only
to whoever may see it (finance, operations, its proposer, the team of the deals it pays).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from domain.actor import Actor
from domain.errors import ValidationFailed
from domain.model import billing as b
from domain.model.billing import Invoice, Payment
from domain.model.contracts import Contract
from domain.rbac import UseCase
from domain.services.accounts import visible_account
from domain.services.base import Ctx, begin
from domain.services.billing import _visible_invoice
from domain.services.contract_access import visible_contract
from domain.services.payments import _sees_payment
from domain.services.schemas import View

ZERO = Decimal("0")


class OpenInvoiceLine(View):
    number: str
    contract_number: str
    milestone_label: str
    amount: Decimal
    balance: Decimal
    due_on: date
    days_overdue: int
    dunning_level: int
    promise_state: Literal["open", "kept", "broken"] | None  # the latest promise to pay, if any
    promise_on: date | None
    promise_amount: Decimal | None


class DueAmount(View):
    on: date
    amount: Decimal


class LastPayment(View):
    number: str
    received_on: date
    amount: Decimal  # what the customer paid
    applied: Decimal  # how much of it went to invoices in this scope


class PaymentStatusView(View):
    kind: Literal["contract", "account", "invoice"]
    scope: str  # "CT-2026-00001", "ACC-00003", "INV-2026-00004"
    account_id: int
    account_name: str
    contract_numbers: list[str]
    currency: str
    as_of: date
    contract_value: Decimal | None  # contract and account scopes: what the contracts are worth
    invoiced: Decimal
    paid: Decimal
    outstanding: Decimal
    overdue: Decimal
    not_invoiced: Decimal | None
    open_invoices: list[OpenInvoiceLine]
    next_due: DueAmount | None  # the earliest open invoice not yet overdue
    last_payment: LastPayment | None
    awaiting_confirmation: Decimal  # reported by the AR, not yet confirmed by finance
    unapplied_credit: Decimal  # account scope: confirmed money no invoice needed yet


def payment_status(*, actor: Actor, uow, contract: int | str | None = None, account_id: int | None = None,
                   invoice: int | str | None = None, currency: str | None = None) -> PaymentStatusView:
    """Invoiced, paid, outstanding and overdue money, open invoices, next due and last payment."""
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    given = [name for name, v in (("contract", contract), ("account_id", account_id), ("invoice", invoice))
             if v is not None]
    if len(given) != 1:
        raise ValidationFailed("Name exactly one of contract, account_id or invoice", field="contract",
                               allowed=["contract", "account_id", "invoice"])
    today = uow.now().date()
    if invoice is not None:
        inv, found, _ = _visible_invoice(uow, ctx, invoice)
        return _status(uow, ctx, "invoice", inv.number, found.account_id, [found], [inv], inv.currency, today,
                       with_value=False)
    if contract is not None:
        found, _ = visible_contract(uow, ctx, contract)
        return _status(uow, ctx, "contract", found.number, found.account_id, [found],
                       uow.invoices.for_contract(found.id), found.currency, today)
    account = visible_account(uow, ctx, account_id)
    deals = [x for x in uow.contracts.for_account(account.id) if _sees_deal(uow, ctx, x)]
    currencies = sorted({x.currency for x in deals})
    if currency is not None:
        currency = currency.upper()
        deals = [x for x in deals if x.currency == currency]
    elif len(currencies) > 1:
        raise ValidationFailed(f"{account.ref} has contracts in {', '.join(currencies)}: which currency?",
                               field="currency", allowed=currencies)
    chosen = currency or (currencies[0] if currencies else "CNY")
    invoices = [i for x in deals for i in uow.invoices.for_contract(x.id)]
    return _status(uow, ctx, "account", account.ref, account.id, deals, invoices, chosen, today)


def _sees_deal(uow, ctx: Ctx, contract: Contract) -> bool:
    opp = uow.opportunities.get(contract.opportunity_id)
    return ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage)


def _status(uow, ctx: Ctx, kind: str, scope: str, account_id: int, contracts: list[Contract],
            invoices: list[Invoice], currency: str, today: date, *, with_value: bool = True) -> PaymentStatusView:
    live = [i for i in invoices if i.status != b.VOID]
    open_ = sorted((i for i in live if i.is_open), key=lambda i: (i.due_on, i.id))
    numbers = {x.id: x.number for x in contracts}
    labels = {m.id: m.label for x in contracts for m in x.milestones}
    lines = [_line(uow, i, numbers, labels, today) for i in open_]
    upcoming = [i for i in open_ if i.days_overdue(today) == 0]
    next_due = None
    if upcoming:
        first = upcoming[0].due_on
        next_due = DueAmount(on=first, amount=sum((i.balance for i in upcoming if i.due_on == first), ZERO))
    invoiced = sum((i.amount for i in live), ZERO)
    value = sum((x.value for x in contracts), ZERO) if with_value else None
    payments = [p for p in uow.payments.for_account(account_id)
                if p.currency == currency and _sees_payment(uow, ctx, p)]
    in_scope = {i.id for i in invoices}
    contract_ids = {x.id for x in contracts}
    return PaymentStatusView(
        kind=kind, scope=scope, account_id=account_id, account_name=uow.accounts.get(account_id).name,
        contract_numbers=[x.number for x in contracts], currency=currency, as_of=today,
        contract_value=value, invoiced=invoiced, paid=sum((i.paid_amount for i in live), ZERO),
        outstanding=sum((i.balance for i in open_), ZERO),
        overdue=sum((i.balance for i in open_ if i.days_overdue(today) > 0), ZERO),
        not_invoiced=value - invoiced if value is not None else None,
        open_invoices=lines, next_due=next_due,
        last_payment=_last_payment(payments, in_scope, kind == "account"),
        awaiting_confirmation=sum((p.amount for p in payments if p.status == b.PROPOSED and (
            kind == "account" or p.contract_id in contract_ids)), ZERO),
        unapplied_credit=sum((p.unapplied for p in payments if p.status == b.CONFIRMED), ZERO)
        if kind == "account" else ZERO)


def _line(uow, invoice: Invoice, numbers: dict[int, str], labels: dict[int, str], today: date) -> OpenInvoiceLine:
    promises = uow.finance.promises_for(invoice.id)
    last = promises[-1] if promises else None
    return OpenInvoiceLine(
        number=invoice.number, contract_number=numbers.get(invoice.contract_id, "?"),
        milestone_label=labels.get(invoice.milestone_id, "?"), amount=invoice.amount, balance=invoice.balance,
        due_on=invoice.due_on, days_overdue=invoice.days_overdue(today), dunning_level=invoice.dunning_level,
        promise_state=last.state(invoice, today) if last else None, promise_on=last.promised_on if last else None,
        promise_amount=last.amount if last else None)


def _last_payment(payments: list[Payment], in_scope: set[int], whole_account: bool) -> LastPayment | None:
    """The newest confirmed payment that put money on this scope (for an account: any confirmed payment)."""
    found = []
    for p in payments:
        if p.status != b.CONFIRMED:
            continue
        applied = sum((a.amount for a in p.allocations if a.invoice_id in in_scope), ZERO)
        if applied or whole_account:
            found.append((p.received_on, p.id, p, applied))
    if not found:
        return None
    _, _, p, applied = max(found, key=lambda t: (t[0], t[1]))
    return LastPayment(number=p.number, received_on=p.received_on, amount=p.amount, applied=applied)
