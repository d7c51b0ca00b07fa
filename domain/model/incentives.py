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


def largest_remainder(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Cut `total` (in cents) by weights so the parts add up to it exactly and none is negative."""
    weight_sum = sum(weights, Decimal("0"))
    if not weights or weight_sum == 0:
        return [Decimal("0")] * len(weights)
    cents_total = int((total * 100).to_integral_value())
    raw = [Decimal(cents_total) * w / weight_sum for w in weights]
    floors = [int(r) for r in raw]
    left = cents_total - sum(floors)
    for i in sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))[:left]:
        floors[i] += 1
    return [Decimal(f) / 100 for f in floors]


def split(collected: Decimal, plan: IncentivePlan, shares: dict[str, list[tuple[int, Decimal]]]
          ) -> list[tuple[str, int, Decimal]]:
    """(role, user, amount) from collected cash. "No collection, no share": nothing collected pays nothing.

    The pool is rounded to the cent once; roles and then people get their parts by largest remainder,
    so every line is ≥ 0 and the lines add up to the pool exactly (roles without anyone seated keep
    their part in the pool: it is not paid).
    """
    pool = cents(collected * plan.pool_pct / HUNDRED)
    role_amounts = dict(zip(ROLES, largest_remainder(pool, [plan.weight(r) for r in ROLES])))
    lines = []
    for role in ROLES:
        people = shares.get(role, [])
        for (user_id, _share), amount in zip(people, largest_remainder(role_amounts[role], [s for _, s in people])):
            lines.append((role, user_id, amount))
    return lines
