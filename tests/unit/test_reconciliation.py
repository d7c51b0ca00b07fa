"""Reconciliation: won vs contract vs invoiced vs collected vs recognised, each gap with its code and reason."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, PermissionDenied, ValidationFailed
from domain.services import approvals, billing, contracts, payments, reconciliation

D = Decimal


def _pay(run, org, store, contract_id, amount, ref="BANK-1"):
    return run(payments.record_payment, {"contract_id": contract_id, "amount": amount, "currency": "CNY",
                                         "received_on": store.clock.current.date().isoformat(), "bank_ref": ref},
               actor=org.actor("finance"))


def _codes(report) -> list[str]:
    return [m.code for m in report.mismatches]


def _check(run, org, contract_id):
    return run(reconciliation.reconcile_contract, contract_id, actor=org.actor("finance"))


def test_a_full_flow_reconciles_clean_and_closes(delivered, run, org, store):
    deal = delivered
    _pay(run, org, store, deal.contract, "500000")
    report = run(reconciliation.reconcile_opportunity, deal.opp, actor=org.actor("finance"))
    assert report.clean and report.mismatches == []
    assert (report.won_amount, report.contract_value, report.invoiced, report.collected, report.recognised) == (
        D("500000.00"),) * 5
    assert (report.contract_number, report.unapplied_credit) == (store.get("contracts", deal.contract).number, 0)
    closed = run(contracts.close_contract, deal.contract, actor=org.actor("finance"))
    assert closed.status == "closed" and "closed" in closed.message
    row = store.get("contracts", deal.contract)
    assert row.closed_at is not None
    entry = [a for a in store.rows("audit") if a.entity == "contract" and a.action == "close"]
    assert [(a.actor_id, a.before, a.after) for a in entry] == [
        (org["finance"], {"status": "completed"}, {"status": "closed"})]
    assert store.rows("outbox")[-1].payload["to_status"] == "closed"
    with pytest.raises(InvalidTransition):
        run(contracts.close_contract, deal.contract, actor=org.actor("finance"))


def test_right_after_signing_each_gap_is_listed_with_its_reason(signed, run, org, store):
    deal = signed()
    report = _check(run, org, deal.contract)
    assert not report.clean
    assert _codes(report) == ["uncollected", "unrecognised", "billed_ahead"]
    by_code = {m.code: m for m in report.mismatches}
    invoice = store.rows("invoices")[0]
    assert invoice.number in by_code["uncollected"].message and by_code["uncollected"].amount == D("150000.00")
    assert "no order opened yet" in by_code["unrecognised"].message
    assert by_code["unrecognised"].amount == D("500000.00")
    assert "deferred revenue" in by_code["billed_ahead"].message and by_code["billed_ahead"].amount == D("150000.00")
    assert (report.won_amount, report.contract_value, report.invoiced, report.collected, report.recognised) == (
        D("500000.00"), D("500000.00"), D("150000.00"), 0, 0)


def test_collected_but_not_delivered_is_still_billed_ahead_and_unrecognised(signed, run, org, store):
    deal = signed()
    _pay(run, org, store, deal.contract, "150000")
    report = _check(run, org, deal.contract)
    assert _codes(report) == ["unrecognised", "billed_ahead"]


def test_delivered_but_not_collected_is_uncollected_per_invoice(delivered, run, org, store):
    report = _check(run, org, delivered.contract)
    assert _codes(report) == ["uncollected"] * 3
    assert [m.amount for m in report.mismatches] == [D("150000.00"), D("300000.00"), D("50000.00")]
    assert [i.number for i in store.rows("invoices")] == [m.message.split()[0] for m in report.mismatches]


def test_a_voided_invoice_of_a_due_milestone_shows_as_not_invoiced(signed, run, org, store):
    deal = signed()
    run(billing.void_invoice, store.rows("invoices")[0].id, {"reason": "wrong address"}, actor=org.actor("finance"))
    report = _check(run, org, deal.contract)
    not_invoiced = [m for m in report.mismatches if m.code == "not_invoiced"]
    assert len(not_invoiced) == 1 and "came due" in not_invoiced[0].message
    assert not_invoiced[0].amount == D("150000.00")
    run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    assert "not_invoiced" not in _codes(_check(run, org, deal.contract))


def test_a_change_order_shows_won_versus_contract(signed, run, org, store):
    deal = signed()
    view = run(contracts.request_change_order, deal.contract, {"value": "600000", "reason": "two more lines",
                                                               "milestones": [
        {"label": "Advance", "pct": "25", "trigger": "signing"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Final", "pct": "15", "trigger": "final_acceptance"}]}, actor=org.actor("rep"))
    for who in ("director", "finance"):
        run(approvals.decide_approval, view.changes[-1].approval_id, "approve", actor=org.actor(who))
    report = _check(run, org, deal.contract)
    assert "won_vs_contract" not in {m.code for m in report.mismatches}  # explained by the approved change
    assert (report.won_amount, report.contract_value) == (D("500000.00"), D("600000.00"))


def test_a_deal_amount_edited_away_from_the_contract_is_a_mismatch(signed, run, org, store):
    deal = signed()
    store.get("opportunities", deal.opp).amount = D("480000.00")  # edited behind the contract's back
    [gap] = [m for m in _check(run, org, deal.contract).mismatches if m.code == "won_vs_contract"]
    assert gap.amount == D("20000.00") and "edited away" in gap.message


def test_a_closed_contract_takes_no_change_order(signed, run, org, store):
    deal = signed()
    view = run(contracts.request_change_order, deal.contract, {"value": "600000", "reason": "more lines",
                                                               "milestones": [
        {"label": "Advance", "pct": "25", "trigger": "signing"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Final", "pct": "15", "trigger": "final_acceptance"}]}, actor=org.actor("rep"))
    store.get("contracts", deal.contract).status = "closed"  # closed while the change waited (the old hole)
    with pytest.raises(ValidationFailed) as err:
        run(approvals.decide_approval, view.changes[-1].approval_id, "approve", actor=org.actor("director"))
    assert "signed contracts" in err.value.message
    assert store.get("contracts", deal.contract).value == D("500000.00")


def test_a_won_deal_without_a_contract_is_reported(deal, run, org, store, uow_factory):
    opp_id = deal("negotiate")
    with uow_factory() as uow:  # a deal won before contracts were kept here (imported history)
        uow.opportunities.get(opp_id).stage = "won"
        uow.commit()
    report = run(reconciliation.reconcile_opportunity, opp_id, actor=org.actor("finance"))
    assert not report.clean and report.contract_number is None
    [gap] = report.mismatches
    assert (gap.code, gap.amount) == ("no_contract", D("500000.00"))
    assert "has no contract" in gap.message
    open_deal = deal("qualify")
    assert run(reconciliation.reconcile_opportunity, open_deal, actor=org.actor("admin")).clean  # nothing owed yet


def test_a_contract_under_review_is_not_a_won_deal_yet(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    report = run(reconciliation.reconcile_opportunity, deal.opp, actor=org.actor("rep"))
    assert report.contract_number == view.number
    assert report.won_amount is None and "deal_not_won" in _codes(report)


@pytest.mark.parametrize(("tamper", "code"), [
    (lambda c: setattr(c, "invoiced_total", c.invoiced_total + 1), "invoice_ledger"),
    (lambda c: setattr(c, "paid_total", c.paid_total + 1), "payment_ledger"),
    (lambda c: setattr(c, "recognised_total", c.recognised_total - 1), "recognition_lag"),
    (lambda c: setattr(c.milestones[2], "amount", c.milestones[2].amount + 1), "plan_vs_value"),
])
def test_books_that_disagree_with_their_rows_are_reported(tamper, code, delivered, run, org, store, uow_factory):
    _pay(run, org, store, delivered.contract, "500000")
    assert _check(run, org, delivered.contract).clean
    with uow_factory() as uow:
        tamper(uow.contracts.get(delivered.contract))
        uow.commit()
    report = _check(run, org, delivered.contract)
    assert code in _codes(report) and not report.clean


# --- closing -----------------------------------------------------------------------------------------------

def test_close_refuses_while_mismatches_remain_and_names_them(delivered, run, org, store):
    _pay(run, org, store, delivered.contract, "150000")
    before = store.count("audit"), store.count("outbox")
    with pytest.raises(ValidationFailed) as err:
        run(contracts.close_contract, delivered.contract, actor=org.actor("finance"))
    open_invoices = [i.number for i in store.rows("invoices")][1:]
    assert err.value.field == "status" and len(err.value.missing) == 2
    assert all(number in err.value.message for number in open_invoices)
    assert all(any(number in m for m in err.value.missing) for number in open_invoices)
    assert "does not reconcile" in err.value.message
    assert store.get("contracts", delivered.contract).status == "completed"
    assert (store.count("audit"), store.count("outbox")) == before


def test_only_a_completed_contract_is_closed_and_only_by_finance(signed, run, org, store):
    deal = signed()
    with pytest.raises(InvalidTransition) as err:
        run(contracts.close_contract, deal.contract, actor=org.actor("finance"))
    assert err.value.allowed == ["completed"] and "signed" in err.value.message
    for who in ("rep", "manager", "sales_ops"):
        with pytest.raises(PermissionDenied, match="close_contract"):
            run(contracts.close_contract, deal.contract, actor=org.actor(who))
    assert store.get("contracts", deal.contract).status == "signed"


def test_a_deal_currency_edited_away_from_the_contract_is_a_mismatch(signed, run, org, store):
    deal = signed()
    store.get("opportunities", deal.opp).currency = "USD"
    codes = {m.code for m in _check(run, org, deal.contract).mismatches}
    assert "currency" in codes and "won_vs_contract" not in codes
