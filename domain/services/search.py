"""Find leads, accounts and deals by what people call them (fuzzy, Chinese or English).

Only records the actor may see are candidates. Names are compared after the same folding the
duplicate check uses (case, width, company suffixes such as Ltd / 有限公司), then by containment,
then by similarity, so "华东电力" finds "华东电力集团有限公司" and "acme robotcs" finds "Acme Robotics".
"""
from __future__ import annotations

from difflib import SequenceMatcher
from typing import Literal

from pydantic import Field

from domain.actor import Actor
from domain.errors import ValidationFailed
from domain.normalize import company_norm
from domain.rbac import PERMISSIONS, UseCase
from domain.services.base import begin
from domain.services.schemas import View

Kind = Literal["lead", "account", "opportunity"]
KINDS: tuple[str, ...] = ("opportunity", "account", "lead")
MIN_SCORE = 0.45
SCAN_LIMIT = 5000  # candidates per kind; the newest first


class RecordHit(View):
    kind: Kind
    id: int
    ref: str
    name: str
    detail: str = Field("", description="stage, status or owner: enough to tell two hits apart")
    score: float = Field(ge=0, le=1)
    exact: bool = False

    @property
    def label(self) -> str:
        return f"{self.ref} {self.name}" + (f" ({self.detail})" if self.detail else "")


def similarity(query: str, name: str) -> tuple[float, bool]:
    """(score 0..1, exact) of a query against one name, both folded."""
    q, n = company_norm(query), company_norm(name)
    if not q or not n:
        return 0.0, False
    if q == n:
        return 1.0, True
    if q in n:
        return 0.6 + 0.35 * len(q) / len(n), False
    if n in q:  # "华东电力回款" names 华东电力
        return 0.55 + 0.35 * len(n) / len(q), False
    return SequenceMatcher(None, q, n).ratio() * 0.9, False


def search_records(query: str, *, actor: Actor, uow, kinds: list[str] | None = None,
                   limit: int = 10) -> list[RecordHit]:
    """Visible records whose name matches `query`, best first."""
    ctx = begin(uow, actor, UseCase.SEARCH_RECORDS)
    query = (query or "").strip()
    if len(query) < 1 or len(query) > 200:
        raise ValidationFailed("Search for 1 to 200 characters", field="query")
    wanted = list(kinds or KINDS)
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        raise ValidationFailed(f"Unknown record kind {unknown[0]}", field="kinds", allowed=list(KINDS))
    hits: list[RecordHit] = []
    if "opportunity" in wanted:
        for o in uow.opportunities.list(ctx.scope, limit=SCAN_LIMIT):
            account = uow.accounts.get(o.account_id)
            s1, e1 = similarity(query, o.name)
            s2, _ = similarity(query, account.name) if account else (0.0, False)
            score, exact = (s1, e1) if s1 >= s2 else (s2 * 0.95, False)  # the deal's own name wins a tie
            if score >= MIN_SCORE:
                hits.append(RecordHit(kind="opportunity", id=o.id, ref=o.ref, name=o.name,
                                      detail=f"{o.stage}, {account.name if account else ''}".strip(", "),
                                      score=round(score, 4), exact=exact))
    if "account" in wanted:
        for a in uow.accounts.list(ctx.scope, limit=SCAN_LIMIT):
            score, exact = similarity(query, a.name)
            if score >= MIN_SCORE:
                hits.append(RecordHit(kind="account", id=a.id, ref=a.ref, name=a.name, detail=a.industry or "",
                                      score=round(score, 4), exact=exact))
    if "lead" in wanted and ctx.user.roles & PERMISSIONS[UseCase.VIEW_LEAD]:  # leads are the sellers' own
        for lead in uow.leads.list(ctx.scope, limit=SCAN_LIMIT):
            s1, e1 = similarity(query, lead.company)
            s2, _ = similarity(query, lead.contact_name)
            score, exact = (s1, e1) if s1 >= s2 else (s2 * 0.9, False)
            if score >= MIN_SCORE:
                hits.append(RecordHit(kind="lead", id=lead.id, ref=lead.ref, name=lead.company,
                                      detail=f"{lead.status}, {lead.contact_name}", score=round(score, 4),
                                      exact=exact))
    hits.sort(key=lambda h: (-h.score, KINDS.index(h.kind), -h.id))
    return hits[:max(1, min(limit, 50))]
