"""Activities: calls, meetings, emails and notes on a lead, account, contact or opportunity."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(eq=False)
class Activity:
    kind: str
    subject: str
    user_id: int
    occurred_at: datetime
    body: str | None = None
    lead_id: int | None = None
    account_id: int | None = None
    contact_id: int | None = None
    opportunity_id: int | None = None
    id: int | None = None
