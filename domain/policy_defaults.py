"""Seeded policy data: stage probabilities, decision gates, and the system user.

`ltc init` writes these once into an empty database; admins change the rows, not this file.
"""
from __future__ import annotations

from decimal import Decimal

from domain.model.catalog import DiscountBand
from domain.model.incentives import IncentivePlan
from domain.model.records import GatePolicy, StagePolicy
from domain.model.users import User, UserRole
from domain.model.vocab import Role

STAGE_PROBABILITIES = {
    "qualify": 10, "initiated": 20, "solution": 40, "bid": 60, "negotiate": 80,
    "won": 100, "lost": 0, "abandoned": 0,
}

GATES = [
    {"kind": "ATI", "from_stage": "qualify", "to_stage": "initiated",
     "preconditions": ["triangle_complete", "need_and_budget"],
     "steps": [{"role": "sales_manager", "scope": "chain"}]},
    {"kind": "solution_review", "from_stage": "initiated", "to_stage": "solution",
     "preconditions": ["solution_summary", "delivery_plan"],
     "steps": [{"role": "sales_manager", "scope": "chain"}]},
    {"kind": "ATB", "from_stage": "solution", "to_stage": "bid",
     "preconditions": ["approved_quote"],
     "steps": [{"role": "sales_manager", "scope": "chain"}, {"role": "director", "scope": "chain"}]},
    {"kind": "ATC", "from_stage": "negotiate", "to_stage": "won",
     "preconditions": ["deliverability_signed", "contract_under_review"],
     "steps": [{"role": "director", "scope": "chain"}, {"role": "finance", "scope": "any"}]},
]

# Discount policy (data): the first matching band by priority decides who approves.
DISCOUNT_BANDS = [
    {"priority": 10, "label": "≤10 % on deals up to 5M with margin ≥15 %: automatic",
     "max_discount_pct": "10", "max_amount": "5000000", "min_margin_pct": "15", "steps": []},
    {"priority": 20, "label": "≤20 %: sales manager",
     "max_discount_pct": "20", "max_amount": None, "min_margin_pct": None,
     "steps": [{"role": "sales_manager", "scope": "chain"}]},
    {"priority": 30, "label": "≤30 %: director, then finance",
     "max_discount_pct": "30", "max_amount": None, "min_margin_pct": None,
     "steps": [{"role": "director", "scope": "chain"}, {"role": "finance", "scope": "any"}]},
]

# Contracts: a plan seeded as advance / on delivery acceptance / retention until final acceptance.
DEFAULT_PAYMENT_TERMS_DAYS = 30
DEFAULT_PAYMENT_PLAN = [
    {"label": "Advance on signing / 预付款", "pct": "30", "trigger": "signing"},
    {"label": "On delivery acceptance / 到货验收款", "pct": "60", "trigger": "delivery_acceptance"},
    {"label": "On final acceptance / 终验款", "pct": "10", "trigger": "final_acceptance"},
]
# Who approves a change order to a signed contract.
CHANGE_ORDER_STEPS = [{"role": "director", "scope": "chain"}, {"role": "finance", "scope": "any"}]

# Iron-triangle incentive: a pool of collected cash, split by role weight, then by recorded contribution.
INCENTIVE_PLAN = {"name": "Iron triangle 2026", "pool_pct": "2.00", "ar_pct": "40", "sr_pct": "30", "fr_pct": "30"}

SYSTEM_EMAIL = "system@ltc.local"


def seed_policies(uow) -> bool:
    """Insert default policies and the system user when missing. Returns True if it wrote."""
    wrote = False
    if not uow.policies.stage_probabilities():
        for stage, p in STAGE_PROBABILITIES.items():
            uow.policies.add(StagePolicy(stage=stage, probability=p))
        wrote = True
    if not uow.policies.gates():
        for g in GATES:
            uow.policies.add(GatePolicy(**{k: (list(v) if isinstance(v, list) else v) for k, v in g.items()}))
        wrote = True
    if not uow.catalog.discount_bands():
        for band in DISCOUNT_BANDS:
            uow.catalog.add(DiscountBand(
                priority=band["priority"], label=band["label"], steps=list(band["steps"]),
                max_discount_pct=Decimal(band["max_discount_pct"]),
                max_amount=Decimal(band["max_amount"]) if band["max_amount"] else None,
                min_margin_pct=Decimal(band["min_margin_pct"]) if band["min_margin_pct"] else None))
        wrote = True
    if uow.finance.incentive_plan() is None:
        uow.finance.add(IncentivePlan(**{k: (Decimal(v) if k.endswith("_pct") else v)
                                         for k, v in INCENTIVE_PLAN.items()}))
        wrote = True
    if uow.users.by_email(SYSTEM_EMAIL) is None:
        uow.users.add(User(email=SYSTEM_EMAIL, name_en="LTC system", name_zh="系统", locale="en",
                           role_links=[UserRole(role=Role.ADMIN.value)]))
        wrote = True
    return wrote
