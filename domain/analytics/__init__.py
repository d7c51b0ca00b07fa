"""Pipeline analytics: the read side. SQL aggregates over the live tables, scoped to the asker.

What every number means is written down in DEFINITIONS.md next to this file.
"""
from domain.analytics.cash import aging, collection_rate, reconciliation
from domain.analytics.gates import gate_throughput
from domain.analytics.cycle import cycle_time
from domain.analytics.performance import funnel, period_over_period, win_rate
from domain.analytics.periods import Period, period_named, previous
from domain.analytics.pipeline import PIPELINE_BY, forecast, pipeline, stuck_deals, top_deals
from domain.analytics.targets import TargetSet, TargetView, list_targets, set_target

__all__ = ["aging", "collection_rate", "reconciliation", "gate_throughput", "cycle_time", "funnel",
           "period_over_period", "win_rate", "Period", "period_named", "previous", "PIPELINE_BY", "forecast",
           "pipeline", "stuck_deals", "top_deals", "TargetSet", "TargetView", "list_targets", "set_target"]
