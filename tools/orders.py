"""The FR opens the order of a signed contract: its delivery milestones, the last possibly final acceptance.

People write the plan as they say it ("hardware on site 2026-12-10; go-live 2027-01-15; final acceptance
2027-02-28"); the shorthand becomes the milestone list here, so the command language and the LLM can
pass it as typed. No confirmation: an order plans work, it moves no money (acceptances do, later).
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from domain.services import delivery as svc
from domain.services.delivery import OrderView
from prompts.messages import render
from tools.approvals import pct
from tools.context import ToolContext
from tools.contracts import account_name, contract_of
from tools.delivery import DELIVERY_WORDS
from tools.format import day, table
from tools.registry import DELIVERY, ToolResult, tool
from tools.resolve import LOCALE

FINAL_WORDS = re.compile(r"final\s*acceptance|final\s+sign[- ]?off|终验|最终验收", re.I)
_DATE = re.compile(r"(?<!\d)(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})\s*日?(?!\d)")
_SHARE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,2})?)\s*%")
_PIECES = re.compile(r"[;；\n]")
# What links a name to its date ("hardware on site on 2026-12-10", "终验：2027-02-28") is no part of the name.
_EDGES = " \t,，:：-–—()（）"
_LINK = re.compile(r"(?:\s+(?:on|by|due|at|planned(?:\s+for)?)|于|在)$", re.I)


class OrderMilestoneArg(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="what is delivered", examples=["hardware on site",
                                                                                                "设备到货"])
    kind: Literal["delivery", "final_acceptance"] = Field("delivery", description="final_acceptance = 终验: the "
                                                          "customer's final acceptance, always the last milestone")
    planned_date: date = Field(description="YYYY-MM-DD, on or after the signing date, in order")
    revenue_pct: Decimal | None = Field(None, gt=0, le=100, max_digits=5, decimal_places=2,
                                        description="share of revenue recognised at its acceptance; give it for "
                                                    "every milestone or for none (equal split)")


def milestone_of(piece: str) -> dict:
    """'hardware on site 2026-12-10 (40%)' → one milestone; a name saying final acceptance / 终验 is that kind."""
    dates = list(_DATE.finditer(piece))
    if len(dates) != 1:
        raise ValueError(render("tool.flow.order.bad_piece", LOCALE.get(), piece=piece.strip()))
    y, m, d = (int(g) for g in dates[0].groups())
    rest = piece[:dates[0].start()] + " " + piece[dates[0].end():]
    share = _SHARE.search(rest)
    if share:
        rest = rest[:share.start()] + " " + rest[share.end():]
    name = _LINK.sub("", " ".join(rest.split()).strip(_EDGES)).strip(_EDGES)
    if not name:
        raise ValueError(render("tool.flow.order.bad_piece", LOCALE.get(), piece=piece.strip()))
    try:
        planned = date(y, m, d)
    except ValueError:
        raise ValueError(render("tool.flow.order.bad_date", LOCALE.get(), text=dates[0].group().strip())) from None
    out: dict = {"name": name, "kind": "final_acceptance" if FINAL_WORDS.search(name) else "delivery",
                 "planned_date": planned.isoformat()}
    if share:
        out["revenue_pct"] = share.group(1)
    return out


class CreateOrderArgs(BaseModel):
    contract: str = Field(min_length=1, max_length=200, description="the signed contract (CT-2026-00001), or its deal "
                          "(OPP-00012, deal or customer name)", examples=["CT-2026-00001"])
    milestones: list[OrderMilestoneArg] = Field(
        min_length=1, max_length=50,
        description="delivery milestones in date order, final acceptance last; or as people write it: "
                    "\"hardware on site 2026-12-10; go-live 2027-01-15; final acceptance 2027-02-28\"")

    @field_validator("milestones", mode="before")
    @classmethod
    def _shorthand(cls, v):
        """"<name> <date>; <name> <date>; …" (as people say it) → the milestones, one per piece."""
        if isinstance(v, str):
            return [milestone_of(p) for p in _PIECES.split(v) if p.strip()]
        return v


class OrderResult(ToolResult):
    order: OrderView
    customer: str


def _order_text(view: OrderView, customer: str, locale: str) -> str:
    col = lambda key: render(f"tool.flow.order.col.{key}", locale)  # noqa: E731
    rows = [(m.seq, m.name, render(f"tool.flow.order.kind.{m.kind}", locale), day(m.planned_date), pct(m.revenue_pct))
            for m in view.milestones]
    head = render("tool.flow.order.created", locale, order=view.number, contract=view.contract_number,
                  customer=customer, n=len(view.milestones))
    return head + "\n" + table([col("seq"), col("name"), col("kind"), col("planned"), col("revenue")], rows,
                               right=(0, 4))


@tool(audience=(DELIVERY,), keywords=DELIVERY_WORDS + ("order", "open order", "订单", "下单", "开单"), writes=True)
def create_order(args: CreateOrderArgs, ctx: ToolContext) -> OrderResult:
    """Open the order of a signed contract with its delivery milestones (final acceptance last); the deal's FR."""
    with ctx.uow() as uow:
        contract = contract_of(uow, ctx, args.contract)
        data = {"milestones": [m.model_dump(mode="json", exclude_none=True) for m in args.milestones]}
        view = svc.create_order(contract.number, data, actor=ctx.actor, uow=uow)
        customer = account_name(uow, contract.account_id)
        uow.commit()
    return OrderResult(order=view, customer=customer, text=_order_text(view, customer, ctx.locale))
