"""The reminders job (domain/services/reminders.py): approvals waiting, quotes expiring, delivery
milestones due and the AR's overdue-collections digest; each fact raised once, whatever how often
the job runs."""
from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import PermissionDenied
from domain.services import approvals, delivery, payments, quotes, reminders
from tests import builders
from tests.unit.conftest import build_signed

HOURS = {"remind_after_hours": 24, "escalate_after_hours": 48}
DAYS = {"quote_notice_days": 3, "milestone_notice_days": 3}


@pytest.fixture
def remind(run, org):
    """Run the job as `who` (an admin by default); returns its ReminderRun."""
    def go(who: str = "admin", **kw):
        return run(reminders.raise_reminders, actor=org.actor(who), **(HOURS | DAYS | kw))
    return go


def raised(store, topic: str) -> list[dict]:
    return [m.payload for m in store.rows("outbox") if m.topic == topic]


def today(store):
    return store.clock.current.date()


# --- approvals waiting ---------------------------------------------------------------------------------

@pytest.fixture
def ati_request(deal, run, org):
    """A deal's ATI decision requested by its AR, waiting for the sales manager."""
    opp = deal()
    return run(approvals.request_gate, opp, "ATI", actor=org.actor("rep")).id


def test_an_approval_waiting_past_the_reminder_hours_is_reminded_once_however_often_the_job_runs(
        ati_request, remind, store):
    store.clock.advance(hours=25)
    first = remind()
    remind()
    store.clock.advance(hours=2)
    remind()
    assert (first.approvals_reminded, first.approvals_escalated) == (1, 0)
    [reminder] = raised(store, "ApprovalReminderDue")
    assert (reminder["approval_id"], reminder["step_seq"], reminder["level"]) == (ati_request, 1, 1)
    assert reminder["hours_waiting"] == 25


def test_an_approval_not_yet_waiting_the_reminder_hours_is_left_alone(ati_request, remind, store):
    store.clock.advance(hours=23)
    assert remind().total == 0
    assert raised(store, "ApprovalReminderDue") == []


def test_waiting_past_the_escalation_hours_raises_level_two_and_the_reminder_before_it(ati_request, remind, store):
    store.clock.advance(hours=49)
    run = remind()
    assert (run.approvals_reminded, run.approvals_escalated) == (1, 1)
    assert sorted(r["level"] for r in raised(store, "ApprovalReminderDue")) == [1, 2]


def test_the_escalation_comes_once_after_the_reminder_was_already_raised(ati_request, remind, store):
    store.clock.advance(hours=25)
    remind()
    store.clock.advance(hours=24)
    remind()
    remind()
    assert sorted(r["level"] for r in raised(store, "ApprovalReminderDue")) == [1, 2]


def test_a_decided_step_starts_the_next_steps_wait_afresh(deal, run, org, store, remind, uow_factory):
    opp = deal("solution")
    builders.approve_quote(uow_factory, opp)
    request = run(approvals.request_gate, opp, "ATB", actor=org.actor("rep"))
    store.clock.advance(hours=30)
    run(approvals.decide_approval, request.id, "approve", actor=org.actor("manager"))
    store.clock.advance(hours=2)
    remind()
    assert raised(store, "ApprovalReminderDue") == []  # the director's step has waited 2 hours
    store.clock.advance(hours=23)
    remind()
    [reminder] = raised(store, "ApprovalReminderDue")
    assert (reminder["step_seq"], reminder["level"]) == (2, 1)


def test_decided_approvals_get_no_reminder(ati_request, run, org, remind, store):
    run(approvals.decide_approval, ati_request, "approve", actor=org.actor("manager"))
    store.clock.advance(hours=100)
    remind()
    assert raised(store, "ApprovalReminderDue") == []


# --- quotes expiring -----------------------------------------------------------------------------------

def _quote(run, org, opp: int, valid_until, *, submit: bool = True) -> int:
    quote = run(quotes.create_quote, opp, {"lines": [{"product": "MES-LIC", "quantity": "10", "discount_pct": "5"}],
                                           "valid_until": valid_until.isoformat()}, actor=org.actor("rep"))
    if submit:
        assert run(quotes.submit_quote, quote.id, actor=org.actor("rep")).status == "approved"  # within auto band
    return quote.id


def test_only_open_quotes_whose_validity_ends_within_the_notice_days_are_raised(deal, run, org, store, remind,
                                                                                 uow_factory):
    builders.seed_catalog(uow_factory, org)
    d = today(store)
    soon = _quote(run, org, deal(), d + timedelta(days=2))
    last_day = _quote(run, org, deal(), d + timedelta(days=3))
    later = _quote(run, org, deal(), d + timedelta(days=4))
    draft = _quote(run, org, deal(), d + timedelta(days=1), submit=False)
    sent_opp = deal()
    sent = _quote(run, org, sent_opp, d + timedelta(days=1))
    run(quotes.send_quote, sent, actor=org.actor("rep"))
    assert remind().quotes_expiring == 3
    got = {p["quote_id"]: p for p in raised(store, "QuoteExpiring")}
    assert set(got) == {soon, last_day, sent} and later not in got and draft not in got
    assert got[sent]["opportunity_id"] == sent_opp and got[sent]["owner_id"] == org["rep"]
    assert got[soon]["valid_until"] == (d + timedelta(days=2)).isoformat()


