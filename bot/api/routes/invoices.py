"""Invoices: list, read, issue a milestone's invoice (finance), void an unpaid one (finance).

Most invoices are issued by the system when a payment-plan trigger happens (signing, acceptance,
a date); `POST /invoices` issues one by hand again after a void, or one a date has made due.
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import DEFAULT, ERRORS, MAX_ID, Body, Cursor, Id, Limit, act, after, page, read
from domain.model import billing as b
from domain.services import billing as svc
from domain.services import listing
from domain.services.billing import InvoiceView

router = APIRouter(prefix="/invoices", tags=["invoices"], responses=ERRORS)
InvoiceId = Annotated[int, Path(ge=1, le=MAX_ID, description="the invoice's id")]
InvoiceStatus = Literal[b.INVOICE_STATUSES]


class InvoiceIn(Body):
    contract_id: int = Field(ge=1, le=MAX_ID, description="the signed contract", examples=[1])
    seq: int = Field(ge=1, le=24, description="payment-plan milestone number (1 = first)", examples=[1])
    issued_on: date | None = Field(None, description="defaults to today; never in the future")


class VoidIn(Body):
    reason: str = Field(min_length=3, max_length=1000, description="why the invoice is void",
                        examples=["Wrong billing address"])


@router.get("", response_model=Page[InvoiceView], summary="List invoices")
def list_invoices(status: InvoiceStatus | None = None, contract_id: Id | None = None, account_id: Id | None = None,
                  issued_since: date | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
                  who: Caller = Depends(caller("invoices:read")), uow=Depends(uow_dep)):
    """Invoices on the deals the key's user may see, oldest first; filter by status, contract, customer, issue date."""
    return page(read(uow, listing.list_invoices, actor=who.actor, after_id=after(cursor), limit=limit,
                     status=status, contract_id=contract_id, account_id=account_id, issued_since=issued_since))


@router.get("/{invoice_id}", response_model=InvoiceView, summary="Get an invoice")
def get_invoice(invoice_id: InvoiceId, who: Caller = Depends(caller("invoices:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_invoice, invoice_id, actor=who.actor)


@router.post("", response_model=InvoiceView, status_code=201, summary="Issue a milestone's invoice",
             responses={200: {"model": InvoiceView, "description": "The milestone's live invoice, already issued"}})
def issue(data: InvoiceIn, response: Response, who: Caller = Depends(caller("invoices:write")),
          uow=Depends(uow_dep)):
    """Finance invoices a milestone whose trigger has happened; one already invoiced answers its live invoice."""
    with uow:
        listing.check_visible("contract", data.contract_id, actor=who.actor, uow=uow, field="contract_id")
        before = {i.id for i in uow.invoices.for_contract(data.contract_id)}
        view = svc.issue_invoice(data.contract_id, {"seq": data.seq, "issued_on": data.issued_on},
                                 actor=who.actor, uow=uow)
        uow.commit()
    if view.id in before:
        response.status_code = 200
    return view


@router.post("/{invoice_id}/void", response_model=InvoiceView, summary="Void an unpaid invoice")
def void(invoice_id: InvoiceId, data: VoidIn, who: Caller = Depends(caller("invoices:write")),
         uow=Depends(uow_dep)):
    """Finance voids an unpaid invoice with a reason; its milestone can be invoiced again."""
    return act(uow, who, "invoice", invoice_id, svc.void_invoice, invoice_id, {"reason": data.reason})
