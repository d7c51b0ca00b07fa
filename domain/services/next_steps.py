"""What a deal is missing now: seats, gate materials, decisions waiting, stale or overdue items."""
from __future__ import annotations

from datetime import timedelta

from domain.actor import Actor
from domain.gates import gaps_by_owner
from domain.model.vocab import MemberRole
from domain.rbac import UseCase
from domain.services.base import begin
from domain.services.opportunities import gate_for, visible_opportunity
from domain.services.schemas import View

STALE_DAYS = 14  # no activity or next-step change for two weeks: the deal is drifting


class NextStepItem(View):
    kind: str  # missing_seat | gate_material | waiting_decision | request_gate | overdue | stale | no_next_step
    #            | advance | contract | delivery | collection
    owner_role: str  # AR | SR | FR | approver | finance
    text: str  # in English; `key` and `params` let an edge say it in the user's language
    key: str = ""  # rendered as domain.next.<key>; a gate_material item adds its gap (domain.gate.<gap>)
    params: dict[str, str] = {}


def _item(kind: str, owner_role: str, key: str, text: str, **params: object) -> NextStepItem:
    return NextStepItem(kind=kind, owner_role=owner_role, text=text, key=key,
                        params={k: f"{v}" for k, v in params.items()})


class NextStepsView(View):
    opportunity_id: int
    ref: str
    name: str
    stage: str
    next_stage: str | None
    next_gate: str | None
    asker_seat: str | None  # AR / SR / FR when the asker serves on the deal
    items: list[NextStepItem]


def next_steps(opp_id: int, *, actor: Actor, uow) -> NextStepsView:
    """The deal's own to-do list, most blocking first; playbook advice is added by the caller."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    opp = visible_opportunity(uow, ctx, opp_id)
    now = uow.now()
    items: list[NextStepItem] = []
    nxt = opp.next_stage() if opp.is_open else None
    gate = gate_for(uow, opp, nxt) if nxt else None
    for seat in (MemberRole.SR, MemberRole.FR):
        if opp.is_open and opp.seat(seat) is None:
            items.append(_item("missing_seat", "AR", "assign_seat", f"Assign the {seat.value} of the iron triangle",
                               seat=seat.value))
    if gate is not None:
        pending = uow.approvals.pending_for("opportunity", opp.id, gate.kind)
        missing = gaps_by_owner(gate.preconditions, opp, uow)
        if pending is not None:
            step = pending.pending_step()
            items.append(_item("waiting_decision", "approver", "waiting_decision",
                               f"{pending.ref} ({gate.kind}) waits for a {step.role} at step {step.seq}",
                               ref=pending.ref, gate=gate.kind, role=step.role, seq=step.seq))
        else:
            for role, gap in missing:
                items.append(_item("gate_material", role, "gate_material", f"For {gate.kind}: {gap.text}",
                                   gate=gate.kind, gap=gap.name, **gap.params))
            if not missing:
                items.append(_item("request_gate", "AR", "request_gate",
                                   f"Everything for {gate.kind} is ready: request the decision", gate=gate.kind))
    elif nxt is not None:
        items.append(_item("advance", "AR", "advance", f"No decision needed: move the deal to {nxt.value} when ready",
                           stage=nxt.value))
    if opp.is_open:
        if opp.expected_close_date and opp.expected_close_date < now.date():
            items.append(_item("overdue", "AR", "overdue",
                               f"Expected close date {opp.expected_close_date} has passed: re-plan it",
                               date=opp.expected_close_date))
        if not (opp.next_step or "").strip():
            items.append(_item("no_next_step", "AR", "no_next_step", "Write down the next step"))
        recent = uow.activities.for_subject(opportunity_id=opp.id, limit=1)
        last_touch = max([opp.updated_at] + [a.occurred_at for a in recent])
        if now - last_touch > timedelta(days=STALE_DAYS):
            days = (now - last_touch).days
            items.append(_item("stale", "AR", "stale", f"Nothing logged for {days} days: contact the customer",
                               days=days))
    if opp.stage == "won":
        items += _after_the_win(uow, opp, now.date())
    seat = "AR" if ctx.user.id == opp.owner_id else next(
        (r.value for r in (MemberRole.SR, MemberRole.FR) if ctx.user.id in opp.member_ids(r)), None)
    return NextStepsView(opportunity_id=opp.id, ref=opp.ref, name=opp.name, stage=opp.stage,
                         next_stage=nxt.value if nxt else None, next_gate=gate.kind if gate else None,
                         asker_seat=seat, items=items)


def _after_the_win(uow, opp, today) -> list[NextStepItem]:
    """Won is not the end: delivery, acceptance and cash, until the contract closes."""
    contract = uow.contracts.for_opportunity(opp.id)
    if contract is None:
        return []  # won before contracts were kept here: reconciliation reports it, nobody can act on it here
    items = []
    order = uow.orders.for_contract(contract.id)
    if order is None and contract.status == "signed":
        items.append(_item("delivery", "FR", "open_order", f"Open the order for {contract.ref} with its delivery "
                                                            f"milestones", ref=contract.ref))
    for m in order.milestones if order else []:
        if m.status == "planned" and m.planned_date < today:
            items.append(_item("delivery", "FR", "milestone_late",
                               f"Milestone {m.seq} ({m.name}) was planned for {m.planned_date}: deliver it or re-plan",
                               seq=m.seq, name=m.name, date=m.planned_date))
        elif m.status == "done":
            items.append(_item("delivery", "FR", "get_acceptance",
                               f"Get the customer's acceptance certificate for milestone {m.seq} ({m.name}), "
                               f"delivered {m.done_on}", seq=m.seq, name=m.name, date=m.done_on))
    for invoice in uow.invoices.for_contract(contract.id):
        late = invoice.days_overdue(today)
        if late:
            balance = f"{invoice.balance:,.2f}"
            items.append(_item("collection", "AR", "collect",
                               f"{invoice.ref}: {invoice.currency} {balance} is {late} days overdue: chase the "
                               f"payment or record the customer's promise", ref=invoice.ref,
                               currency=invoice.currency, balance=balance, days=late))
    if contract.status == "completed" and contract.paid_total == contract.value:
        items.append(_item("contract", "finance", "close_contract",
                           f"{contract.ref} is delivered and collected: reconcile and close it", ref=contract.ref))
    return items
