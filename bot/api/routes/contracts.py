"""Contracts: list, read, draft from the accepted quote, submit for signature (the ATC decision signs), withdraw."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, MAX_ID, Body, Cursor, DecimalText, Id, Limit, after, body, page,
                                    act, read)
from domain.model import contracts as c
from domain.policy_defaults import DEFAULT_PAYMENT_TERMS_DAYS
from domain.services import contracts as svc
from domain.services import listing
from domain.services.contracts import ContractView

router = APIRouter(prefix="/contracts", tags=["contracts"], responses=ERRORS)
ContractId = Annotated[int, Path(ge=1, le=MAX_ID, description="the contract's id")]
ContractStatus = Literal[c.STATUSES]


class MilestoneIn(Body):
    label: str = Field(min_length=1, max_length=100, description="e.g. advance payment / 预付款",
                       examples=["Advance payment"])
    pct: DecimalText = Field(gt=0, le=100, max_digits=5, decimal_places=2,
                             description="share of the contract value in percent, a decimal string", examples=["30"])
    trigger: Literal[c.TRIGGERS] = Field(description="what makes it invoiceable", examples=["signing"])
    due_date: date | None = Field(None, description="for trigger 'date' only")


class ContractIn(Body):
    quote_id: int = Field(ge=1, le=MAX_ID, description="the customer's accepted quote", examples=[7])
    milestones: list[MilestoneIn] | None = Field(None, min_length=1, max_length=24,
                                                 description="payment plan adding up to 100 %; defaults to 30/60/10")
    payment_terms_days: int = Field(DEFAULT_PAYMENT_TERMS_DAYS, ge=0, le=365, description="days from invoice to due",
                                    examples=[30])


@router.get("", response_model=Page[ContractView], summary="List contracts")
def list_contracts(status: ContractStatus | None = None, account_id: Id | None = None,
                   opportunity_id: Id | None = None, created_since: datetime | None = None, limit: Limit = DEFAULT,
                   cursor: Cursor = None, who: Caller = Depends(caller("contracts:read")), uow=Depends(uow_dep)):
    """Contracts on the deals the key's user may see, oldest first; filter by status, account, deal or creation."""
    return page(read(uow, listing.list_contracts, actor=who.actor, after_id=after(cursor), limit=limit,
                     status=status, account_id=account_id, opportunity_id=opportunity_id,
                     created_since=created_since))


@router.get("/{contract_id}", response_model=ContractView, summary="Get a contract")
def get_contract(contract_id: ContractId, who: Caller = Depends(caller("contracts:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_contract, contract_id, actor=who.actor)


@router.post("", response_model=ContractView, status_code=201, summary="Draft a contract from the accepted quote")
def create_contract(data: ContractIn, who: Caller = Depends(caller("contracts:write")), uow=Depends(uow_dep)):
    """Value = the accepted quote's total; the payment plan must add up to 100 %."""
    return act(uow, who, "quote", data.quote_id, svc.create_contract, body(data), field="quote_id")


@router.post("/{contract_id}/submit", response_model=ContractView, summary="Submit for signature")
def submit(contract_id: ContractId, who: Caller = Depends(caller("contracts:write")), uow=Depends(uow_dep)):
    """The draft goes under review; the ATC decision on the deal signs it."""
    return act(uow, who, "contract", contract_id, svc.submit_contract, contract_id)


@router.post("/{contract_id}/withdraw", response_model=ContractView, summary="Withdraw to draft")
def withdraw(contract_id: ContractId, who: Caller = Depends(caller("contracts:write")), uow=Depends(uow_dep)):
    """Take a contract under review back to draft (a pending ATC request is cancelled)."""
    return act(uow, who, "contract", contract_id, svc.withdraw_contract, contract_id)
