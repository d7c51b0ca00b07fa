"""Opportunities (deals): list, read, create; advance through the decision gates, close, staff the iron triangle.

A stage move behind a decision gate (ATI, solution review, ATB, ATC) is never made by the API on
its own: as in chat, `advance` asks for the gate (when its preconditions hold) and answers 409
`approval_required`, naming the gate and the approval request now waiting for its approvers.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import Field

from bot.api.deps import Caller, Page, caller, uow_dep
from bot.api.routes._common import (DEFAULT, ERRORS, MAX_ID, Body, Currency, Cursor, Id, Limit, MoneyText, after,
                                    act, body, page, read)
from domain.errors import ApprovalRequired
from domain.model.vocab import GATE_KINDS, Stage
from domain.services import approvals as approval_svc
from domain.services import listing
from domain.services import opportunities as svc
from domain.services.approvals import ApprovalView
from domain.services.opportunities import OpportunityView

router = APIRouter(prefix="/opportunities", tags=["opportunities"], responses=ERRORS)
OppId = Annotated[int, Path(ge=1, le=MAX_ID, description="the deal's id (OPP-00012 → 12)")]
GateKind = Literal[tuple(k.value for k in GATE_KINDS)]
OPEN_STAGES = tuple(s.value for s in Stage if s not in (Stage.LOST, Stage.ABANDONED))


class OpportunityIn(Body):
    name: str = Field(min_length=1, max_length=200, description="what the deal is", examples=["MES phase 2"])
    account_id: int = Field(ge=1, le=MAX_ID, description="the customer", examples=[3])
    amount: MoneyText = Field(description="deal value, a decimal string", examples=["2000000.00"])
    currency: Currency = Field("CNY", description="ISO currency")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD", examples=["2026-12-31"])
    competitors: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="competitors in the deal", examples=[["Siemens"]])
    next_step: str | None = Field(None, max_length=4000, description="the next thing to do",
                                  examples=["Site visit with the CIO"])
    customer_need: str | None = Field(None, max_length=4000, description="the customer's need")
    budget: MoneyText | None = Field(None, description="the customer's budget, a decimal string",
                                     examples=["2500000.00"])
    owner_id: int | None = Field(None, ge=1, le=MAX_ID, description="the AR's user id; defaults to the key's user")


class OpportunityPatch(Body):
    """Only the fields sent change (an open deal's commercial fields)."""

    name: str | None = Field(None, min_length=1, max_length=200, description="what the deal is")
    amount: MoneyText | None = Field(None, description="deal value, a decimal string", examples=["2200000.00"])
    currency: Currency | None = Field(None, description="ISO currency")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD", examples=["2027-01-31"])
    competitors: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=20, description="the full list of competitors")
    next_step: str | None = Field(None, max_length=4000, description="the next thing to do")
    customer_need: str | None = Field(None, max_length=4000, description="the customer's need")
    budget: MoneyText | None = Field(None, description="the customer's budget, a decimal string")


class AdvanceIn(Body):
    to_stage: Literal[OPEN_STAGES] | None = Field(
        None, description="the stage to move to; omit for the next one in order (lost/abandoned: use close)",
        examples=["initiated"])


class GateIn(Body):
    kind: GateKind = Field(description="the decision gate to ask for", examples=["ATI"])
    note: str | None = Field(None, max_length=2000, description="a note for the approvers",
                             examples=["Customer wants a decision before year end"])


class CloseIn(Body):
    outcome: Literal["lost", "abandoned"] = Field(
        description="lost (the customer chose someone else) or abandoned (we stop pursuing it)", examples=["lost"])
    reason: str = Field(min_length=3, max_length=500, description="why", examples=["Price"])


class TeamIn(Body):
    ar_id: int | None = Field(None, ge=1, le=MAX_ID, description="account responsible (the owner): a sales user")
    sr_id: int | None = Field(None, ge=1, le=MAX_ID, description="solution responsible: a solution manager",
                              examples=[5])
    fr_id: int | None = Field(None, ge=1, le=MAX_ID, description="fulfillment responsible: a fulfillment manager",
                              examples=[6])


@router.get("", response_model=Page[OpportunityView], summary="List opportunities")
def list_opportunities(stage: Stage | None = None, owner_id: Id | None = None, account_id: Id | None = None,
                       updated_since: datetime | None = None, limit: Limit = DEFAULT, cursor: Cursor = None,
                       who: Caller = Depends(caller("opportunities:read")), uow=Depends(uow_dep)):
    """Deals the key's user may see, oldest first; filter by stage, owner, account or last change."""
    return page(read(uow, listing.list_opportunities, actor=who.actor, after_id=after(cursor), limit=limit,
                     stage=stage.value if stage else None, owner_id=owner_id, account_id=account_id,
                     updated_since=updated_since))


