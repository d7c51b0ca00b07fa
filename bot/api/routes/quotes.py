"""Quotes (CPQ): list, read, generate from lines (priced from the price book), submit, send, accept.

Submitting routes the quote by the discount policy exactly as chat does: approved at once inside
the automatic band, else a discount approval request (the quote's approval_id) waits for its approvers.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, MAX_ID, Body, Cursor, DecimalText, Id, Limit, after, body, page,
                                    act, read)
from domain.model import quotes as q
from domain.services import listing
from domain.services import quotes as svc
from domain.services.quotes import QuoteView

router = APIRouter(prefix="/quotes", tags=["quotes"], responses=ERRORS)
QuoteId = Annotated[int, Path(ge=1, le=MAX_ID, description="the quote's id (Q-00007 → 7)")]
QuoteStatus = Literal[q.STATUSES]


class QuoteLineIn(Body):
    product: str = Field(min_length=1, max_length=200, description="SKU or product name (zh/en)", examples=["MES-LIC"])
    quantity: DecimalText = Field(gt=0, max_digits=12, decimal_places=2, description="how many, a decimal string",
                                  examples=["100"])
    discount_pct: DecimalText = Field(Decimal("0"), ge=0, le=100, max_digits=5, decimal_places=2,
                                      description="line discount in percent, a decimal string", examples=["15.00"])


class QuoteIn(Body):
    opportunity_id: int = Field(ge=1, le=MAX_ID, description="the deal to quote", examples=[12])
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=200, description="what is sold")
    valid_until: date | None = Field(None, description="YYYY-MM-DD; defaults to 30 days from today",
                                     examples=["2026-12-31"])


@router.get("", response_model=Page[QuoteView], summary="List quotes")
def list_quotes(opportunity_id: Id | None = None, status: QuoteStatus | None = None,
                created_since: datetime | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
                who: Caller = Depends(caller("quotes:read")), uow=Depends(uow_dep)):
    """Quotes of the deals the key's user may see, oldest first; filter by deal, status or creation time."""
    return page(read(uow, listing.list_quotes, actor=who.actor, after_id=after(cursor), limit=limit,
                     opportunity_id=opportunity_id, status=status, created_since=created_since))


@router.get("/{quote_id}", response_model=QuoteView, summary="Get a quote")
def get_quote(quote_id: QuoteId, who: Caller = Depends(caller("quotes:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_quote, quote_id, actor=who.actor)


@router.post("", response_model=QuoteView, status_code=201, summary="Generate a quote from lines")
def create_quote(data: QuoteIn, who: Caller = Depends(caller("quotes:write")), uow=Depends(uow_dep)):
    """A new quote version for the deal, priced from its price book; earlier open versions are superseded."""
    values = body(data)
    opp_id = values.pop("opportunity_id")
    return act(uow, who, "opportunity", opp_id, svc.create_quote, opp_id, values, field="opportunity_id")


@router.post("/{quote_id}/submit", response_model=QuoteView, summary="Submit for discount approval")
def submit(quote_id: QuoteId, who: Caller = Depends(caller("quotes:write")), uow=Depends(uow_dep)):
    """Approved at once within the automatic band; otherwise a discount approval request waits (approval_id)."""
    return act(uow, who, "quote", quote_id, svc.submit_quote, quote_id)


@router.post("/{quote_id}/send", response_model=QuoteView, summary="Send to the customer")
def send(quote_id: QuoteId, who: Caller = Depends(caller("quotes:write")), uow=Depends(uow_dep)):
    """Send an approved, still valid quote to the customer."""
    return act(uow, who, "quote", quote_id, svc.send_quote, quote_id)


@router.post("/{quote_id}/accept", response_model=QuoteView, summary="Record the customer's acceptance")
def accept(quote_id: QuoteId, who: Caller = Depends(caller("quotes:write")), uow=Depends(uow_dep)):
    """The customer accepted the sent quote: the deal is now worth its total; draft the contract next."""
    return act(uow, who, "quote", quote_id, svc.accept_quote, quote_id)
