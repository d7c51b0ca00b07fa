"""Named gate preconditions. Gate policies (data) list these names; no eval strings."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.model.opportunities import Opportunity
from domain.model.vocab import MemberRole


@dataclass(frozen=True)
class Gap:
    """One thing a gate still misses: `text` in words a rep can act on (English); `name` is stable
    ("<precondition>" or "<precondition>.<part>") so an edge can say it in the user's language."""

    name: str
    text: str
    params: dict[str, str] = field(default_factory=dict)


# Each check returns what is missing (empty list when satisfied).
Check = Callable[[Opportunity, Any], list[Gap]]


def _triangle_complete(opp: Opportunity, uow: Any) -> list[Gap]:
    missing = []
    if opp.owner_id is None:
        missing.append(Gap("triangle_complete.ar", "AR (account responsible) assigned"))
    if opp.seat(MemberRole.SR) is None:
        missing.append(Gap("triangle_complete.sr", "SR (solution responsible) assigned"))
    if opp.seat(MemberRole.FR) is None:
        missing.append(Gap("triangle_complete.fr", "FR (fulfillment responsible) assigned"))
    return missing


def _need_and_budget(opp: Opportunity, uow: Any) -> list[Gap]:
    missing = []
    if not (opp.customer_need or "").strip():
        missing.append(Gap("need_and_budget.need", "customer need (customer_need) filled in"))
    if opp.budget is None:
        missing.append(Gap("need_and_budget.budget", "customer budget (budget) filled in"))
    return missing


def _solution_summary(opp: Opportunity, uow: Any) -> list[Gap]:
    return [] if (opp.solution_summary or "").strip() else [Gap("solution_summary", "SR's solution summary recorded")]


def _delivery_plan(opp: Opportunity, uow: Any) -> list[Gap]:
    return [] if (opp.delivery_plan or "").strip() else [Gap("delivery_plan", "FR's delivery plan note recorded")]


def _approved_quote(opp: Opportunity, uow: Any) -> list[Gap]:
    return [] if uow.quotes.has_approved(opp.id) else [Gap("approved_quote", "an approved quote")]


def _deliverability_signed(opp: Opportunity, uow: Any) -> list[Gap]:
    return [] if opp.deliverability_signed_at else [Gap("deliverability_signed", "FR's deliverability sign-off")]


def _contract_under_review(opp: Opportunity, uow: Any) -> list[Gap]:
    contract = uow.contracts.for_opportunity(opp.id)
    if contract is None:
        return [Gap("contract_under_review", "a contract drafted from the accepted quote and submitted for review")]
    ref = {"ref": contract.ref}
    if contract.status != "under_review":
        return [Gap("contract_under_review.submit", f"contract {contract.ref} submitted for review", ref)]
    quote = uow.quotes.get(contract.quote_id)
    if quote is None or quote.status != "accepted" or contract.value != opp.amount:
        return [Gap("contract_under_review.match", f"contract {contract.ref} matching the deal's accepted quote and "
                                                   f"amount", ref)]
    return []


PRECONDITIONS: dict[str, Check] = {
    "triangle_complete": _triangle_complete,
    "need_and_budget": _need_and_budget,
    "solution_summary": _solution_summary,
    "delivery_plan": _delivery_plan,
    "approved_quote": _approved_quote,
    "deliverability_signed": _deliverability_signed,
    "contract_under_review": _contract_under_review,
}


# Who in the iron triangle produces what each precondition asks for.
OWNERS: dict[str, str] = {
    "triangle_complete": "AR",
    "need_and_budget": "AR",
    "solution_summary": "SR",
    "delivery_plan": "FR",
    "approved_quote": "SR",
    "deliverability_signed": "FR",
    "contract_under_review": "AR",
}


def gaps_for(names: list[str], opp: Opportunity, uow: Any) -> list[Gap]:
    return [gap for _, gap in gaps_by_owner(names, opp, uow)]


def gaps_by_owner(names: list[str], opp: Opportunity, uow: Any) -> list[tuple[str, Gap]]:
    return [(OWNERS[name], gap) for name in names for gap in PRECONDITIONS[name](opp, uow)]


def missing_for(names: list[str], opp: Opportunity, uow: Any) -> list[str]:
    return [gap.text for gap in gaps_for(names, opp, uow)]


def gap_details(gaps: list[Gap]) -> dict[str, Any]:
    """What an error carries next to its English `missing` list: each gap's name and params, in order."""
    return {"missing_names": [g.name for g in gaps], "missing_params": [dict(g.params) for g in gaps]}
