"""The whole of Lead-to-Cash on real SQL (SQLite and PostgreSQL), judged by the rows it leaves."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.db import tables as t
from domain.errors import InvalidTransition
from domain.services import (
    approvals,
    catalog,
    collections,
    contracts,
    delivery,
    incentives,
    opportunities,
    payments,
    quotes,
    reconciliation,
)
from tests import builders

D = Decimal


def _catalog(uow_factory, org) -> None:
    admin = org.actor("admin")
    with uow_factory() as uow:
        catalog.create_product({"sku": "MES-LIC", "name_en": "MES licence", "name_zh": "MES许可",
                                "unit": "seat", "cost": "300", "floor_price": "500"}, actor=admin, uow=uow)
        catalog.create_price_book({"name": "East CNY", "region": "east", "currency": "CNY",
                                   "prices": {"MES-LIC": "1000"}}, actor=admin, uow=uow)
        uow.commit()


def call(uow_factory, fn, *args, **kwargs):
    with uow_factory() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


def test_lead_to_cash_end_to_end(db, uow_factory, org):
    rep, fr, finance = org.actor("rep"), org.actor("fr"), org.actor("finance")
    _catalog(uow_factory, org)
    opp = builders.make_deal(uow_factory, org, amount="750000")
    builders.run_gate(uow_factory, org, opp, "ATI", ["manager"])
    call(uow_factory, opportunities.record_solution, opp, "MES on two lines", actor=org.actor("sr"))
    call(uow_factory, opportunities.record_delivery_plan, opp, "Two waves, local partner", actor=fr)
    builders.run_gate(uow_factory, org, opp, "solution_review", ["manager"])

    # A 25 % discount routes to director then finance; the quote cannot go out before that.
    quote = call(uow_factory, quotes.create_quote, opp,
                 {"lines": [{"product": "MES-LIC", "quantity": "1000", "discount_pct": "25"}]}, actor=rep)
    assert (quote.total, quote.discount_pct) == (D("750000.00"), D("25.00"))
    quote = call(uow_factory, quotes.submit_quote, quote.id, actor=rep)
    assert quote.status == "pending_approval"
    with pytest.raises(InvalidTransition):
        call(uow_factory, quotes.send_quote, quote.id, actor=rep)
    for who in ("director", "finance"):
        call(uow_factory, approvals.decide_approval, quote.approval_id, "approve", actor=org.actor(who))
    assert call(uow_factory, quotes.get_quote, quote.id, actor=rep).status == "approved"

    builders.run_gate(uow_factory, org, opp, "ATB", ["manager", "director"])
    call(uow_factory, opportunities.advance_stage, opp, actor=rep)
    call(uow_factory, opportunities.sign_off_deliverability, opp, actor=fr)
    call(uow_factory, quotes.send_quote, quote.id, actor=rep)
    call(uow_factory, quotes.accept_quote, quote.id, actor=rep)

    contract = call(uow_factory, contracts.create_contract, {"quote_id": quote.id, "milestones": [
        {"label": "Advance", "pct": "30", "trigger": "signing"},
        {"label": "Delivery", "pct": "60", "trigger": "delivery_acceptance"},
        {"label": "Final acceptance", "pct": "10", "trigger": "final_acceptance"}]}, actor=rep)
    assert [m.amount for m in contract.milestones] == [D("225000.00"), D("450000.00"), D("75000.00")]
    call(uow_factory, contracts.submit_contract, contract.id, actor=rep)
    builders.run_gate(uow_factory, org, opp, "ATC", ["director", "finance"])

    signed = call(uow_factory, contracts.get_contract, contract.id, actor=rep)
    assert (signed.status, signed.invoiced_total) == ("signed", D("225000.00"))
    assert db.rows(t.opportunities, t.opportunities.c.id == opp)[0].stage == "won"

    order = call(uow_factory, delivery.create_order, contract.id, {"milestones": [
        {"name": "Install line 1 and 2", "planned_date": signed.signed_at.date().isoformat()},
        {"name": "Final acceptance", "kind": "final_acceptance",
         "planned_date": signed.signed_at.date().isoformat()}]}, actor=fr)
    for seq, cert in ((1, "CERT-001"), (2, "CERT-FINAL")):
        call(uow_factory, delivery.mark_delivered, order.id, seq, actor=fr)
        order = call(uow_factory, delivery.accept_milestone, order.id, seq, {"certificate_ref": cert}, actor=fr)
    assert order.status == "delivered"

    invoices = db.rows(t.invoices, order_by=t.invoices.c.id)
    assert [(i.amount, i.status) for i in invoices] == [
        (D("225000.00"), "issued"), (D("450000.00"), "issued"), (D("75000.00"), "issued")]
    in_flight = call(uow_factory, reconciliation.reconcile_contract, contract.id, actor=finance)
    assert not in_flight.clean and {m.code for m in in_flight.mismatches} == {"uncollected"}

    # Finance posts the advance; the AR reports the second payment and finance confirms it;
    # the last one overpays by 5,000, which stays as unapplied credit.
    call(uow_factory, payments.record_payment, {"contract_id": contract.id, "amount": "225000", "currency": "CNY",
                                                 "received_on": signed.signed_at.date().isoformat(),
                                                 "bank_ref": "BOC-0001"}, actor=finance)
    proposed = call(uow_factory, payments.propose_payment, {
        "contract_id": contract.id, "amount": "450000", "currency": "CNY",
        "received_on": signed.signed_at.date().isoformat(), "bank_ref": "BOC-0002"}, actor=rep)
    assert proposed.status == "proposed" and proposed.allocated == 0
    call(uow_factory, payments.confirm_payment, proposed.id, actor=finance)
    over = call(uow_factory, payments.record_payment, {
        "contract_id": contract.id, "amount": "80000", "currency": "CNY",
        "received_on": signed.signed_at.date().isoformat(), "bank_ref": "BOC-0003"}, actor=finance)
    assert (over.allocated, over.unapplied) == (D("75000.00"), D("5000.00"))
    again = call(uow_factory, payments.record_payment, {
        "contract_id": contract.id, "amount": "80000", "currency": "CNY",
        "received_on": signed.signed_at.date().isoformat(), "bank_ref": "BOC-0003"}, actor=finance)
    assert again.id == over.id and db.count(t.payments) == 3  # same bank reference, one payment

    assert [i.status for i in db.rows(t.invoices, order_by=t.invoices.c.id)] == ["paid"] * 3
    for p in db.rows(t.payments):
        allocated = sum(a.amount for a in db.rows(t.payment_allocations,
                                                  t.payment_allocations.c.payment_id == p.id))
        assert allocated + p.unapplied == p.amount

    report = call(uow_factory, reconciliation.reconcile_opportunity, opp, actor=finance)
    assert report.clean, report.mismatches
    assert (report.won_amount, report.contract_value, report.invoiced, report.collected, report.recognised) == (
        D("750000.00"),) * 5
    assert report.unapplied_credit == D("5000.00")
    assert call(uow_factory, collections.aging_report, actor=finance).lines == []

    closed = call(uow_factory, contracts.close_contract, contract.id, actor=finance)
    assert closed.status == "closed"

    split = call(uow_factory, incentives.incentive_split, contract.id, actor=org.actor("manager"))
    assert split.final and split.pool == D("15000.00")  # 2 % of 750,000 collected
    assert [(x.role, x.user_id, x.amount) for x in split.lines] == [
        ("AR", org["rep"], D("6000.00")), ("SR", org["sr"], D("4500.00")), ("FR", org["fr"], D("4500.00"))]

    row = db.rows(t.contracts)[0]
    assert (row.value, row.invoiced_total, row.paid_total, row.recognised_total, row.status) == (
        D("750000.00"), D("750000.00"), D("750000.00"), D("750000.00"), "closed")
    audited = {(a.entity, a.action.split(":")[0]) for a in db.rows(t.audit_log)}
    for expected in [("contract", "create"), ("contract", "submit"), ("contract", "sign"), ("contract", "execute"),
                     ("contract", "complete"), ("contract", "close"), ("contract", "recognise_revenue"),
                     ("order", "create"), ("order", "accept"), ("invoice", "issue"), ("invoice", "payment"),
                     ("payment", "record"), ("payment", "propose"), ("payment", "confirm")]:
        assert expected in audited, expected
    topics = [r.topic for r in db.rows(t.outbox)]
    for topic in ("ContractSigned", "InvoiceIssued", "PaymentRecorded", "RevenueRecognised",
                  "DeliveryMilestoneAccepted", "QuoteStatusChanged"):
        assert topic in topics, topic
