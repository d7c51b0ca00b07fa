"""What a deal is missing now: seats, gate materials, decisions waiting, stale or overdue items."""
from __future__ import annotations

from datetime import timedelta

from domain.actor import Actor
from domain.gates import missing_by_owner
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
    text: str


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
            items.append(NextStepItem(kind="missing_seat", owner_role="AR",
                                      text=f"Assign the {seat.value} of the iron triangle"))
    if gate is not None:
        pending = uow.approvals.pending_for("opportunity", opp.id, gate.kind)
        missing = missing_by_owner(gate.preconditions, opp, uow)
        if pending is not None:
            step = pending.pending_step()
            items.append(NextStepItem(kind="waiting_decision", owner_role="approver",
                                      text=f"{pending.ref} ({gate.kind}) waits for a {step.role} at step {step.seq}"))
        else:
            for role, text in missing:
                items.append(NextStepItem(kind="gate_material", owner_role=role, text=f"For {gate.kind}: {text}"))
            if not missing:
                items.append(NextStepItem(kind="request_gate", owner_role="AR",
                                          text=f"Everything for {gate.kind} is ready: request the decision"))
    elif nxt is not None:
        items.append(NextStepItem(kind="advance", owner_role="AR",
                                  text=f"No decision needed: move the deal to {nxt.value} when ready"))
    if opp.is_open:
        if opp.expected_close_date and opp.expected_close_date < now.date():
            items.append(NextStepItem(kind="overdue", owner_role="AR",
                                      text=f"Expected close date {opp.expected_close_date} has passed: re-plan it"))
        if not (opp.next_step or "").strip():
            items.append(NextStepItem(kind="no_next_step", owner_role="AR", text="Write down the next step"))
        recent = uow.activities.for_subject(opportunity_id=opp.id, limit=1)
        last_touch = max([opp.updated_at] + [a.occurred_at for a in recent])
        if now - last_touch > timedelta(days=STALE_DAYS):
            items.append(NextStepItem(kind="stale", owner_role="AR",
                                      text=f"Nothing logged for {(now - last_touch).days} days: contact the customer"))
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
        items.append(NextStepItem(kind="delivery", owner_role="FR",
                                  text=f"Open the order for {contract.ref} with its delivery milestones"))
    for m in order.milestones if order else []:
        if m.status == "planned" and m.planned_date < today:
            items.append(NextStepItem(kind="delivery", owner_role="FR",
                                      text=f"Milestone {m.seq} ({m.name}) was planned for {m.planned_date}: "
                                           f"deliver it or re-plan"))
        elif m.status == "done":
            items.append(NextStepItem(kind="delivery", owner_role="FR",
                                      text=f"Get the customer's acceptance certificate for milestone {m.seq} "
                                           f"({m.name}), delivered {m.done_on}"))
    for invoice in uow.invoices.for_contract(contract.id):
        late = invoice.days_overdue(today)
        if late:
            items.append(NextStepItem(kind="collection", owner_role="AR",
                                      text=f"{invoice.ref}: {invoice.currency} {invoice.balance:,.2f} is {late} days "
                                           f"overdue: chase the payment or record the customer's promise"))
    if contract.status == "completed" and contract.paid_total == contract.value:
        items.append(NextStepItem(kind="contract", owner_role="finance",
                                  text=f"{contract.ref} is delivered and collected: reconcile and close it"))
    return items
