"""Delivery tool: the FR records a delivery milestone done, or accepted by the customer (which bills and books revenue)."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from domain.errors import NotFound, ValidationFailed
from domain.services import billing as billing_svc
from domain.services import delivery as svc
from domain.services.delivery import OrderView
from prompts.messages import render
from tools.context import ToolContext
from tools.contracts import contract_of, joined
from tools.format import day, money
from tools.registry import DELIVERY, ToolResult, tool
from tools.resolve import number

DELIVERY_WORDS = ("deliver", "delivered", "delivery", "milestone", "acceptance", "accepted", "certificate", "install",
                  "交付", "验收", "里程碑", "到货", "终验", "上线")


class UpdateDeliveryArgs(BaseModel):
    contract: str = Field(min_length=1, max_length=200, description="the order (SO-2026-00001), the contract "
                          "(CT-2026-00001) or the deal (OPP-00012, deal or customer name)",
                          examples=["SO-2026-00001", "CT-2026-00001"])
    milestone: int = Field(ge=1, le=50, description="delivery milestone number, 1 = first", examples=[1])
    status: Literal["done", "accepted"] = Field(description="done = delivered; accepted = the customer signed the "
                                                            "acceptance certificate")
    certificate_ref: str | None = Field(None, min_length=1, max_length=100,
                                        description="the customer's acceptance certificate; required for accepted",
                                        examples=["YS-2026-031"])
    on: date | None = Field(None, description="YYYY-MM-DD; defaults to today")


class DeliveryResult(ToolResult):
    order: OrderView
    invoices: list[str] = Field(default_factory=list, description="invoices this acceptance issued")


def _order_number(uow, ctx: ToolContext, text: str) -> str:
    canon = number(text)
    if canon is not None and canon.startswith("SO-"):
        return canon
    contract = contract_of(uow, ctx, text)
    order = svc.order_for_contract(contract.number, actor=ctx.actor, uow=uow)
    if order is None:
        raise NotFound(render("tool.cash.error.no_order", ctx.locale, contract=contract.number), field="contract")
    return order.number


@tool(audience=(DELIVERY,), keywords=DELIVERY_WORDS, writes=True)
def update_delivery_milestone(args: UpdateDeliveryArgs, ctx: ToolContext) -> DeliveryResult:
    """Record a delivery milestone as done, or as accepted by the customer (certificate): acceptance bills and books revenue."""
    if args.status == "accepted" and not args.certificate_ref:
        raise ValidationFailed(render("tool.cash.error.certificate_required", ctx.locale), field="certificate_ref")
    with ctx.uow() as uow:
        order_no = _order_number(uow, ctx, args.contract)
        if args.status == "done":
            view = svc.mark_delivered(order_no, args.milestone, {"done_on": args.on}, actor=ctx.actor, uow=uow)
            uow.commit()
            return DeliveryResult(order=view, text=_text(view, args, ctx.locale, "tool.cash.delivery.done"))
        contract_no = svc.get_order(order_no, actor=ctx.actor, uow=uow).contract_number
        billed = {i.number for i in billing_svc.list_invoices(contract_no, actor=ctx.actor, uow=uow)}
        view = svc.accept_milestone(order_no, args.milestone, {"certificate_ref": args.certificate_ref,
                                                                "accepted_on": args.on}, actor=ctx.actor, uow=uow)
        issued = [i for i in billing_svc.list_invoices(contract_no, actor=ctx.actor, uow=uow) if i.number not in billed]
        uow.commit()
    text = _text(view, args, ctx.locale, "tool.cash.delivery.accepted")
    if issued:
        listed = joined((f"{i.number} {money(i.amount, i.currency)} ({day(i.due_on)})" for i in issued), ctx.locale)
        text += "\n" + render("tool.cash.delivery.invoiced", ctx.locale, invoices=listed)
    if view.status == "delivered":
        text += "\n" + render("tool.cash.delivery.complete", ctx.locale, contract=view.contract_number)
    return DeliveryResult(order=view, invoices=[i.number for i in issued], text=text)


def _text(view: OrderView, args: UpdateDeliveryArgs, locale: str, key: str) -> str:
    milestone = next(m for m in view.milestones if m.seq == args.milestone)
    return render(key, locale, order=view.number, contract=view.contract_number, seq=milestone.seq,
                  name=milestone.name, on=day(milestone.accepted_on or milestone.done_on),
                  certificate=milestone.certificate_ref or "-")
