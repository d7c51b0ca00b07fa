"""Accounts (customers): list and read the customer master data, create an account."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import DEFAULT, ERRORS, MAX_ID, Body, Cursor, Id, Limit, act, after, body, page, read, write
from domain.model.vocab import Tier
from domain.services import accounts as svc
from domain.services import listing
from domain.services.accounts import AccountView

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=ERRORS)
Region = Annotated[str | None, Query(max_length=50, description="sales region", examples=["east"])]
AccountId = Annotated[int, Path(ge=1, le=MAX_ID, description="the account's id (ACC-00003 → 3)")]


class AccountIn(Body):
    name: str = Field(min_length=1, max_length=200, description="the customer's legal or common name; unique",
                      examples=["华东电力集团有限公司"])
    industry: str | None = Field(None, max_length=100, description="industry", examples=["utilities"])
    region: str = Field("", max_length=50, description="sales region", examples=["east"])
    tier: Tier = Field(Tier.STANDARD, description="service tier")
    owner_id: int | None = Field(None, ge=1, le=MAX_ID,
                                 description="the AR's user id; defaults to the key's user (needs a sales role)")


class AccountPatch(Body):
    """Only the fields sent change."""

    name: str | None = Field(None, min_length=1, max_length=200, description="a name no other account has")
    industry: str | None = Field(None, max_length=100, description="industry")
    region: str | None = Field(None, max_length=50, description="sales region")
    tier: Tier | None = Field(None, description="service tier")
    owner_id: int | None = Field(None, ge=1, le=MAX_ID, description="the new AR's user id (needs a sales role)")


@router.get("", response_model=Page[AccountView], summary="List accounts")
def list_accounts(owner_id: Id | None = None, region: Region = None, updated_since: datetime | None = None,
                  limit: Limit = DEFAULT, cursor: Cursor = None, who: Caller = Depends(caller("accounts:read")),
                  uow=Depends(uow_dep)):
    """Accounts the key's user may see, oldest first; filter by owner (AR), region or last change."""
    return page(read(uow, listing.list_accounts, actor=who.actor, after_id=after(cursor), limit=limit,
                     owner_id=owner_id, region=region, updated_since=updated_since))


@router.get("/{account_id}", response_model=AccountView, summary="Get an account")
def get_account(account_id: AccountId, who: Caller = Depends(caller("accounts:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_account, account_id, actor=who.actor)


@router.post("", response_model=AccountView, status_code=201, summary="Create an account")
def create_account(data: AccountIn, who: Caller = Depends(caller("accounts:write")), uow=Depends(uow_dep)):
    """Create a customer; a name another account already has (after folding case and suffixes) is a 409."""
    return write(uow, svc.create_account, body(data), actor=who.actor)


@router.patch("/{account_id}", response_model=AccountView, summary="Update an account")
def update_account(account_id: AccountId, data: AccountPatch, who: Caller = Depends(caller("accounts:write")),
                   uow=Depends(uow_dep)):
    """Change a customer's master data; its AR, their managers, sales ops and admins may."""
    return act(uow, who, "account", account_id, svc.update_account, account_id, body(data))