def test_an_expiring_quote_is_raised_once_and_not_after_it_lapsed(deal, run, org, store, remind, uow_factory):
    builders.seed_catalog(uow_factory, org)
    quote = _quote(run, org, deal(), today(store) + timedelta(days=1))
    remind()
    store.clock.advance(hours=12)
    remind()
    assert [p["quote_id"] for p in raised(store, "QuoteExpiring")] == [quote]
    store.clock.advance(days=3)  # valid_until is behind us now
    assert remind().quotes_expiring == 0


def test_the_quote_reminder_goes_to_the_deals_ar(deal, run, org, store, remind, uow_factory):
    builders.seed_catalog(uow_factory, org)
    opp = deal(owner="rep2")
    quote = run(quotes.create_quote, opp, {"lines": [{"product": "MES-LIC", "quantity": "1"}],
                                           "valid_until": today(store).isoformat()}, actor=org.actor("rep2"))
    run(quotes.submit_quote, quote.id, actor=org.actor("rep2"))
    remind()
    [p] = raised(store, "QuoteExpiring")
    assert p["owner_id"] == org["rep2"]


# --- delivery milestones due ---------------------------------------------------------------------------

@pytest.fixture
def order(signed, run, org, store):
    """A signed deal's order: #1 install in 2 days, #2 final acceptance in 10 days."""
    deal = signed()
    d = today(store)
    view = run(delivery.create_order, deal.contract, {"milestones": [
        {"name": "Install", "planned_date": (d + timedelta(days=2)).isoformat()},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": (d + timedelta(days=10)).isoformat()},
    ]}, actor=org.actor("fr"))
    return deal, view


def test_a_planned_milestone_due_within_the_notice_days_is_raised_once(order, remind, store):
    deal, view = order
    assert remind().milestones_due == 1
    remind()
    [p] = raised(store, "DeliveryMilestoneDue")
    assert (p["order_id"], p["opportunity_id"], p["seq"]) == (view.id, deal.opp, 1)
    assert p["planned_date"] == (today(store) + timedelta(days=2)).isoformat()


def test_a_late_milestone_stays_one_fact_and_a_done_one_is_not_raised(order, run, org, remind, store):
    deal, view = order
    remind()
    run(delivery.mark_delivered, view.id, 1, actor=org.actor("fr"))
    store.clock.advance(days=12)  # #2 is two days late now
    remind()
    store.clock.advance(days=1)
    remind()
    assert [(p["seq"], p["planned_date"]) for p in raised(store, "DeliveryMilestoneDue")] == [
        (1, (today(store) - timedelta(days=11)).isoformat()), (2, (today(store) - timedelta(days=3)).isoformat())]


def test_milestones_beyond_the_notice_days_wait(order, remind):
    assert remind(milestone_notice_days=1).milestones_due == 0


# --- the AR's overdue-collections digest ---------------------------------------------------------------

@pytest.fixture
def receivables(cached, org):
    """rep: a 30-day and a 90-day contract; rep2: a 30-day contract. Each has its 150,000 advance open."""
    return cached(("reminders-receivables",), lambda f: (
        build_signed(f, org, n=101), build_signed(f, org, n=102, terms=90), build_signed(f, org, n=103, owner="rep2")))


def test_each_ar_with_overdue_invoices_gets_one_digest_a_day_counting_only_overdue_ones(receivables, remind, store,
                                                                                         org):
    assert remind().digests == 0  # nothing is overdue yet
    store.clock.advance(days=31)
    run = remind()
    remind()
    assert run.digests == 2
    digests = {p["owner_id"]: p for p in raised(store, "CollectionsDigestDue")}
    assert set(digests) == {org["rep"], org["rep2"]}
    assert digests[org["rep"]]["invoices"] == 1  # the 90-day invoice is not due yet
    assert digests[org["rep"]]["on"] == today(store).isoformat()
    store.clock.advance(days=1)
    remind()
    assert len(raised(store, "CollectionsDigestDue")) == 4  # a new day, a new digest each


def test_a_paid_up_ar_gets_no_digest(receivables, run, org, store, remind):
    store.clock.advance(days=31)
    first = receivables[2]
    balance = next(i.balance for i in store.rows("invoices") if i.contract_id == first.contract)
    run(payments.record_payment, {"contract_id": first.contract, "amount": str(balance), "currency": "CNY",
                                  "received_on": today(store).isoformat(), "bank_ref": "B-REM-1"},
        actor=org.actor("finance"))
    remind()
    assert [p["owner_id"] for p in raised(store, "CollectionsDigestDue")] == [org["rep"]]


# --- who may run it ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["admin", "sales_ops", "finance"])
def test_job_roles_may_run_the_reminders(who, remind):
    assert remind(who).total == 0


@pytest.mark.parametrize("who", ["rep", "manager", "director", "sr", "fr", "legal"])
def test_nobody_else_may_run_the_reminders(who, ati_request, remind, store):
    store.clock.advance(hours=49)
    before = store.count("outbox")
    with pytest.raises(PermissionDenied):
        remind(who)
    assert store.count("outbox") == before
