"""Manage opportunities (管理机会点): deals, the iron triangle, stages and their history."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import Field

from domain.actor import Actor
from domain.errors import ApprovalRequired, NotFound, PermissionDenied, ValidationFailed
from domain.gates import gap_details, gaps_for, missing_for
from domain.model.accounts import Account
from domain.model.events import IronTriangleAssigned, OpportunityCreated, OpportunityStageChanged
from domain.model.message_keys import keyed, slug
from domain.model.opportunities import Opportunity, OpportunityMember, StageChange
from domain.model.vocab import MemberRole, Role, Stage
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, emit, parse, snapshot
from domain.services.schemas import Currency, Input, Money, Name, Text, View

OPP_FIELDS = ("name", "account_id", "owner_id", "amount", "currency", "region", "expected_close_date",
              "competitors", "next_step", "customer_need", "budget", "solution_summary", "delivery_plan",
              "deliverability_signed_by", "deliverability_signed_at", "stage", "probability", "close_reason")
SEAT_ROLES = {MemberRole.SR: Role.SOLUTION_MANAGER, MemberRole.FR: Role.FULFILLMENT_MANAGER}


class OpportunityCreate(Input):
    name: Name
    account_id: int
    amount: Money
    currency: Currency = "CNY"
    expected_close_date: date | None = None
    competitors: list[str] = Field(default_factory=list, max_length=20)
    next_step: Text | None = None
    customer_need: Text | None = None
    budget: Money | None = None
    owner_id: int | None = Field(None, description="the AR; defaults to the acting user")


class OpportunityUpdate(Input):
    name: Name | None = None
    amount: Money | None = None
    currency: Currency | None = None
    expected_close_date: date | None = None
    competitors: list[str] | None = Field(None, max_length=20)
    next_step: Text | None = None
    customer_need: Text | None = None
    budget: Money | None = None


class MemberView(View):
    user_id: int
    name: str
    role: str


class StageChangeView(View):
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    changed_by: int
    probability: int
    approval_id: int | None
    reason: str | None


class NextGateView(View):
    kind: str
    to_stage: str
    missing: list[str]
    pending_approval_id: int | None


class OpportunityView(View):
    id: int
    ref: str
    name: str
    account_id: int
    account_name: str
    owner_id: int
    owner_name: str
    amount: Decimal
    currency: str
    region: str
    expected_close_date: date | None
    competitors: list[str]
    next_step: str | None
    customer_need: str | None
    budget: Decimal | None
    solution_summary: str | None
    delivery_plan: str | None
    deliverability_signed_at: datetime | None
    stage: str
    probability: int
    close_reason: str | None
    allowed_next: list[str]
    next_gate: NextGateView | None
    members: list[MemberView]
    history: list[StageChangeView]
    message: str = ""


def gate_for(uow, opp: Opportunity, to: Stage):
    return next((g for g in uow.policies.gates() if g.from_stage == opp.stage and g.to_stage == to.value), None)


def to_view(uow, opp: Opportunity, message: str = "") -> OpportunityView:
    names = {u.id: u.display_name() for u in uow.users.all()}
    account = uow.accounts.get(opp.account_id)
    nxt, next_gate = opp.next_stage(), None
    if nxt is not None:
        gate = gate_for(uow, opp, nxt)
        if gate is not None:
            pending = uow.approvals.pending_for("opportunity", opp.id, gate.kind)
            next_gate = NextGateView(kind=gate.kind, to_stage=gate.to_stage,
                                     missing=missing_for(gate.preconditions, opp, uow),
                                     pending_approval_id=pending.id if pending else None)
    return OpportunityView(
        id=opp.id, ref=opp.ref, name=opp.name, account_id=opp.account_id,
        account_name=account.name if account else "?", owner_id=opp.owner_id,
        owner_name=names.get(opp.owner_id, "?"), amount=opp.amount, currency=opp.currency, region=opp.region,
        expected_close_date=opp.expected_close_date, competitors=list(opp.competitors), next_step=opp.next_step,
        customer_need=opp.customer_need, budget=opp.budget, solution_summary=opp.solution_summary,
        delivery_plan=opp.delivery_plan, deliverability_signed_at=opp.deliverability_signed_at,
        stage=opp.stage, probability=opp.probability, close_reason=opp.close_reason,
        allowed_next=opp.allowed_next(), next_gate=next_gate,
        members=[MemberView(user_id=opp.owner_id, name=names.get(opp.owner_id, "?"), role="AR")]
        + [MemberView(user_id=m.user_id, name=names.get(m.user_id, "?"), role=m.role) for m in opp.members],
        history=[StageChangeView(from_stage=h.from_stage, to_stage=h.to_stage, changed_at=h.changed_at,
                                 changed_by=h.changed_by, probability=h.probability, approval_id=h.approval_id,
                                 reason=h.reason) for h in opp.history],
        message=message,
    )


def visible_opportunity(uow, ctx: Ctx, opp_id: int, *, for_update: bool = False) -> Opportunity:
    ref = f"OPP-{opp_id:05d}" if isinstance(opp_id, int) else str(opp_id)
    repo_get = uow.opportunities.get_for_update if for_update else uow.opportunities.get
    opp = repo_get(opp_id) if isinstance(opp_id, int) and opp_id > 0 else None
    if opp is None:
        raise NotFound(f"Opportunity {ref} does not exist", field="opportunity_id",
                       details=keyed("opportunity.not_found", ref=ref))
    if not ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage):
        raise PermissionDenied(f"{opp.ref} is not one of your deals or your team's deals",
                               details=keyed("opportunity.not_visible", ref=opp.ref))
    return opp


def require_manager_of(ctx: Ctx, opp: Opportunity, what: str) -> None:
    """Commercial changes: the AR, their managers, sales operations or an admin."""
    roles = ctx.user.roles
    if ctx.user.id == opp.owner_id or roles & {Role.ADMIN, Role.SALES_OPS}:
        return
    if ctx.scope.is_manager and opp.owner_id in ctx.scope.subtree:
        return
    raise PermissionDenied(f"Only {opp.ref}'s AR or their managers may {what}",
                           details=keyed(f"opportunity.manager_only.{slug(what)}", ref=opp.ref))


def require_seat(ctx: Ctx, opp: Opportunity, seat: MemberRole, what: str, *, admin_ok: bool = True) -> None:
    if ctx.user.id in opp.member_ids(seat):
        return
    if admin_ok and Role.ADMIN in ctx.user.roles:
        return
    raise PermissionDenied(f"Only {opp.ref}'s {seat.value} may {what}",
                           details=keyed(f"opportunity.seat_only.{slug(what)}", ref=opp.ref, seat=seat.value))


def _check_user_role(uow, user_id: int, role: Role, field: str):
    user = uow.users.get(user_id) if isinstance(user_id, int) else None
    if user is None or not user.active:
        raise NotFound(f"User {user_id} does not exist or is inactive", field=field)
    if role not in user.roles:
        raise ValidationFailed(f"{user.display_name()} is not a {role.value}; the {field} seat needs one",
                               field=field)
    return user


def new_opportunity(uow, ctx: Ctx, *, name: str, account: Account, owner_id: int, amount: Decimal,
                    currency: str, expected_close_date: date | None = None, competitors: list[str] | None = None,
                    next_step: str | None = None, customer_need: str | None = None,
                    budget: Decimal | None = None, lead_id: int | None = None) -> Opportunity:
    owner = uow.users.get(owner_id)
    if owner is None or not owner.has_role(Role.SALES_REP, Role.SALES_MANAGER, Role.DIRECTOR):
        raise ValidationFailed(f"User {owner_id} cannot be a deal's AR (needs a sales role)", field="owner_id")
    now = uow.now()
    probabilities = uow.policies.stage_probabilities()
    opp = Opportunity(name=name, account_id=account.id, owner_id=owner_id, amount=amount, currency=currency,
                      region=account.region or owner.region, expected_close_date=expected_close_date,
                      competitors=list(competitors or []), next_step=next_step, customer_need=customer_need,
                      budget=budget, lead_id=lead_id, stage=Stage.QUALIFY.value,
                      probability=probabilities[Stage.QUALIFY.value], created_at=now, updated_at=now,
                      stage_changed_at=now)
    # History starts at creation, so time-in-stage is known for the first stage too.
    opp.history.append(StageChange(from_stage=None, to_stage=opp.stage, changed_at=now, changed_by=ctx.user.id,
                                   probability=opp.probability))
    uow.opportunities.add(opp)
    audit(uow, ctx, "opportunity", opp.id, "create", None, snapshot(opp, OPP_FIELDS))
    emit(uow, OpportunityCreated(opportunity_id=opp.id, owner_id=owner_id, amount=str(amount), currency=currency))
    return opp


def create_opportunity(data: OpportunityCreate | dict, *, actor: Actor, uow) -> OpportunityView:
    from domain.services.accounts import visible_account

    ctx = begin(uow, actor, UseCase.CREATE_OPPORTUNITY)
    cmd = parse(OpportunityCreate, data)
    account = visible_account(uow, ctx, cmd.account_id)
    opp = new_opportunity(uow, ctx, name=cmd.name, account=account, owner_id=cmd.owner_id or ctx.user.id,
                          amount=cmd.amount, currency=cmd.currency, expected_close_date=cmd.expected_close_date,
                          competitors=cmd.competitors, next_step=cmd.next_step, customer_need=cmd.customer_need,
                          budget=cmd.budget)
    return to_view(uow, opp, message=f"{opp.ref} created in stage qualify")


def update_opportunity(opp_id: int, data: OpportunityUpdate | dict, *, actor: Actor, uow) -> OpportunityView:
    ctx = begin(uow, actor, UseCase.UPDATE_OPPORTUNITY)
    cmd = parse(OpportunityUpdate, data)
    opp = visible_opportunity(uow, ctx, opp_id)
    require_manager_of(ctx, opp, "change its commercial fields")
    changes = cmd.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update: give at least one field", allowed=list(OpportunityUpdate.model_fields))
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; closed deals cannot be edited", field="stage")
    before = snapshot(opp, OPP_FIELDS)
    for k, v in changes.items():
        if v is None and k in ("name", "amount", "currency", "competitors"):
            raise ValidationFailed(f"{k} cannot be cleared", field=k)
        setattr(opp, k, v)
    opp.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "opportunity", opp.id, "update", before, snapshot(opp, OPP_FIELDS))
    return to_view(uow, opp, message=f"{opp.ref} updated")


def assign_iron_triangle(opp_id: int, *, actor: Actor, uow, ar_id: int | None = None, sr_id: int | None = None,
                         fr_id: int | None = None) -> OpportunityView:
    """Seat the AR (owner), SR and FR. The FR joins from initiation, so ATI requires all three."""
    ctx = begin(uow, actor, UseCase.ASSIGN_TRIANGLE)
    if ar_id is None and sr_id is None and fr_id is None:
        raise ValidationFailed("Name at least one of ar_id, sr_id, fr_id", allowed=["ar_id", "sr_id", "fr_id"])
    opp = visible_opportunity(uow, ctx, opp_id)
    require_manager_of(ctx, opp, "staff its iron triangle")
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; closed deals keep their team", field="stage")
    before = {**snapshot(opp, ("owner_id",)), "SR": opp.seat(MemberRole.SR), "FR": opp.seat(MemberRole.FR)}
    if ar_id is not None:
        owner = uow.users.get(ar_id) if isinstance(ar_id, int) else None
        if owner is None or not owner.active:
            raise NotFound(f"User {ar_id} does not exist or is inactive", field="ar_id")
        if not owner.has_role(Role.SALES_REP, Role.SALES_MANAGER, Role.DIRECTOR):
            raise ValidationFailed(f"{owner.display_name()} cannot be AR (needs a sales role)", field="ar_id")
        opp.owner_id = ar_id
    for seat, uid, field in ((MemberRole.SR, sr_id, "sr_id"), (MemberRole.FR, fr_id, "fr_id")):
        if uid is None:
            continue
        _check_user_role(uow, uid, SEAT_ROLES[seat], field)
        opp.members[:] = [m for m in opp.members if m.role != seat.value]
        uow.flush()  # free the seat before the new holder takes it (one SR/FR per deal)
        opp.members.append(OpportunityMember(user_id=uid, role=seat.value))
    opp.updated_at = uow.now()
    uow.flush()
    after = {**snapshot(opp, ("owner_id",)), "SR": opp.seat(MemberRole.SR), "FR": opp.seat(MemberRole.FR)}
    entry = audit(uow, ctx, "opportunity", opp.id, "assign_triangle", before, after)
    emit(uow, IronTriangleAssigned(opportunity_id=opp.id, ar_id=opp.owner_id, sr_id=after["SR"],
                                   fr_id=after["FR"], audit_id=entry.id))
    return to_view(uow, opp, message=f"{opp.ref} iron triangle: AR {after['owner_id']}, SR {after['SR']}, FR {after['FR']}")


def add_member(opp_id: int, user_id: int, role: str, *, actor: Actor, uow) -> OpportunityView:
    """Add an extra deal-team member (presales, legal, partner…). SR/FR go through assign_iron_triangle."""
    ctx = begin(uow, actor, UseCase.ASSIGN_TRIANGLE)
    extra = [r.value for r in MemberRole if r not in SEAT_ROLES]
    if role not in extra:
        raise ValidationFailed(f"Unknown member role '{role}'", field="role", allowed=extra)
    opp = visible_opportunity(uow, ctx, opp_id)
    require_manager_of(ctx, opp, "change its team")
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; closed deals keep their team", field="stage")
    user = uow.users.get(user_id) if isinstance(user_id, int) else None
    if user is None or not user.active:
        raise NotFound(f"User {user_id} does not exist or is inactive", field="user_id")
    if any(m.user_id == user_id and m.role == role for m in opp.members):
        return to_view(uow, opp, message=f"{user.display_name()} is already {role} on {opp.ref}")
    opp.members.append(OpportunityMember(user_id=user_id, role=role))
    uow.flush()
    audit(uow, ctx, "opportunity", opp.id, "add_member", None, {"user_id": user_id, "role": role})
    return to_view(uow, opp, message=f"{user.display_name()} joined {opp.ref} as {role}")


def _record_note(opp_id: int, text: str, *, actor: Actor, uow, use_case: UseCase, seat: MemberRole,
                 field: str, label: str) -> OpportunityView:
    ctx = begin(uow, actor, use_case)
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(f"The {label} cannot be empty", field=field)
    if len(text) > 8000:
        raise ValidationFailed(f"The {label} is too long (8000 characters at most)", field=field)
    opp = visible_opportunity(uow, ctx, opp_id)
    require_seat(ctx, opp, seat, f"record the {label}")
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; it is closed", field="stage",
                               details=keyed("opportunity.closed", ref=opp.ref, stage=opp.stage))
    before = snapshot(opp, OPP_FIELDS)
    setattr(opp, field, text)
    if field == "delivery_plan" and opp.deliverability_signed_at is not None:
        # A new plan voids the FR's sign-off: nothing undeliverable may reach the contract.
        opp.deliverability_signed_by = opp.deliverability_signed_at = None
    opp.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "opportunity", opp.id, f"record_{field}", before, snapshot(opp, OPP_FIELDS))
    return to_view(uow, opp, message=f"{label.capitalize()} recorded on {opp.ref}")


def record_solution(opp_id: int, summary: str, *, actor: Actor, uow) -> OpportunityView:
    """The SR's solution summary (needed for the solution review)."""
    return _record_note(opp_id, summary, actor=actor, uow=uow, use_case=UseCase.RECORD_SOLUTION,
                        seat=MemberRole.SR, field="solution_summary", label="solution summary")


