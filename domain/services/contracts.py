"""Contracts: drafted from the accepted quote, signed only through ATC, changed only by approved change orders."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from domain.actor import Actor
from domain.errors import Conflict, InvalidTransition, ValidationFailed
from domain.model import contracts as c
from domain.model import quotes as q
from domain.model.contracts import ChangeOrder, Contract, PaymentMilestone, check_plan_total, split_amounts
from domain.model.events import ContractSigned, ContractStatusChanged
from domain.model.incentives import largest_remainder
from domain.model.message_keys import keyed
from domain.model.quotes import cents
from domain.model.vocab import ApprovalKind, ApprovalStatus
from domain.policy_defaults import CHANGE_ORDER_STEPS, DEFAULT_PAYMENT_PLAN, DEFAULT_PAYMENT_TERMS_DAYS
from domain.rbac import UseCase
from domain.services import approvals as approval_svc
from domain.services import billing, revenue
from domain.services import opportunities as opp_svc
from domain.services.base import Ctx, audit, begin, emit, get_or_404, next_ref, parse, snapshot
from domain.services.contract_access import find_contract, visible_contract
from domain.services.schemas import Input, Money, View

CONTRACT_FIELDS = ("status", "value", "payment_terms_days", "invoiced_total", "paid_total", "recognised_total")
Trigger = Literal["signing", "delivery_acceptance", "final_acceptance", "date"]


class MilestoneIn(Input):
    label: str = Field(min_length=1, max_length=100, description="e.g. advance payment / 预付款")
    pct: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2, description="share of the contract value")
    trigger: Trigger = Field(description="what makes it invoiceable")
    due_date: date | None = Field(None, description="for trigger 'date' only")

    @model_validator(mode="after")
    def _date_goes_with_trigger(self):
        if self.trigger == "date" and self.due_date is None:
            raise ValueError("a milestone triggered by a date needs due_date")
        if self.trigger != "date" and self.due_date is not None:
            raise ValueError("due_date is only for milestones triggered by a date")
        return self


class ContractCreate(Input):
    quote_id: int = Field(gt=0, description="the customer's accepted quote")
    milestones: list[MilestoneIn] | None = Field(None, min_length=1, max_length=24,
                                                 description="payment plan; defaults to 30/60/10")
    payment_terms_days: int = Field(DEFAULT_PAYMENT_TERMS_DAYS, ge=0, le=365, description="days from invoice to due")


class ContractUpdate(Input):
    quote_id: int | None = Field(None, gt=0, description="re-base the draft on a newer accepted quote")
    milestones: list[MilestoneIn] | None = Field(None, min_length=1, max_length=24)
    payment_terms_days: int | None = Field(None, ge=0, le=365)


class ChangeOrderCreate(Input):
    value: Money | None = Field(None, description="the new contract value; omit to keep it")
    milestones: list[MilestoneIn] | None = Field(None, min_length=1, max_length=24,
                                                 description="the whole new plan; omit to keep the percentages")
    reason: str = Field(min_length=3, max_length=2000)


class MilestoneView(View):
    seq: int
    label: str
    pct: Decimal
    amount: Decimal
    trigger: str
    due_date: date | None
    triggered_on: date | None
    invoice_number: str | None


class ChangeOrderView(View):
    number: str
    old_value: Decimal
    new_value: Decimal
    status: str
    reason: str
    approval_id: int | None
    created_at: datetime


class ContractView(View):
    id: int
    number: str
    opportunity_id: int
    account_id: int
    quote_id: int
    currency: str
    value: Decimal
    status: str
    payment_terms_days: int
    invoiced_total: Decimal
    paid_total: Decimal
    recognised_total: Decimal
    signed_at: datetime | None
    milestones: list[MilestoneView]
    changes: list[ChangeOrderView]
    message: str = ""


def to_view(uow, contract: Contract, message: str = "") -> ContractView:
    live = {i.milestone_id: i.number for i in uow.invoices.for_contract(contract.id) if i.status != "void"}
    return ContractView(
        id=contract.id, number=contract.number, opportunity_id=contract.opportunity_id,
        account_id=contract.account_id, quote_id=contract.quote_id, currency=contract.currency, value=contract.value,
        status=contract.status, payment_terms_days=contract.payment_terms_days,
        invoiced_total=contract.invoiced_total, paid_total=contract.paid_total,
        recognised_total=contract.recognised_total, signed_at=contract.signed_at,
        milestones=[MilestoneView(seq=m.seq, label=m.label, pct=m.pct, amount=m.amount, trigger=m.trigger,
                                  due_date=m.due_date, triggered_on=m.triggered_on, invoice_number=live.get(m.id))
                    for m in contract.milestones],
        changes=[ChangeOrderView(number=x.number, old_value=x.old_value, new_value=x.new_value, status=x.status,
                                 reason=x.reason, approval_id=x.approval_id, created_at=x.created_at)
                 for x in contract.changes],
        message=message)


def _plan(value: Decimal, milestones: list[MilestoneIn], today: date) -> list[PaymentMilestone]:
    check_plan_total([m.pct for m in milestones])
    for i, m in enumerate(milestones):
        if m.due_date is not None and m.due_date < today:
            raise ValidationFailed(f"milestones.{i}.due_date {m.due_date} is in the past", field=f"milestones.{i}.due_date")
    dated = [(i, m.due_date) for i, m in enumerate(milestones) if m.due_date is not None]
    for (_, earlier), (i, later) in zip(dated, dated[1:]):
        if later < earlier:
            raise ValidationFailed(f"milestones.{i}.due_date {later} comes before an earlier milestone's {earlier}",
                                   field=f"milestones.{i}.due_date")
    amounts = split_amounts(value, [m.pct for m in milestones])
    if amounts[-1] < 0:  # many rounded-up shares of a tiny value leave the last one below zero
        raise ValidationFailed(f"{value} cannot be split into these shares to the cent; use fewer milestones",
                               field="milestones")
    return [PaymentMilestone(seq=i, label=m.label, pct=m.pct, amount=a, trigger=m.trigger, due_date=m.due_date)
            for i, (m, a) in enumerate(zip(milestones, amounts), start=1)]


def _default_plan() -> list[MilestoneIn]:
    return [MilestoneIn(**m) for m in DEFAULT_PAYMENT_PLAN]


def _record(uow, ctx: Ctx, contract: Contract, action: str, before: dict | None) -> None:
    entry = audit(uow, ctx, "contract", contract.id, action, before, snapshot(contract, CONTRACT_FIELDS))
    if before is not None and before.get("status") != contract.status:
        emit(uow, ContractStatusChanged(contract_id=contract.id, from_status=before["status"],
                                        to_status=contract.status, audit_id=entry.id))


def create_contract(data: ContractCreate | dict, *, actor: Actor, uow) -> ContractView:
    """Draft the contract from the customer's accepted quote: value = quote total, plan adds up to 100 %."""
    ctx = begin(uow, actor, UseCase.MANAGE_CONTRACT)
    cmd = parse(ContractCreate, data)
    quote = get_or_404(uow.quotes, cmd.quote_id, "Quote", f"Q-{cmd.quote_id:05d}", field="quote_id")
    opp = opp_svc.visible_opportunity(uow, ctx, quote.opportunity_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "draft its contract")
    if quote.status != q.ACCEPTED:
        raise InvalidTransition(f"{quote.ref} is {quote.status}; a contract is drafted from the quote the customer "
                                f"accepted", field="quote_id", allowed=[q.ACCEPTED],
                                details=keyed("contract.quote_not_accepted", ref=quote.ref, quote_status=quote.status))
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; closed deals get no new contract", field="stage")
    existing = uow.contracts.for_opportunity(opp.id)
    if existing is not None:
        raise Conflict(f"{opp.ref} already has contract {existing.ref}; change it with a change order",
                       field="quote_id", details=keyed("contract.exists", {"contract": existing.ref}, ref=opp.ref,
                                                       contract=existing.ref))
    milestones = _plan(quote.total, cmd.milestones or _default_plan(), uow.now().date())
    contract = uow.contracts.add(Contract(
        number=next_ref(uow, "CT"), opportunity_id=opp.id, account_id=opp.account_id, quote_id=quote.id,
        currency=quote.currency, value=quote.total, status=c.DRAFT, payment_terms_days=cmd.payment_terms_days,
        created_by=ctx.user.id, created_at=uow.now(), milestones=milestones))
    _record(uow, ctx, contract, "create", None)
    return to_view(uow, contract, message=f"{contract.ref} drafted from {quote.ref}: {contract.currency} "
                                          f"{contract.value}, {len(milestones)} payment milestones")


