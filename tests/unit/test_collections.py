"""Collections (回款管理): aging per accountable AR, promises to pay, dunning levels with one reminder each."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, PermissionDenied, ValidationFailed
from domain.services import collections, payments
from tests.unit.conftest import build_signed

D = Decimal
BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]


@pytest.fixture
def two_ars(cached, org):
    """Two signed deals, one of rep and one of rep2 (same manager), each with its 150,000 advance open."""
    return cached(("collections-two-ars",), lambda f: (build_signed(f, org, n=101),
                                                       build_signed(f, org, n=102, owner="rep2")))


def _invoice(store, contract_id):
    return next(i for i in store.rows("invoices") if i.contract_id == contract_id)


def _reminders(store):
    return [m.payload for m in store.rows("outbox") if m.topic == "InvoiceReminderDue"]


def _pay(run, org, store, contract_id, amount, ref):
    run(payments.record_payment, {"contract_id": contract_id, "amount": amount, "currency": "CNY",
                                  "received_on": store.clock.current.date().isoformat(), "bank_ref": ref},
        actor=org.actor("finance"))


# --- aging ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("late", "bucket"), [
    (-5, "current"), (0, "current"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"),
    (61, "61-90"), (90, "61-90"), (91, "90+"), (400, "90+"),
])
def test_aging_puts_each_open_invoice_in_its_bucket_by_days_past_due(late, bucket, signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    as_of = invoice.due_on + timedelta(days=late)
    report = run(collections.aging_report, as_of=as_of, actor=org.actor("finance"))
    assert report.as_of == as_of
    [line] = report.lines
    assert (line.invoice_number, line.days_overdue, line.bucket, line.balance) == (
        invoice.number, max(late, 0), bucket, D("150000.00"))
    contract_number = store.get("contracts", deal.contract).number
    assert (line.owner_id, line.contract_number, line.promise) == (org["rep"], contract_number, None)
    assert report.buckets == {"CNY": {b: (D("150000.00") if b == bucket else 0) for b in BUCKETS}}
    [owner] = report.by_owner
    assert (owner.owner_id, owner.total, owner.buckets[bucket]) == (org["rep"], D("150000.00"), D("150000.00"))


def test_aging_totals_per_accountable_ar_and_settled_invoices_drop_out(two_ars, run, org, store):
    mine, theirs = two_ars
    due = _invoice(store, mine.contract).due_on
    _pay(run, org, store, theirs.contract, "50000", "BANK-1")
    report = run(collections.aging_report, as_of=due + timedelta(days=45), actor=org.actor("manager"))
    assert [(t.owner_id, t.total, t.buckets["31-60"]) for t in report.by_owner] == [
        (org["rep"], D("150000.00"), D("150000.00")), (org["rep2"], D("100000.00"), D("100000.00"))]
    assert report.buckets["CNY"]["31-60"] == D("250000.00")
    only = run(collections.aging_report, owner_id=org["rep2"], actor=org.actor("manager"))
    assert [x.owner_id for x in only.lines] == [org["rep2"]]
    _pay(run, org, store, theirs.contract, "100000", "BANK-2")
    assert [x.owner_id for x in run(collections.aging_report, actor=org.actor("finance")).lines] == [org["rep"]]


@pytest.mark.parametrize(("who", "sees"), [
    ("rep", ["rep"]), ("rep2", ["rep2"]), ("manager", ["rep", "rep2"]), ("director", ["rep", "rep2"]),
    ("finance", ["rep", "rep2"]), ("sr", ["rep", "rep2"]), ("rep_w", []), ("manager_w", []),
])
def test_each_person_sees_only_the_invoices_of_deals_they_see(who, sees, two_ars, run, org):
    report = run(collections.aging_report, actor=org.actor(who))
    assert sorted(x.owner_id for x in report.lines) == sorted(org[s] for s in sees)
    assert sorted(t.owner_id for t in report.by_owner) == sorted(org[s] for s in sees)


# --- promises to pay ------------------------------------------------------------------------------------

def test_the_ar_records_a_promise_to_pay(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    by = store.clock.current.date() + timedelta(days=10)
    view = run(collections.record_promise, invoice.number, {"amount": "100000", "promised_on": by.isoformat(),
                                                            "note": "CFO confirmed by phone"}, actor=org.actor("rep"))
    assert (view.invoice_number, view.amount, view.promised_on, view.state) == (
        invoice.number, D("100000.00"), by, "open")
    [promise] = store.rows("promises")
    assert (promise.invoice_id, promise.recorded_by, promise.paid_before) == (invoice.id, org["rep"], 0)
    entry = store.rows("audit")[-1]
    assert (entry.entity, entry.entity_id, entry.action) == ("invoice", invoice.id, "promise_to_pay")
    line = run(collections.aging_report, actor=org.actor("rep")).lines[0]
    assert line.promise == f"open until {by}"


@pytest.mark.parametrize(("data", "field"), [
    ({"amount": "150000.01", "days": 5}, "amount"), ({"amount": "0", "days": 5}, "amount"),
    ({"amount": "1000", "days": -1}, "promised_on"),
])
def test_a_promise_is_at_most_the_balance_and_not_in_the_past(data, field, signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    on = (store.clock.current.date() + timedelta(days=data["days"])).isoformat()
    before = store.count("promises"), store.count("audit")
    with pytest.raises(ValidationFailed) as err:
        run(collections.record_promise, invoice.id, {"amount": data["amount"], "promised_on": on},
            actor=org.actor("rep"))
    assert err.value.field == field
    assert (store.count("promises"), store.count("audit")) == before


def test_who_may_record_a_promise(two_ars, run, org, store):
    mine, _ = two_ars
    invoice = _invoice(store, mine.contract)
    data = {"amount": "1000", "promised_on": (store.clock.current.date() + timedelta(days=3)).isoformat()}
    with pytest.raises(PermissionDenied):  # another rep's customer
        run(collections.record_promise, invoice.id, data, actor=org.actor("rep2"))
    with pytest.raises(PermissionDenied, match="record_promise"):  # sees the deal, not their job
        run(collections.record_promise, invoice.id, data, actor=org.actor("sr"))
    assert store.count("promises") == 0
    for who in ("finance", "manager"):
        assert run(collections.record_promise, invoice.id, data, actor=org.actor(who)).state == "open"
    assert [p.recorded_by for p in store.rows("promises")] == [org["finance"], org["manager"]]


def test_a_paid_invoice_takes_no_promise(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    _pay(run, org, store, deal.contract, "150000", "BANK-1")
    with pytest.raises(InvalidTransition) as err:
        run(collections.record_promise, invoice.id, {"amount": "1", "promised_on": store.clock.current.date()
                                                     .isoformat()}, actor=org.actor("rep"))
    assert err.value.field == "status"


# --- dunning -------------------------------------------------------------------------------------------------

def _reach(store, day):
    """Jobs act on what has happened: move the clock to `day` (never back) and return it."""
    if store.clock.current.date() < day:
        store.clock.current = datetime.combine(day, store.clock.current.time())
    return day


def test_jobs_refuse_a_day_in_the_future(signed, run, org, store):
    signed()
    tomorrow = store.clock.current.date() + timedelta(days=1)
    with pytest.raises(ValidationFailed) as err:
        run(collections.run_dunning, as_of=tomorrow, actor=org.actor("finance"))
    assert err.value.field == "as_of"


def test_dunning_raises_levels_one_to_four_by_age_only_upwards_one_reminder_per_level(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    job = org.actor("sales_ops")

    def dun(days):
        return run(collections.run_dunning, as_of=_reach(store, invoice.due_on + timedelta(days=days)), actor=job)

    assert dun(0).raised == [] and _reminders(store) == []  # due today: not late yet
    first = dun(5)
    assert first.raised == [f"{invoice.number} → level 1 (friendly reminder)"]
    assert dun(5).raised == [] and dun(29).raised == []  # the same level reminds once
    assert dun(45).raised == [f"{invoice.number} → level 2 (firm reminder)"]
    assert dun(100).raised == [f"{invoice.number} → level 4 (finance and legal escalation)"]
    assert dun(10).raised == []  # never back down
    row = store.get("invoices", invoice.id)
    assert (row.dunning_level, row.last_dunned_on) == (4, invoice.due_on + timedelta(days=100))
    reminders = _reminders(store)
    assert [(r["level"], r["days_overdue"], r["owner_id"], r["invoice_id"]) for r in reminders] == [
        (1, 5, org["rep"], invoice.id), (2, 45, org["rep"], invoice.id), (4, 100, org["rep"], invoice.id)]
    assert reminders[0]["balance"] == "150000.00" and reminders[0]["currency"] == "CNY"
    dunning = [(a.before, a.after, a.actor_id) for a in store.rows("audit") if a.action == "dunning"]
    assert dunning == [({"dunning_level": 0}, {"dunning_level": 1}, org["sales_ops"]),
                       ({"dunning_level": 1}, {"dunning_level": 2}, org["sales_ops"]),
                       ({"dunning_level": 2}, {"dunning_level": 4}, org["sales_ops"])]
    line = run(collections.aging_report, as_of=invoice.due_on + timedelta(days=100), actor=org.actor("rep")).lines[0]
    assert line.dunning_level == 4


def test_dunning_is_a_job_for_operations_and_finance(signed, run, org, store):
    signed()
    for who in ("rep", "manager", "fr"):
        with pytest.raises(PermissionDenied, match="run_jobs"):
            run(collections.run_dunning, actor=org.actor(who))
    assert run(collections.run_dunning, actor=org.actor("finance")).raised == []


def test_a_paid_invoice_is_not_dunned(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    _pay(run, org, store, deal.contract, "150000", "BANK-1")
    assert run(collections.run_dunning, as_of=_reach(store, invoice.due_on + timedelta(days=95)),
               actor=org.actor("finance")).raised == []
    assert _reminders(store) == []


def test_an_open_promise_holds_dunning_until_it_is_broken(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    store.clock.advance(days=40)  # ten days overdue
    today = store.clock.current.date()
    run(collections.record_promise, invoice.id, {"amount": "150000", "promised_on": (today + timedelta(days=5))
                                                 .isoformat()}, actor=org.actor("rep"))
    held = run(collections.run_dunning, actor=org.actor("finance"))
    assert (held.raised, held.held) == ([], [invoice.number])
    assert store.get("invoices", invoice.id).dunning_level == 0 and _reminders(store) == []
    broken_on = today + timedelta(days=6)
    assert run(collections.aging_report, as_of=broken_on, actor=org.actor("rep")).lines[0].promise == "broken"
    after = run(collections.run_dunning, as_of=_reach(store, broken_on), actor=org.actor("finance"))
    assert (after.held, len(after.raised)) == ([], 1)
    assert [r["level"] for r in _reminders(store)] == [1]


def test_a_kept_promise_no_longer_holds_the_rest(signed, run, org, store):
    deal = signed()
    invoice = _invoice(store, deal.contract)
    store.clock.advance(days=40)
    today = store.clock.current.date()
    run(collections.record_promise, invoice.id, {"amount": "50000", "promised_on": (today + timedelta(days=20))
                                                 .isoformat()}, actor=org.actor("rep"))
    _pay(run, org, store, deal.contract, "50000", "BANK-1")  # kept: the promised part came in
    line = run(collections.aging_report, actor=org.actor("rep")).lines[0]
    assert (line.promise, line.balance) == ("kept", D("100000.00"))
    run_ = run(collections.run_dunning, actor=org.actor("finance"))
    assert run_.held == [] and run_.raised == [f"{invoice.number} → level 1 (friendly reminder)"]
