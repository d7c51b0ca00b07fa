"""The system prompt for one turn, from prompts/system.<lang>.yaml: role-aware, dated, with open items."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.actor import Actor
from domain.errors import LTCError
from domain.model.vocab import Stage
from domain.services import approvals, collections, opportunities
from prompts.messages import render

_OPEN = {s.value for s in (Stage.QUALIFY, Stage.INITIATED, Stage.SOLUTION, Stage.BID, Stage.NEGOTIATE)}


@dataclass(frozen=True)
class OpenItems:
    deals: int
    approvals: int
    overdue: int


def open_items(uow, actor: Actor) -> OpenItems:
    """What is waiting for this person: their open deals, approvals for them, their overdue invoices."""
    def safe(fn, default=0):
        try:
            return fn()
        except LTCError:  # a role without that view simply has none
            return default

    deals = safe(lambda: sum(1 for o in opportunities.list_opportunities(actor=actor, uow=uow, owner_id=actor.user_id,
                                                                         limit=1000) if o.stage in _OPEN))
    waiting = safe(lambda: len(approvals.list_my_approvals(actor=actor, uow=uow)))
    overdue = safe(lambda: sum(1 for line in collections.aging_report(actor=actor, uow=uow, owner_id=actor.user_id).lines
                               if line.days_overdue > 0))
    return OpenItems(deals=deals, approvals=waiting, overdue=overdue)


def system_prompt(*, locale: str, name: str, roles: list[str], audiences: frozenset[str], today: date,
                  items: OpenItems, company: str) -> str:
    parts = [render("system.base", locale, company=company, name=name, roles=", ".join(roles), today=today.isoformat(),
                    language=render(f"system.language.{locale}", locale))]
    for audience in ("rep", "manager", "approver", "finance", "delivery"):
        if audience in audiences:
            parts.append(render(f"system.role.{audience}", locale))
    parts.append(render("system.open_items", locale, name=name, deals=items.deals, approvals=items.approvals,
                        overdue=items.overdue))
    return "\n".join(parts)
