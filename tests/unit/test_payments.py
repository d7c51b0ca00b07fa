"""Payments (回款): recorded by finance or proposed by the AR, allocated oldest-first or as told, never over."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.services import billing, delivery, payments
from tests.unit.conftest import build_signed, run_in

D = Decimal


@dataclass(frozen=True)
class Books:
    contract: int
    advance: int  # 150,000 due on day 30 (re-issued after a void: the newest row, the oldest due date)
    delivery: int  # 300,000 due on day 35
    final: int  # 50,000 due on day 40
    voided: int


def _books(uow_factory, org) -> Books:
    """A signed 500,000 contract with three open invoices whose due dates do not follow their ids."""
    deal = build_signed(uow_factory, org)
    store = uow_factory().store
    fr, finance = org.actor("fr"), org.actor("finance")
    day0 = store.clock.current.date()
    order = run_in(uow_factory, delivery.create_order, deal.contract, {"milestones": [
        {"name": "Install", "planned_date": (day0 + timedelta(days=5)).isoformat()},
        {"name": "Final acceptance", "kind": "final_acceptance",
         "planned_date": (day0 + timedelta(days=10)).isoformat()}]}, actor=fr)
    for seq in (1, 2):
        store.clock.advance(days=5)
        run_in(uow_factory, delivery.mark_delivered, order.id, seq, actor=fr)
        run_in(uow_factory, delivery.accept_milestone, order.id, seq, {"certificate_ref": f"CERT-{seq}"}, actor=fr)
    voided = store.rows("invoices")[0].id
    run_in(uow_factory, billing.void_invoice, voided, {"reason": "wrong purchase order"}, actor=finance)
    run_in(uow_factory, billing.issue_invoice, deal.contract, {"seq": 1, "issued_on": day0.isoformat()},
           actor=finance)
    ids = [i.id for i in store.rows("invoices")]
    return Books(contract=deal.contract, delivery=ids[1], final=ids[2], advance=ids[3], voided=voided)


@pytest.fixture
def books(cached, org) -> Books:
    return cached(("payments-books",), lambda f: _books(f, org))


def _today(store):
    return store.clock.current.date().isoformat()


def _data(store, contract_id, amount, ref="BANK-1", **extra):
    return {"contract_id": contract_id, "amount": amount, "currency": "CNY", "received_on": _today(store),
            "bank_ref": ref, **extra}


def _record(run, org, store, contract_id, amount, ref="BANK-1", **extra):
    return run(payments.record_payment, _data(store, contract_id, amount, ref, **extra), actor=org.actor("finance"))


def _counts(store):
    return {t: store.count(t) for t in ("payments", "audit", "outbox")}


def _state(store):
    """What a failed call must leave as it was: counts, balances, ledger totals."""
    return (_counts(store), [(i.status, i.paid_amount) for i in store.rows("invoices")],
            [(p.status, p.allocated, p.unapplied, len(p.allocations)) for p in store.rows("payments")],
            [c.paid_total for c in store.rows("contracts")])


def assert_money_adds_up(store):
    """Σ allocations + unapplied = amount for confirmed money (nothing moves before); every ledger agrees."""
    for p in store.rows("payments"):
        allocated = sum((a.amount for a in p.allocations), D("0"))
        assert p.allocated == allocated, p.ref
        if p.status == "confirmed":
            assert allocated + p.unapplied == p.amount, p.ref
        else:
            assert (p.allocated, p.unapplied, p.allocations) == (0, 0, []), p.ref
    for i in store.rows("invoices"):
        paid = sum((a.amount for p in store.rows("payments") for a in p.allocations if a.invoice_id == i.id), D("0"))
        assert i.paid_amount == paid <= i.amount, i.ref
    for c in store.rows("contracts"):
        assert c.paid_total == sum((i.paid_amount for i in store.rows("invoices") if i.contract_id == c.id), D("0"))


# --- recording and allocating ------------------------------------------------------------------------------

def test_finance_records_a_payment_and_it_pays_the_oldest_due_invoice_first(books, run, org, store):
    view = _record(run, org, store, books.contract, "200000")
    assert (view.status, view.amount, view.allocated, view.unapplied) == ("confirmed", D("200000.00"),
                                                                          D("200000.00"), 0)
    # the re-issued advance has the highest id but the earliest due date: it goes first
    assert [(a.invoice_id, a.amount) for a in view.allocations] == [(books.advance, D("150000.00")),
                                                                   (books.delivery, D("50000.00"))]
    assert [(store.get("invoices", i).status, store.get("invoices", i).balance)
            for i in (books.advance, books.delivery, books.final)] == [
        ("paid", 0), ("partially_paid", D("250000.00")), ("issued", D("50000.00"))]
    assert store.get("contracts", books.contract).paid_total == D("200000.00")
    assert "paid" in view.message and view.number.startswith("PAY-")
    audits = [(a.entity, a.action) for a in store.rows("audit")][-4:]
    assert audits == [("invoice", "payment"), ("invoice", "payment"), ("contract", "collect"), ("payment", "record")]
    collect = [a for a in store.rows("audit") if a.action == "collect"][-1]
    assert D(collect.before["paid_total"]) == 0 and D(collect.after["paid_total"]) == D(view.allocated)
    event = store.rows("outbox")[-1]
    assert event.topic == "PaymentRecorded" and event.payload["unapplied"] == "0.00"
    assert_money_adds_up(store)


def test_an_explicit_allocation_pays_what_it_names(books, run, org, store):
    view = _record(run, org, store, books.contract, "60000", allocations=[
        {"invoice_id": books.final, "amount": "50000"}, {"invoice_id": books.delivery, "amount": "10000"}])
    assert [(a.invoice_id, a.amount) for a in view.allocations] == [(books.final, D("50000.00")),
                                                                   (books.delivery, D("10000.00"))]
    assert store.get("invoices", books.final).status == "paid"
    assert store.get("invoices", books.advance).paid_amount == 0
    assert_money_adds_up(store)


def test_an_overpayment_stays_as_unapplied_credit(books, run, org, store):
    view = _record(run, org, store, books.contract, "520000")
    assert (view.allocated, view.unapplied) == (D("500000.00"), D("20000.00"))
    assert "20000.00 kept as unapplied credit" in view.message
    assert all(store.get("invoices", i).status == "paid" for i in (books.advance, books.delivery, books.final))
    assert store.get("invoices", books.voided).paid_amount == 0  # nothing to a void invoice
    assert_money_adds_up(store)


def test_an_allocation_above_the_invoice_balance_is_refused_and_nothing_is_written(books, run, org, store):
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        _record(run, org, store, books.contract, "100000", allocations=[
            {"invoice_id": books.delivery, "amount": "40000"}, {"invoice_id": books.final, "amount": "50000.01"}])
    assert err.value.field == "allocations.1.amount" and "never over-allocated" in err.value.message
    assert _state(store) == before


def test_allocations_above_the_payment_are_refused(books, run, org, store):
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        _record(run, org, store, books.contract, "1000", allocations=[{"invoice_id": books.final, "amount": "1000.01"}])
    assert err.value.field == "allocations"
    assert _state(store) == before


def test_a_payment_on_a_void_invoice_is_refused_and_nothing_is_written(books, run, org, store):
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        _record(run, org, store, books.contract, "1000", allocations=[
            {"invoice_id": books.final, "amount": "500"}, {"invoice_id": books.voided, "amount": "500"}])
    assert err.value.field == "allocations.1.invoice_id" and "void" in err.value.message
    assert _state(store) == before


def test_a_payment_in_another_currency_is_refused_naming_the_currency(books, run, org, store):
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        run(payments.record_payment, {**_data(store, books.contract, "1000"), "currency": "USD",
                                      "allocations": [{"invoice_id": books.final, "amount": "1000"}]},
            actor=org.actor("finance"))
    assert err.value.field == "currency" and "CNY" in err.value.message and "USD" in err.value.message
    with pytest.raises(ValidationFailed) as err:
        run(payments.record_payment, {**_data(store, books.contract, "1000"), "currency": "XYZ"},
            actor=org.actor("finance"))
    assert err.value.field == "currency"
    assert _state(store) == before


def test_a_usd_payment_never_pays_a_cny_invoice(books, run, org, store):
    with pytest.raises(ValidationFailed) as err:  # named for a CNY contract: refused outright
        run(payments.record_payment, {**_data(store, books.contract, "1000"), "currency": "USD"},
            actor=org.actor("finance"))
    assert err.value.field == "currency"
    account = store.get("contracts", books.contract).account_id
    data = {**_data(store, books.contract, "1000"), "currency": "USD", "account_id": account}
    del data["contract_id"]
    view = run(payments.record_payment, data, actor=org.actor("finance"))
    assert (view.allocated, view.unapplied, view.currency) == (0, D("1000.00"), "USD")
    assert all(i.paid_amount == 0 for i in store.rows("invoices"))
    assert_money_adds_up(store)


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": "-5"}, "amount"), ({"amount": "0"}, "amount"), ({"bank_ref": ""}, "bank_ref"),
    ({"method": "barter"}, "method"), ({"contract_id": "CT-1999-00001"}, "contract_id"),
    ({"contract_id": None}, "account_id"),
])
def test_bad_payment_input_names_the_field_and_writes_nothing(change, field, books, run, org, store):
    before = _state(store)
    with pytest.raises((ValidationFailed, NotFound)) as err:
        run(payments.record_payment, {**_data(store, books.contract, "1000"), **change}, actor=org.actor("finance"))
    assert err.value.field == field
    assert _state(store) == before


def test_a_payment_received_in_the_future_is_refused(books, run, org, store):
    tomorrow = (store.clock.current.date() + timedelta(days=1)).isoformat()
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        run(payments.record_payment, {**_data(store, books.contract, "1000"), "received_on": tomorrow},
            actor=org.actor("finance"))
    assert err.value.field == "received_on"
    assert _state(store) == before


# --- the same money twice -------------------------------------------------------------------------------

def test_the_same_bank_reference_twice_is_one_payment(books, run, org, store):
    first = _record(run, org, store, books.contract, "1000", "BOC-77")
    before = _state(store)
    again = _record(run, org, store, books.contract, "1000", "BOC-77")
    assert again.id == first.id and "nothing posted twice" in again.message
    assert _state(store) == before


@pytest.mark.parametrize("change", [{"amount": "1001"}, {"received_on": "2020-01-01"}])
def test_the_same_bank_reference_with_other_details_is_a_conflict(change, books, run, org, store):
    first = _record(run, org, store, books.contract, "1000", "BOC-77")
    before = _state(store)
    with pytest.raises(Conflict) as err:
        run(payments.record_payment, {**_data(store, books.contract, "1000", "BOC-77"), **change},
            actor=org.actor("finance"))
    assert err.value.field == "bank_ref" and first.number in err.value.message
    assert _state(store) == before


# --- the AR proposes, finance confirms --------------------------------------------------------------------

def test_the_ar_proposes_and_finance_confirms(books, run, org, store):
    proposed = run(payments.propose_payment, _data(store, books.contract, "150000", "BOC-9"), actor=org.actor("rep"))
    assert (proposed.status, proposed.allocated, proposed.unapplied) == ("proposed", 0, 0)
    assert store.get("invoices", books.advance).paid_amount == 0 and "finance will confirm" in proposed.message
    assert_money_adds_up(store)
    with pytest.raises(PermissionDenied, match="record_payment"):
        run(payments.confirm_payment, proposed.id, actor=org.actor("rep"))
    confirmed = run(payments.confirm_payment, proposed.id, actor=org.actor("finance"))
    assert (confirmed.status, confirmed.allocated) == ("confirmed", D("150000.00"))
    assert confirmed.allocations[0].invoice_id == books.advance and confirmed.confirmed_at is not None
    row = store.get("payments", proposed.id)
    assert (row.created_by, row.confirmed_by) == (org["rep"], org["finance"])
    with pytest.raises(InvalidTransition):
        run(payments.confirm_payment, proposed.id, actor=org.actor("finance"))
    assert [a.action for a in store.rows("audit") if a.entity == "payment"] == ["propose", "confirm"]
    assert_money_adds_up(store)


def test_finance_rejects_a_proposed_payment_the_bank_does_not_show(books, run, org, store):
    proposed = run(payments.propose_payment, _data(store, books.contract, "1000", "BOC-9"), actor=org.actor("rep"))
    with pytest.raises(ValidationFailed) as err:
        run(payments.reject_payment, proposed.id, "  ", actor=org.actor("finance"))
    assert err.value.field == "reason"
    rejected = run(payments.reject_payment, proposed.id, "not on the statement", actor=org.actor("finance"))
    assert rejected.status == "rejected" and "not on the statement" in rejected.message
    assert all(i.paid_amount == 0 for i in store.rows("invoices"))
    entry = store.rows("audit")[-1]
    assert (entry.entity, entry.action, entry.after) == ("payment", "reject",
                                                         {"status": "rejected", "reason": "not on the statement"})
    with pytest.raises(InvalidTransition):
        run(payments.confirm_payment, proposed.id, actor=org.actor("finance"))
    with pytest.raises(InvalidTransition):
        run(payments.reject_payment, proposed.id, "again", actor=org.actor("finance"))
    assert_money_adds_up(store)


def test_only_a_seller_who_sees_the_customer_proposes(books, run, org, store):
    before = _state(store)
    with pytest.raises(PermissionDenied, match="no contract with this customer"):
        run(payments.propose_payment, _data(store, books.contract, "1000"), actor=org.actor("rep2"))
    with pytest.raises(PermissionDenied, match="propose_payment"):
        run(payments.propose_payment, _data(store, books.contract, "1000"), actor=org.actor("finance"))
    assert _state(store) == before
    assert run(payments.propose_payment, _data(store, books.contract, "1000"),
               actor=org.actor("manager")).status == "proposed"


# --- credit applied later -----------------------------------------------------------------------------------

def test_allocate_payment_applies_credit_later(signed, run, org, store):
    deal = signed()
    over = _record(run, org, store, deal.contract, "200000")  # the advance is 150,000: 50,000 credit
    assert (over.allocated, over.unapplied) == (D("150000.00"), D("50000.00"))
    with pytest.raises(ValidationFailed) as err:  # explicit allocation to a paid invoice
        run(payments.allocate_payment, over.id, {"allocations": [
            {"invoice_id": over.allocations[0].invoice_id, "amount": "1"}]}, actor=org.actor("finance"))
    assert err.value.field == "allocations.0.invoice_id"
    nothing = run(payments.allocate_payment, over.id, actor=org.actor("finance"))
    assert nothing.unapplied == D("50000.00") and "applied to nothing" in nothing.message
    order = run(delivery.create_order, deal.contract, {"milestones": [
        {"name": "Install", "planned_date": _today(store)}]}, actor=org.actor("fr"))
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1"}, actor=org.actor("fr"))
    later = run(payments.allocate_payment, over.number, actor=org.actor("finance"))
    assert (later.allocated, later.unapplied) == (D("200000.00"), 0)
    newest = store.rows("invoices")[1]
    assert [(a.invoice_id, a.amount) for a in later.allocations][-1] == (newest.id, D("50000.00"))
    assert (newest.status, newest.paid_amount) == ("partially_paid", D("50000.00"))
    with pytest.raises(ValidationFailed) as err:
        run(payments.allocate_payment, over.id, actor=org.actor("finance"))
    assert err.value.field == "payment_id" and "no unapplied credit" in err.value.message
    allocate = [a for a in store.rows("audit") if a.entity == "payment" and a.action == "allocate"]
    assert allocate[-1].before == {"allocated": "150000.00", "unapplied": "50000.00"}
    assert allocate[-1].after == {"allocated": "200000.00", "unapplied": "0.00"}
    assert_money_adds_up(store)


def test_a_proposed_payment_is_not_allocated_before_it_is_confirmed(books, run, org, store):
    proposed = run(payments.propose_payment, _data(store, books.contract, "1000", "BOC-9"), actor=org.actor("rep"))
    with pytest.raises(InvalidTransition, match="confirm it first"):
        run(payments.allocate_payment, proposed.id, actor=org.actor("finance"))


def test_money_adds_up_after_every_operation(books, run, org, store):
    steps = [
        lambda: _record(run, org, store, books.contract, "100000", "B1",
                        allocations=[{"invoice_id": books.final, "amount": "20000"}]),
        lambda: run(payments.propose_payment, _data(store, books.contract, "250000", "B2"), actor=org.actor("rep")),
        lambda: run(payments.allocate_payment, f"PAY-{store.clock.current.year}-00001", {"allocations": [
            {"invoice_id": books.final, "amount": "30000"}]}, actor=org.actor("finance")),
        lambda: run(payments.confirm_payment, 2, actor=org.actor("finance")),
        lambda: run(payments.allocate_payment, 1, actor=org.actor("finance")),
        lambda: _record(run, org, store, books.contract, "99999.99", "B3"),
        lambda: run(payments.propose_payment, _data(store, books.contract, "5", "B4"), actor=org.actor("rep")),
        lambda: run(payments.reject_payment, 4, "bounced", actor=org.actor("finance")),
    ]
    for step in steps:
        step()
        assert_money_adds_up(store)
    assert [(p.status, p.unapplied) for p in store.rows("payments")] == [
        ("confirmed", 0), ("confirmed", 0), ("confirmed", 0), ("rejected", 0)]
    assert sum(i.paid_amount for i in store.rows("invoices")) == D("449999.99")
    views = run(payments.payments_for_account, store.get("contracts", books.contract).account_id,
                actor=org.actor("rep"))
    assert [v.bank_ref for v in views] == ["B1", "B2", "B3", "B4"]


def test_a_payment_is_found_by_its_id_or_its_number(books, run, org, store):
    view = _record(run, org, store, books.contract, "1000")
    for ref in (view.id, str(view.id), view.number, view.number.lower()):
        assert run(payments.get_payment, ref, actor=org.actor("rep")).id == view.id, ref
    with pytest.raises(NotFound) as err:
        run(payments.get_payment, "PAY-1999-00001", actor=org.actor("finance"))
    assert err.value.field == "payment_id"
    with pytest.raises(PermissionDenied):
        run(payments.get_payment, view.number, actor=org.actor("rep2"))


def test_the_ar_proposes_the_money_and_finance_allocates_it(books, run, org, store):
    """Allocations on a proposal would be dropped silently at confirmation: they are refused instead."""
    before = _state(store)
    with pytest.raises(ValidationFailed) as err:
        run(payments.propose_payment, _data(store, books.contract, "50000", "BOC-9",
                                            allocations=[{"invoice_id": books.final, "amount": "50000"}]),
            actor=org.actor("rep"))
    assert err.value.field == "allocations" and "Finance allocates" in err.value.message
    assert _state(store) == before
    proposed = run(payments.propose_payment, _data(store, books.contract, "50000", "BOC-9"), actor=org.actor("rep"))
    confirmed = run(payments.confirm_payment, proposed.id, {"allocations": [
        {"invoice_id": books.final, "amount": "50000"}]}, actor=org.actor("finance"))
    assert [(a.invoice_id, a.amount) for a in confirmed.allocations] == [(books.final, D("50000.00"))]
    assert_money_adds_up(store)


def test_recording_the_bank_line_of_a_proposed_payment_confirms_it(books, run, org, store):
    proposed = run(payments.propose_payment, _data(store, books.contract, "150000", "BOC-7"), actor=org.actor("rep"))
    recorded = run(payments.record_payment, _data(store, books.contract, "150000", "BOC-7"),
                   actor=org.actor("finance"))
    assert (recorded.id, recorded.status, recorded.allocated) == (proposed.id, "confirmed", D("150000.00"))
    assert store.count("payments") == 1 and store.get("invoices", books.advance).status == "paid"
    again = run(payments.record_payment, _data(store, books.contract, "150000", "BOC-7"), actor=org.actor("finance"))
    assert again.id == proposed.id and "nothing posted twice" in again.message
    assert store.get("invoices", books.advance).paid_amount == D("150000.00")
    assert_money_adds_up(store)


def test_a_rejected_proposal_frees_its_bank_reference_for_the_real_posting(books, run, org, store):
    wrong = run(payments.propose_payment, _data(store, books.contract, "15000", "BOC-5"), actor=org.actor("rep"))
    run(payments.reject_payment, wrong.id, "the bank shows 150,000", actor=org.actor("finance"))
    real = run(payments.record_payment, _data(store, books.contract, "150000", " boc-5 "), actor=org.actor("finance"))
    assert real.id != wrong.id and real.bank_ref == "BOC-5" and real.allocated == D("150000.00")
    with pytest.raises(ValidationFailed) as err:
        run(payments.reject_payment, real.id, 5, actor=org.actor("finance"))
    assert err.value.field == "reason"
    assert_money_adds_up(store)


def test_bank_references_are_one_spelling_whatever_the_case_and_spaces(books, run, org, store):
    first = run(payments.record_payment, _data(store, books.contract, "1000", "icbc 0001"), actor=org.actor("finance"))
    again = run(payments.record_payment, _data(store, books.contract, "1000", "ICBC  0001"), actor=org.actor("finance"))
    assert first.id == again.id and first.bank_ref == "ICBC 0001" and store.count("payments") == 1


def test_confirming_a_proposal_pays_the_contract_the_ar_named(signed, run, org, store, uow_factory):
    mine = signed()
    theirs = build_signed(uow_factory, org, n=102, owner="rep2")
    # Both deals are with one customer (as if rep2 had opened his on rep's account).
    account = store.get("contracts", mine.contract).account_id
    store.get("contracts", theirs.contract).account_id = account
    for invoice in store.rows("invoices"):
        invoice.account_id = account
    proposal = run(payments.propose_payment, _data(store, theirs.contract, "150000", "BOC-88"),
                   actor=org.actor("rep2"))
    confirmed = run(payments.confirm_payment, proposal.id, actor=org.actor("finance"))
    paid = {store.get("invoices", a.invoice_id).contract_id for a in confirmed.allocations}
    assert paid == {theirs.contract}
    with pytest.raises(PermissionDenied):  # rep cannot see rep2's deal, so not its payment either
        run(payments.get_payment, proposal.id, actor=org.actor("rep"))
    credit = run(payments.record_payment, _data(store, mine.contract, "999999", "BOC-89"), actor=org.actor("finance"))
    with pytest.raises(NotFound) as err:
        run(payments.allocate_payment, credit.id, {"contract_id": 99999}, actor=org.actor("finance"))
    assert err.value.field == "contract_id"
