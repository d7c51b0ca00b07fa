"""Deal tools: list, create, update, staff the iron triangle, advance (requesting gates), close.

People are named as people name them: an email, a name (en or zh), or "me" / "我".
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from domain.errors import ApprovalRequired, NotFound, PermissionDenied, ValidationFailed
from domain.model.vocab import Stage
from domain.rbac import UseCase
from domain.services import opportunities as svc
from domain.services.approvals import ApprovalView
from domain.services.base import begin
from domain.services.opportunities import OpportunityView
from prompts.messages import render
from tools.approvals import confirm_signing_gate, kind_label, missing_text, request_gate_on, unkeyed, worded
from tools.context import ToolContext
from tools.format import day, money, table
from tools.registry import ALL, MANAGER, REP, ToolResult, tool
from tools.resolve import person, resolve

DEAL_WORDS = ("deal", "deals", "opportunity", "opportunities", "opp", "商机", "机会点", "项目")


# --- people --------------------------------------------------------------------------------------------

def stage_label(stage: str, locale: str) -> str:
    return render(f"tool.deal.stage.{stage}", locale)


class DealResult(ToolResult):
    deal: OpportunityView


def _deal_text(key: str, d: OpportunityView, locale: str, **extra: object) -> str:
    return render(key, locale, ref=d.ref, name=d.name, account=d.account_name, amount=money(d.amount, d.currency),
                  stage=stage_label(d.stage, locale), probability=d.probability, close=day(d.expected_close_date),
                  owner=d.owner_name, next_step=d.next_step or "-", **extra)


class DealRef(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="deal reference (OPP-00012 or 12) or name",
                             examples=["OPP-00012", "华东电力扩容"])


# --- list_deals ------------------------------------------------------------------------------------------

class ListDealsArgs(BaseModel):
    owner: str | None = Field(None, max_length=200, description='whose deals: a name, an email or "me"',
                              examples=["me", "Wang Fang", "rep2@example.com"])
    stage: Stage | None = Field(None, description="only deals in this stage")
    limit: int = Field(20, ge=1, le=200, description="at most this many deals")


class DealListResult(ToolResult):
    deals: list[OpportunityView]


def _sees_person(uow, ctx: ToolContext, user_id: int) -> bool:
    scope = begin(uow, ctx.actor, UseCase.VIEW_OPPORTUNITY).scope
    return scope.sees_all or bool(scope.stages) or scope.sees_people(user_id)


@tool(audience=(ALL,), keywords=DEAL_WORDS + ("pipeline", "list", "my deals", "管道", "我的商机", "列表", "看看"))
def list_deals(args: ListDealsArgs, ctx: ToolContext) -> DealListResult:
    """List the deals I can see, optionally one person's ("me", a name) or one stage's."""
    with ctx.uow() as uow:
        owner_id = person(uow, ctx, args.owner, field="owner") if args.owner else None
        deals = svc.list_opportunities(actor=ctx.actor, uow=uow, stage=args.stage.value if args.stage else None,
                                       owner_id=owner_id, limit=args.limit)
        # An empty list would hide the real answer: this person's deals are not the asker's to see.
        if owner_id is not None and not deals and not _sees_person(uow, ctx, owner_id):
            raise PermissionDenied(render("tool.deal.not_in_scope", ctx.locale, who=args.owner))
    if not deals:
        return DealListResult(deals=[], text=render("tool.deal.none", ctx.locale))
    rows = [(d.ref, d.name if len(d.name) <= 40 else d.name[:39] + "…", stage_label(d.stage, ctx.locale),
             money(d.amount, d.currency), day(d.expected_close_date), d.owner_name) for d in deals]
    headers = [render("tool.col.ref", ctx.locale), render("tool.col.name", ctx.locale)] + [
        render(f"tool.deal.col.{c}", ctx.locale) for c in ("stage", "amount", "close", "owner")]
    text = render("tool.deal.list_header", ctx.locale, n=len(deals)) + "\n" + table(headers, rows, right=(3,))
    return DealListResult(deals=deals, text=text)


# --- create / update -------------------------------------------------------------------------------------

class CreateOpportunityArgs(BaseModel):
    account: str = Field(min_length=1, max_length=200, description="the customer: ACC-00003 or its name",
                         examples=["ACC-00003", "华东电力"])
    name: str = Field(min_length=1, max_length=200, description="what the deal is", examples=["MES phase 2"])
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2, description="deal value (2M = 2000000)",
                            examples=[2000000])
    currency: str = Field("CNY", min_length=3, max_length=3, description="ISO code: CNY, USD, EUR, …")
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD")
    next_step: str | None = Field(None, max_length=4000)


@tool(audience=(REP,), keywords=DEAL_WORDS + ("new", "create", "新", "创建", "新建"), writes=True)
def create_opportunity(args: CreateOpportunityArgs, ctx: ToolContext) -> DealResult:
    """Create a deal (opportunity) on an existing account, in stage qualify, owned by me."""
    with ctx.uow() as uow:
        account_id = resolve(uow, ctx.actor, "account", args.account, field="account")
        data = args.model_dump(exclude_none=True, exclude={"account"}, mode="json")
        view = svc.create_opportunity({**data, "account_id": account_id}, actor=ctx.actor, uow=uow)
        uow.commit()
    return DealResult(deal=view, text=_deal_text("tool.deal.created", view, ctx.locale))


class UpdateOpportunityArgs(DealRef):
    amount: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2)
    currency: str | None = Field(None, min_length=3, max_length=3)
    expected_close_date: date | None = Field(None, description="YYYY-MM-DD")
    next_step: str | None = Field(None, max_length=4000)
    name: str | None = Field(None, min_length=1, max_length=200)
    competitors: list[str] | None = Field(None, max_length=20, description="the full list of competitors")


@tool(audience=(REP,), keywords=DEAL_WORDS + ("update", "change", "amount", "close date", "next step", "competitor",
                                              "更新", "修改", "金额", "下一步", "竞争对手", "预计"), writes=True)
def update_opportunity(args: UpdateOpportunityArgs, ctx: ToolContext) -> DealResult:
    """Change a deal's amount, currency, expected close date, next step, name or competitors."""
    with worded(ctx.locale), ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        data = args.model_dump(exclude_none=True, exclude={"opportunity"}, mode="json")
        view = svc.update_opportunity(opp_id, data, actor=ctx.actor, uow=uow)
        uow.commit()
    return DealResult(deal=view, text=_deal_text("tool.deal.updated", view, ctx.locale))


