"""Which tools to bind for one turn: the user's roles first, then the words of the message.

An LLM reads every bound tool's schema on every call, so binding all of them costs tokens and
attention. A tool is eligible when its audience meets the user's; among those, tools whose
keywords occur in the message (or that the thread used in recent turns, so "yes, 15% then" still
reaches generate_quote) are bound, plus a small always-on core. The offline model binds every
eligible tool: its prompt costs nothing and its grammar picks exactly one.
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
    ranked = sorted(pool.values(), key=lambda s: (-score(s, message), s.name))
    for name in [*recent, *(s.name for s in ranked if score(s, message) > 0), *hinted, *FALLBACK]:
        if name in pool and name not in chosen:
            chosen.append(name)
        if len(chosen) >= limit:
            break
    return [pool[n] for n in chosen[:limit]]
