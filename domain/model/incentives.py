"""Iron-triangle incentive split: role weights as policy data, shares only of collected cash."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.model.quotes import HUNDRED, cents

ROLES = ("AR", "SR", "FR")


@dataclass(eq=False)
class IncentivePlan:
    name: str
    pool_pct: Decimal  # of collected cash
    ar_pct: Decimal
    sr_pct: Decimal
    fr_pct: Decimal
    active: bool = True
    id: int | None = None

    def weight(self, role: str) -> Decimal:
        return {"AR": self.ar_pct, "SR": self.sr_pct, "FR": self.fr_pct}[role]


@dataclass(eq=False)
class Contribution:
    """How much of a role's share one person earned on one contract (shares per role add to 100)."""

    contract_id: int
    user_id: int
    role: str
    share_pct: Decimal
    recorded_by: int
    recorded_at: datetime
    note: str | None = None
    id: int | None = None


def split(collected: Decimal, plan: IncentivePlan, shares: dict[str, list[tuple[int, Decimal]]]
          ) -> list[tuple[str, int, Decimal]]:
    """(role, user, amount) from collected cash. "No collection, no share": nothing collected pays nothing.

    Each role's amount is cut to the cent and the last person of a role takes the rounding, so the
    lines always add up to the role's amount exactly.
    """
    pool = collected * plan.pool_pct / HUNDRED
    lines = []
    for role in ROLES:
        role_amount = cents(pool * plan.weight(role) / HUNDRED)
        people = shares.get(role, [])
        paid = Decimal("0")
        for i, (user_id, share) in enumerate(people):
            amount = role_amount - paid if i == len(people) - 1 else cents(role_amount * share / HUNDRED)
            paid += amount
            lines.append((role, user_id, amount))
    return lines
