"""Lead tools: create, update, qualify / disqualify, convert; and search across records."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.model.vocab import Authority, LeadSource, Timeline
from domain.services import leads as svc
from domain.services.leads import ConversionView, LeadView
from domain.services.search import RecordHit, search_records as search_svc
from prompts.messages import render
from tools.context import ToolContext
from tools.format import money, table
from tools.registry import ALL, REP, ToolResult, tool
from tools.resolve import resolve

LEAD_WORDS = ("lead", "leads", "prospect", "线索", "潜在客户")


class CreateLeadArgs(BaseModel):
    company: str = Field(min_length=1, max_length=200, description="the prospect's company",
                         examples=["Acme Robotics", "华东电力"])
    contact_name: str = Field(min_length=1, max_length=100, description="the person we talk to",
                              examples=["Li Wei", "王芳"])
    source: LeadSource = Field(LeadSource.OTHER, description="where the lead came from")
    budget: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2,
                                   description="the customer's budget as a plain number (2M = 2000000)",
                                   examples=[2000000])
    currency: str = Field("CNY", min_length=3, max_length=3, description="ISO code of the budget")
    need: str | None = Field(None, max_length=4000, description="what the customer wants to solve")
    title: str | None = Field(None, max_length=100, description="the contact's job title")
    email: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)
    region: str = Field("", max_length=50, description="sales region, e.g. East / 华东")
    timeline: Timeline = Field(Timeline.UNKNOWN, description="when the customer means to buy")
    authority: Authority = Field(Authority.UNKNOWN, description="the contact's role in the decision")
    notes: str | None = Field(None, max_length=4000)


class LeadResult(ToolResult):
    lead: LeadView


def _lead_text(lead: LeadView, locale: str, key: str) -> str:
    return render(key, locale, ref=lead.ref, company=lead.company, contact=lead.contact_name,
                  status=lead.status, score=lead.score, owner=lead.owner_name or "-",
                  budget=money(lead.budget, lead.currency) if lead.budget is not None else "-",
                  next=", ".join(lead.allowed_next) or "-")


@tool(audience=(REP,), keywords=LEAD_WORDS + ("new", "新"), writes=True)
def create_lead(args: CreateLeadArgs, ctx: ToolContext) -> LeadResult:
    """Create a lead (prospect) with company and contact; a duplicate returns the existing lead."""
    with ctx.uow() as uow:
        view = svc.create_lead(args.model_dump(exclude_none=True, mode="json"), actor=ctx.actor, uow=uow)
        uow.commit()
    key = "tool.lead.created" if view.created else "tool.lead.duplicate"
    return LeadResult(lead=view, text=_lead_text(view, ctx.locale, key))


class LeadRef(BaseModel):
    lead: str = Field(min_length=1, max_length=200, description="lead reference (LEAD-00012 or 12) or company name",
                      examples=["LEAD-00012", "Acme Robotics"])


class UpdateLeadArgs(LeadRef):
    company: str | None = Field(None, min_length=1, max_length=200)
    contact_name: str | None = Field(None, min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=50)
    region: str | None = Field(None, max_length=50)
    need: str | None = Field(None, max_length=4000)
    budget: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3)
    timeline: Timeline | None = None
    authority: Authority | None = None
    notes: str | None = Field(None, max_length=4000)


@tool(audience=(REP,), keywords=LEAD_WORDS + ("update", "change", "budget", "更新", "修改", "预算"), writes=True)
def update_lead(args: UpdateLeadArgs, ctx: ToolContext) -> LeadResult:
    """Change a lead's details (contact, need, budget, timeline, authority, notes); only the fields given."""
    with ctx.uow() as uow:
        lead_id = resolve(uow, ctx.actor, "lead", args.lead, field="lead")
        view = svc.update_lead(lead_id, args.model_dump(exclude_none=True, exclude={"lead"}, mode="json"),
                               actor=ctx.actor, uow=uow)
        uow.commit()
    return LeadResult(lead=view, text=_lead_text(view, ctx.locale, "tool.lead.updated"))


