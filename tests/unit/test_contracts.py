"""Contracts: drafted from the accepted quote, a plan of 100 %, signed only by ATC, changed only by change orders."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.errors import ApprovalRequired, Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from domain.model import contracts as c
from domain.model.contracts import Contract, check_plan_total, split_amounts
from domain.services import (
    approvals,
    billing,
    catalog,
    contracts,
    delivery,
    opportunities,
    quotes,
    reconciliation,
    revenue,
)
from tests.unit.conftest import _gate, accept_the_quote, build_negotiating

D = Decimal
PLAN_50_50 = [{"label": "Advance", "pct": "50", "trigger": "signing"},
              {"label": "Final acceptance", "pct": "50", "trigger": "final_acceptance"}]


def _counts(store) -> dict[str, int]:
    return {t: store.count(t) for t in ("contracts", "approvals", "audit", "outbox", "invoices", "revenue_entries")}


def _audit(store, entity: str, entity_id: int) -> list[str]:
    return [a.action for a in store.rows("audit") if a.entity == entity and a.entity_id == entity_id]


# --- creation --------------------------------------------------------------------------------------

def test_a_contract_is_drafted_only_from_the_quote_the_customer_accepted(negotiating, run, org, store):
    deal = negotiating()
    rep = org.actor("rep")
    for step in (None, quotes.send_quote):  # approved, then sent: neither is accepted yet
        if step is not None:
            run(step, deal.quote, actor=rep)
        before = _counts(store)
        with pytest.raises(InvalidTransition) as err:
            run(contracts.create_contract, {"quote_id": deal.quote}, actor=rep)
        assert err.value.field == "quote_id" and err.value.allowed == ["accepted"]
        assert "accepted" in err.value.message
        assert _counts(store) == before
    run(quotes.accept_quote, deal.quote, actor=rep)
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=rep)
    assert (view.status, view.quote_id, view.opportunity_id) == ("draft", deal.quote, deal.opp)


def test_the_value_is_the_quote_total_and_the_default_plan_is_30_60_10(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    quote = store.get("quotes", deal.quote)
    assert view.value == quote.total == D("500000") and view.currency == quote.currency == "CNY"
    assert [(m.seq, m.pct, m.amount, m.trigger) for m in view.milestones] == [
        (1, D("30"), D("150000.00"), "signing"), (2, D("60"), D("300000.00"), "delivery_acceptance"),
        (3, D("10"), D("50000.00"), "final_acceptance")]
    assert view.payment_terms_days == 30 and view.invoiced_total == 0 and view.signed_at is None
    row = store.get("contracts", view.id)
    assert (row.account_id, row.created_by) == (store.get("opportunities", deal.opp).account_id, org["rep"])
    assert "drafted from" in view.message and quote.ref in view.message


def test_amounts_are_split_to_the_cent_and_the_last_milestone_takes_the_rounding(accepted, run, org):
    deal = accepted(amount="100.01")
    view = run(contracts.create_contract, {"quote_id": deal.quote, "milestones": [
        {"label": "A", "pct": "33.33", "trigger": "signing"},
        {"label": "B", "pct": "33.33", "trigger": "delivery_acceptance"},
        {"label": "C", "pct": "33.34", "trigger": "final_acceptance"}]}, actor=org.actor("rep"))
    # 100.01 × 33.33 % = 33.333333 → 33.33 twice; the last takes what is left: 100.01 − 66.66
    assert [m.amount for m in view.milestones] == [D("33.33"), D("33.33"), D("33.35")]
    assert sum(m.amount for m in view.milestones) == view.value == D("100.01")


@pytest.mark.parametrize(("value", "pcts", "expected"), [
    ("1000", ["30", "60", "10"], ["300.00", "600.00", "100.00"]),
    ("0.05", ["50", "50"], ["0.03", "0.02"]),  # half a cent rounds up; the last still adds up
    ("999.99", ["33.33", "33.33", "33.34"], ["333.30", "333.30", "333.39"]),
    ("7", ["100"], ["7"]),
])
def test_split_amounts_always_adds_up_to_the_value(value, pcts, expected):
    amounts = split_amounts(D(value), [D(p) for p in pcts])
    assert amounts == [D(x) for x in expected] and sum(amounts) == D(value)


@pytest.mark.parametrize("pcts", [["30", "60"], ["30", "60", "20"], ["33.33", "33.33", "33.33"]])
def test_a_plan_that_does_not_add_up_to_100_is_refused_naming_milestones(pcts, accepted, run, org, store):
    deal = accepted()
    triggers = ["signing", "delivery_acceptance", "final_acceptance"]
    plan = [{"label": f"M{i}", "pct": p, "trigger": triggers[i]} for i, p in enumerate(pcts)]
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(contracts.create_contract, {"quote_id": deal.quote, "milestones": plan}, actor=org.actor("rep"))
    total = sum(D(p) for p in pcts)
    assert err.value.field == "milestones" and err.value.details == {"total_pct": str(total)}
    assert str(total) in err.value.message and "100" in err.value.message
    assert _counts(store) == before
    with pytest.raises(ValidationFailed):
        check_plan_total([D(p) for p in pcts])


@pytest.mark.parametrize(("milestone", "field"), [
    ({"label": "On date", "pct": "100", "trigger": "date"}, "milestones.0"),  # a date trigger needs its date
    ({"label": "Advance", "pct": "100", "trigger": "signing", "due_date": "2030-01-01"}, "milestones.0"),
    ({"label": "Advance", "pct": "0", "trigger": "signing"}, "milestones.0.pct"),
    ({"label": "Advance", "pct": "100", "trigger": "handshake"}, "milestones.0.trigger"),
    ({"label": "Past", "pct": "100", "trigger": "date", "due_date": "2020-01-01"}, "milestones.0.due_date"),
])
def test_bad_milestones_name_the_field_and_write_nothing(milestone, field, accepted, run, org, store):
    deal = accepted()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(contracts.create_contract, {"quote_id": deal.quote, "milestones": [milestone]}, actor=org.actor("rep"))
    assert err.value.field == field
    assert _counts(store) == before


def test_dated_milestones_out_of_order_are_refused(accepted, run, org, store):
    deal = accepted()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(contracts.create_contract, {"quote_id": deal.quote, "milestones": [
            {"label": "Second year", "pct": "50", "trigger": "date", "due_date": "2026-06-01"},
            {"label": "First year", "pct": "50", "trigger": "date", "due_date": "2026-01-01"}]},
            actor=org.actor("rep"))
    assert err.value.field == "milestones.1.due_date" and "2026-01-01" in err.value.message
    assert _counts(store) == before


def test_contract_numbers_run_ct_year_and_a_five_digit_sequence(accepted, run, org, uow_factory, store):
    first = accepted()
    one = run(contracts.create_contract, {"quote_id": first.quote}, actor=org.actor("rep"))
    second = build_negotiating(uow_factory, org, n=202)
    accept_the_quote(uow_factory, org, second.opp)
    two = run(contracts.create_contract, {"quote_id": second.quote}, actor=org.actor("rep"))
    year = store.clock.current.year
    assert (one.number, two.number) == (f"CT-{year}-00001", f"CT-{year}-00002")
    assert run(contracts.get_contract, f"ct-{year}-00002", actor=org.actor("rep")).id == two.id  # by number too


def test_a_deal_has_one_contract(accepted, run, org, store):
    deal = accepted()
    first = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    before = _counts(store)
    with pytest.raises(Conflict) as err:
        run(contracts.create_contract, {"quote_id": deal.quote, "milestones": PLAN_50_50}, actor=org.actor("rep"))
    assert err.value.field == "quote_id" and first.number in err.value.message
    assert _counts(store) == before


def test_only_the_ar_or_their_managers_draft_the_contract(accepted, run, org, store):
    deal = accepted()
    with pytest.raises(PermissionDenied, match="not one of your deals"):
        run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep2"))
    run(opportunities.add_member, deal.opp, org["rep2"], "presales", actor=org.actor("rep"))  # sees it now
    before = _counts(store)
    with pytest.raises(PermissionDenied, match="AR or their managers"):
        run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep2"))
    with pytest.raises(PermissionDenied, match="manage_contract"):
        run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("finance"))
    assert _counts(store) == before
    assert run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("manager")).status == "draft"


def test_a_closed_deal_gets_no_contract(accepted, run, org, store):
    deal = accepted()
    run(opportunities.close_opportunity, deal.opp, "lost", "customer went silent", actor=org.actor("rep"))
    with pytest.raises(ValidationFailed) as err:
        run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    assert err.value.field == "stage"
    assert store.count("contracts") == 0


# --- draft, review, withdraw -------------------------------------------------------------------------

def test_only_a_draft_is_edited(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    edited = run(contracts.update_contract, view.id, {"milestones": PLAN_50_50, "payment_terms_days": 45},
                 actor=org.actor("rep"))
    assert [(m.seq, m.amount, m.trigger) for m in edited.milestones] == [
        (1, D("250000.00"), "signing"), (2, D("250000.00"), "final_acceptance")]
    assert edited.payment_terms_days == 45 and edited.value == view.value
    with pytest.raises(ValidationFailed) as err:
        run(contracts.update_contract, view.id, {"milestones": PLAN_50_50[:1]}, actor=org.actor("rep"))
    assert err.value.field == "milestones"
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:
        run(contracts.update_contract, view.id, {"payment_terms_days": 60}, actor=org.actor("rep"))
    assert err.value.field == "status" and err.value.allowed == ["draft"] and "change order" in err.value.message
    assert _counts(store) == before and store.get("contracts", view.id).payment_terms_days == 45
    assert _audit(store, "contract", view.id) == ["create", "update", "submit"]


def test_submit_puts_the_draft_under_review_once(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    submitted = run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    assert submitted.status == "under_review" and "ATC" in submitted.message
    assert store.get("contracts", view.id).submitted_at is not None
    with pytest.raises(InvalidTransition) as err:
        run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    assert err.value.allowed == ["draft", "signed"]
    changed = [m.payload for m in store.rows("outbox") if m.topic == "ContractStatusChanged"]
    assert [(p["from_status"], p["to_status"]) for p in changed] == [("draft", "under_review")]


def test_withdraw_takes_it_back_to_draft_and_cancels_the_pending_atc(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    atc = run(approvals.request_gate, deal.opp, "ATC", actor=org.actor("rep"))
    back = run(contracts.withdraw_contract, view.id, actor=org.actor("rep"))
    assert back.status == "draft"
    assert store.get("approvals", atc.id).status == "cancelled"
    assert store.get("opportunities", deal.opp).stage == "negotiate"
    assert _audit(store, "contract", view.id) == ["create", "submit", "withdraw"]
    with pytest.raises(InvalidTransition):  # a draft has nothing to withdraw
        run(contracts.withdraw_contract, view.id, actor=org.actor("rep"))
    # the draft can be fixed and submitted again, then ATC asked for anew
    run(contracts.update_contract, view.id, {"payment_terms_days": 60}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    assert run(approvals.request_gate, deal.opp, "ATC", actor=org.actor("rep")).id != atc.id


def test_atc_rejected_sends_the_contract_back_to_draft(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    atc = run(approvals.request_gate, deal.opp, "ATC", actor=org.actor("rep"))
    run(approvals.decide_approval, atc.id, "reject", comment="liability cap missing", actor=org.actor("director"))
    row = store.get("contracts", view.id)
    assert (row.status, row.signed_at, row.invoiced_total) == ("draft", None, 0)
    assert store.get("opportunities", deal.opp).stage == "negotiate" and store.count("invoices") == 0
    assert _audit(store, "contract", view.id)[-1] == "atc_rejected"
    with pytest.raises(ValidationFailed, match="submitted for review"):  # ATC waits for the resubmission
        run(approvals.request_gate, deal.opp, "ATC", actor=org.actor("rep"))


def test_atc_approved_signs_the_contract_and_issues_the_signing_invoices(signed, run, org, store):
    deal = signed(milestones=[{"label": "Advance", "pct": "20", "trigger": "signing"},
                              {"label": "Mobilisation", "pct": "10", "trigger": "signing"},
                              {"label": "Final acceptance", "pct": "70", "trigger": "final_acceptance"}])
    view = run(contracts.get_contract, deal.contract, actor=org.actor("rep"))
    assert view.status == "signed" and view.signed_at is not None
    assert store.get("opportunities", deal.opp).stage == "won"
    invoices = store.rows("invoices")
    assert [(i.amount, i.status) for i in invoices] == [(D("100000.00"), "issued"), (D("50000.00"), "issued")]
    assert [m.invoice_number for m in view.milestones] == [invoices[0].number, invoices[1].number, None]
    assert view.invoiced_total == D("150000.00")
    signed_event = next(m.payload for m in store.rows("outbox") if m.topic == "ContractSigned")
    assert signed_event == {"contract_id": deal.contract, "opportunity_id": deal.opp, "value": "500000.00",
                            "currency": "CNY"}
    sign = next(a for a in store.rows("audit") if a.entity == "contract" and a.action == "sign")
    assert sign.actor_id == org["finance"]  # the last ATC decider signs
    assert sign.before == {"status": "under_review"} and sign.after == {"status": "signed"}


def test_no_service_signs_a_contract_other_than_the_atc_decision(accepted, run, org, store, uow_factory):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    attempts = [
        lambda: run(contracts.submit_contract, view.id, actor=org.actor("admin")),
        lambda: run(contracts.update_contract, view.id, {"payment_terms_days": 10}, actor=org.actor("admin")),
        lambda: run(contracts.request_change_order, view.id, {"value": "1", "reason": "sign it"},
                    actor=org.actor("admin")),
        lambda: run(contracts.close_contract, view.id, actor=org.actor("finance")),
        lambda: run(delivery.create_order, view.id, {"milestones": [{"name": "x", "planned_date": "2030-01-01"}]},
                    actor=org.actor("admin")),
        lambda: run(opportunities.advance_stage, deal.opp, "won", actor=org.actor("admin")),
    ]
    for attempt in attempts:
        with pytest.raises((InvalidTransition, ValidationFailed, ApprovalRequired)):
            attempt()
        assert store.get("contracts", view.id).status == "under_review"
    assert "signed" not in c.TRANSITIONS[c.DRAFT]
    draft = Contract(number="CT-X", opportunity_id=1, account_id=1, quote_id=1, currency="CNY", value=D(1),
                     status=c.DRAFT, payment_terms_days=30, created_by=1, created_at=store.clock.current)
    with pytest.raises(InvalidTransition):
        draft.move_to(c.SIGNED)
    _gate(uow_factory, org, deal.opp, "ATC", ["director", "finance"], "rep")
    assert store.get("contracts", view.id).status == "signed"


def test_the_deal_and_contract_are_found_together(signed, run, org):
    deal = signed()
    by_deal = run(contracts.contract_for_opportunity, deal.opp, actor=org.actor("rep"))
    assert by_deal.id == deal.contract
    assert [v.id for v in run(contracts.list_contracts, status="signed", actor=org.actor("rep"))] == [deal.contract]
    assert run(contracts.list_contracts, status="draft", actor=org.actor("rep")) == []
    assert run(contracts.list_contracts, actor=org.actor("rep2")) == []  # not their deal
    with pytest.raises(PermissionDenied):
        run(contracts.get_contract, deal.contract, actor=org.actor("rep2"))
    with pytest.raises(ValidationFailed) as err:
        run(contracts.list_contracts, status="pending", actor=org.actor("rep"))
    assert err.value.field == "status" and "signed" in err.value.allowed


# --- change orders -----------------------------------------------------------------------------------

def _change(run, org, contract_id, data, who="rep"):
    return run(contracts.request_change_order, contract_id, {"reason": "customer asked for it", **data},
               actor=org.actor(who))


def _approve_change(run, org, approval_id):
    for who in ("director", "finance"):
        view = run(approvals.decide_approval, approval_id, "approve", actor=org.actor(who))
    return view


@pytest.mark.parametrize("submitted", [False, True])
def test_change_orders_apply_only_to_contracts_in_force(submitted, accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    if submitted:
        run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:
        _change(run, org, view.id, {"value": "600000"})
    assert err.value.field == "status" and err.value.allowed == ["completed", "executing", "signed"]
    assert _counts(store) == before


def test_a_change_order_goes_to_the_director_then_finance_before_anything_changes(signed, run, org, store):
    deal = signed()
    view = _change(run, org, deal.contract, {"value": "600000", "milestones": [
        {"label": "Advance", "pct": "25", "trigger": "signing"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Final acceptance", "pct": "15", "trigger": "final_acceptance"}]})
    change = view.changes[-1]
    year = store.clock.current.year
    assert (change.number, change.status, change.old_value, change.new_value) == (
        f"CO-{year}-00001", "pending", D("500000.00"), D("600000.00"))
    request = store.get("approvals", change.approval_id)
    assert (request.kind, request.subject_type, request.subject_id) == ("contract_change", "contract", deal.contract)
    assert [(s.role, s.scope) for s in request.steps] == [("director", "chain"), ("finance", "any")]
    assert view.value == D("500000.00")  # nothing changes before the decision
    run(approvals.decide_approval, change.approval_id, "approve", actor=org.actor("director"))
    assert store.get("contracts", deal.contract).value == D("500000.00")
    run(approvals.decide_approval, change.approval_id, "approve", actor=org.actor("finance"))
    after = run(contracts.get_contract, deal.contract, actor=org.actor("rep"))
    assert after.value == D("600000.00") and after.changes[-1].status == "approved"
    assert [(m.pct, m.amount) for m in after.milestones] == [
        (D("25"), D("150000.00")), (D("60"), D("360000.00")), (D("15"), D("90000.00"))]
    assert _audit(store, "contract", deal.contract)[-2:] == ["request_change", f"change:CO-{year}-00001"]
    assert store.count("invoices") == 1  # the advance, untouched: still 150,000


def test_an_approved_change_catches_revenue_up_and_bills_what_already_happened(signed, run, org, store):
    deal = signed()
    today = store.clock.current.date().isoformat()
    order = run(delivery.create_order, deal.contract, {"milestones": [
        {"name": "Install", "planned_date": today, "revenue_pct": "50"},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today, "revenue_pct": "50"}]},
        actor=org.actor("fr"))
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1"}, actor=org.actor("fr"))
    assert store.get("contracts", deal.contract).recognised_total == D("250000.00")
    # 150,000 advance and 300,000 delivery are invoiced: they must stay; only the final part grows
    view = _change(run, org, deal.contract, {"value": "600000", "milestones": [
        {"label": "Advance", "pct": "25", "trigger": "signing"},
        {"label": "Delivery", "pct": "50", "trigger": "delivery_acceptance"},
        {"label": "Final acceptance", "pct": "25", "trigger": "final_acceptance"}]})
    _approve_change(run, org, view.changes[-1].approval_id)
    contract = store.get("contracts", deal.contract)
    assert (contract.value, contract.recognised_total, contract.invoiced_total) == (
        D("600000.00"), D("300000.00"), D("450000.00"))
    entries = run(revenue.revenue_schedule, deal.contract, actor=org.actor("finance")).entries
    assert [e.amount for e in entries] == [D("250000.00"), D("50000.00")]
    assert "CO-" in entries[-1].reason
    assert store.rows("revenue_entries")[-1].change_order_id == contract.changes[-1].id
    report = run(reconciliation.reconcile_contract, deal.contract, actor=org.actor("finance"))
    assert "won_vs_contract" not in {m.code for m in report.mismatches}  # the approved change explains it
    assert (report.won_amount, report.contract_value) == (D("500000.00"), D("600000.00"))


@pytest.mark.parametrize(("data", "why"), [
    ({"value": "400000", "milestones": [{"label": "Advance", "pct": "30", "trigger": "signing"},
                                        {"label": "Rest", "pct": "70", "trigger": "delivery_acceptance"}]},
     "milestone 1"),  # 30 % of 400,000 would change the invoiced 150,000
    ({"value": "100000", "milestones": [{"label": "Advance", "pct": "100", "trigger": "signing"}]},
     "below what is already invoiced"),
    ({"milestones": [{"label": "Advance", "pct": "30", "trigger": "final_acceptance"},
                     {"label": "Rest", "pct": "70", "trigger": "delivery_acceptance"}]}, "must stay signing"),
])
def test_money_already_invoiced_must_stay_as_invoiced(data, why, signed, run, org, store):
    deal = signed()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        _change(run, org, deal.contract, data)
    assert err.value.field == "milestones" and why in err.value.message
    assert store.rows("invoices")[0].number in err.value.message
    assert _counts(store) == before
    assert store.get("contracts", deal.contract).changes == []


PLAN_30_50_20 = [{"label": "Advance", "pct": "30", "trigger": "signing"},
                 {"label": "Delivery", "pct": "50", "trigger": "delivery_acceptance"},
                 {"label": "Final acceptance", "pct": "20", "trigger": "final_acceptance"}]


def test_a_rejected_change_changes_nothing(signed, run, org, store):
    deal = signed()
    view = _change(run, org, deal.contract, {"value": "600000", "milestones": [
        {"label": "Advance", "pct": "25", "trigger": "signing"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Final acceptance", "pct": "15", "trigger": "final_acceptance"}]}, who="manager")
    approval_id = view.changes[-1].approval_id
    run(approvals.decide_approval, approval_id, "reject", comment="no budget", actor=org.actor("director"))
    contract = store.get("contracts", deal.contract)
    assert contract.changes[-1].status == "rejected" and contract.changes[-1].decided_at is not None
    assert contract.value == D("500000.00")
    assert [m.amount for m in contract.milestones] == [D("150000.00"), D("300000.00"), D("50000.00")]
    assert store.count("revenue_entries") == 0
    assert not any(a.action.startswith("change:") for a in store.rows("audit"))


def test_a_change_that_breaks_the_invoiced_money_cannot_even_be_requested(signed, run, org, store):
    deal = signed()
    with pytest.raises(ValidationFailed) as err:
        _change(run, org, deal.contract, {"value": "100000"})  # below the 150,000 already invoiced
    assert err.value.field == "milestones" and err.value.missing


@pytest.mark.parametrize(("data", "amounts"), [
    # the value alone: the invoiced advance stays 150,000, the rest shares 360,000 as 60 : 10
    ({"value": "510000"}, ["150000.00", "308571.43", "51428.57"]),
    # a percentage as precise as percentages get (29.41 % of 510,000 = 149,991): pinned to the invoice
    ({"value": "510000", "milestones": [{"label": "Advance", "pct": "29.41", "trigger": "signing"},
                                        {"label": "Delivery", "pct": "60.59", "trigger": "delivery_acceptance"},
                                        {"label": "Final", "pct": "10", "trigger": "final_acceptance"}]},
     ["150000.00", "309009.00", "50991.00"]),
])
def test_a_value_change_keeps_the_invoiced_money_to_the_cent(data, amounts, signed, run, org, store):
    deal = signed()
    view = _change(run, org, deal.contract, data)
    for who in ("director", "finance"):
        run(approvals.decide_approval, view.changes[-1].approval_id, "approve", actor=org.actor(who))
    contract = store.get("contracts", deal.contract)
    assert [str(m.amount) for m in contract.milestones] == amounts
    assert sum(m.amount for m in contract.milestones) == contract.value == D("510000.00")
    assert sum(m.pct for m in contract.milestones) == 100
    assert store.rows("invoices")[0].amount == D("150000.00") and contract.invoiced_total == D("150000.00")


def test_one_pending_change_at_a_time(signed, run, org, store):
    deal = signed()
    plan = PLAN_30_50_20
    first = _change(run, org, deal.contract, {"milestones": plan})
    before = _counts(store)
    with pytest.raises(Conflict) as err:
        _change(run, org, deal.contract, {"value": "700000"})
    assert err.value.field == "contract_id" and first.changes[-1].number in err.value.message
    assert _counts(store) == before
    run(approvals.decide_approval, first.changes[-1].approval_id, "reject", comment="not now",
        actor=org.actor("director"))
    again = _change(run, org, deal.contract, {"milestones": plan})
    assert [x.status for x in again.changes] == ["rejected", "pending"]


def test_a_change_that_changes_nothing_is_refused(signed, run, org, store):
    deal = signed()
    with pytest.raises(ValidationFailed) as err:
        _change(run, org, deal.contract, {"value": "500000"})
    assert err.value.field == "value" and "changes nothing" in err.value.message


def test_only_the_ar_side_asks_for_a_change(signed, run, org, store):
    deal = signed()
    with pytest.raises(PermissionDenied, match="change_contract"):
        _change(run, org, deal.contract, {"value": "600000"}, who="finance")
    with pytest.raises(PermissionDenied):
        _change(run, org, deal.contract, {"value": "600000"}, who="rep2")
    assert store.get("contracts", deal.contract).changes == []


@pytest.mark.parametrize("how", ["cancelled", "expired"])
def test_an_atc_cancelled_or_expired_gives_the_contract_back_as_a_draft(how, accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    atc = run(approvals.request_gate, deal.opp, "ATC", ttl_hours=1, actor=org.actor("rep"))
    if how == "cancelled":
        run(approvals.cancel_approval, atc.id, reason="customer wants new terms", actor=org.actor("rep"))
    else:
        store.clock.advance(hours=2)
        assert run(approvals.expire_approvals, actor=org.actor("admin")) == 1
    assert store.get("approvals", atc.id).status == how
    assert store.get("contracts", view.id).status == "draft"
    assert _audit(store, "contract", view.id)[-1] == f"atc_{how}"
    assert store.get("opportunities", deal.opp).stage == "negotiate"


def test_a_milestone_with_a_voided_invoice_stays_in_the_plan(signed, run, org, store):
    """Its invoice rows point at it: dropping it would orphan them (SQL refuses the approval with a Conflict)."""
    deal = signed(milestones=[{"label": "Final", "pct": "70", "trigger": "final_acceptance"},
                              {"label": "Advance", "pct": "20", "trigger": "signing"},
                              {"label": "Mobilisation", "pct": "10", "trigger": "signing"}])
    mobilisation = store.rows("invoices")[-1]
    run(billing.void_invoice, mobilisation.id, {"reason": "moved to final acceptance"}, actor=org.actor("finance"))
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        _change(run, org, deal.contract, {"milestones": [
            {"label": "Final", "pct": "80", "trigger": "final_acceptance"},
            {"label": "Advance", "pct": "20", "trigger": "signing"}]})
    assert err.value.field == "milestones" and "milestone 3 (Mobilisation)" in err.value.message
    assert _counts(store) == before
    # kept in the plan (with a new share and trigger), the change goes through
    view = _change(run, org, deal.contract, {"milestones": [
        {"label": "Final", "pct": "79", "trigger": "final_acceptance"},
        {"label": "Advance", "pct": "20", "trigger": "signing"},
        {"label": "Mobilisation", "pct": "1", "trigger": "final_acceptance"}]})
    _approve_change(run, org, view.changes[-1].approval_id)
    contract = store.get("contracts", deal.contract)
    assert contract.changes[-1].status == "approved"
    milestone_ids = {m.id for m in contract.milestones}
    assert all(i.milestone_id in milestone_ids for i in store.rows("invoices"))  # no invoice is orphaned


def test_a_plan_too_fine_to_split_to_the_cent_is_refused():
    plan = [contracts.MilestoneIn(label=f"M{i}", pct=D("16.67"), trigger="signing") for i in range(5)]
    plan.append(contracts.MilestoneIn(label="Last", pct=D("16.65"), trigger="final_acceptance"))
    with pytest.raises(ValidationFailed) as err:
        contracts._plan(D("0.03"), plan, date.min)  # five shares round up to 0.01 each: the last would be -0.02
    assert err.value.field == "milestones" and "to the cent" in err.value.message
    assert [m.amount for m in contracts._plan(D("600"), plan, date.min)] == [D("100.02")] * 5 + [D("99.90")]


def test_a_contract_follows_the_quote_the_customer_last_accepted(accepted, run, org, store):
    deal = accepted()
    rep = org.actor("rep")
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=rep)
    admin = org.actor("admin")
    run(catalog.create_product, {"sku": "RTR-X", "name_en": "Router X", "name_zh": "路由器X", "unit": "unit",
                                 "cost": "40", "floor_price": "60"}, actor=admin)
    run(catalog.create_price_book, {"name": "East CNY", "region": "east", "currency": "CNY",
                                    "prices": {"RTR-X": "100"}}, actor=admin)
    newer = run(quotes.create_quote, deal.opp, {"lines": [{"product": "RTR-X", "quantity": "3000"}]}, actor=rep)
    for step in (quotes.submit_quote, quotes.send_quote, quotes.accept_quote):
        run(step, newer.id, actor=rep)
    run(contracts.submit_contract, view.id, actor=rep)
    with pytest.raises(ValidationFailed) as err:  # ATC would sign a value the customer no longer agreed to
        run(approvals.request_gate, deal.opp, "ATC", actor=rep)
    assert any("matching the deal's accepted quote" in m for m in err.value.missing)
    run(contracts.withdraw_contract, view.id, actor=rep)
    rebased = run(contracts.update_contract, view.id, {"quote_id": newer.id}, actor=rep)
    assert rebased.value == newer.total and sum(m.amount for m in rebased.milestones) == newer.total
    plan_change = [a for a in store.rows("audit") if a.entity == "contract" and a.action == "update"][-1]
    assert "plan" in plan_change.after and plan_change.after["value"] == str(newer.total)
    run(contracts.submit_contract, view.id, actor=rep)
    assert run(approvals.request_gate, deal.opp, "ATC", actor=rep).status == "pending"


def test_a_contract_under_review_takes_no_new_quote(accepted, run, org, store):
    deal = accepted()
    view = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    run(contracts.submit_contract, view.id, actor=org.actor("rep"))
    before = store.count("quotes")
    with pytest.raises(ValidationFailed) as err:
        run(quotes.create_quote, deal.opp, {"lines": [{"product": "RTR-X", "quantity": "1"}]}, actor=org.actor("rep"))
    assert "withdraw it to draft first" in err.value.message and store.count("quotes") == before


def test_a_milestone_moved_to_another_trigger_waits_for_it(signed, run, org, store):
    deal = signed()
    advance = store.rows("invoices")[0]
    run(billing.void_invoice, advance.id, {"reason": "customer wants to pay at final acceptance"},
        actor=org.actor("finance"))
    view = _change(run, org, deal.contract, {"milestones": [
        {"label": "At final acceptance", "pct": "30", "trigger": "final_acceptance"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Retention", "pct": "10", "trigger": "final_acceptance"}]})
    _approve_change(run, org, view.changes[-1].approval_id)
    first = store.get("contracts", deal.contract).milestones[0]
    assert (first.trigger, first.triggered_on) == ("final_acceptance", None)
    with pytest.raises(ValidationFailed) as err:  # nothing delivered yet: nothing to invoice
        run(billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    assert "waits for its trigger" in err.value.message