def update_contract(contract_id: int | str, data: ContractUpdate | dict, *, actor: Actor, uow) -> ContractView:
    """Change the payment plan or terms while the contract is a draft."""
    ctx = begin(uow, actor, UseCase.MANAGE_CONTRACT)
    cmd = parse(ContractUpdate, data)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "edit its contract")
    if contract.status != c.DRAFT:
        raise InvalidTransition(f"{contract.ref} is {contract.status}; only a draft is edited (use a change order "
                                f"once signed)", field="status", allowed=[c.DRAFT],
                                details=keyed("contract.only_draft_edited", ref=contract.ref,
                                              contract_status=contract.status))
    before = {**snapshot(contract, CONTRACT_FIELDS), "plan": _plan_json(contract.milestones)}
    if cmd.quote_id is not None:
        quote = get_or_404(uow.quotes, cmd.quote_id, "Quote", f"Q-{cmd.quote_id:05d}", field="quote_id")
        if quote.opportunity_id != opp.id or quote.status != q.ACCEPTED:
            raise InvalidTransition(f"{quote.ref} is not an accepted quote of {opp.ref}", field="quote_id",
                                    allowed=[q.ACCEPTED])
        contract.quote_id, contract.value, contract.currency = quote.id, quote.total, quote.currency
    if cmd.milestones is not None or cmd.quote_id is not None:
        plan = cmd.milestones or [MilestoneIn(label=m.label, pct=m.pct, trigger=m.trigger, due_date=m.due_date)
                                  for m in contract.milestones]
        contract.milestones[:] = []
        uow.flush()
        contract.milestones.extend(_plan(contract.value, plan, uow.now().date()))
    if cmd.payment_terms_days is not None:
        contract.payment_terms_days = cmd.payment_terms_days
    audit(uow, ctx, "contract", contract.id, "update", before,
                  {**snapshot(contract, CONTRACT_FIELDS), "plan": _plan_json(contract.milestones), "quote_id":
                   contract.quote_id})
    return to_view(uow, contract, message=f"{contract.ref} updated")


