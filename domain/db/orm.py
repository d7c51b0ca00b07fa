"""Classical (imperative) mapping: the domain classes stay plain Python."""
from __future__ import annotations

from sqlalchemy.orm import registry, relationship

from domain.db import tables as t
from domain.model.confirmations import PendingAction
from domain.model.accounts import Account, Contact
from domain.model.activities import Activity
from domain.model.approvals import ApprovalDecision, ApprovalRequest, ApprovalStep
from domain.model.leads import Lead
from domain.model.opportunities import Opportunity, OpportunityMember, StageChange
from domain.model.records import (
    AssignmentRule,
    AuditEntry,
    GatePolicy,
    OutboxMessage,
    StagePolicy,
)
from domain.model.catalog import DiscountBand, PriceBook, PriceBookEntry, Product
from domain.model.quotes import Quote, QuoteLine
from domain.model.billing import Allocation, Invoice, Payment, PromiseToPay, RevenueEntry
from domain.model.contracts import ChangeOrder, Contract, PaymentMilestone
from domain.model.delivery import DeliveryMilestone, Order
from domain.model.incentives import Contribution, IncentivePlan
from domain.model.users import Team, User, UserRole

mapper_registry = registry()
_started = False


def start_mappers() -> None:
    global _started
    if _started:
        return
    _started = True
    m = mapper_registry.map_imperatively
    m(Team, t.teams)
    m(UserRole, t.user_roles)
    m(User, t.users, properties={
        "role_links": relationship(UserRole, cascade="all, delete-orphan", lazy="selectin"),
    })
    m(Account, t.accounts)
    m(Contact, t.contacts)
    m(Lead, t.leads)
    m(Activity, t.activities)
    m(OpportunityMember, t.opportunity_members)
    m(StageChange, t.stage_history)
    # reached_stages belongs to the database's triggers (migration 0015), never to the model.
    m(Opportunity, t.opportunities, version_id_col=t.opportunities.c.version,
      exclude_properties=["reached_stages"], properties={
        "members": relationship(
            OpportunityMember, cascade="all, delete-orphan", lazy="selectin",
            order_by=t.opportunity_members.c.id,
        ),
        "history": relationship(
            StageChange, cascade="all, delete-orphan", lazy="selectin",
            order_by=t.stage_history.c.id,
        ),
    })
    m(ApprovalStep, t.approval_steps)
    m(ApprovalDecision, t.approval_decisions)
    m(ApprovalRequest, t.approval_requests, properties={
        "steps": relationship(
            ApprovalStep, cascade="all, delete-orphan", lazy="selectin",
            order_by=t.approval_steps.c.seq,
        ),
        "decisions": relationship(
            ApprovalDecision, cascade="all, delete-orphan", lazy="selectin",
            order_by=t.approval_decisions.c.step_seq,
        ),
    })
    m(StagePolicy, t.stage_policies)
    m(GatePolicy, t.gate_policies)
    m(AssignmentRule, t.assignment_rules)
    m(Product, t.products)
    m(PriceBook, t.price_books)
    m(PriceBookEntry, t.price_book_entries)
    m(DiscountBand, t.discount_bands)
    m(QuoteLine, t.quote_lines)
    m(Quote, t.quotes, properties={
        "lines": relationship(QuoteLine, cascade="all, delete-orphan", lazy="selectin",
                              order_by=t.quote_lines.c.position),
    })
    m(PaymentMilestone, t.contract_milestones)
    m(ChangeOrder, t.change_orders)
    m(Contract, t.contracts, version_id_col=t.contracts.c.version, properties={
        "milestones": relationship(PaymentMilestone, cascade="all, delete-orphan", lazy="selectin",
                                   order_by=t.contract_milestones.c.seq),
        "changes": relationship(ChangeOrder, cascade="all, delete-orphan", lazy="selectin",
                                order_by=t.change_orders.c.id),
    })
    m(DeliveryMilestone, t.delivery_milestones)
    m(Order, t.orders, properties={
        "milestones": relationship(DeliveryMilestone, cascade="all, delete-orphan", lazy="selectin",
                                   order_by=t.delivery_milestones.c.seq),
    })
    # The copied owner (and collection date) belong to the database's triggers (migration 0013).
    m(Invoice, t.invoices, exclude_properties=["owner_id"])
    m(Allocation, t.payment_allocations, exclude_properties=["owner_id", "collected_on"])
    m(Payment, t.payments, properties={
        "allocations": relationship(Allocation, cascade="all, delete-orphan", lazy="selectin",
                                    order_by=t.payment_allocations.c.id,
                                    primaryjoin=t.payments.c.id == t.payment_allocations.c.payment_id,
                                    foreign_keys=[t.payment_allocations.c.payment_id]),
    })
    m(PromiseToPay, t.promises_to_pay)
    m(RevenueEntry, t.revenue_entries)
    m(IncentivePlan, t.incentive_plans)
    m(Contribution, t.contributions)
    m(AuditEntry, t.audit_log)
    m(OutboxMessage, t.outbox)
    m(PendingAction, t.pending_actions)
