"""The SR's and FR's part of a deal: the solution summary, the delivery plan and the deliverability sign-off.

All three are notes or sign-offs the gates read (solution review needs both notes; ATC needs the FR's
sign-off); none moves money or a decision, so none asks for confirmation.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from domain.services import opportunities as svc
from domain.services.opportunities import OpportunityView
from prompts.messages import render
from tools.context import ToolContext
from tools.format import day
from tools.registry import DELIVERY, ToolResult, tool
from tools.resolve import resolve

TEAM_WORDS = ("iron triangle", "铁三角")  # not "deal": every deal message would bind these


class DealRef(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="deal reference (OPP-00012 or 12) or name",
                             examples=["OPP-00012", "华东电力扩容"])


class RecordSolutionArgs(DealRef):
    summary: str = Field(min_length=3, max_length=8000, description="the SR's solution in a few sentences: scope, "
                         "architecture, phasing", examples=["Two-wave MES rollout: pilot line first, then all plants"])


class RecordDeliveryPlanArgs(DealRef):
    plan: str = Field(min_length=3, max_length=8000, description="the FR's delivery plan: phases, timeline, "
                      "resources, risks", examples=["Hardware in December, go-live mid-January, final acceptance "
                                                    "by end of February"])


class DealTeamResult(ToolResult):
    deal: OpportunityView


def _text(view: OpportunityView, locale: str, key: str, **extra: object) -> str:
    return render(key, locale, deal=view.ref, name=view.name, **extra)


@tool(audience=(DELIVERY,), keywords=TEAM_WORDS + ("solution", "summary", "方案", "解决方案", "方案概要"),
      writes=True)
def record_solution(args: RecordSolutionArgs, ctx: ToolContext) -> DealTeamResult:
    """Record the SR's solution summary on a deal (the solution review needs it); only the deal's SR."""
    with ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        view = svc.record_solution(opp_id, args.summary, actor=ctx.actor, uow=uow)
        uow.commit()
    return DealTeamResult(deal=view, text=_text(view, ctx.locale, "tool.flow.solution.recorded",
                                                summary=view.solution_summary))


@tool(audience=(DELIVERY,), keywords=TEAM_WORDS + ("delivery plan", "交付计划", "交付方案", "交付安排"),
      writes=True)
def record_delivery_plan(args: RecordDeliveryPlanArgs, ctx: ToolContext) -> DealTeamResult:
    """Record the FR's delivery plan on a deal (the solution review needs it); a new plan voids an earlier sign-off."""
    with ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        was_signed = svc.get_opportunity(opp_id, actor=ctx.actor, uow=uow).deliverability_signed_at is not None
        view = svc.record_delivery_plan(opp_id, args.plan, actor=ctx.actor, uow=uow)
        uow.commit()
    text = _text(view, ctx.locale, "tool.flow.plan.recorded", plan=view.delivery_plan)
    if was_signed and view.deliverability_signed_at is None:  # say so: ATC now waits for a new sign-off
        text += "\n" + _text(view, ctx.locale, "tool.flow.plan.signoff_voided")
    return DealTeamResult(deal=view, text=text)


@tool(audience=(DELIVERY,), keywords=TEAM_WORDS + ("deliverability", "deliverable", "sign off", "signed off",
                                                  "可交付性", "可交付"), writes=True)
def sign_off_deliverability(args: DealRef, ctx: ToolContext) -> DealTeamResult:
    """The deal's FR signs off that its delivery plan can be delivered as promised (ATC needs it); only the FR."""
    with ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        view = svc.sign_off_deliverability(opp_id, actor=ctx.actor, uow=uow)
        uow.commit()
    return DealTeamResult(deal=view, text=_text(view, ctx.locale, "tool.flow.deliverability.signed",
                                                on=day(view.deliverability_signed_at)))