def submit_contract(contract_id: int | str, *, actor: Actor, uow) -> ContractView:
    """Put the draft under review; it is signed when the ATC decision passes."""
    ctx = begin(uow, actor, UseCase.MANAGE_CONTRACT)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "submit its contract")
    if not opp.is_open:
        raise ValidationFailed(f"{opp.ref} is {opp.stage}; it is closed", field="stage")
    before = snapshot(contract, CONTRACT_FIELDS)
    contract.move_to(c.UNDER_REVIEW)
    contract.submitted_at = uow.now()
    _record(uow, ctx, contract, "submit", before)
    return to_view(uow, contract, message=f"{contract.ref} is under review; the ATC decision signs it")


def withdraw_contract(contract_id: int | str, *, actor: Actor, uow) -> ContractView:
    """Take a contract under review back to draft (cancels a pending ATC request)."""
    ctx = begin(uow, actor, UseCase.MANAGE_CONTRACT)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "withdraw its contract")
    before = snapshot(contract, CONTRACT_FIELDS)
    contract.move_to(c.DRAFT)
    pending = uow.approvals.pending_for("opportunity", opp.id, ApprovalKind.ATC.value)
    if pending is not None:
        approval_svc.close_request(uow, ctx, uow.approvals.get_for_update(pending.id), ApprovalStatus.CANCELLED,
                                   f"{contract.ref} withdrawn for changes")
    _record(uow, ctx, contract, "withdraw", before)
    return to_view(uow, contract, message=f"{contract.ref} is a draft again")


