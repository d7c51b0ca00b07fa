"""Which tools to bind for one turn: the user's roles first, then the words of the message.

An LLM reads every bound tool's schema on every call, so binding all of them costs tokens and
attention. A tool is eligible when its audience meets the user's; among those, tools whose
keywords occur in the message (or that the thread used in recent turns, so "yes, 15% then" still
reaches generate_quote) are bound, plus a small always-on core; only a message that names nothing
we know gets the likeliest general asks. The offline model binds every eligible tool: its prompt
costs nothing and its grammar picks exactly one.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from tools.registry import ToolSpec

CORE = ("search_records", "what_next")
# When the message names nothing we know, these are the likeliest asks per audience.
FALLBACK = ("list_deals", "list_my_approvals", "payment_status", "list_overdue", "search_playbooks")
_REF_TOOLS = {  # a reference in the message is a strong hint too
    "OPP": ("what_next", "advance_stage", "update_opportunity", "request_decision", "generate_quote"),
    "APR": ("decide_approval", "list_my_approvals"),
    "Q": ("submit_quote",),
    "CT": ("payment_status", "create_contract", "submit_contract", "update_delivery_milestone", "issue_invoice"),
    "INV": ("payment_status", "record_promise", "void_invoice"),
    "LEAD": ("qualify_lead", "convert_lead", "update_lead", "disqualify_lead"),
    "PAY": ("confirm_payment", "payment_status"),
}
# A how/why question wants the playbooks even when it also names a record type ("怎么催收逾期回款？").
_QUESTION = ("how ", "how do", "why", "what should", "怎么", "如何", "为什么", "怎样")
_REF = re.compile(r"\b(OPP|APR|Q|CT|INV|LEAD|PAY)\s*-?\s*\d", re.IGNORECASE)


def eligible(specs: Iterable[ToolSpec], audiences: frozenset[str]) -> list[ToolSpec]:
    return [s for s in specs if s.for_audiences(audiences)]


def score(spec: ToolSpec, message: str) -> int:
    text = message.lower()
    return sum(1 for k in spec.keywords if k and k in text)


def select(specs: Iterable[ToolSpec], audiences: frozenset[str], message: str, *, limit: int,
           recent: Iterable[str] = ()) -> list[ToolSpec]:
    pool = {s.name: s for s in eligible(specs, audiences)}
    chosen: list[str] = [n for n in CORE if n in pool]
    hinted = [n for m in _REF.finditer(message) for n in _REF_TOOLS.get(m.group(1).upper(), ())]
    if any(q in message.lower() for q in _QUESTION):
        hinted.insert(0, "search_playbooks")
    scores = {name: score(spec, message) for name, spec in pool.items()}
    top = max(scores.values(), default=0)
    # A tool matching several words of the message beats those matching one ("new lead" is
    # create_lead, not every lead tool); with only single-word matches, all of them stay; a long
    # message with several asks keeps every tool close to the best ("update the lead, then my approvals").
    floor = 1 if top < 2 else top if top == 2 else top - 1
    ranked = [n for n in sorted(pool, key=lambda n: (-scores[n], n)) if scores[n] >= floor]
    for name in [*ranked, *recent, *hinted]:  # what the message asks for first, then the thread's recent tools
        if name in pool and name not in chosen:
            chosen.append(name)
    if len(chosen) <= len(CORE):  # the message named nothing we know: offer the likeliest asks
        chosen += [n for n in FALLBACK if n in pool and n not in chosen]
    return [pool[n] for n in chosen[:limit]]