@tool(audience=(REP,), keywords=LEAD_WORDS + ("qualify", "qualified", "合格", "确认"), writes=True)
def qualify_lead(args: LeadRef, ctx: ToolContext) -> LeadResult:
    """Mark a lead qualified (real need, budget, authority, timeline), ready to convert."""
    with ctx.uow() as uow:
        lead_id = resolve(uow, ctx.actor, "lead", args.lead, field="lead")
        view = svc.qualify_lead(lead_id, actor=ctx.actor, uow=uow)
        uow.commit()
    return LeadResult(lead=view, text=_lead_text(view, ctx.locale, "tool.lead.qualified"))


class DisqualifyLeadArgs(LeadRef):
    reason: str = Field(min_length=3, max_length=500, description="why it is not a real opportunity",
                        examples=["no budget this year", "无预算"])


@tool(audience=(REP,), keywords=LEAD_WORDS + ("disqualify", "drop", "junk", "不合格", "无效", "关闭"), writes=True)
def disqualify_lead(args: DisqualifyLeadArgs, ctx: ToolContext) -> LeadResult:
    """Disqualify a lead with a reason (no budget, no need, competitor's customer, …)."""
    with ctx.uow() as uow:
        lead_id = resolve(uow, ctx.actor, "lead", args.lead, field="lead")
        view = svc.disqualify_lead(lead_id, args.reason, actor=ctx.actor, uow=uow)
        uow.commit()
    return LeadResult(lead=view, text=_lead_text(view, ctx.locale, "tool.lead.disqualified"))


class ConvertLeadArgs(LeadRef):
    opportunity_name: str | None = Field(None, min_length=1, max_length=200, description="name of the new deal")
    amount: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2,
                                   description="deal amount; defaults to the lead's budget")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD")
    account: str | None = Field(None, max_length=200,
                                description="link this existing account (ACC-00003 or name) instead of creating one")


class ConversionResult(ToolResult):
    conversion: ConversionView


@tool(audience=(REP,), keywords=LEAD_WORDS + ("convert", "opportunity", "转化", "转商机", "商机"), writes=True)
def convert_lead(args: ConvertLeadArgs, ctx: ToolContext) -> ConversionResult:
    """Convert a qualified lead into an account, a contact and an opportunity (deal), all at once."""
    with ctx.uow() as uow:
        lead_id = resolve(uow, ctx.actor, "lead", args.lead, field="lead")
        data = args.model_dump(exclude_none=True, exclude={"lead", "account"}, mode="json")
        if args.account:
            data["account_id"] = resolve(uow, ctx.actor, "account", args.account, field="account")
        view = svc.convert_lead(lead_id, data, actor=ctx.actor, uow=uow)
        uow.commit()
    text = render("tool.lead.converted", ctx.locale, ref=view.lead.ref, company=view.lead.company,
                  opp=view.opportunity_ref, account=f"ACC-{view.account_id:05d}",
                  new=render("tool.word.new" if view.account_created else "tool.word.existing", ctx.locale))
    return ConversionResult(conversion=view, text=text)


class SearchRecordsArgs(BaseModel):
    query: str = Field(min_length=1, max_length=200, description="a name or part of it, Chinese or English",
                       examples=["Acme", "华东电力"])
    kinds: list[str] | None = Field(None, description="only these kinds: lead, account, opportunity")


class SearchRecordsResult(ToolResult):
    hits: list[RecordHit]


@tool(audience=(ALL,), keywords=("find", "search", "look up", "which", "查", "找", "搜索"))
def search_records(args: SearchRecordsArgs, ctx: ToolContext) -> SearchRecordsResult:
    """Find leads, accounts and deals by name (fuzzy, Chinese or English); returns their references."""
    with ctx.uow() as uow:
        hits = search_svc(args.query, actor=ctx.actor, uow=uow, kinds=args.kinds, limit=10)
    if not hits:
        return SearchRecordsResult(hits=[], text=render("tool.search.none", ctx.locale, query=args.query))
    rows = [(h.ref, h.name, h.detail) for h in hits]
    text = render("tool.search.header", ctx.locale, query=args.query, n=len(hits)) + "\n" + table(
        [render("tool.col.ref", ctx.locale), render("tool.col.name", ctx.locale),
         render("tool.col.detail", ctx.locale)], rows)
    return SearchRecordsResult(hits=hits, text=text)
