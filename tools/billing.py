"""Invoice tools (finance): issue a payment milestone's invoice, void an unpaid one."""
from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from domain.services import billing as svc
from domain.services.billing import InvoiceView
from prompts.messages import render
from tools.context import ToolContext
from tools.contracts import account_name, canonical, contract_of
from tools.format import day, money
from tools.registry import FINANCE, ToolResult, tool

INVOICE_WORDS = ("invoice", "invoices", "bill", "billing", "发票", "开票", "账单")


class InvoiceResult(ToolResult):
    invoice: InvoiceView
    contract_number: str
    customer: str


def _values(view: InvoiceView, contract: str, customer: str) -> dict:
    return dict(number=view.number, contract=contract, customer=customer, seq=view.milestone_seq,
                label=view.milestone_label, amount=money(view.amount, view.currency), issued=day(view.issued_on),
                due=day(view.due_on))


class IssueInvoiceArgs(BaseModel):
    contract: str = Field(min_length=1, max_length=200, description="contract number (CT-2026-00001) or the deal "
                          "(OPP-00012, deal or customer name)", examples=["CT-2026-00001"])
    milestone: int = Field(ge=1, le=24, description="payment-plan milestone number, 1 = first", examples=[2])
    issued_on: date | None = Field(None, description="YYYY-MM-DD; defaults to today")


@tool(audience=(FINANCE,), keywords=INVOICE_WORDS + ("issue", "开具"), writes=True)
def issue_invoice(args: IssueInvoiceArgs, ctx: ToolContext) -> InvoiceResult:
    """Issue the invoice of a contract's payment milestone whose trigger has happened (finance)."""
    with ctx.uow() as uow:
        contract = contract_of(uow, ctx, args.contract)
        already = next((m.invoice_number for m in contract.milestones if m.seq == args.milestone), None)
        view = svc.issue_invoice(contract.number, {"seq": args.milestone, "issued_on": args.issued_on},
                                 actor=ctx.actor, uow=uow)
        customer = account_name(uow, view.account_id)
        uow.commit()
    key = "tool.cash.invoice.already" if already else "tool.cash.invoice.issued"
    return InvoiceResult(invoice=view, contract_number=contract.number, customer=customer,
                         text=render(key, ctx.locale, **_values(view, contract.number, customer)))


class VoidInvoiceArgs(BaseModel):
    invoice: str = Field(min_length=1, max_length=40, description="invoice number", examples=["INV-2026-00004"])
    reason: str = Field(min_length=3, max_length=1000, description="why it is void",
                        examples=["wrong purchase order number", "抬头开错"])


def _confirm_void(preview: InvoiceResult, args: VoidInvoiceArgs, locale: str) -> str:
    return render("tool.cash.invoice.confirm_void", locale, reason=args.reason,
                  **_values(preview.invoice, preview.contract_number, preview.customer))


@tool(audience=(FINANCE,), keywords=INVOICE_WORDS + ("void", "cancel", "作废", "红冲", "撤销"), writes=True,
      confirm=_confirm_void)
def void_invoice(args: VoidInvoiceArgs, ctx: ToolContext) -> InvoiceResult:
    """Void an unpaid invoice with a reason (finance); its milestone can then be invoiced again."""
    with ctx.uow() as uow:
        view = svc.void_invoice(canonical(args.invoice, "INV", "invoice", ctx.locale), {"reason": args.reason},
                                actor=ctx.actor, uow=uow)
        contract = uow.contracts.get(view.contract_id).number
        customer = account_name(uow, view.account_id)
        uow.commit()
    return InvoiceResult(invoice=view, contract_number=contract, customer=customer,
                         text=render("tool.cash.invoice.voided", ctx.locale, reason=args.reason,
                                     **_values(view, contract, customer)))