def record_delivery_plan(opp_id: int, plan: str, *, actor: Actor, uow) -> OpportunityView:
    """The FR's delivery plan note (needed for the solution review)."""
    return _record_note(opp_id, plan, actor=actor, uow=uow, use_case=UseCase.RECORD_DELIVERY_PLAN,
                        seat=MemberRole.FR, field="delivery_plan", label="delivery plan")


def sign_off_deliverability(opp_id: int, *, actor: Actor, uow) -> OpportunityView:
    """The FR confirms the deal can be delivered as promised (needed for ATC). Only the deal's FR."""
    ctx = begin(uow, actor, UseCase.SIGN_OFF_DELIVERABILITY)
    opp = visible_opportunity(uow, ctx, opp_id)
    require_seat(ctx, opp, MemberRole.FR, "sign off deliverability", admin_ok=False)
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; it is closed", field="stage",
                               details=keyed("opportunity.closed", ref=opp.ref, stage=opp.stage))
    if not (opp.delivery_plan or "").strip():
        raise ValidationFailed(f"Record the delivery plan on {opp.ref} before signing off deliverability",
                               field="delivery_plan", missing=["FR's delivery plan note recorded"],
                               details=keyed("opportunity.plan_before_signoff", ref=opp.ref))
    before = snapshot(opp, OPP_FIELDS)
    opp.deliverability_signed_by, opp.deliverability_signed_at = ctx.user.id, uow.now()
    opp.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "opportunity", opp.id, "sign_off_deliverability", before, snapshot(opp, OPP_FIELDS))
    return to_view(uow, opp, message=f"Deliverability of {opp.ref} signed off")


