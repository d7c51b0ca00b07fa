"""Bad input anywhere on the way from quote to cash: a domain error naming the field, and nothing written."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import timedelta

import pytest

from domain.errors import LTCError, NotFound, ValidationFailed
from domain.services import billing, catalog, collections, contracts, delivery, payments, quotes
from tests.fakes import TABLES
from tests.unit.conftest import accept_the_quote, build_negotiating, build_signed, new_deal, run_in


@dataclass(frozen=True)
class Ids:
    quoting: int  # a deal in qualify, with an east CNY price book to quote from
    quote: int  # accepted, no contract yet
    contract: int  # signed, 500,000, 30/60/10
    void: int  # the advance, voided ...
    open: int  # ... and issued again


def _build(uow_factory, org) -> Ids:
    admin = org.actor("admin")
    run_in(uow_factory, catalog.create_product, {"sku": "RTR-X", "name_en": "Router X", "name_zh": "路由器X",
                                                 "cost": "40", "floor_price": "60"}, actor=admin)
    run_in(uow_factory, catalog.create_price_book, {"name": "East", "region": "east", "currency": "CNY",
                                                    "prices": {"RTR-X": "100"}}, actor=admin)
    quoting = new_deal(uow_factory, org, n=301)
    negotiating = build_negotiating(uow_factory, org, n=302)
    accept_the_quote(uow_factory, org, negotiating.opp)
    deal = build_signed(uow_factory, org, n=303)
    store = uow_factory().store
    void = store.rows("invoices")[0].id
    run_in(uow_factory, billing.void_invoice, void, {"reason": "wrong purchase order"}, actor=org.actor("finance"))
    run_in(uow_factory, billing.issue_invoice, deal.contract, {"seq": 1}, actor=org.actor("finance"))
    return Ids(quoting=quoting, quote=negotiating.quote, contract=deal.contract, void=void,
               open=store.rows("invoices")[-1].id)


def _day(e, days: int) -> str:
    return (e["store"].clock.current.date() + timedelta(days=days)).isoformat()


def _quote(e, line):
    return e["run"](quotes.create_quote, e["ids"].quoting, {"lines": [line]}, actor=e["org"].actor("rep"))


def _contract(e, milestones):
    return e["run"](contracts.create_contract, {"quote_id": e["ids"].quote, "milestones": milestones},
                    actor=e["org"].actor("rep"))


def _pay(e, **change):
    data = {"contract_id": e["ids"].contract, "amount": "1000", "currency": "CNY", "received_on": _day(e, 0),
            "bank_ref": "BANK-BAD", **change}
    return e["run"](payments.record_payment, data, actor=e["org"].actor("finance"))


def _order(e, days):
    return e["run"](delivery.create_order, e["ids"].contract, {"milestones": [
        {"name": f"M{i}", "planned_date": _day(e, d)} for i, d in enumerate(days)]}, actor=e["org"].actor("fr"))


CASES = {
    "negative quantity": (lambda e: _quote(e, {"product": "RTR-X", "quantity": "-1"}), "lines.0.quantity"),
    "zero quantity": (lambda e: _quote(e, {"product": "RTR-X", "quantity": "0"}), "lines.0.quantity"),
    "discount above 100": (lambda e: _quote(e, {"product": "RTR-X", "quantity": "1", "discount_pct": "100.5"}),
                           "lines.0.discount_pct"),
    "negative discount": (lambda e: _quote(e, {"product": "RTR-X", "quantity": "1", "discount_pct": "-1"}),
                          "lines.0.discount_pct"),
    "unknown product": (lambda e: _quote(e, {"product": "RTR-Z9", "quantity": "1"}), "lines.0.product"),
    "quote valid until the past": (lambda e: e["run"](quotes.create_quote, e["ids"].quoting, {
        "lines": [{"product": "RTR-X", "quantity": "1"}], "valid_until": _day(e, -1)}, actor=e["org"].actor("rep")),
        "valid_until"),
    "plan short of 100": (lambda e: _contract(e, [{"label": "A", "pct": "99.99", "trigger": "signing"}]),
                          "milestones"),
    "plan dates out of order": (lambda e: _contract(e, [
        {"label": "A", "pct": "50", "trigger": "date", "due_date": _day(e, 60)},
        {"label": "B", "pct": "50", "trigger": "date", "due_date": _day(e, 30)}]), "milestones.1.due_date"),
    "order dates out of order": (lambda e: _order(e, [10, 20, 15]), "milestones.2.planned_date"),
    "order before signing": (lambda e: _order(e, [-1]), "milestones.0.planned_date"),
    "payment on a void invoice": (lambda e: _pay(e, allocations=[{"invoice_id": e["ids"].void, "amount": "1000"}]),
                                  "allocations.0.invoice_id"),
    "payment currency mismatch": (lambda e: _pay(e, currency="EUR", allocations=[
        {"invoice_id": e["ids"].open, "amount": "1000"}]), "currency"),
    "unknown currency": (lambda e: _pay(e, currency="CNX"), "currency"),
    "negative payment": (lambda e: _pay(e, amount="-1000"), "amount"),
    "payment from the future": (lambda e: _pay(e, received_on=_day(e, 1)), "received_on"),
    "allocation above the balance": (lambda e: _pay(e, amount="200000", allocations=[
        {"invoice_id": e["ids"].open, "amount": "150000.01"}]), "allocations.0.amount"),
    "promise above the balance": (lambda e: e["run"](collections.record_promise, e["ids"].open, {
        "amount": "150000.01", "promised_on": _day(e, 5)}, actor=e["org"].actor("rep")), "amount"),
    "invoice dated in the future": (lambda e: e["run"](billing.issue_invoice, e["ids"].contract, {
        "seq": 2, "issued_on": _day(e, 1)}, actor=e["org"].actor("finance")), "issued_on"),
    "void without a reason": (lambda e: e["run"](billing.void_invoice, e["ids"].open, {"reason": " "},
                                                 actor=e["org"].actor("finance")), "reason"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_the_field_and_writes_nothing(case, cached, run, org, store):
    ids = cached(("bad-input",), lambda f: _build(f, org))
    call, field = CASES[case]
    counts = {t: store.count(t) for t in TABLES}
    tables = pickle.dumps(store.tables)
    with pytest.raises(LTCError) as err:
        call({"run": run, "org": org, "store": store, "ids": ids})
    assert isinstance(err.value, ValidationFailed | NotFound), type(err.value).__name__
    assert err.value.field == field, err.value.message
    assert err.value.message
    assert {t: store.count(t) for t in TABLES} == counts
    assert pickle.dumps(store.tables) == tables
