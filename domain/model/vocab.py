"""The closed vocabularies of the LTC core: one spelling per state, role and kind."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SALES_REP = "sales_rep"  # AR, 客户经理
    SOLUTION_MANAGER = "solution_manager"  # SR, 方案经理
    FULFILLMENT_MANAGER = "fulfillment_manager"  # FR, 交付经理
    SALES_MANAGER = "sales_manager"
    DIRECTOR = "director"
    FINANCE = "finance"
    LEGAL = "legal"
    SALES_OPS = "sales_ops"
    ADMIN = "admin"


class Locale(StrEnum):
    ZH = "zh"
    EN = "en"


class LeadSource(StrEnum):
    WEBSITE = "website"
    TRADE_SHOW = "trade_show"
    REFERRAL = "referral"
    SOCIAL = "social"
    AD = "ad"
    PARTNER = "partner"
    OTHER = "other"


class LeadStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    NURTURING = "nurturing"
    QUALIFIED = "qualified"
    CONVERTED = "converted"
    DISQUALIFIED = "disqualified"


class Timeline(StrEnum):
    WITHIN_3_MONTHS = "within_3_months"
    WITHIN_6_MONTHS = "within_6_months"
    WITHIN_12_MONTHS = "within_12_months"
    OVER_12_MONTHS = "over_12_months"
    UNKNOWN = "unknown"


class Authority(StrEnum):
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"
    UNKNOWN = "unknown"


class ActivityKind(StrEnum):
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    NOTE = "note"


class Tier(StrEnum):
    STRATEGIC = "strategic"
    KEY = "key"
    STANDARD = "standard"


class DecisionChainRole(StrEnum):
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    TECHNICAL_EVALUATOR = "technical_evaluator"
    USER = "user"
    GATEKEEPER = "gatekeeper"


class Stage(StrEnum):
    QUALIFY = "qualify"
    INITIATED = "initiated"
    SOLUTION = "solution"
    BID = "bid"
    NEGOTIATE = "negotiate"
    WON = "won"
    LOST = "lost"
    ABANDONED = "abandoned"


class MemberRole(StrEnum):
    """Iron-triangle seats (AR is the owner) plus the extra roles a deal team may carry."""

    SR = "SR"
    FR = "FR"
    PRESALES = "presales"
    LEGAL = "legal"
    FINANCE = "finance"
    PARTNER = "partner"
    EXECUTIVE_SPONSOR = "executive_sponsor"
    OTHER = "other"


class ApprovalKind(StrEnum):
    ATI = "ATI"  # 立项决策
    SOLUTION_REVIEW = "solution_review"  # 方案评审
    ATB = "ATB"  # 投标决策
    ATC = "ATC"  # 签约决策
    DISCOUNT = "discount"
    CONTRACT_CHANGE = "contract_change"


GATE_KINDS = (ApprovalKind.ATI, ApprovalKind.SOLUTION_REVIEW, ApprovalKind.ATB, ApprovalKind.ATC)


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class StepStatus(StrEnum):
    WAITING = "waiting"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"


class Outcome(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVISE = "revise"  # "request changes": not approved as it stands; the requester reworks it and asks again


class ApproverScope(StrEnum):
    """Which holders of the step's role may decide."""

    CHAIN = "chain"  # in the deal owner's management chain
    REGION = "region"  # in the deal's region
    ANY = "any"  # anyone holding the role


# ISO 4217 codes we accept; a closed list keeps typos ("RMB", "usd ") out of money columns.
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "SGD", "JPY", "GBP", "AUD", "CAD", "CHF", "KRW", "TWD")


def values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]