# --- iron triangle -------------------------------------------------------------------------------------------

class AssignTriangleArgs(DealRef):
    ar: str | None = Field(None, max_length=200, description="account responsible (deal owner): name, email or me")
    sr: str | None = Field(None, max_length=200, description="solution responsible (方案经理)")
    fr: str | None = Field(None, max_length=200, description="fulfillment responsible (交付经理)")


@tool(audience=(REP, MANAGER), keywords=("iron triangle", "ar", "sr", "fr", "assign", "staff", "铁三角", "指派",
                                         "方案经理", "交付经理", "客户经理"), writes=True)
def assign_iron_triangle(args: AssignTriangleArgs, ctx: ToolContext) -> DealResult:
    """Seat a deal's iron triangle: AR (owner), SR (solution) and/or FR (fulfillment), by name or email."""
    with worded(ctx.locale), ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        seats = {f"{seat}_id": person(uow, ctx, who, field=seat)
                 for seat, who in (("ar", args.ar), ("sr", args.sr), ("fr", args.fr)) if who}
        view = svc.assign_iron_triangle(opp_id, actor=ctx.actor, uow=uow, **seats)
        uow.commit()
    seat = {m.role: m.name for m in view.members}
    return DealResult(deal=view, text=_deal_text("tool.deal.triangle", view, ctx.locale, ar=seat.get("AR", "-"),
                                                 sr=seat.get("SR", "-"), fr=seat.get("FR", "-")))


# --- advance / close --------------------------------------------------------------------------------------------

class AdvanceStageArgs(DealRef):
    to_stage: Stage | None = Field(None, description="the next stage; leave empty for the next one in order")


class AdvanceResult(ToolResult):
    deal: OpportunityView | None = None
    approval: ApprovalView | None = Field(None, description="the gate request opened instead of moving")
    approvers: str = ""
    already_pending: bool = False


@tool(audience=(REP, MANAGER), keywords=DEAL_WORDS + ("advance", "move", "stage", "next stage", "推进", "阶段",
                                                      "下一阶段", "进入"), writes=True, confirm=confirm_signing_gate)
def advance_stage(args: AdvanceStageArgs, ctx: ToolContext) -> AdvanceResult:
    """Move a deal to its next stage; when a decision gate stands in the way, request it."""
    with worded(ctx.locale), ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        try:
            view = svc.advance_stage(opp_id, args.to_stage.value if args.to_stage else None,
                                     actor=ctx.actor, uow=uow)
        except ApprovalRequired as e:
            gate = e.details.get("gate")
            if not gate or e.missing:
                raise _gate_blocked(e, gate, opp_id, ctx) from None
            # To the user moving the deal and asking for its gate are one step; a request already
            # waiting is reported by request_gate_on (nothing new is opened).
            requested = request_gate_on(uow, ctx, opp_id, gate)
            uow.commit()
            return AdvanceResult(approval=requested.approval, text=requested.text, approvers=requested.approvers,
                                 already_pending=requested.already_pending)
        uow.commit()
    return AdvanceResult(deal=view, text=_deal_text("tool.deal.moved", view, ctx.locale))


def _gate_blocked(e: ApprovalRequired, gate: str | None, opp_id: int, ctx: ToolContext) -> ApprovalRequired:
    if not gate:
        return e
    return ApprovalRequired(render("tool.gate.missing", ctx.locale, ref=f"OPP-{opp_id:05d}",
                                   gate=kind_label(gate, ctx.locale), missing=missing_text(e, ctx.locale)),
                            field=e.field, missing=e.missing, details=unkeyed(e.details))


class CloseOpportunityArgs(DealRef):
    outcome: Literal["lost", "abandoned"] = Field(
        description="lost (the customer chose someone else) or abandoned (we stop pursuing it)")
    reason: str = Field(min_length=3, max_length=500, description="why", examples=["price", "客户预算取消"])


@tool(audience=(REP, MANAGER), keywords=DEAL_WORDS + ("lost", "lose", "abandon", "close", "drop", "输单", "丢单",
                                                      "放弃", "关闭"), writes=True)
def close_opportunity(args: CloseOpportunityArgs, ctx: ToolContext) -> DealResult:
    """Mark a deal lost or abandoned, with the reason; its open quotes and approvals are closed too."""
    with worded(ctx.locale), ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        view = svc.close_opportunity(opp_id, args.outcome, args.reason, actor=ctx.actor, uow=uow)
        uow.commit()
    return DealResult(deal=view, text=_deal_text("tool.deal.closed", view, ctx.locale, reason=args.reason.strip()))
