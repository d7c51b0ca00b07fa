"""Orders and delivery: list, read, open the order of a signed contract, record deliveries and acceptances.

Accepting a milestone recognises revenue and issues the invoices its trigger makes due, as in chat.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, MAX_ID, Body, Cursor, DecimalText, Id, Limit, after, body, page,
                                    act, read)
from domain.model import delivery as d
from domain.services import delivery as svc
from domain.services import listing
from domain.services.delivery import OrderView

router = APIRouter(prefix="/orders", tags=["orders"], responses=ERRORS)
OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="the order's id")]
Seq = Annotated[int, Path(ge=1, le=50, description="delivery milestone number (1 = first)")]
OrderStatus = Literal[d.ORDER_STATUSES]


class DeliveryMilestoneIn(Body):
    name: str = Field(min_length=1, max_length=200, description="what is delivered", examples=["Hardware on site"])
    kind: Literal[d.KINDS] = Field("delivery", description="final_acceptance = 终验; at most one, last")
    planned_date: date = Field(description="YYYY-MM-DD, on or after signing", examples=["2026-12-15"])
    revenue_pct: DecimalText | None = Field(None, gt=0, le=100, max_digits=5, decimal_places=2,
                                            description="share of revenue recognised at acceptance; default equal")


class OrderIn(Body):
    contract_id: int = Field(ge=1, le=MAX_ID, description="the signed contract", examples=[1])
    milestones: list[DeliveryMilestoneIn] = Field(min_length=1, max_length=50, description="delivery plan")


class DoneIn(Body):
    done_on: date | None = Field(None, description="defaults to today", examples=["2026-12-15"])


class AcceptIn(Body):
    certificate_ref: str = Field(min_length=1, max_length=100, description="the customer's acceptance certificate",
                                 examples=["CERT-2026-001"])
    accepted_on: date | None = Field(None, description="defaults to today")


@router.get("", response_model=Page[OrderView], summary="List orders")
def list_orders(status: OrderStatus | None = None, contract_id: Id | None = None,
                created_since: datetime | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
                who: Caller = Depends(caller("orders:read")), uow=Depends(uow_dep)):
    """Orders on the deals the key's user may see, oldest first; filter by status, contract or creation time."""
    return page(read(uow, listing.list_orders, actor=who.actor, after_id=after(cursor), limit=limit,
                     status=status, contract_id=contract_id, created_since=created_since))


@router.get("/{order_id}", response_model=OrderView, summary="Get an order")
def get_order(order_id: OrderId, who: Caller = Depends(caller("orders:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_order, order_id, actor=who.actor)


@router.post("", response_model=OrderView, status_code=201, summary="Open the order of a signed contract")
def create_order(data: OrderIn, who: Caller = Depends(caller("orders:write")), uow=Depends(uow_dep)):
    """The deal's FR (or sales ops, admin) opens the order with its delivery milestones; the contract executes."""
    values = body(data)
    contract_id = values.pop("contract_id")
    return act(uow, who, "contract", contract_id, svc.create_order, contract_id, values, field="contract_id")


@router.post("/{order_id}/milestones/{seq}/delivered", response_model=OrderView, summary="Record a delivery")
def delivered(order_id: OrderId, seq: Seq, data: DoneIn | None = None,
              who: Caller = Depends(caller("orders:write")), uow=Depends(uow_dep)):
    """The FR records that a delivery milestone is done; the customer's acceptance comes next."""
    return act(uow, who, "order", order_id, svc.mark_delivered, order_id, seq, body(data) if data else {})


@router.post("/{order_id}/milestones/{seq}/accept", response_model=OrderView, summary="Record the acceptance")
def accept(order_id: OrderId, seq: Seq, data: AcceptIn, who: Caller = Depends(caller("orders:write")),
           uow=Depends(uow_dep)):
    """The customer's acceptance (with its certificate): revenue is recognised and due invoices are issued."""
    return act(uow, who, "order", order_id, svc.accept_milestone, order_id, seq, body(data))
