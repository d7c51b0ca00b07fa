"""Leads: list and read, capture (de-duplicated, scored, assigned), qualify, disqualify, assign, convert."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, Body, Currency, Cursor, Id, Limit, MoneyText, after, body, page,
                                    act, read, write)
from domain.model.vocab import Authority, LeadSource, LeadStatus, Timeline
from domain.services import leads as svc
from domain.services import listing
from domain.services.leads import ConversionView, LeadView

router = APIRouter(prefix="/leads", tags=["leads"], responses=ERRORS)
LeadId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the lead's id (LEAD-00012 → 12)")]


class LeadIn(Body):
    source: LeadSource = Field(description="where the lead came from", examples=["website"])
    company: str = Field(min_length=1, max_length=200, description="the customer's company",
                         examples=["华东电力集团有限公司"])
    contact_name: str = Field(min_length=1, max_length=100, description="the person we talk to", examples=["张伟"])
    title: str | None = Field(None, max_length=100, description="their job title", examples=["IT Director"])
    email: str | None = Field(None, max_length=200, description="email (de-duplicates leads)",
                              examples=["zhang.wei@example.com"])
    phone: str | None = Field(None, max_length=50, description="phone, at least 6 digits",
                              examples=["+86 21 5555 0101"])
    region: str = Field("", max_length=50, description="sales region; drives assignment", examples=["east"])
    need: str | None = Field(None, max_length=4000, description="what the customer needs",
                             examples=["Plant-wide MES upgrade"])
    budget: MoneyText | None = Field(None, description="budget, a decimal string", examples=["1500000.00"])
    currency: Currency = Field("CNY", description="ISO currency of the budget")
    timeline: Timeline = Field(Timeline.UNKNOWN, description="when they mean to buy")
    authority: Authority = Field(Authority.UNKNOWN, description="the contact's say in the decision")
    notes: str | None = Field(None, max_length=4000, description="free notes")
    owner_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                 description="owner's user id; omitted = the key's user (a rep), else the rules")


class LeadPatch(Body):
    """Only the fields sent change; null clears an optional field."""

    company: str | None = Field(None, min_length=1, max_length=200, description="the customer's company")
    contact_name: str | None = Field(None, min_length=1, max_length=100, description="the person we talk to")
    title: str | None = Field(None, max_length=100, description="their job title")
    email: str | None = Field(None, max_length=200, description="email", examples=["zhang.wei@example.com"])
    phone: str | None = Field(None, max_length=50, description="phone, at least 6 digits")
    region: str | None = Field(None, max_length=50, description="sales region")
    need: str | None = Field(None, max_length=4000, description="what the customer needs")
    budget: MoneyText | None = Field(None, description="budget, a decimal string", examples=["1800000.00"])
    currency: Currency | None = Field(None, description="ISO currency of the budget")
    timeline: Timeline | None = Field(None, description="when they mean to buy")
    authority: Authority | None = Field(None, description="the contact's say in the decision")
    notes: str | None = Field(None, max_length=4000, description="free notes")


class LeadReason(Body):
    reason: str = Field(min_length=3, max_length=1000, description="why the lead is disqualified",
                        examples=["No budget this year"])


class LeadAssign(Body):
    owner_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                 description="the new owner's user id; null = re-run the assignment rules",
                                 examples=[7])


class LeadConvertIn(Body):
    opportunity_name: str | None = Field(None, min_length=1, max_length=200, description="the new deal's name",
                                         examples=["MES phase 2"])
    amount: MoneyText | None = Field(None, description="deal amount; defaults to the lead's budget",
                                     examples=["1500000.00"])
    currency: Currency | None = Field(None, description="defaults to the lead's currency")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD", examples=["2026-12-31"])
    account_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="link an existing account instead of creating one")
    industry: str | None = Field(None, max_length=100, description="industry of a new account",
                                 examples=["utilities"])


@router.get("", response_model=Page[LeadView], summary="List leads")
def list_leads(status: LeadStatus | None = None, owner_id: Id | None = None, source: LeadSource | None = None,
               updated_since: datetime | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
               who: Caller = Depends(caller("leads:read")), uow=Depends(uow_dep)):
    """Leads the key's user may see, oldest first; filter by status, owner, source or last change."""
    return page(read(uow, listing.list_leads, actor=who.actor, after_id=after(cursor), limit=limit,
                     status=status.value if status else None, owner_id=owner_id,
                     source=source.value if source else None, updated_since=updated_since))


@router.get("/{lead_id}", response_model=LeadView, summary="Get a lead")
def get_lead(lead_id: LeadId, who: Caller = Depends(caller("leads:read")), uow=Depends(uow_dep)):
    return read(uow, listing.get_lead, lead_id, actor=who.actor)


@router.post("", response_model=LeadView, status_code=201, summary="Capture a lead",
             responses={200: {"model": LeadView, "description": "A duplicate: the existing lead, unchanged"}})
def create_lead(data: LeadIn, response: Response, who: Caller = Depends(caller("leads:write")),
                uow=Depends(uow_dep)):
    """Create a lead (scored, assigned); the same email, phone or company+contact returns the existing lead (200)."""
    view = write(uow, svc.create_lead, body(data), actor=who.actor)
    if not view.created:
        response.status_code = 200
    return view


@router.patch("/{lead_id}", response_model=LeadView, summary="Update an open lead")
def update_lead(lead_id: LeadId, data: LeadPatch, who: Caller = Depends(caller("leads:write")), uow=Depends(uow_dep)):
    """Change an open lead's details (re-scored; a clash with another lead's email or phone is a 409)."""
    return act(uow, who, "lead", lead_id, svc.update_lead, lead_id, body(data))


@router.post("/{lead_id}/qualify", response_model=LeadView, summary="Qualify a lead")
def qualify_lead(lead_id: LeadId, who: Caller = Depends(caller("leads:write")), uow=Depends(uow_dep)):
    return act(uow, who, "lead", lead_id, svc.qualify_lead, lead_id)


@router.post("/{lead_id}/disqualify", response_model=LeadView, summary="Disqualify a lead")
def disqualify_lead(lead_id: LeadId, data: LeadReason, who: Caller = Depends(caller("leads:write")),
                    uow=Depends(uow_dep)):
    return act(uow, who, "lead", lead_id, svc.disqualify_lead, lead_id, data.reason)


@router.post("/{lead_id}/assign", response_model=LeadView, summary="Reassign a lead")
def assign_lead(lead_id: LeadId, data: LeadAssign, who: Caller = Depends(caller("leads:write")),
                uow=Depends(uow_dep)):
    """Give the lead to a named owner, or re-run the assignment rules (managers, sales ops, admins)."""
    return act(uow, who, "lead", lead_id, svc.assign_lead, lead_id, data.owner_id)


@router.post("/{lead_id}/convert", response_model=ConversionView, summary="Convert a qualified lead")
def convert_lead(lead_id: LeadId, data: LeadConvertIn | None = None, who: Caller = Depends(caller("leads:write")),
                 uow=Depends(uow_dep)):
    """Qualified lead → account (created or linked) + contact + opportunity, all or nothing."""
    values = body(data) if data else {}
    with uow:
        listing.check_visible("lead", lead_id, actor=who.actor, uow=uow)
        listing.check_visible("account", values.get("account_id"), actor=who.actor, uow=uow, field="account_id")
        view = svc.convert_lead(lead_id, values, actor=who.actor, uow=uow)
        uow.commit()
    return view
