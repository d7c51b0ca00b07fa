"""Payment tools (回款): finance records money received (a seller reports it to finance); finance confirms reports."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.errors import ValidationFailed
from domain.model import billing as b
from domain.model.vocab import Role
from domain.services import payments as svc
from domain.services.payments import Method, PaymentView
from prompts.messages import render
from tools.context import ToolContext
from tools.contracts import account_name, canonical, contract_of, joined
from tools.format import day, money
from tools.registry import FINANCE, REP, ToolResult, tool
from tools.resolve import resolve

PAYMENT_WORDS = ("payment", "paid", "pay", "cash", "collect", "received", "remittance", "回款", "付款", "收款", "到账",
                 "汇款", "打款")


class PaymentResult(ToolResult):
    payment: PaymentView
    customer: str
    contract_number: str | None = None
    proposed: bool = Field(False, description="reported to finance, not yet confirmed against the bank")
    duplicate: bool = Field(False, description="the bank reference was already recorded: nothing new happened")


def _allocations(view: PaymentView, locale: str) -> str:
    parts = [f"{a.invoice_number} {money(a.amount, view.currency)}" for a in view.allocations]
    text = render("tool.cash.payment.applied", locale, invoices=joined(parts, locale)) if parts else ""
    if view.unapplied:
        credit = render("tool.cash.payment.credit", locale, credit=money(view.unapplied, view.currency))
        text = f"{text}; {credit}" if text else credit
    return text


def _values(result: PaymentResult, locale: str) -> dict:
    view = result.payment
    return dict(number=view.number, amount=money(view.amount, view.currency), received=day(view.received_on),
                bank_ref=view.bank_ref, customer=result.customer, contract=result.contract_number or "-",
                allocations=_allocations(view, locale), status=render(f"tool.cash.payment_status.{view.status}",
                                                                       locale))


class RecordPaymentArgs(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="the amount received, a plain number",
                            examples=[150000])
    bank_ref: str = Field(min_length=1, max_length=100, description="the bank statement's reference for this money",
                          examples=["BOC-20260312-0098"])
    currency: str = Field("CNY", min_length=3, max_length=3, description="ISO code")
    received_on: date | None = Field(None, description="YYYY-MM-DD the money arrived; defaults to today")
    contract: str | None = Field(None, max_length=200, description="the contract it pays (CT-2026-00001) or the deal "
                                 "(OPP-00012, deal or customer name); its invoices are paid oldest first")
    account: str | None = Field(None, max_length=200, description="the paying customer (ACC-00003 or name), when "
                                "no contract is named")
    method: Method | None = Field(None, description="how it was paid; default bank_transfer")


def _confirm_record(preview: PaymentResult, _args: RecordPaymentArgs, locale: str) -> str | None:
    if preview.duplicate:
        return None  # the bank line is already on the books: running it changes nothing
    key = "tool.cash.payment.confirm_propose" if preview.proposed else "tool.cash.payment.confirm_record"
    return render(key, locale, **_values(preview, locale))


@tool(audience=(FINANCE, REP), keywords=PAYMENT_WORDS + ("record", "登记", "记录"), writes=True,
      confirm=_confirm_record)
def record_payment(args: RecordPaymentArgs, ctx: ToolContext) -> PaymentResult:
    """Record money a customer paid (finance; applied to open invoices oldest first) or report it to finance (sellers)."""
    with ctx.uow() as uow:
        data: dict = {"amount": str(args.amount), "currency": args.currency.upper(), "bank_ref": args.bank_ref,
                      "received_on": (args.received_on or uow.now().date()).isoformat()}
        contract = contract_of(uow, ctx, args.contract) if args.contract else None
        if contract is not None:
            data["contract_id"] = contract.number
        if args.account:
            data["account_id"] = resolve(uow, ctx.actor, "account", args.account, field="account")
        if contract is None and not args.account:
            raise ValidationFailed(render("tool.cash.error.payer_missing", ctx.locale), field="contract")
        if args.method:
            data["method"] = args.method
        user = uow.users.get(ctx.actor.user_id)
        finance = user is not None and Role.FINANCE in user.roles
        # Only to tell "already on the books" apart in the reply (and skip a pointless confirmation);
        # the service alone decides what happens and what a seller may learn about the bank line.
        known = uow.payments.by_bank_ref(" ".join(args.bank_ref.split()).upper())
        duplicate = known is not None and not (finance and known.status == b.PROPOSED)
        view = (svc.record_payment if finance else svc.propose_payment)(data, actor=ctx.actor, uow=uow)
        customer = account_name(uow, view.account_id)
        uow.commit()
    result = PaymentResult(payment=view, customer=customer, contract_number=contract.number if contract else None,
                           proposed=view.status == b.PROPOSED, duplicate=duplicate, text="")
    return result.model_copy(update={"text": _record_text(result, ctx.locale)})


def _record_text(result: PaymentResult, locale: str) -> str:
    if result.duplicate:
        key = "tool.cash.payment.duplicate"
    else:
        key = "tool.cash.payment.proposed" if result.proposed else "tool.cash.payment.recorded"
    return render(key, locale, **_values(result, locale))


class PaymentRef(BaseModel):
    payment: str = Field(min_length=1, max_length=40, description="payment number", examples=["PAY-2026-00007"])


def _confirm_confirm(preview: PaymentResult, _args: PaymentRef, locale: str) -> str:
    return render("tool.cash.payment.confirm_confirm", locale, **_values(preview, locale))


@tool(audience=(FINANCE,), keywords=PAYMENT_WORDS + ("confirm", "proposed", "确认", "核实"), writes=True,
      confirm=_confirm_confirm)
def confirm_payment(args: PaymentRef, ctx: ToolContext) -> PaymentResult:
    """Confirm a payment a seller reported, once the bank shows it, and apply it to open invoices (finance)."""
    with ctx.uow() as uow:
        view = svc.confirm_payment(canonical(args.payment, "PAY", "payment", ctx.locale), actor=ctx.actor, uow=uow)
        customer = account_name(uow, view.account_id)
        uow.commit()
    result = PaymentResult(payment=view, customer=customer, text="")
    return result.model_copy(update={"text": render("tool.cash.payment.confirmed", ctx.locale,
                                                    **_values(result, ctx.locale))})
