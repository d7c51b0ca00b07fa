"""Orders and delivery milestones: opened by the FR from a signed contract, accepted with a certificate."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.services import billing, contracts, delivery, revenue, users

D = Decimal


def _today(store):
    return store.clock.current.date()


def _ms(store, *specs):
    """Milestones planned for today: ("name", kind, revenue_pct or None)."""
    today = _today(store).isoformat()
    out = []
    for name, kind, pct in specs:
        m = {"name": name, "kind": kind, "planned_date": today}
        if pct is not None:
            m["revenue_pct"] = pct
        out.append(m)
    return out


def _counts(store):
    return {t: store.count(t) for t in ("orders", "audit", "outbox", "invoices", "revenue_entries")}


def _order(run, org, store, contract_id, *specs, who="fr"):
    return run(delivery.create_order, contract_id, {"milestones": _ms(store, *specs)}, actor=org.actor(who))


TWO = (("Install", "delivery", None), ("Final acceptance", "final_acceptance", None))


# --- opening the order -----------------------------------------------------------------------------

def test_the_fr_opens_the_order_of_a_signed_contract_and_it_starts_executing(signed, run, org, store):
    deal = signed()
    view = _order(run, org, store, deal.contract, *TWO)
    year = store.clock.current.year
    assert (view.number, view.status, view.contract_number) == (f"SO-{year}-00001", "open", f"CT-{year}-00001")
    assert [(m.seq, m.kind, m.status, m.revenue_pct) for m in view.milestones] == [
        (1, "delivery", "planned", D("50")), (2, "final_acceptance", "planned", D("50"))]
    assert store.get("contracts", deal.contract).status == "executing"
    actions = [(a.entity, a.action) for a in store.rows("audit")][-2:]
    assert actions == [("order", "create"), ("contract", "execute")]
    assert run(delivery.order_for_contract, deal.contract, actor=org.actor("rep")).id == view.id


def test_an_order_needs_a_signed_contract_and_there_is_one_per_contract(signed, run, org, store):
    deal = signed()
    _order(run, org, store, deal.contract, *TWO)
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:  # the contract is executing now
        _order(run, org, store, deal.contract, *TWO)
    assert err.value.field == "status" and err.value.allowed == ["signed"]
    assert _counts(store) == before


def test_a_draft_contract_gets_no_order(accepted, run, org, store):
    deal = accepted()
    draft = run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))
    with pytest.raises(InvalidTransition, match="signed contract"):
        _order(run, org, store, draft.id, *TWO)
    assert store.count("orders") == 0


@pytest.mark.parametrize(("who", "allowed"), [("fr", True), ("sales_ops", True), ("admin", True),
                                              ("rep", False), ("finance", False), ("fr2", False)])
def test_only_the_deals_fr_or_operations_open_the_order(who, allowed, signed, run, org, store):
    deal = signed()
    if who == "fr2":  # a fulfillment manager who sees the deal (as finance sees won deals), not its FR
        fr2 = run(users.create_user, {"email": "fr2@example.com", "name_en": "Fr Two", "region": "east",
                                      "roles": ["fulfillment_manager", "finance"]}, actor=org.actor("admin"))
        org.ids["fr2"] = fr2.id
    before = _counts(store)
    if allowed:
        assert _order(run, org, store, deal.contract, *TWO, who=who).status == "open"
        return
    with pytest.raises(PermissionDenied) as err:
        _order(run, org, store, deal.contract, *TWO, who=who)
    assert ("FR may open" in err.value.message) if who == "fr2" else ("manage_delivery" in err.value.message)
    assert _counts(store) == before


@pytest.mark.parametrize(("specs", "field"), [
    ((("Final", "final_acceptance", None), ("Install", "delivery", None)), "milestones.0.kind"),
    ((("Final", "final_acceptance", None), ("Final again", "final_acceptance", None)), "milestones.1.kind"),
])
def test_final_acceptance_comes_last_and_once(specs, field, signed, run, org, store):
    deal = signed()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        _order(run, org, store, deal.contract, *specs)
    assert err.value.field == field and "Final acceptance must be the last" in err.value.message
    assert _counts(store) == before


def test_planned_dates_out_of_order_are_refused_naming_the_milestone(signed, run, org, store):
    deal = signed()
    today = _today(store)
    before = _counts(store)
    milestones = [{"name": "Hardware", "planned_date": (today + timedelta(days=10)).isoformat()},
                  {"name": "Software", "planned_date": (today + timedelta(days=20)).isoformat()},
                  {"name": "Training", "planned_date": (today + timedelta(days=5)).isoformat()}]
    with pytest.raises(ValidationFailed) as err:
        run(delivery.create_order, deal.contract, {"milestones": milestones}, actor=org.actor("fr"))
    assert err.value.field == "milestones.2.planned_date" and "out of order" in err.value.message
    milestones = [{"name": "Hardware", "planned_date": (today - timedelta(days=1)).isoformat()}]
    with pytest.raises(ValidationFailed) as err:
        run(delivery.create_order, deal.contract, {"milestones": milestones}, actor=org.actor("fr"))
    assert err.value.field == "milestones.0.planned_date" and "before the contract was signed" in err.value.message
    assert _counts(store) == before


def test_revenue_shares_default_to_an_equal_split_that_adds_up(signed, run, org, store):
    deal = signed()
    view = _order(run, org, store, deal.contract, ("A", "delivery", None), ("B", "delivery", None),
                  ("C", "final_acceptance", None))
    assert [m.revenue_pct for m in view.milestones] == [D("33.33"), D("33.33"), D("33.34")]
    assert sum(m.revenue_pct for m in view.milestones) == 100


@pytest.mark.parametrize("pcts", [("60", "30"), ("60", None)])
def test_given_revenue_shares_must_add_up_to_100(pcts, signed, run, org, store):
    deal = signed()
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        _order(run, org, store, deal.contract, ("A", "delivery", pcts[0]), ("B", "final_acceptance", pcts[1]))
    assert err.value.field == "milestones"
    assert ("90" in err.value.message) if pcts[1] else ("every milestone or for none" in err.value.message)
    assert _counts(store) == before


# --- delivering and accepting ----------------------------------------------------------------------------

def test_a_milestone_is_delivered_then_accepted_with_the_customers_certificate(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, *TWO)
    with pytest.raises(InvalidTransition) as err:  # nothing is accepted before it is delivered
        run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1"}, actor=org.actor("fr"))
    assert err.value.allowed == ["done"]
    done = run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    assert (done.milestones[0].status, done.milestones[0].done_on) == ("done", _today(store))
    with pytest.raises(ValidationFailed) as err:
        run(delivery.accept_milestone, order.id, 1, {}, actor=org.actor("fr"))
    assert err.value.field == "certificate_ref"
    accepted = run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1"}, actor=org.actor("fr"))
    first = accepted.milestones[0]
    assert (first.status, first.certificate_ref, first.accepted_on) == ("accepted", "CERT-1", _today(store))
    assert "CERT-1" in accepted.message
    with pytest.raises(InvalidTransition, match="it is final"):
        run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    with pytest.raises(NotFound) as err:
        run(delivery.mark_delivered, order.id, 9, actor=org.actor("fr"))
    assert err.value.field == "seq" and err.value.allowed == [1, 2]
    event = next(m.payload for m in store.rows("outbox") if m.topic == "DeliveryMilestoneAccepted")
    assert event["certificate_ref"] == "CERT-1" and event["contract_id"] == deal.contract
    assert [a.action for a in store.rows("audit") if a.entity == "order"] == ["create", "done:1", "accept:1"]


def test_acceptance_before_the_delivery_date_is_refused(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, *TWO)
    signed_on = _today(store)
    store.clock.advance(days=5)
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))  # delivered today, five days after signing
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1", "accepted_on": signed_on.isoformat()},
            actor=org.actor("fr"))
    assert err.value.field == "accepted_on" and "before the delivery" in err.value.message
    assert _counts(store) == before
    assert store.get("orders", order.id).milestones[0].status == "done"


@pytest.mark.parametrize("step", ["mark_delivered", "accept_milestone"])
def test_dates_in_the_future_are_refused(step, signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, *TWO)
    tomorrow = (_today(store) + timedelta(days=1)).isoformat()
    if step == "accept_milestone":
        run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        if step == "mark_delivered":
            run(delivery.mark_delivered, order.id, 1, {"done_on": tomorrow}, actor=org.actor("fr"))
        else:
            run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "C", "accepted_on": tomorrow},
                actor=org.actor("fr"))
    field = "done_on" if step == "mark_delivered" else "accepted_on"
    assert err.value.field == field and "in the future" in err.value.message
    assert _counts(store) == before


def test_delivery_before_signing_is_refused(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, *TWO)
    yesterday = (_today(store) - timedelta(days=1)).isoformat()
    with pytest.raises(ValidationFailed) as err:
        run(delivery.mark_delivered, order.id, 1, {"done_on": yesterday}, actor=org.actor("fr"))
    assert err.value.field == "done_on"


def _deliver(run, org, order_id, seq, cert=None):
    run(delivery.mark_delivered, order_id, seq, actor=org.actor("fr"))
    return run(delivery.accept_milestone, order_id, seq, {"certificate_ref": cert or f"CERT-{seq}"},
               actor=org.actor("fr"))


def test_acceptance_recognises_revenue_cumulatively_and_fires_the_invoices(signed, run, org, store):
    deal = signed()  # 500,000: 30 % signing (invoiced), 60 % delivery acceptance, 10 % final acceptance
    order = _order(run, org, store, deal.contract, ("Hardware", "delivery", "50"), ("Software", "delivery", "30"),
                   ("Final acceptance", "final_acceptance", "20"))
    def contract():
        return store.get("contracts", deal.contract)

    def billed_seqs():
        seq_of = {m.id: m.seq for m in contract().milestones}
        return [(seq_of[i.milestone_id], i.amount) for i in store.rows("invoices")]

    view = _deliver(run, org, order.id, 1)
    assert contract().recognised_total == D("250000.00")
    assert billed_seqs() == [(1, D("150000.00"))] and "invoiced" not in view.message  # a delivery is still open

    view = _deliver(run, org, order.id, 2)
    assert contract().recognised_total == D("400000.00")  # 50 % + 30 %, cumulative
    assert billed_seqs()[-1] == (2, D("300000.00"))  # every delivery milestone accepted: delivery acceptance
    assert store.rows("invoices")[-1].number in view.message
    assert view.status == "open" and contract().status == "executing"

    view = _deliver(run, org, order.id, 3, "CERT-FINAL")
    assert contract().recognised_total == D("500000.00")
    assert billed_seqs() == [(1, D("150000.00")), (2, D("300000.00")), (3, D("50000.00"))]
    schedule = run(revenue.revenue_schedule, deal.contract, actor=org.actor("finance"))
    assert [e.amount for e in schedule.entries] == [D("250000.00"), D("150000.00"), D("100000.00")]
    assert all("accepted" in e.reason for e in schedule.entries)
    assert schedule.recognised == schedule.value == D("500000.00")
    assert [m.topic for m in store.rows("outbox")].count("RevenueRecognised") == 3

    # all accepted: the order is delivered, the contract completed
    assert view.status == "delivered" and "completed" in view.message
    assert contract().status == "completed" and contract().completed_at is not None
    assert store.get("orders", order.id).delivered_at is not None
    assert ("contract", "complete") in {(a.entity, a.action) for a in store.rows("audit")}


def test_rounding_never_leaves_revenue_unrecognised_at_the_end(signed, run, org, store):
    deal = signed(amount="100000.01", n=151)
    order = _order(run, org, store, deal.contract, ("A", "delivery", None), ("B", "delivery", None),
                   ("C", "final_acceptance", None))
    for seq in (1, 2, 3):
        _deliver(run, org, order.id, seq)
    entries = [e.amount for e in store.rows("revenue_entries")]
    # 33.33 % → 33,330.00; 66.66 % → 66,660.01 cumulative; all accepted → exactly the value
    assert entries == [D("33330.00"), D("33330.01"), D("33340.00")] and sum(entries) == D("100000.01")
    assert store.get("contracts", deal.contract).recognised_total == D("100000.01")


def test_an_order_without_a_final_acceptance_milestone_fires_both_triggers_at_the_end(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, ("Only delivery", "delivery", None))
    view = _deliver(run, org, order.id, 1)
    assert view.status == "delivered"
    assert [i.amount for i in store.rows("invoices")] == [D("150000.00"), D("300000.00"), D("50000.00")]
    assert run(billing.list_invoices, deal.contract, actor=org.actor("finance"))[-1].milestone_seq == 3


def test_a_planned_milestone_past_its_date_shows_late(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, *TWO)
    assert [m.late for m in order.milestones] == [False, False]
    store.clock.advance(days=2)
    view = run(delivery.get_order, order.id, actor=org.actor("rep"))
    assert [m.late for m in view.milestones] == [True, True]
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    assert [m.late for m in run(delivery.get_order, order.number, actor=org.actor("rep")).milestones] == [False, True]


def test_final_acceptance_waits_for_every_delivery_milestone(signed, run, org, store):
    deal = signed()
    order = _order(run, org, store, deal.contract, ("Hardware", "delivery", None), ("Software", "delivery", None),
                   ("Final acceptance", "final_acceptance", None))
    fr = org.actor("fr")
    for seq in (1, 3):
        run(delivery.mark_delivered, order.id, seq, actor=fr)
    run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "CERT-1"}, actor=fr)
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:
        run(delivery.accept_milestone, order.id, 3, {"certificate_ref": "CERT-F"}, actor=fr)
    assert (err.value.field, err.value.allowed) == ("seq", [2]) and "still waiting: 2" in err.value.message
    assert _counts(store) == before
    run(delivery.mark_delivered, order.id, 2, actor=fr)
    run(delivery.accept_milestone, order.id, 2, {"certificate_ref": "CERT-2"}, actor=fr)
    done = run(delivery.accept_milestone, order.id, 3, {"certificate_ref": "CERT-F"}, actor=fr)
    assert done.status == "delivered"
