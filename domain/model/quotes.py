"""Quotes (CPQ): versioned per opportunity, lines priced from a price book, totals and margin."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from domain.model.transitions import check_move


CENT = Decimal("0.01")
HUNDRED = Decimal(100)

DRAFT, PENDING, APPROVED, REJECTED = "draft", "pending_approval", "approved", "rejected"
SENT, ACCEPTED, EXPIRED, SUPERSEDED = "sent", "accepted", "expired", "superseded"
STATUSES = (DRAFT, PENDING, APPROVED, REJECTED, SENT, ACCEPTED, EXPIRED, SUPERSEDED)

# EXPIRED from every open status: validity ran out, or the deal closed.
TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({PENDING, APPROVED, SUPERSEDED, EXPIRED}),
    PENDING: frozenset({APPROVED, REJECTED, DRAFT, SUPERSEDED, EXPIRED}),  # DRAFT: approval cancelled/expired
    APPROVED: frozenset({SENT, DRAFT, SUPERSEDED, EXPIRED}),  # DRAFT: an edit that made it worse
    REJECTED: frozenset({DRAFT, SUPERSEDED, EXPIRED}),
    SENT: frozenset({ACCEPTED, EXPIRED, SUPERSEDED}),
    ACCEPTED: frozenset(),
    EXPIRED: frozenset(),
    SUPERSEDED: frozenset(),
}
OPEN = frozenset({DRAFT, PENDING, APPROVED, REJECTED, SENT})
EDITABLE = frozenset({DRAFT, REJECTED, APPROVED})
# What satisfies ATB's "an approved quote" precondition.
APPROVED_OR_LATER = frozenset({APPROVED, SENT, ACCEPTED})


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(eq=False)
class QuoteLine:
    product_id: int
    sku: str
    name: str
    quantity: Decimal
    list_price: Decimal  # snapshot from the price book when the line was priced
    discount_pct: Decimal
    unit_cost: Decimal
    floor_price: Decimal
    position: int = 0
    quote_id: int | None = None
    id: int | None = None

    @property
    def net_unit(self) -> Decimal:
        return cents(self.list_price * (HUNDRED - self.discount_pct) / HUNDRED)

    @property
    def net(self) -> Decimal:
        return cents(self.net_unit * self.quantity)

    @property
    def gross(self) -> Decimal:
        return cents(self.list_price * self.quantity)

    @property
    def cost(self) -> Decimal:
        return cents(self.unit_cost * self.quantity)


@dataclass(eq=False)
class Quote:
    opportunity_id: int
    version: int
    status: str
    total: Decimal
    currency: str
    created_at: datetime
    price_book_id: int | None = None
    list_total: Decimal = Decimal("0")
    cost_total: Decimal = Decimal("0")
    discount_pct: Decimal = Decimal("0")
    margin_pct: Decimal | None = None
    valid_until: date | None = None
    created_by: int | None = None
    approval_id: int | None = None
    approved_discount_pct: Decimal | None = None  # what the approvers saw: later edits compare to it
    approved_margin_pct: Decimal | None = None
    submitted_at: datetime | None = None
    sent_at: datetime | None = None
    accepted_at: datetime | None = None
    lines: list[QuoteLine] = field(default_factory=list)
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"Q-{self.id:05d}"

    def recompute(self) -> None:
        """Totals, overall discount and margin from the lines (Decimal, to the cent)."""
        self.list_total = sum((line.gross for line in self.lines), Decimal("0"))
        self.total = sum((line.net for line in self.lines), Decimal("0"))
        self.cost_total = sum((line.cost for line in self.lines), Decimal("0"))
        self.discount_pct = (cents((HUNDRED - self.total * HUNDRED / self.list_total))
                             if self.list_total else Decimal("0"))
        self.margin_pct = (cents((self.total - self.cost_total) * HUNDRED / self.total)
                           if self.total else None)

    @property
    def routing_discount_pct(self) -> Decimal:
        """What the discount policy routes on: the overall discount, or a deeper single line."""
        return max([self.discount_pct, *(line.discount_pct for line in self.lines)])

    def below_floor(self) -> list[QuoteLine]:
        return [line for line in self.lines if line.net_unit < line.floor_price]

    def worse_than_approved(self) -> bool:
        """An edit needs approval again only if the discount rose or the margin fell."""
        if self.approved_discount_pct is None:
            return True
        margin_fell = (self.approved_margin_pct is not None and self.margin_pct is not None
                       and self.margin_pct < self.approved_margin_pct)
        return self.discount_pct > self.approved_discount_pct or margin_fell

    def move_to(self, status: str) -> None:
        check_move(TRANSITIONS, self.ref, self.status, status)
        self.status = status
