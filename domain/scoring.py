"""Explainable lead score 0-100: BANT + source + engagement, each point with its reason."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.model.vocab import Authority, LeadSource, Timeline

SOURCE_POINTS = {
    LeadSource.REFERRAL: 10, LeadSource.PARTNER: 9, LeadSource.WEBSITE: 7, LeadSource.TRADE_SHOW: 6,
    LeadSource.AD: 4, LeadSource.SOCIAL: 3, LeadSource.OTHER: 2,
}
AUTHORITY_POINTS = {
    Authority.DECISION_MAKER: 20, Authority.INFLUENCER: 12, Authority.USER: 5, Authority.UNKNOWN: 0,
}
TIMELINE_POINTS = {
    Timeline.WITHIN_3_MONTHS: 20, Timeline.WITHIN_6_MONTHS: 14, Timeline.WITHIN_12_MONTHS: 8,
    Timeline.OVER_12_MONTHS: 3, Timeline.UNKNOWN: 0,
}
# Budget bands (in the lead's currency, rough CNY-scale): a stated budget already earns points.
BUDGET_BANDS = ((Decimal(1_000_000), 20), (Decimal(200_000), 15), (Decimal(50_000), 10), (Decimal(0), 5))
POINTS_PER_ACTIVITY, MAX_ENGAGEMENT = 3, 15
NEED_FULL, NEED_SHORT = 15, 8


@dataclass(frozen=True)
class ScoreReason:
    factor: str
    points: int
    why: str


def score_lead(*, budget: Decimal | None, authority: str, need: str | None, timeline: str,
               source: str, activity_count: int) -> tuple[int, list[ScoreReason]]:
    reasons: list[ScoreReason] = []
    if budget is None:
        reasons.append(ScoreReason("budget", 0, "no budget stated"))
    else:
        pts = next(p for floor, p in BUDGET_BANDS if budget >= floor)
        reasons.append(ScoreReason("budget", pts, f"budget {budget:,.0f} stated"))
    a = Authority(authority)
    reasons.append(ScoreReason("authority", AUTHORITY_POINTS[a], f"contact is {a.value.replace('_', ' ')}"))
    text = (need or "").strip()
    if not text:
        reasons.append(ScoreReason("need", 0, "no need described"))
    elif len(text) >= 20:
        reasons.append(ScoreReason("need", NEED_FULL, "need described in detail"))
    else:
        reasons.append(ScoreReason("need", NEED_SHORT, "need mentioned briefly"))
    tl = Timeline(timeline)
    reasons.append(ScoreReason("timeline", TIMELINE_POINTS[tl], f"timeline {tl.value.replace('_', ' ')}"))
    src = LeadSource(source)
    reasons.append(ScoreReason("source", SOURCE_POINTS[src], f"source {src.value.replace('_', ' ')}"))
    eng = min(activity_count * POINTS_PER_ACTIVITY, MAX_ENGAGEMENT)
    reasons.append(ScoreReason("engagement", eng, f"{activity_count} logged activities"))
    total = max(0, min(100, sum(r.points for r in reasons)))
    return total, reasons