def get_contract(contract_id: int | str, *, actor: Actor, uow) -> ContractView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, _ = visible_contract(uow, ctx, contract_id)
    return to_view(uow, contract)


def contract_for_opportunity(opp_id: int, *, actor: Actor, uow) -> ContractView | None:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id)
    contract = uow.contracts.for_opportunity(opp.id)
    return to_view(uow, contract) if contract else None


def close_contract(contract_id: int | str, *, actor: Actor, uow) -> ContractView:
    """Finance closes a completed contract once it reconciles: delivered, invoiced, collected, recognised."""
    from domain.services.reconciliation import mismatches  # reconciliation reads every side of the contract

    ctx = begin(uow, actor, UseCase.CLOSE_CONTRACT)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    if contract.status != c.COMPLETED:
        raise InvalidTransition(f"{contract.ref} is {contract.status}; only a completed contract (all delivery "
                                f"accepted) can be closed", field="status", allowed=[c.COMPLETED])
    pending = contract.pending_change()
    if pending is not None:
        raise ValidationFailed(f"{pending.number} on {contract.ref} still waits for a decision; decide or cancel it "
                               f"before closing", field="status", details={"change_order": pending.number})
    problems = mismatches(uow, contract, opp)
    if problems:
        raise ValidationFailed(f"{contract.ref} does not reconcile yet: " + "; ".join(p.message for p in problems),
                               field="status", missing=[p.message for p in problems])
    before = snapshot(contract, CONTRACT_FIELDS)
    contract.move_to(c.CLOSED)
    contract.closed_at = uow.now()
    _record(uow, ctx, contract, "close", before)
    return to_view(uow, contract, message=f"{contract.ref} closed: won, delivered, invoiced, collected")


# --- change orders ------------------------------------------------------------------------------

def _check_change(uow, contract: Contract, value: Decimal, plan: list[PaymentMilestone]) -> list[str]:
    """What stops a change: money already invoiced must stay exactly as invoiced."""
    problems = []
    if value < contract.invoiced_total:
        problems.append(f"the new value {value} is below what is already invoiced ({contract.invoiced_total})")
    new_by_seq = {m.seq: m for m in plan}
    billed = {i.milestone_id for i in uow.invoices.for_contract(contract.id)}  # voided invoices too
    for milestone in contract.milestones:
        invoice = billing.live_invoice(uow, milestone)
        if invoice is None:
            if milestone.id in billed and milestone.seq not in new_by_seq:  # its invoice rows point at it
                problems.append(f"milestone {milestone.seq} ({milestone.label}) has voided invoices on record; "
                                f"keep it in the new plan")
            continue
        new = new_by_seq.get(milestone.seq)
        if new is None or new.amount != invoice.amount or new.trigger != milestone.trigger:
            need = (invoice.amount * q.HUNDRED / value).quantize(Decimal("0.01")) if value else None
            problems.append(f"milestone {milestone.seq} ({milestone.label}) is invoiced for {invoice.amount} "
                            f"({invoice.ref}); in the new plan it must stay {milestone.trigger} for exactly that "
                            f"amount (≈{need}% of {value})")
    return problems


