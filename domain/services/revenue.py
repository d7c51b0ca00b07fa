"""Revenue recognition (simplified): at customer acceptance of delivery milestones, cumulative catch-up.

Each delivery milestone carries a share of the contract value (its revenue_pct, the shares add up to
100 %). Recognised revenue is always value × (shares of accepted milestones) / 100, and exactly the
value once every milestone is accepted. Each recognition posts the difference to what was already
recognised, so a change order's new value is caught up (up or down) on approval.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.actor import Actor
from domain.model.billing import RevenueEntry
from domain.model.contracts import Contract
from domain.model.events import RevenueRecognised
from domain.model.quotes import HUNDRED, cents
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, emit
from domain.services.contract_access import visible_contract
from domain.services.schemas import View


class RevenueEntryView(View):
    amount: Decimal
    recognised_on: date
    reason: str


class RevenueView(View):
    contract_ref: str
    currency: str
    value: Decimal
    recognised: Decimal
    entries: list[RevenueEntryView]


def target_for(uow, contract: Contract) -> Decimal:
    order = uow.orders.for_contract(contract.id)
    if order is None or not order.milestones:
        return Decimal("0")
    if order.all_accepted():
        return contract.value
    return cents(contract.value * order.accepted_share() / HUNDRED)


def catch_up(uow, ctx: Ctx, contract: Contract, on: date, reason: str, *, delivery_milestone_id: int | None = None,
             change_order_id: int | None = None) -> RevenueEntry | None:
    delta = target_for(uow, contract) - contract.recognised_total
    if delta == 0:
        return None
    entry = uow.finance.add(RevenueEntry(contract_id=contract.id, amount=delta, recognised_on=on, reason=reason,
                                         recorded_by=ctx.user.id, delivery_milestone_id=delivery_milestone_id,
                                         change_order_id=change_order_id))
    before = {"recognised_total": str(contract.recognised_total)}
    contract.recognised_total += delta
    audit(uow, ctx, "contract", contract.id, "recognise_revenue", before,
          {"recognised_total": str(contract.recognised_total), "reason": reason})
    emit(uow, RevenueRecognised(contract_id=contract.id, entry_id=entry.id, amount=str(delta)))
    return entry


def revenue_schedule(contract_id: int | str, *, actor: Actor, uow) -> RevenueView:
    """What has been recognised on a contract, entry by entry."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, _ = visible_contract(uow, ctx, contract_id)
    return RevenueView(contract_ref=contract.ref, currency=contract.currency, value=contract.value,
                       recognised=contract.recognised_total,
                       entries=[RevenueEntryView(amount=e.amount, recognised_on=e.recognised_on, reason=e.reason)
                                for e in uow.finance.revenue_for(contract.id)])
