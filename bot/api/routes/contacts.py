"""Contacts: the people of a customer's decision chain; list, read, add."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import DEFAULT, ERRORS, MAX_ID, Body, Cursor, Id, Limit, act, after, body, page, read
from domain.model.vocab import DecisionChainRole
from domain.services import accounts as svc
from domain.services import listing
from domain.services.accounts import ContactView

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=ERRORS)
ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="the contact's id")]


class ContactIn(Body):
    account_id: int = Field(ge=1, le=MAX_ID, description="the customer the person works for", examples=[3])
    name: str = Field(min_length=1, max_length=100, description="full name", examples=["张伟"])
    title: str | None = Field(None, max_length=100, description="job title", examples=["IT Director"])
    email: str | None = Field(None, max_length=200, description="email", examples=["zhang.wei@example.com"])
    phone: str | None = Field(None, max_length=50, description="phone, at least 6 digits",
                              examples=["+86 21 5555 0101"])
    decision_role: DecisionChainRole = Field(DecisionChainRole.USER, description="place in the decision chain")
    relationship: int = Field(2, ge=1, le=5, description="1 = cold/unknown … 5 = trusted advocate", examples=[3])


@router.get("", response_model=Page[ContactView], summary="List contacts")
def list_contacts(account_id: Id | None = None, created_since: datetime | None = None, limit: Limit = DEFAULT,
                  cursor: Cursor = None, who: Caller = Depends(caller("contacts:read")), uow=Depends(uow_dep)):
    """Contacts of the accounts the key's user may see, oldest first; filter by account or creation time."""
    return page(read(uow, listing.list_contacts, actor=who.actor, after_id=after(cursor), limit=limit,
                     account_id=account_id, created_since=created_since))


@router.get("/{contact_id}", response_model=ContactView, summary="Get a contact")
def get_contact(contact_id: ContactId, who: Caller = Depends(caller("contacts:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_contact, contact_id, actor=who.actor)


@router.post("", response_model=ContactView, status_code=201, summary="Add a contact to an account")
def create_contact(data: ContactIn, who: Caller = Depends(caller("contacts:write")), uow=Depends(uow_dep)):
    """Add a person to a customer; the same name or email on that account is a 409."""
    values = body(data)
    account_id = values.pop("account_id")
    return act(uow, who, "account", account_id, svc.add_contact, account_id, values, field="account_id")
