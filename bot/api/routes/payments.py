"""Payments (回款): list, read, record (finance) or report (sellers), confirm, allocate, reject.

`POST /payments` does what chat's record_payment does: a finance key's user records the money and
it is applied to open invoices (oldest first, or as listed); a seller's only reports it, and finance
confirms it against the bank. The same bank reference twice is one payment (200 with it).
"""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, MAX_ID, Body, Currency, Cursor, Id, Limit, PositiveMoneyText,
                                    after, body, page, read, write)
from domain.model import billing as b
from domain.model.vocab import Role
from domain.services import listing
from domain.services import payments as svc
from domain.services.payments import PaymentView

router = APIRouter(prefix="/payments", tags=["payments"], responses=ERRORS)
PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="the payment's id")]
PaymentStatus = Literal[b.PAYMENT_STATUSES]


class AllocationIn(Body):
    invoice_id: int = Field(ge=1, le=MAX_ID, description="the invoice to pay", examples=[4])
    amount: PositiveMoneyText = Field(description="how much of the payment goes to it, a decimal string",
                                      examples=["150000.00"])


class PaymentIn(Body):
    account_id: int | None = Field(None, ge=1, le=MAX_ID, description="the paying customer; or give contract_id",
                                   examples=[3])
    contract_id: int | None = Field(None, ge=1, le=MAX_ID, description="pay this contract's invoices (oldest first)",
                                    examples=[1])
    amount: PositiveMoneyText = Field(description="the money received, a decimal string", examples=["500000.00"])
    currency: Currency = Field(description="ISO currency", examples=["CNY"])
    received_on: date = Field(description="the value date on the bank statement; not in the future",
                              examples=["2026-11-20"])
    method: Literal[b.METHODS] = Field("bank_transfer", description="how it was paid")
    bank_ref: str = Field(min_length=1, max_length=100, description="the bank's reference; unique per payment",
                          examples=["BOC 2026-1120-0001"])
    allocations: list[AllocationIn] | None = Field(None, max_length=200,
                                                   description="explicit split (finance only); omit for oldest first")
    note: str | None = Field(None, max_length=2000, description="free note")


class AllocateIn(Body):
    allocations: list[AllocationIn] | None = Field(None, max_length=200,
                                                   description="explicit split; omit for oldest first")
    contract_id: int | None = Field(None, ge=1, le=MAX_ID, description="only this contract's invoices")


class RejectIn(Body):
    reason: str = Field(min_length=3, max_length=1000, description="why (e.g. not on the bank statement)",
                        examples=["Not on the bank statement"])


@router.get("", response_model=Page[PaymentView], summary="List payments")
def list_payments(status: PaymentStatus | None = None, account_id: Id | None = None,
                  received_since: date | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
                  who: Caller = Depends(caller("payments:read")), uow=Depends(uow_dep)):
    """Payments the key's user may see, oldest first; filter by status, customer or value date."""
    return page(read(uow, listing.list_payments, actor=who.actor, after_id=after(cursor), limit=limit,
                     status=status, account_id=account_id, received_since=received_since))


@router.get("/{payment_id}", response_model=PaymentView, summary="Get a payment")
def get_payment(payment_id: PaymentId, who: Caller = Depends(caller("payments:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_payment, payment_id, actor=who.actor)


@router.post("", response_model=PaymentView, status_code=201, summary="Record or report a payment",
             responses={200: {"model": PaymentView, "description": "This bank reference is already on the books"}})
def record(data: PaymentIn, response: Response, who: Caller = Depends(caller("payments:write")),
           uow=Depends(uow_dep)):
    """Finance records money received (applied to open invoices); sellers report it for finance to confirm."""
    with uow:
        # Naming a contract or customer the caller cannot see is answered as naming none that exists.
        listing.check_visible("contract", data.contract_id, actor=who.actor, uow=uow, field="contract_id")
        listing.check_visible("account", data.account_id, actor=who.actor, uow=uow, field="account_id")
        user = uow.users.get(who.actor.user_id)
        finance = user is not None and Role.FINANCE in user.roles
        known = uow.payments.by_bank_ref(" ".join(data.bank_ref.split()).upper())
        known_id, known_status = (known.id, known.status) if known is not None else (None, None)
        view = (svc.record_payment if finance else svc.propose_payment)(body(data), actor=who.actor, uow=uow)
        uow.commit()
    # Recording the bank line of a seller's proposal confirms it (a change); any other known line is a repeat.
    if known_id == view.id and not (finance and known_status == b.PROPOSED):
        response.status_code = 200
    return view


@router.post("/{payment_id}/confirm", response_model=PaymentView, summary="Confirm a reported payment")
def confirm(payment_id: PaymentId, data: AllocateIn | None = None, who: Caller = Depends(caller("payments:write")),
            uow=Depends(uow_dep)):
    """Finance confirms a proposed payment against the bank and allocates it."""
    return write(uow, svc.confirm_payment, payment_id, body(data) if data else {}, actor=who.actor)


@router.post("/{payment_id}/allocate", response_model=PaymentView, summary="Apply unapplied credit")
def allocate(payment_id: PaymentId, data: AllocateIn | None = None, who: Caller = Depends(caller("payments:write")),
             uow=Depends(uow_dep)):
    """Apply a confirmed payment's unapplied credit to open invoices (oldest first, or as listed)."""
    return write(uow, svc.allocate_payment, payment_id, body(data) if data else {}, actor=who.actor)


@router.post("/{payment_id}/reject", response_model=PaymentView, summary="Reject a reported payment")
def reject(payment_id: PaymentId, data: RejectIn, who: Caller = Depends(caller("payments:write")),
           uow=Depends(uow_dep)):
    """Finance turns down a proposed payment the bank does not show."""
    return write(uow, svc.reject_payment, payment_id, data.reason, actor=who.actor)
