"""Turn what people (and models) write into record ids: references first, then fuzzy names.

"OPP-12", "opp 12", "12" and "华东电力扩容" all name a deal; an ambiguous name raises with a short
pick-list (`details.did_you_mean`), an unknown one with the nearest names. Only records the actor
may see are candidates, so a name never reveals a record out of sight.
"""
from __future__ import annotations

import re
from contextvars import ContextVar
from typing import TYPE_CHECKING
from difflib import SequenceMatcher

from domain.actor import Actor
from domain.errors import NotFound, ValidationFailed
from domain.normalize import person_norm
from domain.policy_defaults import SYSTEM_EMAIL
from domain.services import users as user_svc
from domain.services.search import RecordHit, search_records
from prompts.messages import render

if TYPE_CHECKING:
    from tools.context import ToolContext

# The reply language of the tool call in progress (set by tools.runner.invoke): the resolver is
# called from every tool, so it reads the language here instead of through every signature.
LOCALE: ContextVar[str] = ContextVar("ltc_tool_locale", default="en")
# While the runner previews a proposal: argument name → the reference it resolved to, so the
# confirmed run acts on the record the user saw, even if a name would resolve otherwise later.
RESOLVED: ContextVar[dict[str, str] | None] = ContextVar("ltc_tool_resolved", default=None)

PREFIX = {"lead": "LEAD", "account": "ACC", "opportunity": "OPP", "approval": "APR", "quote": "Q"}
def _label(kind: str) -> str:
    return render(f"resolve.kind.{kind}", LOCALE.get())
_REF = {kind: re.compile(rf"^\s*{p}\s*[-_ #]?\s*0*(\d{{1,9}})\s*$", re.IGNORECASE) for kind, p in PREFIX.items()}
_BARE = re.compile(r"^\s*#?\s*0*(\d{1,9})\s*$")
# Human numbers with a year (CT-2026-00001, INV-…, PAY-…, SO-…) are passed to the services as text.
NUMBER_RE = re.compile(r"^\s*(CT|INV|PAY|SO|CO)\s*-\s*(\d{4})\s*-\s*0*(\d{1,9})\s*$", re.IGNORECASE)
SEARCHABLE = ("lead", "account", "opportunity")


def ref_id(kind: str, text: str | int) -> int | None:
    """The id in a reference of this kind ('OPP-00012', 'opp 12', '12'), or None."""
    if isinstance(text, int):
        return text if text > 0 else None
    m = _REF[kind].match(text) or _BARE.match(text)
    return int(m.group(1)) if m else None


def number(text: str) -> str | None:
    """'ct-2026-1' → 'CT-2026-00001' (the canonical spelling), or None."""
    m = NUMBER_RE.match(text or "")
    return f"{m.group(1).upper()}-{m.group(2)}-{int(m.group(3)):05d}" if m else None


def resolve(uow, actor: Actor, kind: str, text: str | int, *, field: str) -> int:
    """The id of the one visible record of `kind` that `text` names."""
    found = ref_id(kind, text)
    if found is not None:
        return _noted(kind, field, found)
    if kind not in SEARCHABLE:
        raise ValidationFailed(render("resolve.bad_ref", LOCALE.get(), text=text, kind=_label(kind),
                                      example=f"{PREFIX[kind]}-00012"), field=field)
    hits = search_records(str(text), actor=actor, uow=uow, kinds=[kind], limit=6)
    pick = choose(hits)
    if pick is not None:
        return _noted(kind, field, pick.id)
    if not hits:
        others = search_records(str(text), actor=actor, uow=uow, limit=3)
        raise NotFound(render("resolve.not_found", LOCALE.get(), text=text, kind=_label(kind)), field=field,
                       details={"did_you_mean": [h.label for h in others]} if others else None)
    raise ValidationFailed(render("resolve.ambiguous", LOCALE.get(), text=text, kind=_label(kind)), field=field,
                           details={"code": "ambiguous", "did_you_mean": [h.label for h in hits[:5]]})


def _noted(kind: str, field: str, id_: int) -> int:
    seen = RESOLVED.get()
    if seen is not None:
        seen[field] = f"{PREFIX[kind]}-{id_:05d}"
    return id_


def choose(hits: list[RecordHit]) -> RecordHit | None:
    """The clear winner among fuzzy hits (best first), or None when a person should pick."""
    if not hits:
        return None
    top = hits[0]
    if top.exact and not (len(hits) > 1 and hits[1].exact):
        return top
    if len(hits) == 1 and top.score >= 0.5:
        return top
    if len(hits) > 1 and top.score >= 0.6 and top.score - hits[1].score >= 0.2:
        return top
    return None


SELF = frozenset({"me", "my", "myself", "mine", "i", "我", "我的", "本人", "自己"})


def person(uow, ctx: ToolContext, text: str, *, field: str) -> int:
    """The id of the one active user `text` names (email, name in en/zh, "me"); else a pick-list error."""
    wanted = text.strip()
    if wanted.casefold() in SELF:
        return ctx.actor.user_id
    people = [u for u in user_svc.list_users(actor=ctx.actor, uow=uow) if u.active and u.email != SYSTEM_EMAIL]
    key = person_norm(wanted)

    def names(u) -> set[str]:
        return {person_norm(n) for n in (u.name_en, u.name_zh or "", u.email, u.email.split("@")[0]) if n}

    def label(u) -> str:
        return f"{u.name_en}{' ' + u.name_zh if u.name_zh else ''} <{u.email}>"

    exact = [u for u in people if key in names(u)]
    found = exact or [u for u in people if any(key in n for n in names(u))]
    if len(found) == 1:
        return found[0].id
    if found:
        raise ValidationFailed(render("tool.person.ambiguous", ctx.locale, text=wanted), field=field,
                               details={"code": "ambiguous", "did_you_mean": [label(u) for u in found[:6]]})
    near = sorted(((max(SequenceMatcher(None, key, n).ratio() for n in names(u)), u) for u in people),
                  key=lambda x: -x[0])
    close = [label(u) for score, u in near[:3] if score >= 0.5]
    raise NotFound(render("tool.person.unknown", ctx.locale, text=wanted), field=field,
                   details={"did_you_mean": close} if close else None)
