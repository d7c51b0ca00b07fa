"""Invoices per payment-plan milestone: issued on their trigger, due after the terms, voided only by finance."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.services import billing, contracts, delivery, payments

D = Decimal
DATED = [{"label": "Advance", "pct": "40", "trigger": "signing"},
         {"label": "Second instalment", "pct": "60", "trigger": "date", "due_date": "2025-04-02"}]  # signed 2025-03-03


def _counts(store):
    return {t: store.count(t) for t in ("invoices", "audit", "outbox", "payments")}


def _today(store):
    return store.clock.current.date()


def _pay(run, org, store, contract_id, amount, ref):
    return run(payments.record_payment, {"contract_id": contract_id, "amount": amount, "currency": "CNY",
                                         "received_on": _today(store).isoformat(), "bank_ref": ref},
               actor=org.actor("finance"))


def test_the_due_date_is_the_issue_date_plus_the_payment_terms(signed, run, org, store):
    deal = signed(terms=45)
    invoice = run(billing.list_invoices, deal.contract, actor=org.actor("finance"))[0]
    signed_on = store.get("contracts", deal.contract).signed_at.date()
    assert invoice.issued_on == signed_on and invoice.due_on == signed_on + timedelta(days=45)
    assert (invoice.amount, invoice.balance, invoice.status) == (D("150000.00"), D("150000.00"), "issued")
    assert (invoice.milestone_seq, invoice.milestone_label, invoice.days_overdue, invoice.overdue) == (
        1, "Advance on signing / 预付款", 0, False)
    assert invoice.number == f"INV-{signed_on.year}-00001"
    event = next(m.payload for m in store.rows("outbox") if m.topic == "InvoiceIssued")
    assert event["due_on"] == invoice.due_on.isoformat() and event["amount"] == "150000.00"


def test_invoices_add_up_to_the_contract_value_and_never_more(signed, run, org, store, uow_factory):
    deal = signed()
    order = run(delivery.create_order, deal.contract, {"milestones": [
        {"name": "All", "kind": "final_acceptance", "planned_date": _today(store).isoformat()}]},
        actor=org.actor("fr"))
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT"}, actor=org.actor("fr"))
    invoices = run(billing.list_invoices, deal.contract, actor=org.actor("finance"))
    contract = store.get("contracts", deal.contract)
    assert sum(i.amount for i in invoices) == contract.invoiced_total == contract.value == D("500000.00")
    # a milestone that would take the total above the value is refused, even after a void
    run(billing.void_invoice, invoices[0].id, {"reason": "wrong customer tax id"}, actor=org.actor("finance"))
    with uow_factory() as uow:  # a plan changed behind the services' back
        uow.contracts.get(deal.contract).milestone(1).amount = D("150000.01")
        uow.commit()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    assert err.value.field == "amount" and "above the contract value" in err.value.message
    assert _counts(store) == before
    assert store.get("contracts", deal.contract).invoiced_total == D("350000.00")


# --- voiding and issuing again --------------------------------------------------------------------------

def test_void_is_for_finance_only_not_even_an_admin(signed, run, org, store):
    signed()
    invoice_id = store.rows("invoices")[0].id
    before = _counts(store)
    for who in ("admin", "rep", "sales_ops"):
        with pytest.raises(PermissionDenied) as err:
            run(billing.void_invoice, invoice_id, {"reason": "duplicate"}, actor=org.actor(who))
        assert "void_invoice needs one of the roles finance" in err.value.message
    assert _counts(store) == before and store.get("invoices", invoice_id).status == "issued"


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "no"}])
def test_void_needs_a_reason(data, signed, run, org, store):
    deal = signed()
    invoice_id = store.rows("invoices")[0].id
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(billing.void_invoice, invoice_id, data, actor=org.actor("finance"))
    assert err.value.field == "reason"
    assert _counts(store) == before and store.get("invoices", invoice_id).status == "issued"
    assert store.get("contracts", deal.contract).invoiced_total == D("150000.00")


def test_an_invoice_with_money_on_it_cannot_be_voided(signed, run, org, store):
    deal = signed()
    invoice = store.rows("invoices")[0]
    _pay(run, org, store, deal.contract, "1000", "BANK-1")
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:
        run(billing.void_invoice, invoice.id, {"reason": "wrong amount"}, actor=org.actor("finance"))
    assert err.value.field == "status" and "payments applied" in err.value.message
    assert _counts(store) == before and store.get("invoices", invoice.id).status == "partially_paid"


def test_a_voided_milestone_is_invoiced_again_by_finance(signed, run, org, store):
    deal = signed()
    first = store.rows("invoices")[0]
    voided = run(billing.void_invoice, first.number, {"reason": "wrong purchase order"}, actor=org.actor("finance"))
    assert (voided.status, voided.balance, voided.void_reason) == ("void", 0, "wrong purchase order")
    contract = run(contracts.get_contract, deal.contract, actor=org.actor("rep"))
    assert contract.invoiced_total == 0 and contract.milestones[0].invoice_number is None
    with pytest.raises(InvalidTransition):
        run(billing.void_invoice, first.id, {"reason": "again"}, actor=org.actor("finance"))
    with pytest.raises(PermissionDenied, match="issue_invoice"):
        run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("rep"))

    again = run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    assert again.number != first.number and (again.amount, again.status) == (D("150000.00"), "issued")
    assert again.milestone_seq == 1 and again.number in again.message
    contract = run(contracts.get_contract, deal.contract, actor=org.actor("rep"))
    assert contract.invoiced_total == D("150000.00") and contract.milestones[0].invoice_number == again.number
    before = _counts(store)
    same = run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    assert same.id == again.id and "already invoiced" in same.message and _counts(store) == before
    actions = [(a.entity, a.action) for a in store.rows("audit")
               if a.entity in ("invoice", "contract") and a.action in ("void", "void_invoice", "issue", "invoice")]
    assert actions[-4:] == [("invoice", "void"), ("contract", "void_invoice"), ("invoice", "issue"),
                            ("contract", "invoice")]
    void_row = next(a for a in store.rows("audit") if a.action == "void")
    assert void_row.actor_id == org["finance"] and void_row.after["void_reason"] == "wrong purchase order"


def test_issuing_checks_the_milestone_its_trigger_and_the_date(signed, run, org, store):
    deal = signed()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(billing.issue_invoice, deal.contract, {"seq": 2}, actor=org.actor("finance"))
    assert err.value.field == "seq" and "waits for its trigger: delivery_acceptance" in err.value.message
    with pytest.raises(NotFound) as err:
        run(billing.issue_invoice, deal.contract, {"seq": 9}, actor=org.actor("finance"))
    assert err.value.field == "seq" and err.value.allowed == [1, 2, 3]
    run(billing.void_invoice, store.rows("invoices")[0].id, {"reason": "typo"}, actor=org.actor("finance"))
    before = _counts(store)
    today = _today(store)
    for issued_on in (today + timedelta(days=1), today - timedelta(days=1)):  # future; before the signing
        with pytest.raises(ValidationFailed) as err:
            run(billing.issue_invoice, deal.contract, {"seq": 1, "issued_on": issued_on.isoformat()},
                actor=org.actor("finance"))
        assert err.value.field == "issued_on"
    assert _counts(store) == before


def test_a_draft_contract_is_not_invoiced(accepted, run, org, store):
    deal = accepted()
    draft = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    with pytest.raises(InvalidTransition) as err:
        run(billing.issue_invoice, draft.id, {"seq": 1}, actor=org.actor("finance"))
    assert err.value.field == "status" and store.count("invoices") == 0


# --- date-triggered milestones ------------------------------------------------------------------------

def test_date_triggered_milestones_are_billed_by_the_daily_job_once(signed, run, org, store):
    deal = signed(DATED)
    assert [i.amount for i in store.rows("invoices")] == [D("200000.00")]
    with pytest.raises(ValidationFailed, match="waits for its trigger: date on 2025-04-02"):
        run(billing.issue_invoice, deal.contract, {"seq": 2}, actor=org.actor("finance"))
    assert run(billing.bill_due_milestones, actor=org.actor("sales_ops")) == 0
    with pytest.raises(PermissionDenied, match="run_jobs"):
        run(billing.bill_due_milestones, actor=org.actor("rep"))
    store.clock.advance(days=30)  # 2025-04-02
    assert run(billing.bill_due_milestones, actor=org.actor("sales_ops")) == 1
    second = store.rows("invoices")[-1]
    assert (second.amount, second.issued_on, second.due_on) == (
        D("300000.00"), _today(store), _today(store) + timedelta(days=30))
    assert store.get("contracts", deal.contract).milestone(2).triggered_on == _today(store)
    issue = [a for a in store.rows("audit") if a.entity == "invoice" and a.entity_id == second.id]
    assert [(a.action, a.actor_id) for a in issue] == [("issue", org["sales_ops"])]
    before = _counts(store)
    assert run(billing.bill_due_milestones, actor=org.actor("finance")) == 0  # nothing twice
    assert _counts(store) == before


def test_finance_may_bill_a_date_milestone_that_has_come_due(signed, run, org, store):
    deal = signed(DATED)
    store.clock.advance(days=31)
    view = run(billing.issue_invoice, deal.contract, {"seq": 2}, actor=org.actor("finance"))
    assert view.amount == D("300000.00") and view.issued_on == _today(store)
    assert run(billing.bill_due_milestones, actor=org.actor("finance")) == 0


# --- overdue is derived ---------------------------------------------------------------------------------

def test_overdue_is_derived_from_the_date_never_stored(signed, run, org, store):
    deal = signed()
    invoice = store.rows("invoices")[0]
    def fields(obj):  # the row's own values (SQLAlchemy adds its state once the mappers ran in this process)
        return {k: v for k, v in vars(obj).items() if not k.startswith("_sa_")}

    stored = fields(store.get("invoices", invoice.id))
    assert not {"overdue", "days_overdue"} & set(stored)
    store.clock.advance(days=40)  # due after 30 days: 10 days late, and nobody wrote anything
    view = run(billing.get_invoice, invoice.id, actor=org.actor("rep"))
    assert (view.days_overdue, view.overdue, view.status) == (10, True, "issued")
    assert fields(store.get("invoices", invoice.id)) == stored
    _pay(run, org, store, deal.contract, "150000", "BANK-ALL")
    paid = run(billing.get_invoice, invoice.number, actor=org.actor("rep"))
    assert (paid.status, paid.days_overdue, paid.overdue) == ("paid", 0, False)  # settled: not overdue


def test_invoices_follow_the_deals_visibility(signed, run, org):
    deal = signed()
    invoices = run(billing.list_invoices, deal.contract, actor=org.actor("rep"))
    with pytest.raises(PermissionDenied):
        run(billing.get_invoice, invoices[0].id, actor=org.actor("rep2"))
    with pytest.raises(PermissionDenied):
        run(billing.list_invoices, deal.contract, actor=org.actor("rep_w"))
    with pytest.raises(NotFound) as err:
        run(billing.get_invoice, "INV-1999-00001", actor=org.actor("finance"))
    assert err.value.field == "invoice_id"
