"""Rows that every use case writes beside its change: policies, audit entries, outbox messages."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(eq=False)
class StagePolicy:
    """Default probability per stage (policy data, seeded, editable by admins)."""

    stage: str
    probability: int
    id: int | None = None


@dataclass(eq=False)
class GatePolicy:
    """Which decision a stage move needs, what must be true first, and who decides, in order."""

    kind: str
    from_stage: str
    to_stage: str
    preconditions: list = field(default_factory=list)  # names from domain.gates.PRECONDITIONS
    steps: list = field(default_factory=list)  # [{"role": "...", "scope": "chain|region|any"}]
    active: bool = True
    id: int | None = None


@dataclass(eq=False)
class AssignmentRule:
    """Lead routing: match a region, hand out round-robin within a team, capped by open leads."""

    priority: int
    team_id: int
    region: str = "*"  # "*" matches any region
    max_open_leads: int = 50
    last_assigned_user_id: int | None = None
    active: bool = True
    id: int | None = None


@dataclass(eq=False)
class AuditEntry:
    at: datetime
    actor_id: int
    channel: str
    via_agent: bool
    request_id: str
    entity: str
    entity_id: int
    action: str
    before: dict | None = None
    after: dict | None = None
    id: int | None = None


@dataclass(eq=False)
class OutboxMessage:
    key: str
    topic: str
    payload: dict
    created_at: datetime
    available_at: datetime
    attempts: int = 0
    dispatched_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None
