"""Reconciliation: won amount vs contract value vs invoiced vs collected vs recognised, every gap explained."""
from __future__ import annotations

from decimal import Decimal

from domain.actor import Actor
from domain.model import billing as b
from domain.model import contracts as c
from domain.model.contracts import Contract
from domain.model.opportunities import Opportunity
from domain.model.vocab import Stage
from domain.rbac import UseCase
from domain.services import opportunities as opp_svc
from domain.services import revenue
from domain.services.base import begin
from domain.services.contract_access import visible_contract
from domain.services.payments import unapplied_credit
from domain.services.schemas import View

ZERO = Decimal("0")


def _m(amount: Decimal) -> str:
    return f"{amount:,.2f}"


class Mismatch(View):
    code: str
    message: str
    amount: Decimal | None = None


class ReconciliationView(View):
    opportunity_id: int
    opportunity_ref: str
    contract_number: str | None
    currency: str
    won_amount: Decimal | None
    contract_value: Decimal | None
    invoiced: Decimal
    collected: Decimal
    recognised: Decimal
    unapplied_credit: Decimal
    mismatches: list[Mismatch]
    clean: bool


def mismatches(uow, contract: Contract, opp: Opportunity) -> list[Mismatch]:
    """Every way the five figures disagree, each with its reason. Empty means clean."""
    out: list[Mismatch] = []
    today = uow.now().date()
    if opp.stage != Stage.WON.value:
        out.append(Mismatch(code="deal_not_won", message=f"{opp.ref} is {opp.stage}, not won"))
    elif opp.currency != contract.currency:
        out.append(Mismatch(code="currency", message=f"won in {opp.currency} but the contract is in "
                                                     f"{contract.currency}"))
    else:
        # Approved change orders move the contract away from the won amount on purpose: only an
        # unexplained gap is a mismatch.
        approved = [x for x in contract.changes if x.status == c.CHANGE_APPROVED]
        explained = opp.amount + sum((x.new_value - x.old_value for x in approved), ZERO)
        if explained != contract.value:
            why = (f"after change orders {', '.join(x.number for x in approved)} it should be {_m(explained)}"
                   if approved else "the deal amount was edited away from the accepted quote")
            out.append(Mismatch(code="won_vs_contract", amount=contract.value - explained,
                                message=f"won {_m(opp.amount)} but the contract is worth {_m(contract.value)} "
                                        f"({why})"))
    planned = sum((m.amount for m in contract.milestones), ZERO)
    if planned != contract.value:
        out.append(Mismatch(code="plan_vs_value", amount=contract.value - planned,
                            message=f"the payment plan adds up to {_m(planned)}, not the contract value {_m(contract.value)}"))
    invoices = uow.invoices.for_contract(contract.id)
    live = [i for i in invoices if i.status != b.VOID]
    invoiced = sum((i.amount for i in live), ZERO)
    if invoiced != contract.invoiced_total:
        out.append(Mismatch(code="invoice_ledger", amount=invoiced - contract.invoiced_total,
                            message=f"invoices add up to {_m(invoiced)} but the contract records {_m(contract.invoiced_total)}"))
    billed = {i.milestone_id for i in live}
    for m in contract.milestones:
        if m.triggered_on is not None and m.id not in billed and m.amount > 0:
            out.append(Mismatch(code="not_invoiced", amount=m.amount,
                                message=f"milestone {m.seq} ({m.label}) came due on {m.triggered_on} but is not "
                                        f"invoiced"))
        elif m.triggered_on is None and contract.status in (c.COMPLETED, c.CLOSED):
            out.append(Mismatch(code="not_triggered", amount=m.amount,
                                message=f"milestone {m.seq} ({m.label}) is still waiting for {m.trigger}"
                                        + (f" on {m.due_date}" if m.due_date else "")))
    allocated = sum((uow.payments.allocated_to(i.id) for i in invoices), ZERO)
    if allocated != contract.paid_total:
        out.append(Mismatch(code="payment_ledger", amount=allocated - contract.paid_total,
                            message=f"payments allocated add up to {_m(allocated)} but the contract records "
                                    f"{_m(contract.paid_total)} collected"))
    for i in live:
        if i.balance > 0:
            late = i.days_overdue(today)
            out.append(Mismatch(code="uncollected", amount=i.balance,
                                message=f"{i.ref} has {_m(i.balance)} open" + (f", {late} days overdue" if late else
                                                                           f", due {i.due_on}")))
    target = revenue.target_for(uow, contract)
    if target != contract.recognised_total:
        out.append(Mismatch(code="recognition_lag", amount=target - contract.recognised_total,
                            message=f"accepted delivery calls for {_m(target)} recognised, the books show "
                                    f"{_m(contract.recognised_total)}"))
    if contract.recognised_total != contract.value:
        order = uow.orders.for_contract(contract.id)
        waiting = [m for m in order.milestones if m.status != "accepted"] if order else []
        why = (f"delivery not yet accepted: {', '.join(f'{m.seq} {m.name}' for m in waiting)}" if waiting
               else "no order opened yet" if order is None else "revenue not caught up")
        out.append(Mismatch(code="unrecognised", amount=contract.value - contract.recognised_total,
                            message=f"{_m(contract.value - contract.recognised_total)} not yet recognised ({why})"))
    if invoiced > contract.recognised_total and contract.recognised_total != contract.value:
        out.append(Mismatch(code="billed_ahead", amount=invoiced - contract.recognised_total,
                            message=f"{_m(invoiced - contract.recognised_total)} invoiced ahead of delivery "
                                    f"(deferred revenue)"))
    return out


def _view(uow, opp: Opportunity, contract: Contract | None) -> ReconciliationView:
    won = opp.amount if opp.stage == Stage.WON.value else None
    if contract is None:
        problems = ([Mismatch(code="no_contract", amount=opp.amount,
                              message=f"{opp.ref} is won for {_m(opp.amount)} but has no contract")]
                    if won is not None else [])
        return ReconciliationView(opportunity_id=opp.id, opportunity_ref=opp.ref, contract_number=None,
                                  currency=opp.currency, won_amount=won, contract_value=None, invoiced=ZERO,
                                  collected=ZERO, recognised=ZERO, unapplied_credit=ZERO, mismatches=problems,
                                  clean=not problems)
    problems = mismatches(uow, contract, opp)
    return ReconciliationView(
        opportunity_id=opp.id, opportunity_ref=opp.ref, contract_number=contract.number, currency=contract.currency,
        won_amount=won, contract_value=contract.value, invoiced=contract.invoiced_total,
        collected=contract.paid_total, recognised=contract.recognised_total,
        unapplied_credit=unapplied_credit(uow, contract.account_id, contract.currency), mismatches=problems,
        clean=not problems)


def reconcile_contract(contract_id: int | str, *, actor: Actor, uow) -> ReconciliationView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    contract, opp = visible_contract(uow, ctx, contract_id)
    return _view(uow, opp, contract)


def reconcile_opportunity(opp_id: int, *, actor: Actor, uow) -> ReconciliationView:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    opp = opp_svc.visible_opportunity(uow, ctx, opp_id)
    return _view(uow, opp, uow.contracts.for_opportunity(opp.id))
