"""Orders and delivery milestones (交付), owned by the deal's FR."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from domain.model.transitions import check_move


ORDER_OPEN, ORDER_DELIVERED = "open", "delivered"
ORDER_STATUSES = (ORDER_OPEN, ORDER_DELIVERED)

# A milestone is either part of the delivery or the customer's final acceptance (终验).
DELIVERY, FINAL = "delivery", "final_acceptance"
KINDS = (DELIVERY, FINAL)

PLANNED, DONE, ACCEPTED = "planned", "done", "accepted"
STATUSES = (PLANNED, DONE, ACCEPTED)
TRANSITIONS: dict[str, frozenset[str]] = {
    PLANNED: frozenset({DONE}),
    DONE: frozenset({ACCEPTED}),
    ACCEPTED: frozenset(),
}


@dataclass(eq=False)
class DeliveryMilestone:
    seq: int
    name: str
    kind: str
    planned_date: date
    revenue_pct: Decimal  # share of the contract value recognised when the customer accepts it
    status: str = PLANNED
    done_on: date | None = None
    accepted_on: date | None = None
    certificate_ref: str | None = None
    order_id: int | None = None
    id: int | None = None

    def move_to(self, status: str) -> None:
        check_move(TRANSITIONS, f"Milestone {self.seq} ({self.name})", self.status, status)
        self.status = status


@dataclass(eq=False)
class Order:
    number: str
    contract_id: int
    status: str
    created_by: int
    created_at: datetime
    delivered_at: datetime | None = None
    milestones: list[DeliveryMilestone] = field(default_factory=list)
    id: int | None = None

    @property
    def ref(self) -> str:
        return self.number

    def milestone(self, seq: int) -> DeliveryMilestone | None:
        return next((m for m in self.milestones if m.seq == seq), None)

    def accepted_share(self) -> Decimal:
        return sum((m.revenue_pct for m in self.milestones if m.status == ACCEPTED), Decimal("0"))

    def all_accepted(self, kind: str | None = None) -> bool:
        chosen = [m for m in self.milestones if kind is None or m.kind == kind]
        return bool(chosen) and all(m.status == ACCEPTED for m in chosen)
