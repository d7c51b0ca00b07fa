"""What the analytics services return: plain frozen data, money in the reporting currency."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import Field

from domain.analytics.periods import Period
from domain.services.schemas import View


class Scoped(View):
    """Common to every answer: whose numbers these are and in which currency."""

    currency: str  # the reporting currency
    scope: str  # "all", "team", "self": what the asker's rights cover
    # The owners counted (None = everyone). Excluded from dumps: a director's list runs to
    # thousands of ids the language model would only pay tokens for.
    owner_ids: list[int] | None = Field(exclude=True)


class BreakdownRow(View):
    key: str  # stable machine key: the stage, owner id, team id, region, quarter, product sku; "" = none
    label: str  # what a person reads ("—" for none)
    count: int
    amount: Decimal
    weighted: Decimal


class Breakdown(Scoped):
    metric: str  # "pipeline"
    by: str
    period: Period | None
    rows: list[BreakdownRow]
    total: BreakdownRow


class ForecastLine(View):
    key: str  # owner id or team id
    label: str
    won: Decimal
    commit: Decimal
    best_case: Decimal
    pipeline: Decimal
    weighted_forecast: Decimal
    target: Decimal
    attainment: Decimal | None  # won / target, as a fraction (0.5 = 50 %)
    coverage: Decimal | None  # weighted_forecast / target


class CategoryTotal(View):
    category: str  # won, commit, best_case, pipeline
    count: int
    amount: Decimal


class Forecast(Scoped):
    period: Period
    categories: list[CategoryTotal]  # always the four, in that order
    weighted_forecast: Decimal
    target: Decimal
    attainment: Decimal | None
    coverage: Decimal | None
    owners: list[ForecastLine]
    teams: list[ForecastLine]


class WinRateRow(View):
    key: str
    label: str
    won: int
    lost: int
    abandoned: int
    win_rate: Decimal | None  # fraction
    won_amount: Decimal
    average_deal: Decimal | None


class WinRate(Scoped):
    period: Period
    by: str  # "none", owner, team, region, quarter
    rows: list[WinRateRow]
    total: WinRateRow


class StageCycle(View):
    stage: str
    spells: int
    median_days: Decimal | None  # rounded to 0.1 day


class CycleTime(Scoped):
    period: Period
    stages: list[StageCycle]  # the five open stages in order
    won_deals: int
    median_days_to_win: Decimal | None


class FunnelStep(View):
    step: str  # leads, converted, opportunities, initiated, solution, bid, negotiate, won
    count: int
    of_previous: Decimal | None  # fraction
    of_first: Decimal | None


class Funnel(Scoped):
    period: Period
    steps: list[FunnelStep]


class DealLine(View):
    opportunity_id: int
    ref: str
    name: str
    account_name: str
    owner_id: int
    owner_name: str
    stage: str
    amount: Decimal  # converted
    deal_currency: str
    deal_amount: Decimal  # as on the deal
    probability: int
    expected_close_date: date | None
    days_in_stage: int
    reasons: list[str]  # stuck deals: no_move, past_close


class DealList(Scoped):
    metric: str  # "stuck_deals", "top_deals"
    period: Period | None
    days: int | None
    count: int  # all that match, not only the listed ones
    amount: Decimal
    deals: list[DealLine]


class GateKindLine(View):
    kind: str
    pending: int
    oldest_pending_hours: Decimal | None
    approved: int
    rejected: int
    expired: int
    cancelled: int
    average_decision_hours: Decimal | None


class GateThroughput(Scoped):
    period: Period
    kinds: list[GateKindLine]  # every approval kind, in vocabulary order
    total: GateKindLine  # kind = "all"


class AgingRow(View):
    key: str  # owner id; "all" for the total
    label: str
    buckets: dict[str, Decimal]  # current, 1-30, 31-60, 61-90, 90+ (all five always)
    total: Decimal
    overdue: Decimal  # everything but current


class Aging(Scoped):
    as_of: date
    owners: list[AgingRow]  # by total desc
    total: AgingRow
    dso_days: Decimal | None  # rounded to 0.1
    invoiced_90_days: Decimal


class CollectionRow(View):
    key: str
    label: str
    due: Decimal
    collected: Decimal
    rate: Decimal | None


class CollectionRate(Scoped):
    period: Period
    owners: list[CollectionRow]  # by due desc
    total: CollectionRow


class Reconciliation(Scoped):
    period: Period
    won_deals: int
    deals_without_contract: int
    won: Decimal
    contracted: Decimal
    invoiced: Decimal
    collected: Decimal
    recognised: Decimal
    gap_won_contracted: Decimal
    gap_contracted_invoiced: Decimal
    gap_invoiced_collected: Decimal


class KpiChange(View):
    kpi: str  # new_pipeline, won_amount, won_count, win_rate, average_deal, invoiced, collected
    current: Decimal | None
    previous: Decimal | None
    change: Decimal | None
    change_pct: Decimal | None  # fraction


class PeriodComparison(Scoped):
    period: Period
    previous: Period
    kpis: list[KpiChange]