def apply_stage(uow, ctx: Ctx, opp: Opportunity, to: Stage, *, approval_id: int | None = None,
                reason: str | None = None) -> None:
    """Move the stage (guards in the model), write history, audit and the event."""
    before = snapshot(opp, OPP_FIELDS)
    change = opp.move_to(to, probability=uow.policies.stage_probabilities()[to.value], at=uow.now(),
                         by=ctx.user.id, approval_id=approval_id, reason=reason)
    opp.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "opportunity", opp.id, f"stage:{to.value}", before, snapshot(opp, OPP_FIELDS))
    emit(uow, OpportunityStageChanged(opportunity_id=opp.id, from_stage=change.from_stage, to_stage=to.value,
                                      change_id=change.id, approval_id=approval_id))


def _parse_stage(value: str | None, opp: Opportunity) -> Stage:
    if value is None:
        nxt = opp.next_stage()
        if nxt is None:
            raise ValidationFailed(f"{opp.ref} is {opp.stage}; it has no next stage", field="stage",
                                   details=keyed("opportunity.no_next_stage", ref=opp.ref, stage=opp.stage))
        return nxt
    try:
        return Stage(value)
    except ValueError:
        raise ValidationFailed(f"Unknown stage '{value}'", field="stage",
                               allowed=[s.value for s in Stage]) from None


