"""Log activities (call, meeting, email, note) against a lead, account, contact or opportunity."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

from domain.actor import Actor
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model.activities import Activity
from domain.model.vocab import ActivityKind, LeadStatus
from domain.rbac import UseCase
from domain.services import leads as lead_svc
from domain.services.accounts import visible_account
from domain.services.base import audit, begin, parse, snapshot
from domain.services.opportunities import visible_opportunity
from domain.services.schemas import Input, Text, View


def _naive_utc(value: datetime | None) -> datetime | None:
    # One convention in storage (naive UTC) whatever the database keeps of offsets.
    if value is not None and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


class ActivityCreate(Input):
    kind: ActivityKind
    subject: str = Field(min_length=1, max_length=200)
    body: Text | None = None
    occurred_at: Annotated[datetime | None, AfterValidator(_naive_utc)] = Field(
        None, description="when it happened (UTC unless an offset is given); defaults to now")
    lead_id: int | None = None
    account_id: int | None = None
    contact_id: int | None = None
    opportunity_id: int | None = None


class ActivityView(View):
    id: int
    kind: str
    subject: str
    body: str | None
    occurred_at: datetime
    user_id: int
    lead_id: int | None
    account_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    message: str = ""


def log_activity(data: ActivityCreate | dict, *, actor: Actor, uow) -> ActivityView:
    ctx = begin(uow, actor, UseCase.LOG_ACTIVITY)
    cmd = parse(ActivityCreate, data)
    if cmd.lead_id is None and cmd.account_id is None and cmd.opportunity_id is None:
        raise ValidationFailed("Say what the activity is about: lead_id, account_id or opportunity_id",
                               field="lead_id", allowed=["lead_id", "account_id", "opportunity_id"])
    account_id, lead = cmd.account_id, None
    if cmd.opportunity_id is not None:
        opp = visible_opportunity(uow, ctx, cmd.opportunity_id)
        if account_id is not None and account_id != opp.account_id:
            raise ValidationFailed(f"{opp.ref} belongs to account {opp.account_id}, not {account_id}", field="account_id")
        account_id = opp.account_id
    if account_id is not None:
        visible_account(uow, ctx, account_id)
    if cmd.contact_id is not None:
        contact = uow.contacts.get(cmd.contact_id)
        if contact is None:
            raise NotFound(f"Contact {cmd.contact_id} does not exist", field="contact_id")
        if account_id is not None and contact.account_id != account_id:
            raise ValidationFailed(f"Contact {cmd.contact_id} is not at account {account_id}", field="contact_id")
        if account_id is None:
            visible_account(uow, ctx, contact.account_id)
            account_id = contact.account_id
    if cmd.lead_id is not None:
        lead = uow.leads.get_for_update(cmd.lead_id)  # the status/score write must not lose a concurrent change
        if lead is None:
            raise NotFound(f"Lead LEAD-{cmd.lead_id:05d} does not exist", field="lead_id")
        if not ctx.scope.sees_lead(lead.owner_id):
            raise PermissionDenied(f"{lead.ref} belongs to someone outside your team")
    now = uow.now()
    if cmd.occurred_at is not None and cmd.occurred_at > now + timedelta(minutes=5):
        raise ValidationFailed(f"occurred_at {cmd.occurred_at:%Y-%m-%d %H:%M} UTC is in the future: log what happened",
                               field="occurred_at")
    activity = Activity(kind=cmd.kind.value, subject=cmd.subject, body=cmd.body, user_id=ctx.user.id,
                        occurred_at=cmd.occurred_at or now, lead_id=cmd.lead_id, account_id=account_id,
                        contact_id=cmd.contact_id, opportunity_id=cmd.opportunity_id)
    uow.activities.add(activity)
    audit(uow, ctx, "activity", activity.id, "create", None,
          snapshot(activity, ("kind", "subject", "lead_id", "account_id", "opportunity_id")))
    message = f"{cmd.kind.value} logged"
    if lead is not None:
        before = snapshot(lead, lead_svc.LEAD_FIELDS)
        # Reaching out to a new lead makes it contacted; notes alone do not.
        if lead.status == LeadStatus.NEW.value and cmd.kind is not ActivityKind.NOTE:
            lead.move_to(LeadStatus.CONTACTED)
        lead_svc.rescore(uow, lead)
        lead.updated_at = now
        after = snapshot(lead, lead_svc.LEAD_FIELDS)
        if after != before:
            audit(uow, ctx, "lead", lead.id, "engagement", before, after)
            message += f"; {lead.ref} is {lead.status}, score {lead.score}"
    return ActivityView(id=activity.id, kind=activity.kind, subject=activity.subject, body=activity.body,
                        occurred_at=activity.occurred_at, user_id=activity.user_id, lead_id=activity.lead_id,
                        account_id=activity.account_id, contact_id=activity.contact_id,
                        opportunity_id=activity.opportunity_id, message=message)
