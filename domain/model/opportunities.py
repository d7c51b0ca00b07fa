"""Opportunities (管理机会点): stage machine, iron triangle, stage history."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from domain.errors import InvalidTransition, ValidationFailed
from domain.model.message_keys import keyed
from domain.model.vocab import MemberRole, Stage

OPEN_STAGES = (Stage.QUALIFY, Stage.INITIATED, Stage.SOLUTION, Stage.BID, Stage.NEGOTIATE)
CLOSED_STAGES = (Stage.WON, Stage.LOST, Stage.ABANDONED)
STAGE_ORDER = (*OPEN_STAGES, Stage.WON)
_NEXT = dict(zip(STAGE_ORDER, STAGE_ORDER[1:]))

# From every open stage: the next stage, or out with a reason. No skipping, no way back.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    **{s: frozenset({_NEXT[s], Stage.LOST, Stage.ABANDONED}) for s in OPEN_STAGES},
    **{s: frozenset() for s in CLOSED_STAGES},
}
NEEDS_REASON = frozenset({Stage.LOST, Stage.ABANDONED})
_MICROSECOND = timedelta(microseconds=1)


@dataclass(eq=False)
class OpportunityMember:
    user_id: int
    role: str
    opportunity_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class StageChange:
    to_stage: str
    changed_at: datetime
    changed_by: int
    from_stage: str | None = None
    probability: int = 0
    approval_id: int | None = None
    reason: str | None = None
    opportunity_id: int | None = None
    id: int | None = None
    # The spell this change ends (cycle time): microseconds in from_stage, i.e. since the deal's
    # previous history row; None on a deal's first row.
    spell_us: int | None = None
    # When the deal's history started (its first row's changed_at): days to win.
    history_started_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.history_started_at is None:  # a deal's first row starts its history
            self.history_started_at = self.changed_at


@dataclass(eq=False)
class Opportunity:
    name: str
    account_id: int
    owner_id: int  # the AR
    amount: Decimal
    currency: str
    region: str = ""
    expected_close_date: date | None = None
    competitors: list = field(default_factory=list)
    next_step: str | None = None
    customer_need: str | None = None
    budget: Decimal | None = None
    solution_summary: str | None = None
    delivery_plan: str | None = None
    deliverability_signed_by: int | None = None
    deliverability_signed_at: datetime | None = None
    stage: str = Stage.QUALIFY.value
    probability: int = 10
    close_reason: str | None = None
    lead_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    stage_changed_at: datetime | None = None
    members: list[OpportunityMember] = field(default_factory=list)
    history: list[StageChange] = field(default_factory=list)
    version: int = 1
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"OPP-{self.id:05d}"

    @property
    def is_open(self) -> bool:
        return Stage(self.stage) in OPEN_STAGES

    def member_ids(self, role: MemberRole | None = None) -> set[int]:
        return {m.user_id for m in self.members if role is None or m.role == role.value}

    def seat(self, role: MemberRole) -> int | None:
        ids = self.member_ids(role)
        return next(iter(ids)) if ids else None

    def team_ids(self) -> set[int]:
        return {self.owner_id, *self.member_ids()}

    def next_stage(self) -> Stage | None:
        return _NEXT.get(Stage(self.stage))

    def allowed_next(self) -> list[str]:
        return [s.value for s in sorted(TRANSITIONS[Stage(self.stage)], key=_stage_rank)]

    def check_transition(self, to: Stage) -> None:
        current = Stage(self.stage)
        if to not in TRANSITIONS[current]:
            allowed = self.allowed_next()
            where = "it is closed" if not allowed else f"allowed next: {', '.join(allowed)}"
            raise InvalidTransition(
                f"{self.ref} is in stage {current.value}; it cannot move to {to.value} ({where})",
                field="stage",
                allowed=allowed,
                details=keyed("opportunity.cannot_move" if allowed else "opportunity.cannot_move_closed",
                              ref=self.ref, from_stage=current.value, to_stage=to.value,
                              allowed_stages=", ".join(allowed)),
            )

    def move_to(
        self,
        to: Stage,
        *,
        probability: int,
        at: datetime,
        by: int,
        approval_id: int | None = None,
        reason: str | None = None,
    ) -> StageChange:
        """The only way the stage changes; appends history that never goes back in time."""
        self.check_transition(to)
        if to in NEEDS_REASON and not (reason and reason.strip()):
            raise ValidationFailed(f"Moving {self.ref} to {to.value} needs a reason", field="reason",
                                   details=keyed("opportunity.needs_reason", ref=self.ref, to_stage=to.value))
        # The previous row (last in changed_at, id order) is when the deal entered its stage.
        entered = max((h.changed_at for h in self.history), default=None)
        for floor in (self.stage_changed_at, entered):
            if floor and at < floor:
                at = floor  # clocks may disagree; history stays monotonic
        change = StageChange(
            from_stage=self.stage,
            to_stage=to.value,
            changed_at=at,
            changed_by=by,
            probability=probability,
            approval_id=approval_id,
            reason=reason.strip() if reason else None,
            spell_us=None if entered is None else (at - entered) // _MICROSECOND,
            history_started_at=min((h.changed_at for h in self.history), default=at),
        )
        self.history.append(change)
        self.stage = to.value
        self.probability = probability
        self.stage_changed_at = at
        if to in NEEDS_REASON:
            self.close_reason = reason.strip() if reason else None
        return change


def _stage_rank(stage: Stage) -> int:
    order = (*STAGE_ORDER, Stage.LOST, Stage.ABANDONED)
    return order.index(stage)
