"""Contracts (合同): value from the accepted quote, a payment plan that adds up to 100 %, change orders."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from domain.errors import ValidationFailed
from domain.model.quotes import HUNDRED, cents
from domain.model.transitions import check_move

DRAFT, UNDER_REVIEW, SIGNED, EXECUTING, COMPLETED, CLOSED = (
    "draft", "under_review", "signed", "executing", "completed", "closed")
STATUSES = (DRAFT, UNDER_REVIEW, SIGNED, EXECUTING, COMPLETED, CLOSED)

# UNDER_REVIEW → DRAFT: ATC rejected, cancelled or expired. SIGNED happens only through ATC.
TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({UNDER_REVIEW}),
    UNDER_REVIEW: frozenset({SIGNED, DRAFT}),
    SIGNED: frozenset({EXECUTING}),
    EXECUTING: frozenset({COMPLETED}),
    COMPLETED: frozenset({CLOSED}),
    CLOSED: frozenset(),
}
IN_FORCE = frozenset({SIGNED, EXECUTING, COMPLETED})  # billable, changeable by change order

# Payment-plan triggers: what makes a milestone invoiceable.
SIGNING, DELIVERY_ACCEPTANCE, FINAL_ACCEPTANCE, ON_DATE = "signing", "delivery_acceptance", "final_acceptance", "date"
TRIGGERS = (SIGNING, DELIVERY_ACCEPTANCE, FINAL_ACCEPTANCE, ON_DATE)

CHANGE_PENDING, CHANGE_APPROVED, CHANGE_REJECTED, CHANGE_CANCELLED = "pending", "approved", "rejected", "cancelled"
CHANGE_STATUSES = (CHANGE_PENDING, CHANGE_APPROVED, CHANGE_REJECTED, CHANGE_CANCELLED)


@dataclass(eq=False)
class PaymentMilestone:
    seq: int
    label: str
    pct: Decimal
    amount: Decimal
    trigger: str
    due_date: date | None = None  # for trigger "date"
    triggered_on: date | None = None
    contract_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class ChangeOrder:
    number: str
    old_value: Decimal
    new_value: Decimal
    old_plan: list
    new_plan: list
    reason: str
    status: str
    requested_by: int
    created_at: datetime
    approval_id: int | None = None
    decided_at: datetime | None = None
    contract_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class Contract:
    number: str
    opportunity_id: int
    account_id: int
    quote_id: int
    currency: str
    value: Decimal
    status: str
    payment_terms_days: int
    created_by: int
    created_at: datetime
    invoiced_total: Decimal = Decimal("0")
    paid_total: Decimal = Decimal("0")
    recognised_total: Decimal = Decimal("0")
    submitted_at: datetime | None = None
    signed_at: datetime | None = None
    completed_at: datetime | None = None
    closed_at: datetime | None = None
    milestones: list[PaymentMilestone] = field(default_factory=list)
    changes: list[ChangeOrder] = field(default_factory=list)
    version: int = 1
    id: int | None = None

    @property
    def ref(self) -> str:
        return self.number

    def move_to(self, status: str) -> None:
        check_move(TRANSITIONS, self.ref, self.status, status)
        self.status = status

    def milestone(self, seq: int) -> PaymentMilestone | None:
        return next((m for m in self.milestones if m.seq == seq), None)

    def pending_change(self) -> ChangeOrder | None:
        return next((c for c in self.changes if c.status == CHANGE_PENDING), None)


def split_amounts(value: Decimal, pcts: list[Decimal]) -> list[Decimal]:
    """Money per milestone: each share to the cent, the last one takes the rounding so Σ = value."""
    amounts = [cents(value * p / HUNDRED) for p in pcts[:-1]]
    return [*amounts, value - sum(amounts, Decimal("0"))] if pcts else []


def check_plan_total(pcts: list[Decimal], field_name: str = "milestones") -> None:
    total = sum(pcts, Decimal("0"))
    if total != HUNDRED:
        raise ValidationFailed(f"The payment plan adds up to {total}%; it must be exactly 100%",
                               field=field_name, details={"total_pct": str(total)})
