"""The generic approval engine's model: requests with ordered steps and recorded decisions."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.errors import InvalidTransition
from domain.model.vocab import ApprovalStatus as A
from domain.model.vocab import Outcome, StepStatus

TRANSITIONS: dict[A, frozenset[A]] = {
    A.PENDING: frozenset({A.APPROVED, A.REJECTED, A.CANCELLED, A.EXPIRED}),
    A.APPROVED: frozenset(),
    A.REJECTED: frozenset(),
    A.CANCELLED: frozenset(),
    A.EXPIRED: frozenset(),
}


@dataclass(eq=False)
class ApprovalStep:
    seq: int
    role: str
    scope: str
    status: str = StepStatus.WAITING.value
    request_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class ApprovalDecision:
    step_seq: int
    decider_id: int
    outcome: str
    decided_at: datetime
    channel: str
    via_agent: bool = False
    comment: str | None = None
    request_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class ApprovalRequest:
    kind: str
    subject_type: str
    subject_id: int
    title: str
    requested_by: int
    created_at: datetime
    expires_at: datetime | None = None
    status: str = A.PENDING.value
    current_step: int = 1
    from_stage: str | None = None
    to_stage: str | None = None
    context: dict = field(default_factory=dict)
    closed_at: datetime | None = None
    steps: list[ApprovalStep] = field(default_factory=list)
    decisions: list[ApprovalDecision] = field(default_factory=list)
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"APR-{self.id:05d}"

    @property
    def is_pending(self) -> bool:
        return self.status == A.PENDING.value

    def step(self, seq: int) -> ApprovalStep:
        return next(s for s in self.steps if s.seq == seq)

    def pending_step(self) -> ApprovalStep | None:
        if not self.is_pending:
            return None
        return self.step(self.current_step)

    def decision_for(self, seq: int) -> ApprovalDecision | None:
        return next((d for d in self.decisions if d.step_seq == seq), None)

    def last_decision(self) -> ApprovalDecision | None:
        return max(self.decisions, key=lambda d: d.step_seq, default=None)

    def _close(self, status: A, at: datetime) -> None:
        if status not in TRANSITIONS[A(self.status)]:
            raise InvalidTransition(
                f"{self.ref} is {self.status}; it cannot become {status.value}",
                field="status",
                allowed=sorted(s.value for s in TRANSITIONS[A(self.status)]),
            )
        self.status = status.value
        self.closed_at = at

    def record(self, decision: ApprovalDecision) -> None:
        """Record one decision on the pending step and advance, approve or reject the request."""
        step = self.pending_step()
        if step is None or decision.step_seq != step.seq:
            raise InvalidTransition(f"{self.ref} has no pending step {decision.step_seq}")
        decision.request_id = self.id
        self.decisions.append(decision)
        if decision.outcome in (Outcome.REJECT.value, Outcome.REVISE.value):
            step.status = StepStatus.REJECTED.value
            for later in self.steps:
                if later.seq > step.seq:
                    later.status = StepStatus.SKIPPED.value
            self._close(A.REJECTED, decision.decided_at)
            return
        step.status = StepStatus.APPROVED.value
        following = [s for s in self.steps if s.seq > step.seq]
        if following:
            nxt = min(following, key=lambda s: s.seq)
            nxt.status = StepStatus.PENDING.value
            self.current_step = nxt.seq
        else:
            self._close(A.APPROVED, decision.decided_at)

    def cancel(self, at: datetime) -> None:
        self._close(A.CANCELLED, at)
        self._skip_open_steps()

    def expire(self, at: datetime) -> None:
        self._close(A.EXPIRED, at)
        self._skip_open_steps()

    def _skip_open_steps(self) -> None:
        for s in self.steps:
            if s.status in (StepStatus.WAITING.value, StepStatus.PENDING.value):
                s.status = StepStatus.SKIPPED.value
