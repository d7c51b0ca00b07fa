"""Tools over the playbooks: search them, and "what next" on a deal (its state + the playbooks)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from domain.errors import ValidationFailed
from domain.model.vocab import Stage
from domain.services.next_steps import NextStepItem, next_steps
from prompts.messages import render
from tools.approvals import spoken, worded
from tools.context import ToolContext
from tools.registry import ALL, tool
from tools.resolve import resolve


class SearchPlaybooksArgs(BaseModel):
    query: str = Field(min_length=2, max_length=500, description="the question, in Chinese or English",
                       examples=["What must be ready before ATI?", "客户逾期付款怎么催收"])
    stage: Stage | None = Field(None, description="only passages for this deal stage")
    role: str | None = Field(None, pattern="^(AR|SR|FR)$", description="only passages for this role: AR, SR or FR")
    k: int = Field(4, ge=1, le=10, description="how many passages")


class PassageOut(BaseModel):
    citation: str = Field(description="document title § section: cite it in the answer")
    doc: str
    lang: str
    text: str
    score: float


class SearchPlaybooksResult(BaseModel):
    passages: list[PassageOut]
    message: str
    text: str = Field("", description="a ready-to-post answer in the user's language")


@tool(audience=(ALL,), keywords=("how", "playbook", "checklist", "policy", "why", "怎么", "如何", "怎样", "清单", "打法"))
def search_playbooks(args: SearchPlaybooksArgs, ctx: ToolContext) -> SearchPlaybooksResult:
    """Search the iron-triangle playbooks (how-to, checklists, policies); cite the passages you use."""
    if ctx.playbooks is None:
        raise ValidationFailed(render("playbooks.not_indexed", ctx.locale))
    found = ctx.playbooks.search(args.query, stage=args.stage.value if args.stage else None, role=args.role,
                                 k=args.k)
    passages = [PassageOut(citation=p.citation, doc=p.doc, lang=p.lang, text=p.text, score=p.score) for p in found]
    message = "" if passages else render("playbooks.none", ctx.locale)
    text = message or "\n".join(f"- {p.citation}: {_excerpt(p.text)}" for p in passages)
    return SearchPlaybooksResult(passages=passages, message=message, text=text)


class WhatNextArgs(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="deal reference (OPP-00012 or 12) or its name",
                             examples=["OPP-00012", "华东电力扩容"])


class WhatNextResult(BaseModel):
    ref: str
    stage: str
    items: list[NextStepItem]
    checklist_role: str | None
    checklist: list[str]
    advice: list[PassageOut]
    text: str = Field(description="a ready-to-post answer in the user's language")


@tool(audience=(ALL,), keywords=("next", "what now", "what should", "stuck", "下一步", "接下来", "怎么推进"))
def what_next(args: WhatNextArgs, ctx: ToolContext) -> WhatNextResult:
    """What should happen next on a deal: blocking items, the asker's checklist, playbook advice."""
    with worded(ctx.locale), ctx.uow() as uow:
        state = next_steps(resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity"),
                           actor=ctx.actor, uow=uow)
    seat = state.asker_seat
    said = [_item_text(i, ctx.locale) for i in state.items]
    checklist: list[str] = []
    advice: list[PassageOut] = []
    if ctx.playbooks is not None:
        lists = ctx.playbooks.checklists(stage=state.stage, lang=ctx.locale)
        checklist = lists.get(seat or "AR", [])
        query = " ".join([state.next_gate or state.stage] + said[:3]) or state.stage
        advice = [PassageOut(citation=p.citation, doc=p.doc, lang=p.lang, text=p.text, score=p.score)
                  for p in ctx.playbooks.search(query, stage=state.stage, role=seat, k=2, lang=ctx.locale)]
    lines = [render("next.header", ctx.locale, ref=state.ref, name=state.name,
                    stage=render(f"tool.deal.stage.{state.stage}", ctx.locale))]
    if state.items:
        lines += [render("next.item", ctx.locale, n=n, role=render(f"tool.next.owner.{i.owner_role}", ctx.locale),
                         text=text) for n, (i, text) in enumerate(zip(state.items, said), 1)]
    else:
        lines.append(render("next.none", ctx.locale, ref=state.ref))
    if checklist:
        lines.append(render("next.checklist_header", ctx.locale, role=seat or "AR"))
        lines += [render("nudge.item", ctx.locale, item=item) for item in checklist]
    if advice:
        lines.append(render("next.advice_header", ctx.locale))
        lines += [render("next.advice_item", ctx.locale, citation=a.citation, excerpt=_excerpt(a.text))
                  for a in advice]
    return WhatNextResult(ref=state.ref, stage=state.stage, items=state.items, checklist_role=seat or "AR",
                          checklist=checklist, advice=advice, text="\n".join(lines))


def _item_text(item: NextStepItem, locale: str) -> str:
    """The domain words an item in English; other languages render domain.next.<key> (a missing gate
    material names its precondition: domain.gate.<gap>)."""
    if locale == "en" or not item.key:
        return item.text
    values = spoken(item.params, locale)
    try:
        if item.key == "gate_material":
            values["item"] = render(f"domain.gate.{item.params['gap']}", locale, **item.params)
        return render(f"domain.next.{item.key}", locale, **values)
    except (KeyError, IndexError):  # a template not written yet: English beats nothing
        return item.text


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join(line.lstrip("-* ").strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