def advance_stage(opp_id: int, to_stage: str | None = None, *, actor: Actor, uow) -> OpportunityView:
    """Move to the next stage. A move behind a decision gate raises ApprovalRequired (request the gate)."""
    ctx = begin(uow, actor, UseCase.ADVANCE_STAGE)
    opp = visible_opportunity(uow, ctx, opp_id, for_update=True)
    require_manager_of(ctx, opp, "move its stage")
    to = _parse_stage(to_stage, opp)
    if to in (Stage.LOST, Stage.ABANDONED):
        raise ValidationFailed(f"Use close_opportunity to mark {opp.ref} {to.value} with a reason", field="stage",
                               details=keyed("opportunity.use_close", ref=opp.ref, stage=to.value))
    opp.check_transition(to)
    gate = gate_for(uow, opp, to)
    if gate is not None:
        gaps = gaps_for(gate.preconditions, opp, uow)
        missing = [g.text for g in gaps]
        pending = uow.approvals.pending_for("opportunity", opp.id, gate.kind)
        state = (f"request {pending.ref} is waiting for a decision" if pending
                 else "request the gate decision first" + (f"; missing: {', '.join(missing)}" if missing else ""))
        how = ("opportunity.gate_pending", {"apr": pending.ref}) if pending else (
            ("opportunity.gate_missing", {"missing": ", ".join(missing)}) if missing
            else ("opportunity.gate_request_first", {}))
        raise ApprovalRequired(f"Moving {opp.ref} from {opp.stage} to {to.value} needs the {gate.kind} decision: {state}",
                               field="stage", missing=missing,
                               details=keyed(how[0], {"gate": gate.kind, **gap_details(gaps)}, ref=opp.ref,
                                             from_stage=opp.stage, to_stage=to.value, gate=gate.kind, **how[1]))
    apply_stage(uow, ctx, opp, to)
    return to_view(uow, opp, message=f"{opp.ref} moved to {to.value} ({opp.probability}%)")


