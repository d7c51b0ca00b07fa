"""Accounts and contacts, with the customer's decision chain (MCR)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(eq=False)
class Account:
    name: str
    owner_id: int
    industry: str | None = None
    region: str = ""
    tier: str = "standard"
    name_norm: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"ACC-{self.id:05d}"


@dataclass(eq=False)
class Contact:
    account_id: int
    name: str
    title: str | None = None
    email: str | None = None
    phone: str | None = None
    decision_role: str = "user"
    relationship: int = 2  # 1 hostile/unknown .. 5 trusted advocate
    created_at: datetime | None = None
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"CON-{self.id:05d}"