def request_change_order(contract_id: int | str, data: ChangeOrderCreate | dict, *, actor: Actor,
                         uow) -> ContractView:
    """Ask to change a signed contract's value or payment plan; it applies when approved."""
    ctx = begin(uow, actor, UseCase.CHANGE_CONTRACT)
    cmd = parse(ChangeOrderCreate, data)
    contract, opp = visible_contract(uow, ctx, contract_id, for_update=True)
    opp_svc.require_manager_of(ctx, opp, "change its contract")
    if contract.status not in c.IN_FORCE:
        raise InvalidTransition(f"{contract.ref} is {contract.status}; change orders apply to signed contracts "
                                f"(a draft is edited directly)", field="status", allowed=sorted(c.IN_FORCE))
    if contract.pending_change() is not None:
        raise Conflict(f"{contract.pending_change().number} on {contract.ref} is still waiting for a decision",
                       field="contract_id")
    value = cmd.value if cmd.value is not None else contract.value
    if value <= 0:
        raise ValidationFailed("value must be above zero", field="value")
    untouched_dates = {m.seq: m.due_date for m in contract.milestones if m.triggered_on is not None}
    plan = _plan_for_change(uow, contract, value, cmd.milestones)
    for m in plan:  # new dates must be in the future, unless the milestone already came due
        if m.due_date is not None and m.due_date < uow.now().date() and untouched_dates.get(m.seq) != m.due_date:
            raise ValidationFailed(f"milestones.{m.seq - 1}.due_date {m.due_date} is in the past",
                                   field=f"milestones.{m.seq - 1}.due_date")
    if value == contract.value and [(m.label, m.pct, m.trigger, m.due_date) for m in plan] == [
            (m.label, m.pct, m.trigger, m.due_date) for m in contract.milestones]:
        raise ValidationFailed("The change order changes nothing", field="value")
    problems = _check_change(uow, contract, value, plan)
    if problems:
        raise ValidationFailed(f"{contract.ref} cannot change that way: " + "; ".join(problems), field="milestones",
                               missing=problems)
    change = ChangeOrder(number=next_ref(uow, "CO"), old_value=contract.value, new_value=value,
                         old_plan=_plan_json(contract.milestones), new_plan=_plan_json(plan), reason=cmd.reason,
                         status=c.CHANGE_PENDING, requested_by=ctx.user.id, created_at=uow.now())
    contract.changes.append(change)
    uow.flush()
    delta = value - contract.value
    request = approval_svc.open_request(
        uow, ctx, kind=ApprovalKind.CONTRACT_CHANGE.value, subject_type="contract", subject_id=contract.id,
        title=f"Change {change.number} on {contract.ref}: {contract.currency} {contract.value} → {value}",
        steps=[dict(s) for s in CHANGE_ORDER_STEPS],
        context={"contract": contract.ref, "change_order": change.number, "old_value": str(contract.value),
                 "new_value": str(value), "delta": str(delta), "currency": contract.currency, "reason": cmd.reason,
                 "new_plan": change.new_plan})
    change.approval_id = request.id
    audit(uow, ctx, "contract", contract.id, "request_change", None,
          {"change_order": change.number, "new_value": str(value), "approval": request.ref})
    return to_view(uow, contract, message=f"{change.number} sent for approval ({request.ref})")


def _plan_for_change(uow, contract: Contract, value: Decimal, given: list[MilestoneIn] | None
                     ) -> list[PaymentMilestone]:
    """The new plan, with money already invoiced pinned to the cent.

    Without a new plan, invoiced milestones keep their amounts and the others share the rest of the
    new value in their old proportions. With one, an invoiced milestone's percentage needs to match
    its invoice only to the precision a percentage has (0.01 % of the value): its amount stays the
    invoiced one and the last open milestone takes the difference. Percentages are then shown of the
    new value, to two decimals, still adding up to 100.
    """
    fixed = {m.seq: inv.amount for m in contract.milestones if (inv := billing.live_invoice(uow, m)) is not None}
    if given is None:
        given = [MilestoneIn(label=m.label, pct=m.pct, trigger=m.trigger, due_date=m.due_date)
                 for m in contract.milestones]
        rest = [i for i, _ in enumerate(given, start=1) if i not in fixed]
        remaining = value - sum(fixed.values(), Decimal("0"))
        if remaining < 0 or (not rest and remaining != 0):
            return _plan(value, given, date.min)  # _check_change explains why this value cannot be
        if fixed and rest:
            shares = largest_remainder(remaining, [given[i - 1].pct for i in rest])
            amounts = {**fixed, **dict(zip(rest, shares))}
            pcts = {seq: cents(amount * q.HUNDRED / value) for seq, amount in amounts.items()}
            pcts[rest[-1]] += q.HUNDRED - sum(pcts.values(), Decimal("0"))
            given = [m.model_copy(update={"pct": pcts[i]}) for i, m in enumerate(given, start=1)]
            plan = _plan(value, given, date.min)
            for m in plan:
                m.amount = amounts[m.seq]
            return plan
    plan = _plan(value, given, date.min)
    open_seqs = [m.seq for m in plan if m.seq not in fixed]
    tolerance = value / Decimal(20000) + Decimal("0.01")  # half of 0.01 % of the value, plus a cent
    drift = Decimal("0")
    for m in plan:
        if m.seq in fixed and abs(m.amount - fixed[m.seq]) <= tolerance and open_seqs:
            drift += m.amount - fixed[m.seq]
            m.amount = fixed[m.seq]
    if drift and open_seqs:
        plan[open_seqs[-1] - 1].amount += drift
    return plan


