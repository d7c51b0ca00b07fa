"""Invoices, payments (回款) and their allocations, promises to pay, recognised revenue."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from domain.errors import InvalidTransition
from domain.model.message_keys import keyed

ZERO = Decimal("0")

ISSUED, PARTIALLY_PAID, PAID, VOID = "issued", "partially_paid", "paid", "void"
INVOICE_STATUSES = (ISSUED, PARTIALLY_PAID, PAID, VOID)
OPEN_INVOICE = frozenset({ISSUED, PARTIALLY_PAID})

PROPOSED, CONFIRMED, REJECTED = "proposed", "confirmed", "rejected"
PAYMENT_STATUSES = (PROPOSED, CONFIRMED, REJECTED)
METHODS = ("bank_transfer", "acceptance_bill", "check", "card", "cash", "other")

# Aging buckets by days past due, and the dunning level each one calls for.
BUCKETS = (("current", None, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
DUNNING_LEVELS = {0: "none", 1: "friendly reminder", 2: "firm reminder", 3: "manager escalation",
                  4: "finance and legal escalation"}


def bucket_for(days_overdue: int) -> str:
    for name, lo, hi in BUCKETS:
        if (lo is None or days_overdue >= lo) and (hi is None or days_overdue <= hi):
            return name
    return "current"


def dunning_level_for(days_overdue: int) -> int:
    return {"current": 0, "1-30": 1, "31-60": 2, "61-90": 3, "90+": 4}[bucket_for(days_overdue)]


@dataclass(eq=False)
class Invoice:
    number: str
    contract_id: int
    milestone_id: int
    account_id: int
    currency: str
    amount: Decimal
    issued_on: date
    due_on: date
    created_by: int
    paid_amount: Decimal = ZERO
    status: str = ISSUED
    dunning_level: int = 0
    last_dunned_on: date | None = None
    void_reason: str | None = None
    voided_by: int | None = None
    voided_at: datetime | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return self.number

    @property
    def balance(self) -> Decimal:
        return ZERO if self.status == VOID else self.amount - self.paid_amount

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_INVOICE

    def days_overdue(self, today: date) -> int:
        """Overdue is derived from the date, never stored: 0 while not due or settled."""
        return max(0, (today - self.due_on).days) if self.is_open else 0

    def apply(self, amount: Decimal) -> None:
        if self.status not in OPEN_INVOICE:
            raise InvalidTransition(f"{self.ref} is {self.status}; it takes no payment", field="status")
        self.paid_amount += amount
        self.status = PAID if self.paid_amount == self.amount else PARTIALLY_PAID

    def void(self, reason: str, by: int, at: datetime) -> None:
        if self.status != ISSUED or self.paid_amount:
            raise InvalidTransition(
                f"{self.ref} is {self.status}" + (" with payments applied" if self.paid_amount else "")
                + "; only an unpaid issued invoice can be voided", field="status", allowed=[ISSUED],
                details=keyed(f"invoice.not_voidable.{self.status}", ref=self.ref))
        self.status, self.void_reason, self.voided_by, self.voided_at = VOID, reason, by, at


@dataclass(eq=False)
class Allocation:
    invoice_id: int
    amount: Decimal
    currency: str
    allocated_at: datetime
    allocated_by: int
    payment_id: int | None = None
    id: int | None = None


@dataclass(eq=False)
class Payment:
    number: str
    account_id: int
    currency: str
    amount: Decimal
    received_on: date
    method: str
    bank_ref: str
    status: str
    created_by: int
    created_at: datetime
    allocated: Decimal = ZERO
    unapplied: Decimal = ZERO
    confirmed_by: int | None = None
    confirmed_at: datetime | None = None
    note: str | None = None
    contract_id: int | None = None  # the contract the payer meant: confirmation pays it first
    allocations: list[Allocation] = field(default_factory=list)
    id: int | None = None

    @property
    def ref(self) -> str:
        return self.number

    def confirm(self, by: int, at: datetime) -> None:
        if self.status != PROPOSED:
            raise InvalidTransition(f"{self.ref} is {self.status}; only a proposed payment can be confirmed",
                                    field="status", allowed=[PROPOSED],
                                    details=keyed(f"payment.not_proposed.{self.status}", ref=self.ref))
        self.status, self.confirmed_by, self.confirmed_at = CONFIRMED, by, at
        self.unapplied = self.amount - self.allocated

    def allocate(self, invoice: Invoice, amount: Decimal, by: int, at: datetime) -> None:
        """Move `amount` of unapplied money onto the invoice; Σ allocations + unapplied stays = amount."""
        if amount <= 0 or amount > self.unapplied or amount > invoice.balance:
            raise InvalidTransition(f"Cannot allocate {amount} of {self.ref} to {invoice.ref}", field="amount")
        invoice.apply(amount)
        existing = next((a for a in self.allocations if a.invoice_id == invoice.id), None)
        if existing is not None:
            existing.amount += amount
        else:
            self.allocations.append(Allocation(invoice_id=invoice.id, amount=amount, currency=self.currency,
                                               allocated_at=at, allocated_by=by))
        self.allocated += amount
        self.unapplied -= amount


@dataclass(eq=False)
class PromiseToPay:
    invoice_id: int
    amount: Decimal
    promised_on: date
    paid_before: Decimal  # what was paid on the invoice when the promise was made
    recorded_by: int
    recorded_at: datetime
    note: str | None = None
    id: int | None = None

    def state(self, invoice: Invoice, today: date) -> str:
        if invoice.status == PAID or invoice.paid_amount >= self.paid_before + self.amount:
            return "kept"
        return "open" if today <= self.promised_on else "broken"


@dataclass(eq=False)
class RevenueEntry:
    contract_id: int
    amount: Decimal  # negative for a downward catch-up after a change order
    recognised_on: date
    reason: str
    recorded_by: int
    delivery_milestone_id: int | None = None
    change_order_id: int | None = None
    id: int | None = None
