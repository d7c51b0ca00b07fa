"""Lead routing from rules (data): territory first, round-robin in the team, workload cap."""
from __future__ import annotations

from dataclasses import dataclass

from domain.model.records import AssignmentRule


@dataclass(frozen=True)
class Assignment:
    owner_id: int | None
    rule_id: int | None
    reason: str


def pick_owner(
    rules: list[AssignmentRule],
    region: str,
    team_reps: dict[int, list[int]],
    open_counts: dict[int, int],
) -> Assignment:
    """`team_reps` lists each team's active reps by id (stable order); `rules` are by priority."""
    matching = [r for r in rules if r.active and r.region in ("*", region)]
    if not matching:
        return Assignment(None, None, f"no assignment rule matches region '{region or '-'}'")
    full: list[str] = []
    for rule in matching:
        reps = team_reps.get(rule.team_id, [])
        if not reps:
            full.append(f"rule {rule.id}: team has no active reps")
            continue
        # Continue the rotation after whoever this rule assigned last.
        start = reps.index(rule.last_assigned_user_id) + 1 if rule.last_assigned_user_id in reps else 0
        rotation = reps[start:] + reps[:start]
        for uid in rotation:
            if open_counts.get(uid, 0) < rule.max_open_leads:
                return Assignment(uid, rule.id, f"rule {rule.id} ({rule.region}): round-robin, "
                                  f"{open_counts.get(uid, 0)}/{rule.max_open_leads} open leads")
        full.append(f"rule {rule.id}: every rep is at the cap of {rule.max_open_leads} open leads")
    return Assignment(None, None, "; ".join(full))