def _plan_json(milestones) -> list[dict]:
    return [{"seq": m.seq, "label": m.label, "pct": str(m.pct), "amount": str(m.amount), "trigger": m.trigger,
             "due_date": m.due_date.isoformat() if m.due_date else None} for m in milestones]


def _plan_from_json(rows: list[dict]) -> list[PaymentMilestone]:
    return [PaymentMilestone(seq=r["seq"], label=r["label"], pct=Decimal(r["pct"]), amount=Decimal(r["amount"]),
                             trigger=r["trigger"], due_date=date.fromisoformat(r["due_date"]) if r["due_date"] else None)
            for r in rows]


def _change_of(uow, request) -> tuple[Contract | None, ChangeOrder | None]:
    contract = uow.contracts.get(request.subject_id) if request.subject_type == "contract" else None
    change = next((x for x in contract.changes if x.approval_id == request.id), None) if contract else None
    return contract, change


def _change_missing(uow, request) -> list[str]:
    contract, change = _change_of(uow, request)
    if contract is None or change is None:
        return []
    if contract.status not in c.IN_FORCE:
        return [f"{contract.ref} is {contract.status}: change orders apply to signed contracts"]
    return _check_change(uow, contract, change.new_value, _plan_from_json(change.new_plan))


def _change_approved(uow, ctx: Ctx, request) -> None:
    contract, change = _change_of(uow, request)
    if change is None or change.status != c.CHANGE_PENDING:
        return
    before = snapshot(contract, CONTRACT_FIELDS)
    new_plan = {m.seq: m for m in _plan_from_json(change.new_plan)}
    for milestone in list(contract.milestones):
        new = new_plan.pop(milestone.seq, None)
        if new is None:
            contract.milestones.remove(milestone)
            continue
        if (new.trigger, new.due_date) != (milestone.trigger, milestone.due_date) and \
                billing.live_invoice(uow, milestone) is None:
            milestone.triggered_on = None  # it now waits for its new trigger (re-fired below if it happened)
        milestone.label, milestone.pct, milestone.amount = new.label, new.pct, new.amount
        milestone.trigger, milestone.due_date = new.trigger, new.due_date
    contract.milestones.extend(new_plan.values())
    contract.value = change.new_value
    change.status, change.decided_at = c.CHANGE_APPROVED, uow.now()
    uow.flush()
    today = uow.now().date()
    revenue.catch_up(uow, ctx, contract, today, f"change order {change.number}", change_order_id=change.id)
    _record(uow, ctx, contract, f"change:{change.number}", before)
    # A milestone whose trigger already happened (signing, delivered goods) is billable right away.
    order = uow.orders.for_contract(contract.id)
    happened = {c.SIGNING, c.ON_DATE}  # dates fire only once they have come
    if order is not None:
        from domain.services.delivery import triggers_fired

        happened |= triggers_fired(order)
    for trigger in sorted(happened):
        billing.fire_trigger(uow, ctx, contract, trigger, today)


