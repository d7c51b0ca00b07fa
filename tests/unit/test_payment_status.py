"""Payment status (回款状态): one read of where the money stands, checked against hand-computed numbers."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest

from domain.errors import PermissionDenied, ValidationFailed
from domain.services import billing, collections, payments
from domain.services.payment_status import payment_status
from tests.unit.conftest import build_signed, deliver_all, run_in

D = Decimal


@dataclass(frozen=True)
class Aged:
    opp: int
    contract: int
    account: int
    day0: date
    advance: int  # 150,000 issued on day 0, due day 30: 100,000 paid, 5 days late on day 35, dunning level 1
    delivery: int  # 300,000 issued on day 20, due day 50
    final: int  # 50,000 issued on day 20, due day 50
    payment: int  # 100,000 received on day 35


def build_aged(uow_factory, org) -> Aged:
    """A signed 500,000 contract (30/60/10) on day 0, delivered and accepted on day 20; on day 35 finance
    records 100,000 (oldest first: onto the advance), dunning runs, and the AR records a promise for the rest."""
    deal = build_signed(uow_factory, org)
    store = uow_factory().store
    day0 = store.clock.current.date()
    store.clock.advance(days=20)
    deliver_all(uow_factory, org, deal.contract)
    store.clock.advance(days=15)
    today = store.clock.current.date()
    paid = run_in(uow_factory, payments.record_payment, {
        "contract_id": deal.contract, "amount": "100000", "currency": "CNY", "received_on": today.isoformat(),
        "bank_ref": "BANK-AGED-1"}, actor=org.actor("finance"))
    run_in(uow_factory, collections.run_dunning, actor=org.actor("finance"))
    with uow_factory() as uow:
        advance, delivery, final = (i.id for i in sorted(uow.invoices.for_contract(deal.contract), key=lambda i: i.id))
        account = uow.contracts.get(deal.contract).account_id
    run_in(uow_factory, collections.record_promise, advance, {
        "amount": "50000", "promised_on": (today + timedelta(days=7)).isoformat()}, actor=org.actor("rep"))
    return Aged(deal.opp, deal.contract, account, day0, advance, delivery, final, paid.id)


@pytest.fixture
def aged(cached, org) -> Aged:
    return cached(("payment-status-aged",), lambda f: build_aged(f, org))


def _plain(store, invoice_ids, today):
    """The same numbers by plain Python over the store's rows."""
    rows = [store.get("invoices", i) for i in invoice_ids]
    live = [i for i in rows if i.status != "void"]
    open_ = [i for i in live if i.status in ("issued", "partially_paid")]
    return {"invoiced": sum((i.amount for i in live), D(0)), "paid": sum((i.paid_amount for i in live), D(0)),
            "outstanding": sum((i.amount - i.paid_amount for i in open_), D(0)),
            "overdue": sum((i.amount - i.paid_amount for i in open_ if i.due_on < today), D(0))}


def _numbers(view):
    return {"invoiced": view.invoiced, "paid": view.paid, "outstanding": view.outstanding, "overdue": view.overdue}


def test_a_contracts_status_adds_up_its_invoices(aged, run, org, store):
    view = run(payment_status, contract=store.get("contracts", aged.contract).number, actor=org.actor("rep"))
    today = aged.day0 + timedelta(days=35)
    assert _numbers(view) == {"invoiced": D("500000"), "paid": D("100000"), "outstanding": D("400000"),
                              "overdue": D("50000")}
    assert _numbers(view) == _plain(store, (aged.advance, aged.delivery, aged.final), view.as_of)
    assert view.as_of == today and view.kind == "contract" and view.currency == "CNY"
    assert (view.contract_value, view.not_invoiced) == (D("500000"), D("0"))
    assert [(x.number, x.balance, x.days_overdue, x.dunning_level, x.promise_state) for x in view.open_invoices] == [
        (store.get("invoices", aged.advance).number, D("50000"), 5, 1, "open"),
        (store.get("invoices", aged.delivery).number, D("300000"), 0, 0, None),
        (store.get("invoices", aged.final).number, D("50000"), 0, 0, None)]
    assert view.open_invoices[0].promise_on == today + timedelta(days=7)
    assert (view.next_due.on, view.next_due.amount) == (aged.day0 + timedelta(days=50), D("350000"))
    last = view.last_payment
    assert (last.number, last.received_on, last.amount, last.applied) == (
        store.get("payments", aged.payment).number, today, D("100000"), D("100000"))
    assert view.account_name == "Customer 101 Ltd" and view.unapplied_credit == 0


def test_an_invoices_status_is_that_invoice_alone(aged, run, org, store):
    view = run(payment_status, invoice=store.get("invoices", aged.delivery).number, actor=org.actor("fr"))
    assert _numbers(view) == {"invoiced": D("300000"), "paid": D("0"), "outstanding": D("300000"), "overdue": D("0")}
    assert view.contract_value is None and view.last_payment is None
    assert [x.number for x in view.open_invoices] == [store.get("invoices", aged.delivery).number]


def test_an_accounts_status_counts_proposals_and_credit(aged, run, org, store):
    today = store.clock.current.date().isoformat()
    run(payments.propose_payment, {"contract_id": aged.contract, "amount": "20000", "currency": "CNY",
                                   "received_on": today, "bank_ref": "BANK-AR-1"}, actor=org.actor("rep"))
    run(payments.record_payment, {"account_id": aged.account, "amount": "420000", "currency": "CNY",
                                  "received_on": today, "bank_ref": "BANK-ALL-2"}, actor=org.actor("finance"))
    view = run(payment_status, account_id=aged.account, actor=org.actor("manager"))
    assert _numbers(view) == {"invoiced": D("500000"), "paid": D("500000"), "outstanding": D("0"), "overdue": D("0")}
    assert view.open_invoices == [] and view.next_due is None
    assert (view.awaiting_confirmation, view.unapplied_credit) == (D("20000"), D("20000"))
    assert (view.last_payment.amount, view.last_payment.applied) == (D("420000"), D("400000"))


def test_a_void_invoice_counts_for_nothing(signed, run, org, store):
    deal = signed()
    advance = store.rows("invoices")[-1]
    run(billing.void_invoice, advance.id, {"reason": "wrong purchase order"}, actor=org.actor("finance"))
    view = run(payment_status, contract=deal.contract, actor=org.actor("rep"))
    assert (view.invoiced, view.outstanding, view.not_invoiced) == (D("0"), D("0"), D("500000"))


def test_someone_outside_the_deal_sees_no_status(aged, run, org, store):
    with pytest.raises(PermissionDenied):
        run(payment_status, contract=aged.contract, actor=org.actor("rep2"))
    with pytest.raises(PermissionDenied):
        run(payment_status, account_id=aged.account, actor=org.actor("rep_w"))


def test_exactly_one_scope_is_named(run, org):
    with pytest.raises(ValidationFailed) as err:
        run(payment_status, actor=org.actor("rep"))
    assert err.value.allowed == ["contract", "account_id", "invoice"]
    with pytest.raises(ValidationFailed):
        run(payment_status, contract=1, invoice=1, actor=org.actor("rep"))
