"""Named gate preconditions. Gate policies (data) list these names; no eval strings."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.model.opportunities import Opportunity
from domain.model.vocab import MemberRole

# Each check returns what is missing (empty list when satisfied), in words a rep can act on.
Check = Callable[[Opportunity, Any], list[str]]


def _triangle_complete(opp: Opportunity, uow: Any) -> list[str]:
    missing = []
    if opp.owner_id is None:
        missing.append("AR (account responsible) assigned")
    if opp.seat(MemberRole.SR) is None:
        missing.append("SR (solution responsible) assigned")
    if opp.seat(MemberRole.FR) is None:
        missing.append("FR (fulfillment responsible) assigned")
    return missing


def _need_and_budget(opp: Opportunity, uow: Any) -> list[str]:
    missing = []
    if not (opp.customer_need or "").strip():
        missing.append("customer need (customer_need) filled in")
    if opp.budget is None:
        missing.append("customer budget (budget) filled in")
    return missing


def _solution_summary(opp: Opportunity, uow: Any) -> list[str]:
    return [] if (opp.solution_summary or "").strip() else ["SR's solution summary recorded"]


def _delivery_plan(opp: Opportunity, uow: Any) -> list[str]:
    return [] if (opp.delivery_plan or "").strip() else ["FR's delivery plan note recorded"]


def _approved_quote(opp: Opportunity, uow: Any) -> list[str]:
    return [] if uow.quotes.has_approved(opp.id) else ["an approved quote"]


def _deliverability_signed(opp: Opportunity, uow: Any) -> list[str]:
    return [] if opp.deliverability_signed_at else ["FR's deliverability sign-off"]


def _contract_under_review(opp: Opportunity, uow: Any) -> list[str]:
    contract = uow.contracts.for_opportunity(opp.id)
    if contract is None:
        return ["a contract drafted from the accepted quote and submitted for review"]
    if contract.status != "under_review":
        return [f"contract {contract.ref} submitted for review"]
    quote = uow.quotes.get(contract.quote_id)
    if quote is None or quote.status != "accepted" or contract.value != opp.amount:
        return [f"contract {contract.ref} matching the deal's accepted quote and amount"]
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


def missing_for(names: list[str], opp: Opportunity, uow: Any) -> list[str]:
    return [text for _, text in missing_by_owner(names, opp, uow)]


def missing_by_owner(names: list[str], opp: Opportunity, uow: Any) -> list[tuple[str, str]]:
    return [(OWNERS[name], text) for name in names for text in PRECONDITIONS[name](opp, uow)]