def _change_closed(uow, ctx: Ctx, request) -> None:
    _contract, change = _change_of(uow, request)
    if change is not None and change.status == c.CHANGE_PENDING:
        change.status = c.CHANGE_REJECTED if request.status == ApprovalStatus.REJECTED.value else c.CHANGE_CANCELLED
        change.decided_at = uow.now()


def _contract_subject(uow, subject_id: int) -> approval_svc.Subject:
    contract = find_contract(uow, subject_id)
    opp = uow.opportunities.get(contract.opportunity_id)
    return approval_svc.Subject(
        ref=contract.ref, owner_id=opp.owner_id, region=opp.region,
        visible=lambda ctx: ctx.scope.sees_opportunity(opp.owner_id, opp.member_ids(), opp.stage))


def _lock_contract(uow, subject_id: int) -> None:
    contract = uow.contracts.get(subject_id)
    if contract is not None:
        uow.opportunities.get_for_update(contract.opportunity_id)
        uow.contracts.get_for_update(subject_id)


# --- ATC signs the contract ---------------------------------------------------------------------

def _sign_on_atc(uow, ctx: Ctx, request) -> None:
    contract = uow.contracts.for_opportunity(request.subject_id)
    if contract is None or contract.status != c.UNDER_REVIEW:
        return  # the precondition check refused the approval before we get here
    contract = uow.contracts.get_for_update(contract.id)
    before = snapshot(contract, CONTRACT_FIELDS)
    contract.move_to(c.SIGNED)
    contract.signed_at = uow.now()
    _record(uow, ctx, contract, "sign", before)
    emit(uow, ContractSigned(contract_id=contract.id, opportunity_id=contract.opportunity_id,
                             value=str(contract.value), currency=contract.currency))
    billing.fire_trigger(uow, ctx, contract, c.SIGNING, uow.now().date())


def _back_to_draft(uow, ctx: Ctx, request) -> None:
    contract = uow.contracts.for_opportunity(request.subject_id)
    if contract is None or contract.status != c.UNDER_REVIEW:
        return
    contract = uow.contracts.get_for_update(contract.id)
    before = snapshot(contract, CONTRACT_FIELDS)
    contract.move_to(c.DRAFT)
    _record(uow, ctx, contract, f"atc_{request.status}", before)


def _chain(first, second):
    def both(uow, ctx, request):
        first(uow, ctx, request)
        second(uow, ctx, request)
    return both


_ATC = ApprovalKind.ATC.value
approval_svc.ON_APPROVED[_ATC] = _chain(approval_svc.ON_APPROVED[_ATC], _sign_on_atc)
approval_svc.ON_REJECTED[_ATC] = _chain(approval_svc.ON_REJECTED[_ATC], _back_to_draft)
approval_svc.ON_CLOSED[_ATC] = _chain(approval_svc.ON_CLOSED.get(_ATC, approval_svc._noop), _back_to_draft)
approval_svc.SUBJECTS["contract"] = _contract_subject
approval_svc.SUBJECT_LOCKS["contract"] = _lock_contract
_CHANGE = ApprovalKind.CONTRACT_CHANGE.value
approval_svc.ON_APPROVING[_CHANGE] = _change_missing
approval_svc.ON_APPROVED[_CHANGE] = _change_approved
approval_svc.ON_REJECTED[_CHANGE] = _change_closed
approval_svc.ON_CLOSED[_CHANGE] = _change_closed


def list_contracts(*, actor: Actor, uow, status: str | None = None) -> list[ContractView]:
    """Contracts on the deals the caller can see, newest first."""
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    if status is not None and status not in c.STATUSES:
        raise ValidationFailed(f"Unknown contract status '{status}'", field="status", allowed=list(c.STATUSES))
    found = []
    for contract in sorted(uow.contracts.all(), key=lambda x: -x.id):
        opp = uow.opportunities.get(contract.opportunity_id)
        if (status is None or contract.status == status) and ctx.scope.sees_opportunity(
                opp.owner_id, opp.member_ids(), opp.stage):
            found.append(to_view(uow, contract))
    return found