def close_opportunity(opp_id: int, outcome: str, reason: str, *, actor: Actor, uow) -> OpportunityView:
    """Mark a deal lost or abandoned, from any open stage, with a reason."""
    ctx = begin(uow, actor, UseCase.CLOSE_OPPORTUNITY)
    if outcome not in (Stage.LOST.value, Stage.ABANDONED.value):
        raise ValidationFailed(f"Unknown outcome '{outcome}'", field="outcome", allowed=["lost", "abandoned"])
    opp = visible_opportunity(uow, ctx, opp_id, for_update=True)
    require_manager_of(ctx, opp, "close it")
    apply_stage(uow, ctx, opp, Stage(outcome), reason=reason)
    from domain.model import quotes as q
    from domain.model.vocab import ApprovalStatus
    from domain.services.approvals import close_request  # the approval engine builds on this module

    # A closed deal has nothing left to decide or to quote (the deal is locked first, as in decide).
    requests = list(uow.approvals.for_subject("opportunity", opp.id))
    for quote in uow.quotes.for_opportunity(opp.id):
        requests += [r for r in uow.approvals.for_subject("quote", quote.id)]
    for candidate in requests:
        pending = uow.approvals.get_for_update(candidate.id)
        if pending.is_pending:
            close_request(uow, ctx, pending, ApprovalStatus.CANCELLED, f"{opp.ref} closed {outcome}")
    for quote in uow.quotes.for_opportunity(opp.id):
        if quote.status in q.OPEN:
            before = {"status": quote.status}
            quote.move_to(q.EXPIRED)
            audit(uow, ctx, "quote", quote.id, "expire", before, {"status": quote.status})
    return to_view(uow, opp, message=f"{opp.ref} marked {outcome}: {reason.strip()}")


def get_opportunity(opp_id: int, *, actor: Actor, uow) -> OpportunityView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    return to_view(uow, visible_opportunity(uow, ctx, opp_id))


def list_opportunities(*, actor: Actor, uow, stage: str | None = None, owner_id: int | None = None,
                       account_id: int | None = None, limit: int = 100) -> list[OpportunityView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    if stage is not None and stage not in {s.value for s in Stage}:
        raise ValidationFailed(f"Unknown stage '{stage}'", field="stage", allowed=[s.value for s in Stage])
    opps = uow.opportunities.list(ctx.scope, stage=stage, owner_id=owner_id, account_id=account_id,
                                  limit=max(1, min(limit, 1000)))
    return [to_view(uow, o) for o in opps]
