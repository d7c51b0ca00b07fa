"""Manage leads (管理线索): capture, de-duplicate, score, assign, qualify, convert."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.assignment import pick_owner
from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.model.events import LeadAssigned, LeadConverted, LeadCreated, LeadStatusChanged
from domain.model.leads import Lead
from domain.model.message_keys import keyed
from domain.model.vocab import Authority, LeadSource, LeadStatus, Role, Timeline
from domain.normalize import email_norm, identity_norm, phone_norm
from domain.rbac import UseCase
from domain.scoring import score_lead
from domain.services import accounts as account_svc
from domain.services import opportunities as opp_svc
from domain.services.base import Ctx, audit, begin, emit, get_or_404, parse, snapshot
from domain.services.schemas import Currency, Email, Input, Money, Name, Phone, Text, View

LEAD_FIELDS = ("source", "company", "contact_name", "title", "email", "phone", "region", "need",
               "budget", "currency", "timeline", "authority", "notes", "status", "disqualify_reason",
               "owner_id", "score", "account_id", "contact_id", "opportunity_id")


class LeadCreate(Input):
    source: LeadSource = Field(description="where the lead came from")
    company: Name
    contact_name: str = Field(min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    email: Email = None
    phone: Phone = None
    region: str = Field("", max_length=50)
    need: Text | None = None
    budget: Money | None = None
    currency: Currency = "CNY"
    timeline: Timeline = Timeline.UNKNOWN
    authority: Authority = Authority.UNKNOWN
    notes: Text | None = None
    owner_id: int | None = Field(None, description="owner; omitted = the acting rep, else assignment rules")


class LeadUpdate(Input):
    company: Name | None = None
    contact_name: str | None = Field(None, min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    email: Email = None
    phone: Phone = None
    region: str | None = Field(None, max_length=50)
    need: Text | None = None
    budget: Money | None = None
    currency: Currency | None = None
    timeline: Timeline | None = None
    authority: Authority | None = None
    notes: Text | None = None


class LeadConvert(Input):
    opportunity_name: Name | None = None
    amount: Money | None = Field(None, description="deal amount; defaults to the lead's budget")
    currency: Currency | None = None
    expected_close_date: date | None = None
    account_id: int | None = Field(None, description="link an existing account instead of creating one")
    industry: str | None = Field(None, max_length=100)


class ScoreReasonView(View):
    factor: str
    points: int
    why: str


class LeadView(View):
    id: int
    ref: str
    status: str
    source: str
    company: str
    contact_name: str
    title: str | None
    email: str | None
    phone: str | None
    region: str
    need: str | None
    budget: Decimal | None
    currency: str
    timeline: str
    authority: str
    notes: str | None
    owner_id: int | None
    owner_name: str | None
    score: int
    score_reasons: list[ScoreReasonView]
    disqualify_reason: str | None
    allowed_next: list[str]
    account_id: int | None
    opportunity_id: int | None
    created_at: datetime
    created: bool = True
    message: str = ""


class ConversionView(View):
    lead: LeadView
    account_id: int
    account_created: bool
    contact_id: int
    opportunity_id: int
    opportunity_ref: str
    message: str


def to_view(uow, lead: Lead, *, created: bool = True, message: str = "") -> LeadView:
    owner = uow.users.get(lead.owner_id) if lead.owner_id else None
    return LeadView(
        id=lead.id, ref=lead.ref, status=lead.status, source=lead.source, company=lead.company,
        contact_name=lead.contact_name, title=lead.title, email=lead.email, phone=lead.phone,
        region=lead.region, need=lead.need, budget=lead.budget, currency=lead.currency,
        timeline=lead.timeline, authority=lead.authority, notes=lead.notes, owner_id=lead.owner_id,
        owner_name=owner.display_name() if owner else None, score=lead.score,
        score_reasons=[ScoreReasonView(**r) for r in lead.score_reasons],
        disqualify_reason=lead.disqualify_reason, allowed_next=lead.allowed_next(),
        account_id=lead.account_id, opportunity_id=lead.opportunity_id, created_at=lead.created_at,
        created=created, message=message,
    )


def rescore(uow, lead: Lead) -> None:
    activity_count = uow.activities.count_for_lead(lead.id) if lead.id else 0
    total, reasons = score_lead(budget=lead.budget, authority=lead.authority, need=lead.need,
                                timeline=lead.timeline, source=lead.source, activity_count=activity_count)
    lead.score = total
    lead.score_reasons = [{"factor": r.factor, "points": r.points, "why": r.why} for r in reasons]


def _renormalise(lead: Lead) -> None:
    lead.email_norm = email_norm(lead.email)
    lead.phone_norm = phone_norm(lead.phone)
    lead.identity_norm = identity_norm(lead.company, lead.contact_name)


def _assign_by_rules(uow, lead: Lead) -> str:
    reps: dict[int, list[int]] = {}
    for u in sorted(uow.users.all(), key=lambda u: u.id):
        if u.active and u.team_id is not None and Role.SALES_REP in u.roles:
            reps.setdefault(u.team_id, []).append(u.id)
    all_reps = [uid for ids in reps.values() for uid in ids]
    rules = uow.policies.assignment_rules()
    choice = pick_owner(rules, lead.region, reps, uow.leads.open_counts(all_reps))
    lead.owner_id = choice.owner_id
    if choice.rule_id is not None:
        rule = next(r for r in rules if r.id == choice.rule_id)
        rule.last_assigned_user_id = choice.owner_id
    return choice.reason


def _check_owner(uow, owner_id: int) -> None:
    owner = uow.users.get(owner_id)
    if owner is None or not owner.active:
        raise NotFound(f"User {owner_id} does not exist or is inactive", field="owner_id")
    if not owner.has_role(Role.SALES_REP, Role.SALES_MANAGER, Role.DIRECTOR):
        raise ValidationFailed(f"{owner.display_name()} cannot own leads (needs a sales role)", field="owner_id")


def _visible_lead(uow, ctx: Ctx, lead_id: int, *, for_update: bool = False) -> Lead:
    lead = get_or_404(uow.leads, lead_id, "Lead", f"LEAD-{lead_id:05d}" if isinstance(lead_id, int) else lead_id)
    if for_update:
        lead = uow.leads.get_for_update(lead.id)
    if not ctx.scope.sees_lead(lead.owner_id):
        raise PermissionDenied(f"{lead.ref} belongs to someone outside your team; you cannot see or change it",
                               details=keyed("lead.not_visible", ref=lead.ref))
    return lead


def create_lead(data: LeadCreate | dict, *, actor: Actor, uow) -> LeadView:
    ctx = begin(uow, actor, UseCase.CREATE_LEAD)
    cmd = parse(LeadCreate, data)
    found = uow.leads.find_duplicate(email_norm(cmd.email), phone_norm(cmd.phone),
                                     identity_norm(cmd.company, cmd.contact_name))
    if found:
        existing, why = found
        if not ctx.scope.sees_lead(existing.owner_id):
            owner = uow.users.get(existing.owner_id) if existing.owner_id else None
            raise Conflict(f"{existing.ref} already exists ({why}), owned by "
                           f"{owner.display_name() if owner else 'nobody yet'}; ask them or your manager to share it",
                           details={"lead_id": existing.id})
        return to_view(uow, existing, created=False,
                       message=f"{existing.ref} already exists ({why}); returned it instead of creating a duplicate")
    now = uow.now()
    fields = cmd.model_dump(exclude={"owner_id"})
    lead = Lead(**{k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()},
                created_at=now, updated_at=now)
    _renormalise(lead)
    rescore(uow, lead)
    if cmd.owner_id is not None:
        _check_owner(uow, cmd.owner_id)
        lead.owner_id, how = cmd.owner_id, "owner given"
    elif Role.SALES_REP in ctx.user.roles:
        lead.owner_id, how = ctx.user.id, "created by its owner"
    else:
        how = _assign_by_rules(uow, lead)
    uow.leads.add(lead)
    uow.flush()
    audit(uow, ctx, "lead", lead.id, "create", None, snapshot(lead, LEAD_FIELDS))
    emit(uow, LeadCreated(lead_id=lead.id, source=lead.source, owner_id=lead.owner_id))
    emit(uow, LeadAssigned(lead_id=lead.id, owner_id=lead.owner_id, seq=1))
    owner = uow.users.get(lead.owner_id) if lead.owner_id else None
    owner_msg = f"assigned to {owner.display_name()}" if owner else "left unassigned"
    return to_view(uow, lead, message=f"{lead.ref} created, score {lead.score}, {owner_msg} ({how})")


def update_lead(lead_id: int, data: LeadUpdate | dict, *, actor: Actor, uow) -> LeadView:
    ctx = begin(uow, actor, UseCase.UPDATE_LEAD)
    cmd = parse(LeadUpdate, data)
    lead = _visible_lead(uow, ctx, lead_id, for_update=True)
    if not lead.is_open:
        raise ValidationFailed(f"{lead.ref} is {lead.status}; only open leads can be edited", field="status")
    changes = cmd.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update: give at least one field",
                               allowed=list(LeadUpdate.model_fields))
    for k, v in changes.items():
        if v is None and k in ("company", "contact_name", "region", "currency", "timeline", "authority"):
            raise ValidationFailed(f"{k} cannot be cleared", field=k)
    merged = {f: changes.get(f, getattr(lead, f)) for f in ("email", "phone", "company", "contact_name")}
    clash = uow.leads.find_duplicate(email_norm(merged["email"]), phone_norm(merged["phone"]),
                                     identity_norm(merged["company"], merged["contact_name"]), exclude_id=lead.id)
    if clash:
        other, why = clash
        raise Conflict(f"{other.ref} already has these details ({why}); update that lead instead",
                       field="email" if why == "same email" else None, details={"lead_id": other.id})
    before = snapshot(lead, LEAD_FIELDS)
    for k, v in changes.items():
        setattr(lead, k, v.value if hasattr(v, "value") else v)
    lead.updated_at = uow.now()
    _renormalise(lead)
    rescore(uow, lead)
    uow.flush()
    audit(uow, ctx, "lead", lead.id, "update", before, snapshot(lead, LEAD_FIELDS))
    return to_view(uow, lead, message=f"{lead.ref} updated, score {lead.score}")


def assign_lead(lead_id: int, owner_id: int | None = None, *, actor: Actor, uow) -> LeadView:
    """Reassign to a named owner, or (owner_id None) re-run the assignment rules."""
    ctx = begin(uow, actor, UseCase.ASSIGN_LEAD)
    lead = _visible_lead(uow, ctx, lead_id, for_update=True)
    if not lead.is_open:
        raise ValidationFailed(f"{lead.ref} is {lead.status}; only open leads can be reassigned", field="status")
    before = snapshot(lead, LEAD_FIELDS)
    if owner_id is not None:
        _check_owner(uow, owner_id)
        lead.owner_id, how = owner_id, "assigned by hand"
    else:
        lead.owner_id = None
        how = _assign_by_rules(uow, lead)
    lead.updated_at = uow.now()
    entry = audit(uow, ctx, "lead", lead.id, "assign", before, snapshot(lead, LEAD_FIELDS))
    emit(uow, LeadAssigned(lead_id=lead.id, owner_id=lead.owner_id, seq=entry.id))
    return to_view(uow, lead, message=f"{lead.ref} owner is now {lead.owner_id or 'nobody'} ({how})")


def change_lead_status(lead_id: int, status: str, *, reason: str | None = None,
                       actor: Actor, uow) -> LeadView:
    """Move a lead along new → contacted → nurturing → qualified, or disqualify it with a reason."""
    ctx = begin(uow, actor, UseCase.CHANGE_LEAD_STATUS)
    try:
        target = LeadStatus(status)
    except ValueError:
        raise ValidationFailed(f"Unknown lead status '{status}'", field="status",
                               allowed=[s.value for s in LeadStatus if s is not LeadStatus.CONVERTED]) from None
    if target is LeadStatus.CONVERTED:
        raise ValidationFailed("Use convert_lead to convert a lead: it creates the account and opportunity",
                               field="status")
    lead = _visible_lead(uow, ctx, lead_id, for_update=True)
    before = snapshot(lead, LEAD_FIELDS)
    lead.move_to(target, reason=reason)
    lead.updated_at = uow.now()
    entry = audit(uow, ctx, "lead", lead.id, f"status:{target.value}", before, snapshot(lead, LEAD_FIELDS))
    emit(uow, LeadStatusChanged(lead_id=lead.id, from_status=before["status"], to_status=lead.status,
                                audit_id=entry.id))
    return to_view(uow, lead, message=f"{lead.ref} is now {lead.status}")


def qualify_lead(lead_id: int, *, actor: Actor, uow) -> LeadView:
    return change_lead_status(lead_id, LeadStatus.QUALIFIED.value, actor=actor, uow=uow)


def disqualify_lead(lead_id: int, reason: str, *, actor: Actor, uow) -> LeadView:
    return change_lead_status(lead_id, LeadStatus.DISQUALIFIED.value, reason=reason, actor=actor, uow=uow)


def convert_lead(lead_id: int, data: LeadConvert | dict | None = None, *, actor: Actor, uow) -> ConversionView:
    """Qualified lead → account (created or linked) + contact + opportunity, all or nothing."""
    ctx = begin(uow, actor, UseCase.CONVERT_LEAD)
    cmd = parse(LeadConvert, data or {})
    lead = _visible_lead(uow, ctx, lead_id, for_update=True)
    if lead.status != LeadStatus.QUALIFIED.value:
        lead.move_to(LeadStatus.CONVERTED)  # raises InvalidTransition naming the allowed next statuses
    owner_id = lead.owner_id or ctx.user.id
    account, account_created = account_svc.find_or_create_account(
        uow, ctx, account_id=cmd.account_id, name=lead.company, owner_id=owner_id,
        region=lead.region, industry=cmd.industry)
    contact = account_svc.find_or_create_contact(
        uow, ctx, account=account, name=lead.contact_name, title=lead.title, email=lead.email,
        phone=lead.phone, authority=lead.authority)
    amount = cmd.amount if cmd.amount is not None else (lead.budget or Decimal("0"))
    opp = opp_svc.new_opportunity(
        uow, ctx, name=cmd.opportunity_name or f"{lead.company} – {(lead.need or 'new deal')[:60]}",
        account=account, owner_id=owner_id, amount=amount, currency=cmd.currency or lead.currency,
        expected_close_date=cmd.expected_close_date, customer_need=lead.need, budget=lead.budget,
        lead_id=lead.id)
    before = snapshot(lead, LEAD_FIELDS)
    lead.account_id, lead.contact_id, lead.opportunity_id = account.id, contact.id, opp.id
    # The calls and visits before conversion belong to the customer's history (account 360).
    for activity in uow.activities.for_subject(lead_id=lead.id, limit=10_000):
        activity.account_id, activity.contact_id = account.id, contact.id
    lead.move_to(LeadStatus.CONVERTED)
    lead.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "lead", lead.id, "convert", before, snapshot(lead, LEAD_FIELDS))
    emit(uow, LeadConverted(lead_id=lead.id, account_id=account.id, contact_id=contact.id, opportunity_id=opp.id))
    return ConversionView(
        lead=to_view(uow, lead), account_id=account.id, account_created=account_created,
        contact_id=contact.id, opportunity_id=opp.id, opportunity_ref=opp.ref,
        message=(f"{lead.ref} converted: {'new' if account_created else 'existing'} account {account.ref}, "
                 f"contact {contact.ref}, opportunity {opp.ref}"),
    )


def get_lead(lead_id: int, *, actor: Actor, uow) -> LeadView:
    ctx = begin(uow, actor, UseCase.VIEW_LEAD)
    return to_view(uow, _visible_lead(uow, ctx, lead_id))


def list_leads(*, actor: Actor, uow, status: str | None = None, owner_id: int | None = None,
               limit: int = 100) -> list[LeadView]:
    ctx = begin(uow, actor, UseCase.VIEW_LEAD)
    if status is not None and status not in {s.value for s in LeadStatus}:
        raise ValidationFailed(f"Unknown lead status '{status}'", field="status",
                               allowed=[s.value for s in LeadStatus])
    return [to_view(uow, lead) for lead in uow.leads.list(ctx.scope, status=status, owner_id=owner_id,
                                                           limit=max(1, min(limit, 1000)))]