@router.get("/{opportunity_id}", response_model=OpportunityView, summary="Get an opportunity")
def get_opportunity(opportunity_id: OppId, who: Caller = Depends(caller("opportunities:read")),
                    uow=Depends(uow_dep)):
    return read(uow, listing.get_opportunity, opportunity_id, actor=who.actor)


@router.post("", response_model=OpportunityView, status_code=201, summary="Create an opportunity")
def create_opportunity(data: OpportunityIn, who: Caller = Depends(caller("opportunities:write")),
                       uow=Depends(uow_dep)):
    """A new deal on an existing account, in stage qualify."""
    return act(uow, who, "account", data.account_id, svc.create_opportunity, body(data), field="account_id")


@router.patch("/{opportunity_id}", response_model=OpportunityView, summary="Update an opportunity")
def update_opportunity(opportunity_id: OppId, data: OpportunityPatch,
                       who: Caller = Depends(caller("opportunities:write")), uow=Depends(uow_dep)):
    """Change an open deal's amount, close date, next step, name, competitors, need or budget."""
    return act(uow, who, "opportunity", opportunity_id, svc.update_opportunity, opportunity_id, body(data))


@router.post("/{opportunity_id}/advance", response_model=OpportunityView, summary="Advance the stage",
             responses={409: {"description": "approval_required: the move needs a decision gate; details name the "
                                             "gate and, when it could be asked for, the approval request waiting"}})
def advance(opportunity_id: OppId, data: AdvanceIn | None = None,
            who: Caller = Depends(caller("opportunities:write")), uow=Depends(uow_dep)):
    """Move the deal on; a gated move asks for the gate (as chat does) and answers 409 approval_required."""
    to_stage = data.to_stage if data else None
    with uow:
        listing.check_visible("opportunity", opportunity_id, actor=who.actor, uow=uow)
        try:
            view = svc.advance_stage(opportunity_id, to_stage, actor=who.actor, uow=uow)
        except ApprovalRequired as e:
            gate = e.details.get("gate")
            if not gate or e.missing:
                raise  # nothing to ask for yet: the details say what is missing
            # Moving the deal and asking for its gate are one step to the user, as in chat (tools.opportunities).
            approval = approval_svc.request_gate(opportunity_id, gate, actor=who.actor, uow=uow)
            uow.commit()
            raise ApprovalRequired(
                f"{e.message}; {approval.ref} now waits for its approvers", field=e.field, missing=[],
                details={**e.details, "gate": gate, "approval_id": approval.id, "approval_ref": approval.ref,
                         "approval_status": approval.status,
                         "eligible_approver_ids": approval.eligible_approver_ids}) from None
        uow.commit()
    return view


@router.post("/{opportunity_id}/request-gate", response_model=ApprovalView, status_code=201,
             summary="Ask for a decision gate",
             responses={200: {"model": ApprovalView, "description": "The request of that gate already waiting"}})
def request_gate(opportunity_id: OppId, data: GateIn, response: Response,
                 who: Caller = Depends(caller("opportunities:write")), uow=Depends(uow_dep)):
    """Open the gate's approval request (ATI, solution_review, ATB, ATC) once its preconditions hold."""
    with uow:
        listing.check_visible("opportunity", opportunity_id, actor=who.actor, uow=uow)
        waiting = uow.approvals.pending_for("opportunity", opportunity_id, data.kind)
        view = approval_svc.request_gate(opportunity_id, data.kind, note=data.note, actor=who.actor, uow=uow)
        uow.commit()
    if waiting is not None and waiting.id == view.id:
        response.status_code = 200
    return view


@router.post("/{opportunity_id}/close", response_model=OpportunityView, summary="Close as lost or abandoned")
def close(opportunity_id: OppId, data: CloseIn, who: Caller = Depends(caller("opportunities:write")),
          uow=Depends(uow_dep)):
    """Mark the deal lost or abandoned with a reason; its open quotes and approvals are closed too."""
    return act(uow, who, "opportunity", opportunity_id, svc.close_opportunity, opportunity_id, data.outcome,
               data.reason)


@router.post("/{opportunity_id}/assign-team", response_model=OpportunityView, summary="Staff the iron triangle")
def assign_team(opportunity_id: OppId, data: TeamIn, who: Caller = Depends(caller("opportunities:write")),
                uow=Depends(uow_dep)):
    """Seat the AR (owner), SR and/or FR by user id."""
    return act(uow, who, "opportunity", opportunity_id, svc.assign_iron_triangle, opportunity_id,
               **data.model_dump(exclude_none=True))
