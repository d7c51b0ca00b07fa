"""Pending actions: a write the agent proposed, waiting for the same person's yes (human in the loop)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PENDING, CONFIRMED, CANCELLED = "pending", "confirmed", "cancelled"
ACTION_STATUSES = (PENDING, CONFIRMED, CANCELLED)


@dataclass(eq=False)
class PendingAction:
    """One proposal. Only a hash of its token is stored: the token is a bearer secret for one click."""

    token_hash: str
    user_id: int
    tool: str
    args: dict = field(default_factory=dict)
    summary: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None
    status: str = PENDING
    decided_at: datetime | None = None
    id: int | None = None

    def expired(self, now: datetime) -> bool:
        return self.status == PENDING and self.expires_at is not None and now >= self.expires_at
