"""Collections tools (回款管理): where the money stands, what is overdue, the customer's promise to pay."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.errors import NotFound, ValidationFailed
from domain.services import collections as svc
from domain.services.collections import AgingLine, PromiseView
from domain.services.delivery import get_order
from domain.services.payment_status import OpenInvoiceLine, PaymentStatusView, payment_status as status_svc
from prompts.messages import render
from tools.context import ToolContext
from tools.contracts import account_name, canonical, contract_of, joined
from tools.format import day, money, table
from tools.registry import ALL, FINANCE, MANAGER, REP, ToolResult, tool
from tools.resolve import number, person, resolve

PAYMENT_WORDS = ("payment", "paid", "pay", "cash", "collect", "outstanding", "owe", "receivable", "status",
                 "回款", "付款", "收款", "到账", "欠款", "应收", "进度")
OVERDUE_WORDS = ("overdue", "late", "dunning", "aging", "ageing", "owe", "逾期", "催收", "催款", "欠款", "账龄")
_OPP = re.compile(r"^\s*opp\b|^\s*opp[-_ #]?\d", re.IGNORECASE)
_ACC = re.compile(r"^\s*acc\b|^\s*acc[-_ #]?\d", re.IGNORECASE)


def _col(key: str, locale: str) -> str:
    return render(f"tool.cash.col.{key}", locale)


def _promise(state: str | None, on: date | None, locale: str) -> str:
    if state is None:
        return "-"
    return render(f"tool.cash.promise.{state}", locale, on=day(on))


def _dunning(level: int, locale: str) -> str:
    return render(f"tool.cash.dunning.{level}", locale) if level else "-"


# --- payment status ---------------------------------------------------------------------------------

class PaymentStatusArgs(BaseModel):
    of: str = Field(min_length=1, max_length=200, description="a contract (CT-2026-00001), an invoice "
                    "(INV-2026-00004), a customer (ACC-00003 or name) or a deal (OPP-00012 or name)",
                    examples=["CT-2026-00001", "INV-2026-00004", "华东电力"])


class PaymentStatusResult(ToolResult):
    status: PaymentStatusView


def _status_scope(uow, ctx: ToolContext, text: str) -> dict:
    """Which service arguments `text` names: a number, a reference, else a customer, else a deal."""
    canon = number(text)
    if canon is not None:
        if canon.startswith("INV-"):
            return {"invoice": canon}
        if canon.startswith("CT-"):
            return {"contract": canon}
        if canon.startswith("SO-"):
            return {"contract": get_order(canon, actor=ctx.actor, uow=uow).contract_number}
        raise ValidationFailed(render("tool.cash.error.no_payment_status", ctx.locale, number=canon), field="of",
                               allowed=["CT-…", "INV-…", "ACC-…", "OPP-…"])
    if _OPP.match(text):
        return {"contract": contract_of(uow, ctx, text, field="of").number}
    if _ACC.match(text):
        return {"account_id": resolve(uow, ctx.actor, "account", text, field="of")}
    try:  # "payment status 华东电力": a customer first, then a deal
        return {"account_id": resolve(uow, ctx.actor, "account", text, field="of")}
    except NotFound:
        return {"contract": contract_of(uow, ctx, text, field="of").number}


@tool(audience=(ALL,), keywords=PAYMENT_WORDS)
def payment_status(args: PaymentStatusArgs, ctx: ToolContext) -> PaymentStatusResult:
    """Payment status of a contract, invoice, customer or deal: invoiced, paid, outstanding, overdue, next due."""
    with ctx.uow() as uow:
        view = status_svc(actor=ctx.actor, uow=uow, **_status_scope(uow, ctx, args.of))
    return PaymentStatusResult(status=view, text=_status_text(view, ctx.locale))


def _status_text(v: PaymentStatusView, locale: str) -> str:
    m = lambda amount: money(amount, v.currency)  # noqa: E731
    lines = [render("tool.cash.status.header", locale, scope=v.scope, customer=v.account_name, as_of=day(v.as_of),
                    contracts=", ".join(v.contract_numbers) or "-"),
             render("tool.cash.status.totals", locale, invoiced=m(v.invoiced), paid=m(v.paid),
                    outstanding=m(v.outstanding), overdue=m(v.overdue))]
    if v.contract_value is not None:
        lines.append(render("tool.cash.status.value", locale, value=m(v.contract_value),
                            not_invoiced=m(v.not_invoiced)))
    if v.open_invoices:
        lines.append(_invoice_table(v.open_invoices, v.currency, locale))
    else:
        lines.append(render("tool.cash.status.no_open", locale))
    if v.next_due is not None:
        lines.append(render("tool.cash.status.next_due", locale, on=day(v.next_due.on), amount=m(v.next_due.amount)))
    if v.last_payment is not None:
        p = v.last_payment
        lines.append(render("tool.cash.status.last_payment", locale, number=p.number, on=day(p.received_on),
                            amount=m(p.amount), applied=m(p.applied)))
    else:
        lines.append(render("tool.cash.status.no_payment", locale))
    if v.awaiting_confirmation:
        lines.append(render("tool.cash.status.awaiting", locale, amount=m(v.awaiting_confirmation)))
    if v.unapplied_credit:
        lines.append(render("tool.cash.status.credit", locale, amount=m(v.unapplied_credit)))
    return "\n".join(lines)


def _invoice_table(rows: list[OpenInvoiceLine], currency: str, locale: str) -> str:
    return table([_col(k, locale) for k in ("invoice", "milestone", "due", "balance", "days", "dunning", "promise")],
                 [(r.number, r.milestone_label, day(r.due_on), money(r.balance, currency), r.days_overdue or "-",
                   _dunning(r.dunning_level, locale), _promise(r.promise_state, r.promise_on, locale))
                  for r in rows], right=(3, 4))


# --- overdue ----------------------------------------------------------------------------------------

class ListOverdueArgs(BaseModel):
    owner: str | None = Field(None, max_length=200, description="only this AR's deals: \"me\", an email or a name; "
                              "omit for everything you can see", examples=["me", "rep2@example.com", "王芳"])
    min_days: int = Field(1, ge=0, le=3650, description="at least this many days past due (0 = every open invoice)")


class OverdueResult(ToolResult):
    lines: list[AgingLine]
    totals: dict[str, Decimal] = Field(description="currency → overdue balance")


@tool(audience=(REP, MANAGER, FINANCE), keywords=OVERDUE_WORDS)
def list_overdue(args: ListOverdueArgs, ctx: ToolContext) -> OverdueResult:
    """List overdue invoices you can see (optionally one AR's): balance, days overdue, dunning level, promise."""
    with ctx.uow() as uow:
        owner_id = person(uow, ctx, args.owner, field="owner") if args.owner else None
        report = svc.aging_report(actor=ctx.actor, uow=uow, owner_id=owner_id)
    lines = [x for x in report.lines if x.days_overdue >= args.min_days]
    totals: dict[str, Decimal] = {}
    for x in lines:
        totals[x.currency] = totals.get(x.currency, Decimal("0")) + x.balance
    if not lines:
        return OverdueResult(lines=[], totals={}, text=render("tool.cash.overdue.none", ctx.locale, days=args.min_days))
    rows = [(x.invoice_number, x.account_name, money(x.balance, x.currency), x.days_overdue,
             _dunning(x.dunning_level, ctx.locale), _aging_promise(x.promise, ctx.locale), x.owner_name)
            for x in lines]
    text = "\n".join([
        render("tool.cash.overdue.header" if args.min_days else "tool.cash.overdue.header_open", ctx.locale,
               n=len(lines), days=args.min_days, as_of=day(report.as_of)),
        table([_col(k, ctx.locale) for k in ("invoice", "customer", "balance", "days", "dunning", "promise", "owner")],
              rows, right=(2, 3)),
        render("tool.cash.overdue.total" if args.min_days else "tool.cash.overdue.total_open", ctx.locale,
               totals=joined((money(v, c) for c, v in sorted(totals.items())), ctx.locale))])
    return OverdueResult(lines=lines, totals=totals, text=text)


def _aging_promise(text: str | None, locale: str) -> str:
    """The aging report words a promise as 'open until 2026-12-01', 'kept' or 'broken'."""
    if not text:
        return "-"
    if text.startswith("open until "):
        return _promise("open", date.fromisoformat(text.removeprefix("open until ")), locale)
    return _promise(text, None, locale)


# --- promise to pay ---------------------------------------------------------------------------------

class RecordPromiseArgs(BaseModel):
    invoice: str = Field(min_length=1, max_length=40, description="invoice number", examples=["INV-2026-00004"])
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, description="the amount the customer promised",
                            examples=[150000])
    promised_on: date = Field(description="YYYY-MM-DD the customer promised to pay by")
    note: str | None = Field(None, max_length=2000, description="who promised, how (call, email, …)")


class PromiseResult(ToolResult):
    promise: PromiseView


@tool(audience=(REP, FINANCE), keywords=OVERDUE_WORDS + ("promise", "promised", "commit", "承诺", "答应", "保证"),
      writes=True)
def record_promise(args: RecordPromiseArgs, ctx: ToolContext) -> PromiseResult:
    """Record a customer's promise to pay an invoice by a date; reminders wait until then."""
    with ctx.uow() as uow:
        data = {"amount": str(args.amount), "promised_on": args.promised_on.isoformat()}
        if args.note:
            data["note"] = args.note
        view = svc.record_promise(canonical(args.invoice, "INV", "invoice", ctx.locale), data, actor=ctx.actor, uow=uow)
        invoice = uow.invoices.by_number(view.invoice_number)
        currency, customer = invoice.currency, account_name(uow, invoice.account_id)
        uow.commit()
    text = render("tool.cash.promise.recorded", ctx.locale, invoice=view.invoice_number, customer=customer,
                  amount=money(view.amount, currency), on=day(view.promised_on))
    return PromiseResult(promise=view, text=text)
