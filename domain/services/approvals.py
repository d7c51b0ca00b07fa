"""The generic approval engine, and decision gates (ATI, solution review, ATB, ATC) on top of it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.actor import Actor
from domain.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.gates import Gap, gap_details, gaps_for
from domain.model.approvals import ApprovalDecision, ApprovalRequest, ApprovalStep
from domain.model.events import (
    ApprovalClosed,
    ApprovalDecided,
    ApprovalRequested,
    ApprovalStepOpened,
    GatePassed,
    GateRejected,
)
from domain.model.message_keys import keyed
from domain.model.users import User
from domain.model.vocab import GATE_KINDS, ApprovalStatus, ApproverScope, Outcome, Role, Stage, StepStatus
from domain.rbac import UseCase, management_chain
from domain.services import opportunities as opp_svc
from domain.services.base import Ctx, audit, begin, emit, get_or_404, snapshot
from domain.services.schemas import View



class StepView(View):
    seq: int
    role: str
    scope: str
    status: str


class DecisionView(View):
    step_seq: int
    decider_id: int
    decider_name: str
    outcome: str
    comment: str | None
    channel: str
    via_agent: bool
    decided_at: datetime


class ApprovalView(View):
    id: int
    ref: str
    kind: str
    subject_type: str
    subject_id: int
    subject_ref: str
    title: str
    status: str
    current_step: int
    steps: list[StepView]
    decisions: list[DecisionView]
    requested_by: int
    requested_by_name: str
    created_at: datetime
    expires_at: datetime | None
    closed_at: datetime | None
    context: dict
    eligible_approver_ids: list[int]
    message: str = ""


def _lock_opportunity(uow, subject_id: int) -> None:
    uow.opportunities.get_for_update(subject_id)


# Row locks are always taken subject first, then request, so deciding and closing never deadlock.
SUBJECT_LOCKS: dict[str, Callable] = {"opportunity": _lock_opportunity}


def lock_request(uow, approval_id: int) -> ApprovalRequest:
    subject = uow.approvals.subject_of(approval_id) if isinstance(approval_id, int) else None
    if subject is None:
        raise NotFound(f"Approval request {_ref(approval_id)} does not exist", field="id",
                       details=keyed("not_found.approval_request", ref=_ref(approval_id)))
    SUBJECT_LOCKS[subject[0]](uow, subject[1])
    return uow.approvals.get_for_update(approval_id)


@dataclass(frozen=True)
class Subject:
    """What an approval is about, reduced to what the engine needs to route and guard it."""

    ref: str
    owner_id: int
    region: str
    visible: Callable[[Ctx], bool]


def _opportunity_subject(uow, subject_id: int) -> Subject:
    opp = uow.opportunities.get(subject_id)
    if opp is None:
        raise NotFound(f"Opportunity {subject_id} does not exist")
    return Subject(ref=opp.ref, owner_id=opp.owner_id, region=opp.region,
                   visible=lambda ctx: ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage))


# Subject kinds and what happens when a request of a kind closes. Later features register here.
SUBJECTS: dict[str, Callable] = {"opportunity": _opportunity_subject}
ON_APPROVING: dict[str, Callable] = {}  # (uow, request) -> what is missing (texts or Gaps) before approving
ON_APPROVED: dict[str, Callable] = {}
ON_REJECTED: dict[str, Callable] = {}
ON_CLOSED: dict[str, Callable] = {}  # cancelled or expired


def _eligible(uow, request: ApprovalRequest, step: ApprovalStep, user: User, subject: Subject,
              managers: dict[int, int | None]) -> str | None:
    """None when `user` may decide `step`; otherwise the reason they may not."""
    why = _why_not(request, step, user, subject, managers)
    return why[0] if why else None


def _why_not(request: ApprovalRequest, step: ApprovalStep, user: User, subject: Subject,
             managers: dict[int, int | None]) -> tuple[str, str, dict[str, object]] | None:
    """None when `user` may decide `step`; otherwise the reason, its message key and the values in it."""
    seat = {"seq": step.seq, "role": step.role}
    if not user.active:
        return "deactivated users cannot decide", "deactivated", {}
    if user.id == request.requested_by:
        return "you requested this decision and cannot decide it yourself", "own_request", {}
    if user.id == subject.owner_id:
        return f"you own {subject.ref} and cannot decide on your own deal", "own_deal", {"deal": subject.ref}
    if Role(step.role) not in user.roles:
        return f"step {step.seq} needs a {step.role}", "wrong_role", seat
    if any(d.decider_id == user.id for d in request.decisions):
        return "you already decided an earlier step of this request (four eyes per step)", "decided_earlier", {}
    scope = ApproverScope(step.scope)
    if scope is ApproverScope.ANY:
        return None
    if scope is ApproverScope.CHAIN and user.id not in management_chain(subject.owner_id, managers):
        return f"step {step.seq} needs a {step.role} in the deal owner's management chain", "not_in_chain", seat
    if scope is ApproverScope.REGION and user.region != subject.region:
        return (f"step {step.seq} needs a {step.role} in region {subject.region}", "other_region",
                {**seat, "region": subject.region})
    return None


def eligible_approvers(uow, request: ApprovalRequest) -> list[int]:
    step = request.pending_step()
    if step is None:
        return []
    subject = SUBJECTS[request.subject_type](uow, request.subject_id)
    managers = uow.users.managers()
    return sorted(u.id for u in uow.users.all()
                  if _eligible(uow, request, step, u, subject, managers) is None)


def to_view(uow, request: ApprovalRequest, message: str = "") -> ApprovalView:
    names = {u.id: u.display_name() for u in uow.users.all()}
    subject = SUBJECTS[request.subject_type](uow, request.subject_id)
    return ApprovalView(
        id=request.id, ref=request.ref, kind=request.kind, subject_type=request.subject_type,
        subject_id=request.subject_id, subject_ref=subject.ref, title=request.title, status=request.status,
        current_step=request.current_step,
        steps=[StepView(seq=s.seq, role=s.role, scope=s.scope, status=s.status) for s in request.steps],
        decisions=[DecisionView(step_seq=d.step_seq, decider_id=d.decider_id, decider_name=names.get(d.decider_id, "?"),
                                outcome=d.outcome, comment=d.comment, channel=d.channel, via_agent=d.via_agent,
                                decided_at=d.decided_at) for d in request.decisions],
        requested_by=request.requested_by, requested_by_name=names.get(request.requested_by, "?"),
        created_at=request.created_at, expires_at=request.expires_at, closed_at=request.closed_at,
        context=dict(request.context), eligible_approver_ids=eligible_approvers(uow, request), message=message,
    )


def default_ttl_hours() -> int:
    """How long a request waits before it expires: LTC_APPROVAL_TTL_HOURS (72 h unless configured)."""
    from domain.settings import get_settings

    return get_settings().approval_ttl_hours


def open_request(uow, ctx: Ctx, *, kind: str, subject_type: str, subject_id: int, title: str,
                 steps: list[dict], context: dict, from_stage: str | None = None, to_stage: str | None = None,
                 ttl_hours: int | None = None) -> ApprovalRequest:
    """Create a request with ordered steps; refuses when a step would have nobody to decide it."""
    now = uow.now()
    request = ApprovalRequest(
        kind=kind, subject_type=subject_type, subject_id=subject_id, title=title, requested_by=ctx.user.id,
        created_at=now, expires_at=now + timedelta(hours=ttl_hours or default_ttl_hours()), from_stage=from_stage, to_stage=to_stage,
        context=context,
        steps=[ApprovalStep(seq=i, role=s["role"], scope=s["scope"],
                            status=(StepStatus.PENDING if i == 1 else StepStatus.WAITING).value)
               for i, s in enumerate(steps, start=1)],
    )
    subject = SUBJECTS[subject_type](uow, subject_id)
    managers, users = uow.users.managers(), uow.users.all()
    candidates = [{u.id for u in users if _eligible(uow, request, step, u, subject, managers) is None}
                  for step in request.steps]
    for step, who in zip(request.steps, candidates):
        if not who:
            raise ValidationFailed(
                f"Nobody can decide step {step.seq} of {kind} for {subject.ref}: it needs a {step.role} "
                f"({step.scope}) other than the requester and the deal owner", field="approvers")
    if not _distinct_deciders(candidates):
        raise ValidationFailed(
            f"{kind} for {subject.ref} needs a different person at each of its {len(candidates)} steps, "
            f"and the eligible approvers cannot cover them all", field="approvers")
    uow.approvals.add(request)
    uow.flush()
    audit(uow, ctx, "approval", request.id, "request", None,
          snapshot(request, ("kind", "subject_type", "subject_id", "status", "current_step")))
    emit(uow, ApprovalRequested(approval_id=request.id, kind=kind, subject_type=subject_type,
                                subject_id=subject_id, requested_by=ctx.user.id))
    return request


def _distinct_deciders(candidates: list[set[int]]) -> bool:
    """True when each step can get its own decider (four eyes per step). Steps are few."""
    def assign(i: int, used: frozenset[int]) -> bool:
        return i == len(candidates) or any(assign(i + 1, used | {u}) for u in candidates[i] - used)
    return assign(0, frozenset())


def request_gate(opp_id: int, kind: str, *, actor: Actor, uow, note: str | None = None,
                 ttl_hours: int | None = None) -> ApprovalView:
    """Ask for a decision point (ATI, solution_review, ATB, ATC) on a deal; checks its preconditions."""
    ctx = begin(uow, actor, UseCase.REQUEST_GATE)
    kinds = [k.value for k in GATE_KINDS]
    if kind not in kinds:
        raise ValidationFailed(f"Unknown decision gate '{kind}'", field="kind", allowed=kinds,
                               details=keyed("approval.unknown_gate", gate=kind, gates=", ".join(kinds)))
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "request its decision gates")
    gate = next((g for g in uow.policies.gates() if g.kind == kind), None)
    if gate is None:
        raise ValidationFailed(f"The {kind} gate is switched off in the gate policy", field="kind")
    if opp.stage != gate.from_stage:
        raise InvalidTransition(
            f"{kind} moves a deal from {gate.from_stage} to {gate.to_stage}; {opp.ref} is in {opp.stage}",
            field="stage", allowed=[g.kind for g in uow.policies.gates() if g.from_stage == opp.stage],
            details=keyed("approval.gate_wrong_stage", gate=kind, from_stage=gate.from_stage,
                          to_stage=gate.to_stage, ref=opp.ref, stage=opp.stage))
    pending = uow.approvals.pending_for("opportunity", opp.id, kind)
    if pending is not None:
        return to_view(uow, pending, message=f"{pending.ref} ({kind}) is already waiting for a decision")
    gaps = gaps_for(gate.preconditions, opp, uow)
    if gaps:
        missing = [g.text for g in gaps]
        raise ValidationFailed(f"{kind} for {opp.ref} cannot be requested yet; missing: {', '.join(missing)}",
                               field="preconditions", missing=missing,
                               details=keyed("approval.gate_missing", gap_details(gaps), gate=kind, ref=opp.ref,
                                             missing=", ".join(missing)))
    context = {"opportunity_ref": opp.ref, "opportunity_name": opp.name, "amount": str(opp.amount),
               "currency": opp.currency, "stage": opp.stage, "note": (note or "").strip() or None}
    request = open_request(uow, ctx, kind=kind, subject_type="opportunity", subject_id=opp.id,
                           title=f"{kind}: {opp.ref} {opp.name}", steps=list(gate.steps), context=context,
                           from_stage=gate.from_stage, to_stage=gate.to_stage, ttl_hours=ttl_hours)
    return to_view(uow, request, message=f"{request.ref} ({kind}) requested for {opp.ref}")


def decide_approval(approval_id: int, outcome: str, *, actor: Actor, uow,
                    comment: str | None = None) -> ApprovalView:
    """Approve or reject the pending step. Deciding again returns the recorded outcome."""
    ctx = begin(uow, actor, UseCase.DECIDE_APPROVAL)
    if outcome not in [o.value for o in Outcome]:
        raise ValidationFailed(f"Unknown outcome '{outcome}'", field="outcome", allowed=[o.value for o in Outcome])
    comment = (comment or "").strip() or None
    if outcome in (Outcome.REJECT.value, Outcome.REVISE.value) and not comment:
        raise ValidationFailed("A rejection or a request for changes needs a comment saying why", field="comment",
                               details=keyed("approval.reject_needs_comment"))
    request = lock_request(uow, approval_id)  # serialise racing decisions on PostgreSQL
    subject = SUBJECTS[request.subject_type](uow, request.subject_id)
    if not _may_view(uow, ctx, request, subject):
        raise PermissionDenied(f"{request.ref} is about a deal you cannot see",
                               details=keyed("approval.not_visible", ref=request.ref))
    recorded = _recorded_for(request, ctx.user.id)
    if recorded is not None:
        return to_view(uow, request, message=recorded)
    if request.expires_at is not None and uow.now() > request.expires_at:
        close_request(uow, ctx, request, ApprovalStatus.EXPIRED)
        return to_view(uow, request, message=f"{request.ref} expired on {request.expires_at:%Y-%m-%d %H:%M} UTC "
                                             "before it was decided; request it again")
    step = request.pending_step()
    why_not = _why_not(request, step, ctx.user, subject, uow.users.managers())
    if why_not:
        text, reason, values = why_not
        raise PermissionDenied(f"You cannot decide {request.ref}: {text}",
                               details=keyed(f"approval.cannot_decide.{reason}", ref=request.ref, **values))
    if outcome == Outcome.APPROVE.value:
        found = ON_APPROVING.get(request.kind, _nothing_missing)(uow, request)
        if found:  # the facts changed since the request: approving now would pass an unmet gate
            gaps = [g if isinstance(g, Gap) else Gap("", g) for g in found]
            missing = [g.text for g in gaps]
            named = gap_details(gaps) if all(g.name for g in gaps) else {}
            raise ValidationFailed(f"{request.ref} cannot be approved now; missing: {', '.join(missing)}. "
                                   "Reject it with a comment, or wait until it is fixed", missing=missing,
                                   details=keyed("approval.cannot_approve_now", named, ref=request.ref,
                                                 missing=", ".join(missing)))
    decision = ApprovalDecision(step_seq=step.seq, decider_id=ctx.user.id, outcome=outcome,
                                decided_at=uow.now(), channel=ctx.actor.channel.value,
                                via_agent=ctx.actor.via_agent, comment=comment)
    before = snapshot(request, ("status", "current_step"))
    request.record(decision)
    try:
        uow.flush()
    except Conflict:
        # Another decision for this step won the race (the UNIQUE constraint); report it.
        request = uow.approvals.get(approval_id)
        return to_view(uow, request, message=_recorded_for(request, ctx.user.id) or "decided by someone else")
    audit(uow, ctx, "approval", request.id, f"decide:{outcome}", before,
          {**snapshot(request, ("status", "current_step")), "step": step.seq, "outcome": outcome, "comment": comment})
    emit(uow, ApprovalDecided(approval_id=request.id, step_seq=step.seq, decider_id=ctx.user.id,
                              outcome=outcome, status=request.status))
    if request.status == ApprovalStatus.APPROVED.value:
        ON_APPROVED.get(request.kind, _noop)(uow, ctx, request)
    elif request.status == ApprovalStatus.REJECTED.value:
        ON_REJECTED.get(request.kind, _noop)(uow, ctx, request)
    else:
        emit(uow, ApprovalStepOpened(approval_id=request.id, step_seq=request.current_step,
                                     role=request.pending_step().role))
    verb = {"approve": "approved", "reject": "rejected", "revise": "asked for changes on"}[outcome]
    tail = {"approved": "; the request is approved", "rejected": "; the request is rejected"}.get(
        request.status, f"; step {request.current_step} is next")
    return to_view(uow, request, message=f"You {verb} step {step.seq} of {request.ref}{tail}")


def _recorded_for(request: ApprovalRequest, user_id: int) -> str | None:
    """The answer to a repeated or late click: what was decided, by whom."""
    mine = next((d for d in request.decisions if d.decider_id == user_id), None)
    if mine is not None and (not request.is_pending or mine.step_seq < request.current_step):
        return (f"Already recorded: you decided '{mine.outcome}' on step {mine.step_seq} of {request.ref}; "
                f"the request is {request.status}")
    if not request.is_pending:
        last = request.last_decision()
        who = f" (last decision: {last.outcome} on step {last.step_seq})" if last else ""
        return f"{request.ref} is already {request.status}{who}; nothing to decide"
    return None


def _ref(approval_id: object) -> str:
    return f"APR-{approval_id:05d}" if isinstance(approval_id, int) else str(approval_id)


def _noop(*_args) -> None:
    return None


def _nothing_missing(*_args) -> list[str]:
    return []


def _may_view(uow, ctx: Ctx, request: ApprovalRequest, subject: Subject) -> bool:
    return (subject.visible(ctx) or ctx.user.id == request.requested_by
            or any(d.decider_id == ctx.user.id for d in request.decisions)
            or ctx.user.id in eligible_approvers(uow, request))


def close_request(uow, ctx: Ctx, request: ApprovalRequest, status: ApprovalStatus, reason: str | None = None) -> None:
    """Cancel or expire a pending request, and let its subject react (a quote goes back to draft)."""
    if status is ApprovalStatus.EXPIRED:
        request.expire(uow.now())
    else:
        request.cancel(uow.now())
    audit(uow, ctx, "approval", request.id, "expire" if status is ApprovalStatus.EXPIRED else "cancel",
          {"status": "pending"}, {"status": request.status, "reason": (reason or "").strip() or None})
    emit(uow, ApprovalClosed(approval_id=request.id, status=request.status))
    ON_CLOSED.get(request.kind, _noop)(uow, ctx, request)


def _gate_missing(uow, request: ApprovalRequest) -> list[Gap]:
    gate = next((g for g in uow.policies.gates() if g.kind == request.kind), None)
    opp = uow.opportunities.get(request.subject_id)
    return gaps_for(gate.preconditions, opp, uow) if gate is not None else []


def _pass_gate(uow, ctx: Ctx, request: ApprovalRequest) -> None:
    opp = uow.opportunities.get(request.subject_id)
    if opp.stage != request.from_stage:
        raise InvalidTransition(f"{opp.ref} left stage {request.from_stage} while {request.ref} was pending")
    opp_svc.apply_stage(uow, ctx, opp, Stage(request.to_stage), approval_id=request.id)
    emit(uow, GatePassed(opportunity_id=opp.id, approval_id=request.id, kind=request.kind))


def _reject_gate(uow, ctx: Ctx, request: ApprovalRequest) -> None:
    reason = request.last_decision().comment or ""
    emit(uow, GateRejected(opportunity_id=request.subject_id, approval_id=request.id, kind=request.kind,
                           reason=reason))


for _kind in GATE_KINDS:
    ON_APPROVING[_kind.value] = _gate_missing
    ON_APPROVED[_kind.value] = _pass_gate
    ON_REJECTED[_kind.value] = _reject_gate


def cancel_approval(approval_id: int, *, actor: Actor, uow, reason: str | None = None) -> ApprovalView:
    ctx = begin(uow, actor, UseCase.CANCEL_APPROVAL)
    request = lock_request(uow, approval_id)
    subject = SUBJECTS[request.subject_type](uow, request.subject_id)
    if ctx.user.id != request.requested_by and not (
        ctx.user.roles & {Role.ADMIN, Role.SALES_OPS} or (ctx.scope.is_manager and subject.owner_id in ctx.scope.subtree)
    ):
        raise PermissionDenied(f"Only the requester or their managers may cancel {request.ref}",
                               details=keyed("approval.cancel_not_allowed", ref=request.ref))
    if not request.is_pending:
        return to_view(uow, request, message=f"{request.ref} is already {request.status}")
    close_request(uow, ctx, request, ApprovalStatus.CANCELLED, reason)
    return to_view(uow, request, message=f"{request.ref} cancelled")


def expire_approvals(*, actor: Actor, uow) -> int:
    """Close requests that waited past their expiry (run by the scheduler as the system user)."""
    ctx = begin(uow, actor, UseCase.MANAGE_USERS)
    expired = []
    for candidate in uow.approvals.expired(uow.now()):
        request = lock_request(uow, candidate.id)
        if not request.is_pending:
            continue  # decided or cancelled while we were looking
        expired.append(request)
        close_request(uow, ctx, request, ApprovalStatus.EXPIRED)
    return len(expired)


def get_approval(approval_id: int, *, actor: Actor, uow) -> ApprovalView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    request = get_or_404(uow.approvals, approval_id, "Approval request", _ref(approval_id))
    subject = SUBJECTS[request.subject_type](uow, request.subject_id)
    if not _may_view(uow, ctx, request, subject):
        raise PermissionDenied(f"{request.ref} is about a deal you cannot see",
                               details=keyed("approval.not_visible", ref=request.ref))
    return to_view(uow, request)


def list_my_approvals(*, actor: Actor, uow) -> list[ApprovalView]:
    """Pending requests whose current step the acting user may decide."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    managers = uow.users.managers()
    mine = []
    for request in uow.approvals.pending():
        subject = SUBJECTS[request.subject_type](uow, request.subject_id)
        if _eligible(uow, request, request.pending_step(), ctx.user, subject, managers) is None:
            mine.append(to_view(uow, request))
    return mine


def approvals_for(opp_id: int, *, actor: Actor, uow) -> list[ApprovalView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id)
    requests = list(uow.approvals.for_subject("opportunity", opp.id))
    for quote in uow.quotes.for_opportunity(opp.id):  # discount approvals belong to the deal's story
        requests += uow.approvals.for_subject("quote", quote.id)
    return [to_view(uow, r) for r in sorted(requests, key=lambda r: r.id)]
