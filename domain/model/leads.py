"""Leads (管理线索): status machine and its guards."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.errors import InvalidTransition, ValidationFailed
from domain.model.message_keys import keyed
from domain.model.vocab import LeadStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.CONTACTED, S.NURTURING, S.QUALIFIED, S.DISQUALIFIED}),
    S.CONTACTED: frozenset({S.NURTURING, S.QUALIFIED, S.DISQUALIFIED}),
    S.NURTURING: frozenset({S.CONTACTED, S.QUALIFIED, S.DISQUALIFIED}),
    S.QUALIFIED: frozenset({S.CONVERTED, S.NURTURING, S.DISQUALIFIED}),
    S.CONVERTED: frozenset(),
    S.DISQUALIFIED: frozenset({S.NURTURING}),  # a lead can be revived into nurturing
}
OPEN_STATUSES = frozenset({S.NEW, S.CONTACTED, S.NURTURING, S.QUALIFIED})


@dataclass(eq=False)
class Lead:
    source: str
    company: str
    contact_name: str
    email: str | None = None
    phone: str | None = None
    title: str | None = None
    region: str = ""
    need: str | None = None
    budget: Decimal | None = None
    currency: str = "CNY"
    timeline: str = "unknown"
    authority: str = "unknown"
    notes: str | None = None
    status: str = S.NEW.value
    disqualify_reason: str | None = None
    owner_id: int | None = None
    score: int = 0
    score_reasons: list = field(default_factory=list)
    email_norm: str | None = None
    phone_norm: str | None = None
    identity_norm: str | None = None
    account_id: int | None = None
    contact_id: int | None = None
    opportunity_id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"LEAD-{self.id:05d}"

    @property
    def is_open(self) -> bool:
        return S(self.status) in OPEN_STATUSES

    def allowed_next(self) -> list[str]:
        return sorted(s.value for s in TRANSITIONS[S(self.status)])

    def move_to(self, status: S, *, reason: str | None = None) -> None:
        """The only way a lead changes status: checks the transition table and its guards."""
        current = S(self.status)
        if status not in TRANSITIONS[current]:
            raise InvalidTransition(
                f"{self.ref} is {current.value}; it cannot become {status.value}. "
                f"Allowed next: {', '.join(self.allowed_next()) or 'none (final)'}",
                field="status",
                allowed=self.allowed_next(),
                details=keyed("lead.cannot_become" if self.allowed_next() else "lead.cannot_become_final",
                              ref=self.ref, status=current.value, target=status.value,
                              allowed=", ".join(self.allowed_next())),
            )
        if status is S.DISQUALIFIED:
            if not reason or not reason.strip():
                raise ValidationFailed("Disqualifying a lead needs a reason", field="reason",
                                       details=keyed("lead.disqualify_needs_reason"))
            self.disqualify_reason = reason.strip()
        elif current is S.DISQUALIFIED:
            self.disqualify_reason = None
        self.status = status.value
