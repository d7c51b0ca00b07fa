"""Orders and delivery milestones: the FR plans, delivers and records the customer's acceptance."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field

from domain.actor import Actor
from domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.model import contracts as c
from domain.model import delivery as d
from domain.model.contracts import split_amounts
from domain.model.delivery import DeliveryMilestone, Order
from domain.model.events import DeliveryMilestoneAccepted, OrderCreated
from domain.model.quotes import HUNDRED
from domain.model.vocab import MemberRole, Role
from domain.rbac import UseCase
from domain.services import billing, revenue
from domain.services.base import Ctx, audit, begin, emit, next_ref, parse, snapshot
from domain.services.contract_access import visible_contract
from domain.services.schemas import Input, View

MILESTONE_FIELDS = ("status", "planned_date", "done_on", "accepted_on", "certificate_ref")


class DeliveryMilestoneIn(Input):
    name: str = Field(min_length=1, max_length=200, description="what is delivered, e.g. hardware on site")
    kind: Literal["delivery", "final_acceptance"] = Field("delivery", description="final_acceptance = 终验")
    planned_date: date
    revenue_pct: Decimal | None = Field(None, gt=0, le=100, max_digits=5, decimal_places=2,
                                        description="share of revenue recognised at acceptance; default equal split")


class OrderCreate(Input):
    milestones: list[DeliveryMilestoneIn] = Field(min_length=1, max_length=50)


class MilestoneDone(Input):
    done_on: date | None = Field(None, description="defaults to today")


class MilestoneAcceptance(Input):
    certificate_ref: str = Field(min_length=1, max_length=100, description="the customer's acceptance certificate")
    accepted_on: date | None = Field(None, description="defaults to today")


class DeliveryMilestoneView(View):
    seq: int
    name: str
    kind: str
    planned_date: date
    revenue_pct: Decimal
    status: str
    done_on: date | None
    accepted_on: date | None
    certificate_ref: str | None
    late: bool


class OrderView(View):
    id: int
    number: str
    contract_id: int
    contract_number: str
    status: str
    milestones: list[DeliveryMilestoneView]
    message: str = ""


def to_view(uow, order: Order, message: str = "") -> OrderView:
    contract = uow.contracts.get(order.contract_id)
    today = uow.now().date()
    return OrderView(
        id=order.id, number=order.number, contract_id=order.contract_id, contract_number=contract.number,
        status=order.status, message=message,
        milestones=[DeliveryMilestoneView(
            seq=m.seq, name=m.name, kind=m.kind, planned_date=m.planned_date, revenue_pct=m.revenue_pct,
            status=m.status, done_on=m.done_on, accepted_on=m.accepted_on, certificate_ref=m.certificate_ref,
            late=m.status == d.PLANNED and m.planned_date < today) for m in order.milestones])


def _require_fr(ctx: Ctx, opp, what: str) -> None:
    """Delivery is the FR's: the deal's FR, or operations and admins standing in."""
    if ctx.user.id in opp.member_ids(MemberRole.FR) or ctx.user.roles & {Role.ADMIN, Role.SALES_OPS}:
        return
    raise PermissionDenied(f"Only {opp.ref}'s FR may {what}")


def create_order(contract_id: int | str, data: OrderCreate | dict, *, actor: Actor, uow) -> OrderView:
    """Open the order of a signed contract with its delivery milestones; the contract starts executing."""
    ctx = begin(uow, actor, UseCase.MANAGE_DELIVERY)
    cmd = parse(OrderCreate, data)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    _require_fr(ctx, opp, "open its order")
    if contract.status != c.SIGNED:
        raise InvalidTransition(f"{contract.ref} is {contract.status}; an order is created from a signed contract",
                                field="status", allowed=[c.SIGNED])
    finals = [i for i, m in enumerate(cmd.milestones) if m.kind == d.FINAL]
    if len(finals) > 1 or (finals and finals[0] != len(cmd.milestones) - 1):
        raise ValidationFailed("Final acceptance must be the last milestone, and there is at most one",
                               field=f"milestones.{finals[-1]}.kind")
    signed_on = contract.signed_at.date()
    for i, m in enumerate(cmd.milestones):
        if m.planned_date < signed_on:
            raise ValidationFailed(f"milestones.{i}.planned_date {m.planned_date} is before the contract was signed "
                                   f"({signed_on})", field=f"milestones.{i}.planned_date")
        if i and m.planned_date < cmd.milestones[i - 1].planned_date:
            raise ValidationFailed(f"milestones.{i}.planned_date {m.planned_date} comes before milestone {i}'s "
                                   f"{cmd.milestones[i - 1].planned_date}: dates out of order",
                                   field=f"milestones.{i}.planned_date")
    given = [m.revenue_pct for m in cmd.milestones]
    if all(p is None for p in given):
        shares = split_amounts(HUNDRED, [HUNDRED / len(given)] * len(given))
    elif any(p is None for p in given):
        raise ValidationFailed("Give revenue_pct for every milestone or for none", field="milestones")
    else:
        shares = given
        if sum(shares, Decimal("0")) != HUNDRED:
            raise ValidationFailed(f"Revenue shares add up to {sum(shares, Decimal('0'))}%; they must be 100%",
                                   field="milestones")
    order = uow.orders.add(Order(
        number=next_ref(uow, "SO"), contract_id=contract.id, status=d.ORDER_OPEN, created_by=ctx.user.id,
        created_at=uow.now(),
        milestones=[DeliveryMilestone(seq=i, name=m.name, kind=m.kind, planned_date=m.planned_date,
                                      revenue_pct=share)
                    for i, (m, share) in enumerate(zip(cmd.milestones, shares), start=1)]))
    audit(uow, ctx, "order", order.id, "create", None, {"contract": contract.ref, "milestones": len(order.milestones)})
    emit(uow, OrderCreated(order_id=order.id, contract_id=contract.id))
    before = snapshot(contract, ("status",))
    contract.move_to(c.EXECUTING)
    audit(uow, ctx, "contract", contract.id, "execute", before, snapshot(contract, ("status",)))
    return to_view(uow, order, message=f"{order.ref} opened for {contract.ref} with {len(order.milestones)} "
                                       f"delivery milestones")


def _visible_order(uow, ctx: Ctx, order_id: int | str, *, for_update: bool = False):
    order = None
    if isinstance(order_id, str) and order_id.strip().isdigit():
        order_id = int(order_id)
    if isinstance(order_id, int) and order_id > 0:
        order = uow.orders.get(order_id)
    elif isinstance(order_id, str) and order_id.strip():
        order = uow.orders.by_number(order_id)
    if order is None:
        raise NotFound(f"Order {order_id} does not exist", field="order_id")
    contract, opp = visible_contract(uow, ctx, order.contract_id, for_update=for_update)
    if for_update:
        order = uow.orders.get_for_update(order.id)
    return order, contract, opp


def _milestone(order: Order, seq: int) -> DeliveryMilestone:
    milestone = order.milestone(seq)
    if milestone is None:
        raise NotFound(f"{order.ref} has no delivery milestone {seq}", field="seq",
                       allowed=[m.seq for m in order.milestones])
    return milestone


def _past_or_today(uow, value: date | None, field: str) -> date:
    today = uow.now().date()
    if value is not None and value > today:
        raise ValidationFailed(f"{field} {value} is in the future", field=field)
    return value or today


def mark_delivered(order_id: int | str, seq: int, data: MilestoneDone | dict | None = None, *, actor: Actor,
                   uow) -> OrderView:
    """The FR records that a delivery milestone is done (the customer's acceptance comes next)."""
    ctx = begin(uow, actor, UseCase.MANAGE_DELIVERY)
    cmd = parse(MilestoneDone, data or {})
    order, contract, opp = _visible_order(uow, ctx, order_id, for_update=True)
    _require_fr(ctx, opp, "record delivery")
    milestone = _milestone(order, seq)
    done_on = _past_or_today(uow, cmd.done_on, "done_on")
    if done_on < contract.signed_at.date():
        raise ValidationFailed(f"done_on {done_on} is before the contract was signed", field="done_on")
    before = snapshot(milestone, MILESTONE_FIELDS)
    milestone.move_to(d.DONE)
    milestone.done_on = done_on
    audit(uow, ctx, "order", order.id, f"done:{seq}", before, snapshot(milestone, MILESTONE_FIELDS))
    return to_view(uow, order, message=f"{order.ref} milestone {seq} ({milestone.name}) delivered on {done_on}; "
                                       f"record the customer's acceptance next")


def triggers_fired(order: Order) -> set[str]:
    """Which payment-plan triggers the delivery state has set off."""
    fired = set()
    has_delivery = any(m.kind == d.DELIVERY for m in order.milestones)
    if order.all_accepted(d.DELIVERY) or (not has_delivery and order.all_accepted(d.FINAL)):
        fired.add(c.DELIVERY_ACCEPTANCE)
    if order.all_accepted(d.FINAL) or (not any(m.kind == d.FINAL for m in order.milestones)
                                       and order.all_accepted()):
        fired.add(c.FINAL_ACCEPTANCE)
    return fired


def accept_milestone(order_id: int | str, seq: int, data: MilestoneAcceptance | dict, *, actor: Actor,
                     uow) -> OrderView:
    """Record the customer's acceptance (with its certificate): revenue is recognised, due invoices issued."""
    ctx = begin(uow, actor, UseCase.MANAGE_DELIVERY)
    cmd = parse(MilestoneAcceptance, data)
    order, contract, opp = _visible_order(uow, ctx, order_id, for_update=True)
    _require_fr(ctx, opp, "record the customer's acceptance")
    milestone = _milestone(order, seq)
    waiting = [m.seq for m in order.milestones if m.kind == d.DELIVERY and m.status != d.ACCEPTED]
    if milestone.kind == d.FINAL and waiting:
        raise InvalidTransition(f"Final acceptance comes after every delivery milestone is accepted; still waiting: "
                                f"{', '.join(map(str, waiting))}", field="seq", allowed=waiting)
    accepted_on = _past_or_today(uow, cmd.accepted_on, "accepted_on")
    if milestone.status == d.DONE and accepted_on < milestone.done_on:
        raise ValidationFailed(f"accepted_on {accepted_on} is before the delivery on {milestone.done_on}: "
                               f"dates out of order", field="accepted_on")
    before = snapshot(milestone, MILESTONE_FIELDS)
    milestone.move_to(d.ACCEPTED)
    milestone.accepted_on, milestone.certificate_ref = accepted_on, cmd.certificate_ref
    uow.flush()
    audit(uow, ctx, "order", order.id, f"accept:{seq}", before, snapshot(milestone, MILESTONE_FIELDS))
    emit(uow, DeliveryMilestoneAccepted(order_id=order.id, milestone_id=milestone.id, contract_id=contract.id,
                                        certificate_ref=cmd.certificate_ref))
    revenue.catch_up(uow, ctx, contract, accepted_on, f"{order.ref} milestone {seq} accepted ({cmd.certificate_ref})",
                     delivery_milestone_id=milestone.id)
    issued = []
    for trigger in sorted(triggers_fired(order)):
        issued += billing.fire_trigger(uow, ctx, contract, trigger, accepted_on)
    message = f"{order.ref} milestone {seq} ({milestone.name}) accepted by the customer ({cmd.certificate_ref})"
    if order.all_accepted():
        order.status, order.delivered_at = d.ORDER_DELIVERED, uow.now()
        c_before = snapshot(contract, ("status",))
        contract.move_to(c.COMPLETED)
        contract.completed_at = uow.now()
        audit(uow, ctx, "contract", contract.id, "complete", c_before, snapshot(contract, ("status",)))
        message += f"; delivery complete, {contract.ref} completed"
    if issued:
        message += "; invoiced " + ", ".join(f"{i.ref} ({i.currency} {i.amount})" for i in issued)
    return to_view(uow, order, message=message)


def get_order(order_id: int | str, *, actor: Actor, uow) -> OrderView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    order, _, _ = _visible_order(uow, ctx, order_id)
    return to_view(uow, order)


def order_for_contract(contract_id: int | str, *, actor: Actor, uow) -> OrderView | None:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, _ = visible_contract(uow, ctx, contract_id)
    order = uow.orders.for_contract(contract.id)
    return to_view(uow, order) if order else None
