"""Analytics tools (经营分析): pipeline, forecast vs target, win rate, cycle, funnel, stuck and top deals,
approval throughput, receivables aging / DSO, collection rate, reconciliation, period over period; and
setting targets.

Each reads one service of domain/analytics (every number is defined in its DEFINITIONS.md), scoped to
the asker: a rep sees their own deals, a manager their reporting line, finance / sales ops everything.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from domain import analytics as an
from domain.analytics.scope import team_id
from domain.analytics.targets import TargetView
from domain.analytics.views import (Aging, Breakdown, CollectionRate, CycleTime, DealList, Forecast, Funnel,
                                    GateThroughput, PeriodComparison, Reconciliation, WinRate)
from prompts.messages import render
from tools import analytics_format as fmt
from tools.charts import Chart, aging_chart, forecast_chart, funnel_chart, pipeline_chart
from tools.context import ToolContext
from tools.format import money
from tools.registry import FINANCE, MANAGER, REP, ToolResult, tool
from tools.resolve import person

WHO = (REP, MANAGER, FINANCE)  # analytics is for sales, their managers, sales ops and finance
# What makes a message a report question, for the tool selection an LLM gets: the tools that answer a
# question about deals carry the deal words too, so "stuck deals" does not lose to every deal command.
REPORT_WORDS = ("report", "breakdown", "报表", "统计", "分析")
PERIOD_WORDS = ("this quarter", "last quarter", "next quarter", "last month", "next month", "this year", "last year",
                "季度", "本月", "上个月", "下个月", "今年", "去年", "明年")
DEAL_WORDS = ("deal", "deals", "opportunities", "商机")
PERIOD_HELP = ("reporting period: this_month, last_month, next_month, this_quarter, last_quarter, next_quarter, "
               "this_year, last_year, next_year, or one by name: 2026-Q3, 2026-11, 2026")
PeriodName = Annotated[str, AfterValidator(fmt.period_name)]


def _period(default: str | None):
    return Field(default, min_length=1, max_length=30, description=PERIOD_HELP,
                 examples=["this_quarter", "last_year", "2026-Q3", "2026-11"])


class Narrowing(BaseModel):
    team: str | None = Field(None, min_length=1, max_length=100, description="only this team's people (team name)",
                             examples=["East", "华东销售部"])
    owner: str | None = Field(None, min_length=1, max_length=200,
                              description='only this person\'s deals: "me", a name or an email',
                              examples=["me", "Li Na", "王芳"])


def _scope(uow, ctx: ToolContext, args: Narrowing) -> dict:
    """The service's team / owner narrowing; someone outside the asker's view is refused by the service."""
    owner = person(uow, ctx, args.owner, field="owner") if args.owner else None
    return {"team": args.team, "owner": owner}


# --- pipeline --------------------------------------------------------------------------------------

class PipelineArgs(Narrowing):
    by: Literal["stage", "owner", "team", "region", "product", "quarter", "month"] = Field(
        "stage", description="group the open deals by this (quarter / month: of the expected close date)")
    period: PeriodName | None = _period(None)


class PipelineResult(ToolResult):
    report: Breakdown
    chart: Chart | None = None


@tool(audience=WHO, keywords=REPORT_WORDS + PERIOD_WORDS + DEAL_WORDS + (
    "pipeline", "stage", "close quarter", "close month", "by owner", "by region", "by team", "by product", "管道",
    "销售漏斗", "阶段", "预计成交", "按销售", "区域", "按团队", "按产品"))
def pipeline_report(args: PipelineArgs, ctx: ToolContext) -> PipelineResult:
    """Open pipeline totals grouped by stage, owner, team, region, product or close quarter/month, for a period."""
    with ctx.uow() as uow:
        view = an.pipeline(args.by, args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    chart = pipeline_chart(view, ctx.locale) if args.by == "stage" else None
    return PipelineResult(report=view, chart=chart, text=fmt.pipeline_text(view, ctx.locale))


# --- forecast --------------------------------------------------------------------------------------

class PeriodArgs(Narrowing):
    period: PeriodName = _period("this_quarter")


class ForecastResult(ToolResult):
    report: Forecast
    chart: Chart | None = None


@tool(audience=WHO, keywords=REPORT_WORDS + PERIOD_WORDS + ("forecast", "target", "quota", "attainment", "预测", "目标",
                                                            "达成"))
def forecast_report(args: PeriodArgs, ctx: ToolContext) -> ForecastResult:
    """Forecast for a period: won, commit, best case, pipeline and weighted forecast against targets, per owner."""
    with ctx.uow() as uow:
        view = an.forecast(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return ForecastResult(report=view, chart=forecast_chart(view, ctx.locale), text=fmt.forecast_text(view, ctx.locale))


# --- win rate --------------------------------------------------------------------------------------

class WinRateArgs(Narrowing):
    by: Literal["none", "owner", "team", "region", "quarter"] = Field(
        "none", description="one total, or per owner / team / region / quarter of closing")
    period: PeriodName = _period("this_year")


class WinRateResult(ToolResult):
    report: WinRate


@tool(audience=WHO, keywords=REPORT_WORDS + PERIOD_WORDS + ("win rate", "win-rate", "deal size", "赢单率", "胜率", "赢率",
                                                            "客单价"))
def win_rate_report(args: WinRateArgs, ctx: ToolContext) -> WinRateResult:
    """Win rate of deals closed in a period (won / (won + lost)), won amount and average deal size, by group."""
    with ctx.uow() as uow:
        view = an.win_rate(args.by, args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return WinRateResult(report=view, text=fmt.win_rate_text(view, ctx.locale))


# --- sales cycle -----------------------------------------------------------------------------------

class CycleTimeResult(ToolResult):
    report: CycleTime


@tool(audience=WHO, keywords=REPORT_WORDS + ("sales cycle", "cycle time", "days to win", "time in stage", "how long",
                                             "take to close", "stage", "销售周期", "成交周期", "停留", "阶段") + DEAL_WORDS)
def cycle_time_report(args: PeriodArgs, ctx: ToolContext) -> CycleTimeResult:
    """Sales cycle: median days deals spend in each stage, and median days from first stage to won, for a period."""
    with ctx.uow() as uow:
        view = an.cycle_time(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return CycleTimeResult(report=view, text=fmt.cycle_time_text(view, ctx.locale))


# --- funnel ----------------------------------------------------------------------------------------

class FunnelResult(ToolResult):
    report: Funnel
    chart: Chart | None = None


@tool(audience=WHO, keywords=REPORT_WORDS + ("funnel", "conversion", "leads", "漏斗", "转化", "转化率", "线索"))
def funnel_report(args: PeriodArgs, ctx: ToolContext) -> FunnelResult:
    """Conversion funnel for a period: leads → converted → opportunities → each stage reached → won."""
    with ctx.uow() as uow:
        view = an.funnel(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return FunnelResult(report=view, chart=funnel_chart(view, ctx.locale), text=fmt.funnel_text(view, ctx.locale))


# --- stuck and top deals ---------------------------------------------------------------------------

class StuckDealsArgs(Narrowing):
    days: int = Field(30, ge=1, le=3650, description="no stage change for at least this many days")
    limit: int = Field(10, ge=1, le=100, description="list at most this many (the largest)")


class DealsReportResult(ToolResult):
    report: DealList


@tool(audience=WHO, keywords=("stuck", "stalled", "stale", "no movement", "past close", "slipped", "停滞", "卡住",
                              "没动", "没有进展", "未推进", "推进") + DEAL_WORDS)
def stuck_deals(args: StuckDealsArgs, ctx: ToolContext) -> DealsReportResult:
    """Open deals stuck in their stage for N+ days or already past their expected close date, largest first."""
    with ctx.uow() as uow:
        view = an.stuck_deals(args.days, args.limit, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return DealsReportResult(report=view, text=fmt.deals_text(view, ctx.locale))


class TopDealsArgs(Narrowing):
    period: PeriodName = _period("this_month")
    limit: int = Field(5, ge=1, le=50, description="how many deals")


@tool(audience=WHO, keywords=("top", "biggest", "largest", "closing", "最大", "大商机", "即将成交", "预计成交")
      + DEAL_WORDS)
def top_deals(args: TopDealsArgs, ctx: ToolContext) -> DealsReportResult:
    """The largest open deals expected to close in a period (top N by amount)."""
    with ctx.uow() as uow:
        view = an.top_deals(args.period, args.limit, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return DealsReportResult(report=view, text=fmt.deals_text(view, ctx.locale))


# --- approvals -------------------------------------------------------------------------------------

class GateThroughputResult(ToolResult):
    report: GateThroughput


@tool(audience=WHO, keywords=("approval", "throughput", "turnaround", "approval time", "审批", "审批时效",
                              "审批效率", "审批耗时", "审批周期"))
def gate_throughput(args: PeriodArgs, ctx: ToolContext) -> GateThroughputResult:
    """Approval throughput per kind (ATI, ATB, ATC, discount, …): pending now, decided in a period, hours to decide."""
    with ctx.uow() as uow:
        view = an.gate_throughput(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return GateThroughputResult(report=view, text=fmt.gates_text(view, ctx.locale))


# --- cash ------------------------------------------------------------------------------------------

class AgingArgs(Narrowing):
    as_of: date | None = Field(None, description="YYYY-MM-DD; default today")


class AgingResult(ToolResult):
    report: Aging
    chart: Chart | None = None


@tool(audience=WHO, keywords=("aging", "ageing", "dso", "overdue", "by ar", "per ar", "per owner", "by owner", "账龄",
                              "逾期应收", "客户经理"))
def receivables_aging(args: AgingArgs, ctx: ToolContext) -> AgingResult:
    """Receivables aging per AR (not yet due, 1-30, 31-60, 61-90, 90+ days overdue) with totals and DSO."""
    with ctx.uow() as uow:
        view = an.aging(args.as_of, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return AgingResult(report=view, chart=aging_chart(view, ctx.locale), text=fmt.aging_text(view, ctx.locale))


class CollectionRateResult(ToolResult):
    report: CollectionRate


@tool(audience=WHO, keywords=("collection rate", "collected vs due", "回款率", "收款率"))
def collection_rate(args: PeriodArgs, ctx: ToolContext) -> CollectionRateResult:
    """Collection rate per AR: of the invoices due in a period, the share already paid."""
    with ctx.uow() as uow:
        view = an.collection_rate(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return CollectionRateResult(report=view, text=fmt.collection_text(view, ctx.locale))


class ReconciliationResult(ToolResult):
    report: Reconciliation


@tool(audience=WHO, keywords=("reconciliation", "reconcile", "won vs invoiced", "invoiced", "revenue", "对账",
                              "收入"))
def reconciliation_report(args: PeriodArgs, ctx: ToolContext) -> ReconciliationResult:
    """Revenue reconciliation of deals won in a period: won vs contracted vs invoiced vs collected vs recognised."""
    with ctx.uow() as uow:
        view = an.reconciliation(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return ReconciliationResult(report=view, text=fmt.reconciliation_text(view, ctx.locale))


# --- period over period ----------------------------------------------------------------------------

class ComparisonResult(ToolResult):
    report: PeriodComparison


@tool(audience=WHO, keywords=("compare", "comparison", "versus", "vs", "qoq", "yoy", "quarter over quarter", "month over month",
                              "year over year", "环比", "同比", "对比", "比较", "相比") + PERIOD_WORDS)
def period_comparison(args: PeriodArgs, ctx: ToolContext) -> ComparisonResult:
    """A period against the one before: new pipeline, won amount and count, win rate, deal size, invoiced, collected."""
    with ctx.uow() as uow:
        view = an.period_over_period(args.period, actor=ctx.actor, uow=uow, **_scope(uow, ctx, args))
    return ComparisonResult(report=view, text=fmt.comparison_text(view, ctx.locale))


# --- targets ---------------------------------------------------------------------------------------

class SetTargetArgs(BaseModel):
    person: str | None = Field(None, min_length=1, max_length=200, description='whose target: a name, an email or "me"',
                               examples=["Li Na", "王芳", "rep2@example.com"])
    team: str | None = Field(None, min_length=1, max_length=100, description="or a team's target (team name)",
                             examples=["East"])
    period: PeriodName = _period("this_quarter")
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2,
                            description="the target in the reporting currency as a plain number (2M = 2000000)",
                            examples=[2000000])

    @model_validator(mode="after")
    def _one_holder(self) -> SetTargetArgs:
        if (self.person is None) == (self.team is None):
            raise ValueError("give either person or team")
        return self


class TargetResult(ToolResult):
    target: TargetView


@tool(audience=(MANAGER,), keywords=("target", "quota", "goal", "set the", "target for", "target to", "目标", "销售目标", "指标",
                                      "设为", "设置", "设定", "定为"), writes=True)
def set_target(args: SetTargetArgs, ctx: ToolContext) -> TargetResult:
    """Set (or replace) a person's or a team's sales target for a period, in the reporting currency."""
    with ctx.uow() as uow:
        holder = ({"user_id": person(uow, ctx, args.person, field="person")} if args.person
                  else {"team_id": team_id(uow, args.team)})
        view = an.set_target({**holder, "period": args.period, "amount": args.amount}, actor=ctx.actor, uow=uow)
        uow.commit()
    values = dict(holder=view.holder, period=fmt.period_text(view.period, ctx.locale),
                  amount=money(view.amount, view.currency))
    if view.previous_amount is None:
        text = render("tool.an.target.set", ctx.locale, **values)
    else:
        text = render("tool.an.target.replaced", ctx.locale, previous=money(view.previous_amount, view.currency),
                      **values)
    return TargetResult(target=view, text=text)
