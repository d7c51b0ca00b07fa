"""Races on the contract-execution side: payments, bank references, discount and change-order
approvals, voiding an invoice while money is posted to it.

Same pattern as test_concurrency.py: each racer is a thread with its own unit of work (own
session, own connection), released by one barrier. On PostgreSQL the runs also force the worst
interleaving with a rendezvous placed *before the first row lock* of the use case (every racer
has read the state it plans from, nobody has locked anything yet), so it never waits for a lock
holder and never times out. SQLite serialises writers with BEGIN IMMEDIATE; a rendezvous there
could never fill, so it is only installed on PostgreSQL, and the SQLite runs show that
serialisation reaches the same end state. Each rendezvous checks that it filled (`Meeting`), so a
forced run cannot silently degrade into a sequential one. The void-versus-payment race forces its
order with two events instead (the payment has planned; the void has committed).

Every test that moves money ends with the invariants read back with plain SQL
(`assert_books_balance`): no invoice paid beyond its amount, Σ allocations = paid amounts =
contract paid_total, allocated + unapplied = amount for every confirmed payment.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import insert

from domain.db import tables as t
from domain.db.uow import FRIENDLY, utcnow
from domain.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from domain.services import approvals, billing, catalog, contracts, opportunities, payments, quotes
from domain.services.approvals import ApprovalView
from domain.services.payments import PaymentView
from tests import builders
from tests.integration.test_concurrency import race, unexpected

D = Decimal
ROUNDS = 10
ADVANCE = D("150000.00")  # 30 % of the 500,000 deal builders.full_cycle signs


# ------------------------------------------------------------------------------ helpers


def call(uow_factory, fn, *args, **kwargs):
    with uow_factory() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


def signed_contract(uow_factory, org, n: int, prefix: str) -> tuple[int, int, int]:
    """A won deal whose contract ATC signed: (opportunity, contract, its issued advance invoice)."""
    opp = builders.make_deal(uow_factory, org, n=n, prefix=prefix)
    builders.full_cycle(uow_factory, org, opp)
    with uow_factory() as uow:
        contract = uow.contracts.for_opportunity(opp)
        (invoice,) = uow.invoices.for_contract(contract.id)
        assert (contract.status, invoice.amount, invoice.status) == ("signed", ADVANCE, "issued")
        return opp, contract.id, invoice.id


class TenthsContract:
    """One signed 500,000 contract paid in ten 50,000 milestones: the first is invoiced on signing,
    the other nine fall due today and are invoiced one per round (`next_invoice`), so every race
    gets a fresh invoice for a few milliseconds instead of a whole deal."""

    AMOUNT = D("50000.00")

    def __init__(self, uow_factory, org, prefix: str) -> None:
        self.uow_factory, self.org = uow_factory, org
        rep, due = org.actor("rep"), today()
        opp = builders.make_deal(uow_factory, org, prefix=prefix)
        builders.run_gate(uow_factory, org, opp, "ATI", ["manager"])
        call(uow_factory, opportunities.record_solution, opp, "MES", actor=org.actor("sr"))
        call(uow_factory, opportunities.record_delivery_plan, opp, "One wave", actor=org.actor("fr"))
        builders.run_gate(uow_factory, org, opp, "solution_review", ["manager"])
        builders.approve_quote(uow_factory, opp)
        builders.run_gate(uow_factory, org, opp, "ATB", ["manager", "director"])
        call(uow_factory, opportunities.advance_stage, opp, actor=rep)
        call(uow_factory, opportunities.sign_off_deliverability, opp, actor=org.actor("fr"))
        with uow_factory() as uow:
            quote_id = uow.quotes.for_opportunity(opp)[-1].id
        call(uow_factory, quotes.send_quote, quote_id, actor=rep)
        call(uow_factory, quotes.accept_quote, quote_id, actor=rep)
        plan = [{"label": "Advance", "pct": "10", "trigger": "signing"}] + [
            {"label": f"Instalment {i}", "pct": "10", "trigger": "date", "due_date": due} for i in range(2, 11)]
        self.id = call(uow_factory, contracts.create_contract, {"quote_id": quote_id, "milestones": plan},
                       actor=rep).id
        builders.contract_under_review(uow_factory, org, opp)
        builders.run_gate(uow_factory, org, opp, "ATC", ["director", "finance"])
        with uow_factory() as uow:
            (self.first,) = [i.id for i in uow.invoices.for_contract(self.id)]
        self.seq = 1

    def next_invoice(self) -> int:
        """The invoice of this round: the advance first, then the next dated instalment."""
        if self.seq == 1:
            self.seq += 1
            return self.first
        view = call(self.uow_factory, billing.issue_invoice, self.id, {"seq": self.seq},
                    actor=self.org.actor("finance"))
        assert (view.amount, view.status) == (self.AMOUNT, "issued")
        self.seq += 1
        return view.id


def today() -> str:
    return utcnow().date().isoformat()


def assert_books_balance(db, contract_id: int) -> None:
    """What no interleaving may break, read back from the tables."""
    contract = db.rows(t.contracts, t.contracts.c.id == contract_id)[0]
    invoices = db.rows(t.invoices, t.invoices.c.contract_id == contract_id)
    allocations = db.rows(t.payment_allocations,
                          t.payment_allocations.c.invoice_id.in_([i.id for i in invoices] or [0]))
    for inv in invoices:
        applied = sum((a.amount for a in allocations if a.invoice_id == inv.id), D("0"))
        assert D("0") <= inv.paid_amount <= inv.amount, f"{inv.number} over-allocated: {inv.paid_amount}"
        assert applied == inv.paid_amount, f"{inv.number}: allocations {applied} ≠ paid {inv.paid_amount}"
        expected = ("void" if inv.status == "void" else "issued" if inv.paid_amount == 0
                    else "paid" if inv.paid_amount == inv.amount else "partially_paid")
        assert inv.status == expected, (inv.number, inv.status, inv.paid_amount)
    live = [i for i in invoices if i.status != "void"]
    assert contract.invoiced_total == sum((i.amount for i in live), D("0"))
    assert contract.paid_total == sum((a.amount for a in allocations), D("0"))
    assert contract.paid_total <= contract.invoiced_total <= contract.value
    for p in db.rows(t.payments, t.payments.c.account_id == contract.account_id):
        mine = sum((a.amount for a in db.rows(t.payment_allocations, t.payment_allocations.c.payment_id == p.id)),
                   D("0"))
        assert mine == p.allocated, f"{p.number}: allocations {mine} ≠ allocated {p.allocated}"
        if p.status == "confirmed":
            assert p.allocated + p.unapplied == p.amount, (p.number, p.allocated, p.unapplied, p.amount)
        else:
            assert (p.allocated, p.unapplied) == (0, 0), p.number


class Meeting:
    """A rendezvous of n racers that never raises (like test_concurrency.rendezvous) and remembers
    whether it broke, so a test can check that the interleaving it forces really happened."""

    def __init__(self, n: int, timeout: float = 10.0) -> None:
        self.barrier, self.timeout, self.broken = threading.Barrier(n), timeout, False

    def __call__(self) -> None:
        try:
            self.barrier.wait(self.timeout)
        except threading.BrokenBarrierError:
            self.broken = True


def meet_after(monkeypatch, owner, name: str, n: int) -> Meeting:
    """Patch owner.name so that each racer calls the real one, then waits for the others."""
    real, meet = getattr(owner, name), Meeting(n)

    def wrapped(*args, **kwargs):
        found = real(*args, **kwargs)
        meet()
        return found

    monkeypatch.setattr(owner, name, wrapped)
    return meet


# ------------------------------------------------------------------------------ two payments, one invoice


def _pay(org, contract_id: int, amount: str, ref: str, allocations: list | None = None) -> dict:
    data = {"contract_id": contract_id, "amount": amount, "currency": "CNY", "received_on": today(),
            "bank_ref": ref}
    if allocations is not None:
        data["allocations"] = allocations
    return data


def _race_payments(uow_factory, org, dialect, monkeypatch, contract_id, mode: str,
                   amounts: list[str], allocations: list[list | None], tag: str) -> list[object]:
    """Two payments race onto one contract: both `record`ed by finance, or both proposed first by
    the AR and then `confirm`ed by finance at the same time."""
    finance = org.actor("finance")
    proposed: list[int] = []
    if mode == "confirm":
        for i, amount in enumerate(amounts):
            view = call(uow_factory, payments.propose_payment, _pay(org, contract_id, amount, f"{tag}-{i}"),
                        actor=org.actor("rep"))
            proposed.append(view.id)
    meeting = None
    if dialect == "postgresql":
        # record: everyone has checked the bank reference before anyone takes the counter's lock;
        # confirm: everyone has planned against the same open balance before anyone locks it.
        meeting = meet_after(monkeypatch, payments, "_existing" if mode == "record" else "_plan_allocation",
                             len(amounts))

    def work(i: int):
        with uow_factory() as uow:
            if mode == "record":
                view = payments.record_payment(_pay(org, contract_id, amounts[i], f"{tag}-{i}", allocations[i]),
                                               actor=finance, uow=uow)
            else:
                data = {"allocations": allocations[i]} if allocations[i] is not None else {"contract_id": contract_id}
                view = payments.confirm_payment(proposed[i], data, actor=finance, uow=uow)
            uow.commit()
        return view

    results = race(len(amounts), work)
    monkeypatch.undo()
    assert meeting is None or not meeting.broken, "the forced interleaving did not happen"
    return results


def test_racing_oldest_first_payments_never_over_allocate(db, dialect, uow_factory, org, monkeypatch):
    """60,000 arrives in two payments for a 50,000 invoice: it is paid exactly, 10,000 is credit."""
    books = TenthsContract(uow_factory, org, "of-")
    for attempt in range(ROUNDS):
        invoice_id = books.next_invoice()  # the only open invoice: earlier rounds paid theirs in full
        mode = "record" if attempt % 2 == 0 else "confirm"
        results = _race_payments(uow_factory, org, dialect, monkeypatch, books.id, mode,
                                 ["35000", "25000"], [None, None], f"OF{attempt}")
        unexpected(results)  # both payments go through: the second one gets what is left
        assert all(isinstance(r, PaymentView) and r.status == "confirmed" for r in results)

        invoice = db.rows(t.invoices, t.invoices.c.id == invoice_id)[0]
        assert (invoice.paid_amount, invoice.status) == (books.AMOUNT, "paid")
        allocs = db.rows(t.payment_allocations, t.payment_allocations.c.invoice_id == invoice_id)
        assert sum(a.amount for a in allocs) == books.AMOUNT and len(allocs) == 2
        pays = db.rows(t.payments, t.payments.c.bank_ref.like(f"OF{attempt}-%"))
        assert sum(p.unapplied for p in pays) == D("10000.00")
        assert sum(p.allocated for p in pays) == books.AMOUNT
        assert db.rows(t.contracts, t.contracts.c.id == books.id)[0].paid_total == books.AMOUNT * (attempt + 1)
        audits = db.rows(t.audit_log, t.audit_log.c.entity == "invoice", t.audit_log.c.entity_id == invoice_id,
                         t.audit_log.c.action == "payment")
        assert len(audits) == 2
        assert_books_balance(db, books.id)


def test_racing_explicit_allocations_never_over_allocate(db, dialect, uow_factory, org, monkeypatch):
    """Two payments each put 40,000 on the same 50,000 invoice: one wins, the other is refused."""
    books = TenthsContract(uow_factory, org, "ex-")
    for attempt in range(ROUNDS):
        invoice_id = books.next_invoice()
        mode = "record" if attempt % 2 == 0 else "confirm"
        split = [{"invoice_id": invoice_id, "amount": "40000"}]
        results = _race_payments(uow_factory, org, dialect, monkeypatch, books.id, mode,
                                 ["45000", "45000"], [split, split], f"EX{attempt}")
        unexpected(results, ValidationFailed)
        losers = [r for r in results if isinstance(r, ValidationFailed)]
        winners = [r for r in results if isinstance(r, PaymentView)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert "never over-allocated" in losers[0].message, losers[0].message
        assert (winners[0].allocated, winners[0].unapplied) == (D("40000.00"), D("5000.00"))

        invoice = db.rows(t.invoices, t.invoices.c.id == invoice_id)[0]
        assert (invoice.paid_amount, invoice.status) == (D("40000.00"), "partially_paid")
        assert [a.payment_id for a in db.rows(t.payment_allocations,
                                              t.payment_allocations.c.invoice_id == invoice_id)] == [winners[0].id]
        assert db.rows(t.contracts, t.contracts.c.id == books.id)[0].paid_total == D("40000.00") * (attempt + 1)
        pays = db.rows(t.payments, t.payments.c.bank_ref.like(f"EX{attempt}-%"))
        if mode == "record":  # the refused payment was not recorded at all: finance retries it
            assert [p.id for p in pays] == [winners[0].id]
        else:  # the refused confirmation leaves that payment proposed
            assert sorted(p.status for p in pays) == ["confirmed", "proposed"]
        assert_books_balance(db, books.id)


# ------------------------------------------------------------------------------ one bank reference


def test_same_bank_reference_posted_twice_at_once_is_one_payment(db, dialect, uow_factory, org, monkeypatch):
    """Rounds of three kinds: finance records one transfer three times at once; the AR reports it
    while finance records it twice; the AR reported it earlier and three finance clicks record
    (= confirm) it at once. Always one payment, confirmed at most once, never a driver error."""
    _, contract_id, invoice_id = signed_contract(uow_factory, org, 1, "br-")
    racers = 3
    for attempt in range(ROUNDS):
        ref, kind = f"BOC-RACE-{attempt}", attempt % 3
        who = ["record", "propose", "record"] if kind == 1 else ["record"] * racers
        if kind == 2:
            call(uow_factory, payments.propose_payment, _pay(org, contract_id, "1000", ref), actor=org.actor("rep"))
        meeting = None
        if dialect == "postgresql":  # every racer has looked the reference up before anyone writes
            meeting = meet_after(monkeypatch, payments, "_existing", racers)

        def post(i: int, ref=ref, who=who):
            with uow_factory() as uow:
                if who[i] == "record":
                    view = payments.record_payment(_pay(org, contract_id, "1000", ref), actor=org.actor("finance"),
                                                   uow=uow)
                else:
                    view = payments.propose_payment(_pay(org, contract_id, "1000", ref), actor=org.actor("rep"),
                                                    uow=uow)
                uow.commit()
            return view

        results = race(racers, post)
        monkeypatch.undo()
        assert meeting is None or not meeting.broken, "the forced interleaving did not happen"

        unexpected(results, Conflict)  # a loser gets the domain's Conflict or the recorded payment
        rows = db.rows(t.payments, t.payments.c.bank_ref == ref)
        assert len(rows) == 1, f"{len(rows)} payments for one bank reference"
        payment = rows[0]
        views = [r for r in results if isinstance(r, PaymentView)]
        assert views and {v.id for v in views} == {payment.id}
        for r in results:
            if isinstance(r, Conflict):
                assert r.message == FRIENDLY["uq_payments_bank_ref"], r.message
        # Each racer that changed something wrote one audit row; everyone else was told "already".
        actions = [a.action for a in db.rows(t.audit_log, t.audit_log.c.entity == "payment",
                                             t.audit_log.c.entity_id == payment.id)]
        raced = [a for a in actions if not (kind == 2 and a == "propose")]
        fresh = [v for v in views if "recorded:" in v.message or v.message.endswith("against the bank")]
        assert len(fresh) == len(raced), ([v.message for v in views], actions)
        assert all("already" in v.message for v in views if v not in fresh), [v.message for v in views]
        assert actions.count("propose") <= 1 and actions.count("record") + actions.count("confirm") == (
            1 if payment.status == "confirmed" else 0), actions
        if kind == 2:
            assert payment.status == "confirmed" and actions == ["propose", "confirm"], actions
        allocated = db.rows(t.payment_allocations, t.payment_allocations.c.payment_id == payment.id)
        assert [a.amount for a in allocated] == ([D("1000.00")] if payment.status == "confirmed" else [])
        assert [r.key for r in db.rows(t.outbox)].count(f"PaymentRecorded:{payment.id}") == (
            1 if payment.status == "confirmed" else 0)

    # Losers rolled back their whole transaction, the number they drew included: no gaps.
    numbers = sorted(p.number for p in db.rows(t.payments))
    year = utcnow().year
    assert numbers == [f"PAY-{year}-{i:05d}" for i in range(1, ROUNDS + 1)]
    invoice = db.rows(t.invoices, t.invoices.c.id == invoice_id)[0]
    recorded = sum(1 for p in db.rows(t.payments) if p.status == "confirmed")
    assert invoice.paid_amount == D("1000.00") * recorded
    assert_books_balance(db, contract_id)


# ------------------------------------------------------------------------------ approvals


@pytest.fixture
def two_per_step(engine, org):
    """Two eligible people at each step of director → finance: the manager also holds director
    (and is in the AR's chain), legal also holds finance."""
    with engine.begin() as conn:
        conn.execute(insert(t.user_roles), [{"user_id": org["manager"], "role": "director"},
                                            {"user_id": org["legal"], "role": "finance"}])


STEP_RACERS = {1: ["director", "manager", "director", "manager"], 2: ["finance", "legal", "finance", "legal"]}


def _race_step(uow_factory, org, dialect, monkeypatch, request_id: int, step: int) -> list[object]:
    deciders = STEP_RACERS[step]
    meet = None
    if dialect == "postgresql":  # every racer has loaded the pending request; nobody holds a lock
        real_lock, meet = approvals.lock_request, Meeting(len(deciders))

        def lock(uow, approval_id, _real=real_lock):
            uow.approvals.get(approval_id)
            meet()
            return _real(uow, approval_id)

        monkeypatch.setattr(approvals, "lock_request", lock)

    def decide(i: int) -> ApprovalView:
        return call(uow_factory, approvals.decide_approval, request_id, "approve",
                    actor=org.actor(deciders[i], "slack"))

    results = race(len(deciders), decide)
    monkeypatch.undo()
    assert meet is None or not meet.broken, "the forced interleaving did not happen"
    # The other eligible person loses with PermissionDenied, by the engine's rules, never a crash:
    # * lost step 1: the request now waits at step 2, which is not theirs (the engine cannot know
    #   which step a click was meant for);
    # * lost the last step: the request is closed, and a decided request stays private to those
    #   who may see the deal (finance sees deals only from a later stage on).
    unexpected(results, PermissionDenied)
    winners = [r for r in results if isinstance(r, ApprovalView) and r.message.startswith("You approved")]
    assert len(winners) == 1, [getattr(r, "message", r) for r in results]
    for r in results:
        if isinstance(r, PermissionDenied):
            assert ("needs a finance" in r.message if step == 1 else "cannot see" in r.message), r.message
        elif r is not winners[0]:
            assert r.message.startswith("Already recorded") or "already approved" in r.message, r.message
    return results


def _assert_one_decision_per_step(db, request_id: int, steps: int) -> None:
    decisions = db.rows(t.approval_decisions, t.approval_decisions.c.request_id == request_id)
    assert sorted(d.step_seq for d in decisions) == list(range(1, steps + 1)), decisions
    assert len({d.decider_id for d in decisions}) == steps  # four eyes held under the race
    request = db.rows(t.approval_requests, t.approval_requests.c.id == request_id)[0]
    assert (request.status, request.current_step) == ("approved", steps) and request.closed_at is not None
    keys = [r.key for r in db.rows(t.outbox)]
    assert sorted(k for k in keys if k.startswith(f"ApprovalDecided:{request_id}:")) == [
        f"ApprovalDecided:{request_id}:{s}" for s in range(1, steps + 1)]
    audits = db.rows(t.audit_log, t.audit_log.c.entity == "approval", t.audit_log.c.entity_id == request_id,
                     t.audit_log.c.action == "decide:approve")
    assert len(audits) == steps


def test_racing_discount_approvals_record_one_decision_per_step(db, dialect, uow_factory, org, two_per_step,
                                                              monkeypatch):
    rep = org.actor("rep")
    admin = org.actor("admin")
    call(uow_factory, catalog.create_product, {"sku": "MES-LIC", "name_en": "MES licence", "name_zh": "MES许可",
                                               "unit": "seat", "cost": "300", "floor_price": "500"}, actor=admin)
    call(uow_factory, catalog.create_price_book, {"name": "East CNY", "region": "east", "currency": "CNY",
                                                  "prices": {"MES-LIC": "1000"}}, actor=admin)
    opp = builders.make_deal(uow_factory, org, amount="750000")
    for attempt in range(4):
        quote = call(uow_factory, quotes.create_quote, opp,
                     {"lines": [{"product": "MES-LIC", "quantity": str(1000 + attempt), "discount_pct": "25"}]},
                     actor=rep)
        quote = call(uow_factory, quotes.submit_quote, quote.id, actor=rep)
        assert quote.status == "pending_approval"
        request_id = quote.approval_id
        steps = [(s.role, s.scope) for s in call(uow_factory, approvals.get_approval, request_id, actor=rep).steps]
        assert steps == [("director", "chain"), ("finance", "any")]

        _race_step(uow_factory, org, dialect, monkeypatch, request_id, 1)
        assert db.rows(t.quotes, t.quotes.c.id == quote.id)[0].status == "pending_approval"
        _race_step(uow_factory, org, dialect, monkeypatch, request_id, 2)

        _assert_one_decision_per_step(db, request_id, 2)
        row = db.rows(t.quotes, t.quotes.c.id == quote.id)[0]
        assert (row.status, row.approved_discount_pct) == ("approved", D("25.00"))
        approved = db.rows(t.audit_log, t.audit_log.c.entity == "quote", t.audit_log.c.entity_id == quote.id,
                           t.audit_log.c.action == "approve")
        assert len(approved) == 1
        changed = [r for r in db.rows(t.outbox, t.outbox.c.topic == "QuoteStatusChanged")
                   if r.payload["quote_id"] == quote.id and r.payload["to_status"] == "approved"]
        assert len(changed) == 1


# A plan per new value that keeps the invoiced advance (150,000, on signing) exactly as invoiced.
CHANGES = [("600000", "25"), ("750000", "20"), ("1000000", "15"), ("500000", "30")]


def test_racing_change_order_approvals_apply_the_change_once(db, dialect, uow_factory, org, two_per_step,
                                                           monkeypatch):
    _, contract_id, invoice_id = signed_contract(uow_factory, org, 1, "co-")
    for attempt, (value, advance_pct) in enumerate(CHANGES):
        rest = str(D("90") - D(advance_pct))
        view = call(uow_factory, contracts.request_change_order, contract_id, {
            "value": value, "reason": f"scope change {attempt}", "milestones": [
                {"label": "Advance", "pct": advance_pct, "trigger": "signing"},
                {"label": "Delivery", "pct": rest, "trigger": "delivery_acceptance"},
                {"label": "Final", "pct": "10", "trigger": "final_acceptance"}]}, actor=org.actor("rep"))
        change = view.changes[-1]
        assert change.status == "pending"
        before = db.rows(t.contracts, t.contracts.c.id == contract_id)[0]

        _race_step(uow_factory, org, dialect, monkeypatch, change.approval_id, 1)
        assert db.rows(t.contracts, t.contracts.c.id == contract_id)[0].value == before.value  # not yet
        _race_step(uow_factory, org, dialect, monkeypatch, change.approval_id, 2)

        _assert_one_decision_per_step(db, change.approval_id, 2)
        row = db.rows(t.change_orders, t.change_orders.c.number == change.number)[0]
        assert row.status == "approved" and row.decided_at is not None
        contract = db.rows(t.contracts, t.contracts.c.id == contract_id)[0]
        assert contract.value == D(value)
        assert contract.version > before.version
        applied = db.rows(t.audit_log, t.audit_log.c.entity == "contract", t.audit_log.c.entity_id == contract_id,
                          t.audit_log.c.action == f"change:{change.number}")
        assert len(applied) == 1, "the change order was applied more than once"
        milestones = db.rows(t.contract_milestones, t.contract_milestones.c.contract_id == contract_id,
                             order_by=t.contract_milestones.c.seq)
        assert [m.amount for m in milestones] == [ADVANCE, D(value) * D(rest) / 100, D(value) / 10]
        assert len(db.rows(t.revenue_entries, t.revenue_entries.c.change_order_id == row.id)) <= 1
        # The advance stays exactly as invoiced; nothing was invoiced twice.
        assert [(i.id, i.amount, i.status) for i in db.rows(t.invoices, t.invoices.c.contract_id == contract_id)] \
            == [(invoice_id, ADVANCE, "issued")]
        assert_books_balance(db, contract_id)
    assert len(db.rows(t.change_orders, t.change_orders.c.status == "pending")) == 0


# ------------------------------------------------------------------------------ void while paying


def _void_and_pay(uow_factory, org, contract_id: int, invoice_id: int, *, explicit: bool,
                  before_void: Callable[[], None], after_void: Callable[[], None]) -> list[object]:
    finance = org.actor("finance")

    def work(i: int):
        if i == 0:
            before_void()
            try:
                with uow_factory() as uow:
                    view = billing.void_invoice(invoice_id, {"reason": "wrong customer entity"}, actor=finance,
                                                uow=uow)
                    uow.commit()
                return view
            finally:
                after_void()
        allocations = [{"invoice_id": invoice_id, "amount": "100000"}] if explicit else None
        with uow_factory() as uow:
            view = payments.record_payment(_pay(org, contract_id, "100000", f"VOID-{contract_id}", allocations),
                                           actor=finance, uow=uow)
            uow.commit()
        return view

    return race(2, work)


def _check_void_race(db, results, contract_id: int, invoice_id: int, *, explicit: bool) -> str:
    unexpected(results, InvalidTransition, ValidationFailed)
    voided, paid = results
    invoice = db.rows(t.invoices, t.invoices.c.id == invoice_id)[0]
    contract = db.rows(t.contracts, t.contracts.c.id == contract_id)[0]
    payment = db.rows(t.payments, t.payments.c.bank_ref == f"VOID-{contract_id}")
    if invoice.status == "void":  # the void won: no money on it, nothing invoiced any more
        assert not isinstance(voided, BaseException) and invoice.paid_amount == 0
        assert contract.invoiced_total == 0 and contract.paid_total == 0
        if explicit:  # the finance user named a void invoice: refused, nothing recorded
            assert isinstance(paid, ValidationFailed) and "void" in paid.message and payment == []
        else:  # oldest-first found nothing open any more: the money waits as credit
            assert isinstance(paid, PaymentView), paid
            assert (paid.allocated, paid.unapplied) == (0, D("100000.00"))
        winner = "void"
    else:  # the payment won: the invoice carries money and cannot be voided
        assert isinstance(voided, InvalidTransition) and "only an unpaid issued invoice" in voided.message
        assert isinstance(paid, PaymentView) and paid.allocated == D("100000.00")
        assert (invoice.status, invoice.paid_amount) == ("partially_paid", D("100000.00"))
        assert contract.invoiced_total == ADVANCE and contract.paid_total == D("100000.00")
        winner = "payment"
    assert_books_balance(db, contract_id)
    return winner


@pytest.mark.parametrize("explicit", [False, True], ids=["oldest_first", "explicit"])
def test_voiding_an_invoice_while_a_payment_is_posted_to_it(db, dialect, uow_factory, org, monkeypatch, explicit):
    wait = 10 if dialect == "postgresql" else 0.5
    winners = []
    for attempt in range(4):
        _, contract_id, invoice_id = signed_contract(uow_factory, org, attempt, f"vd{attempt}-")
        if attempt < 2:  # a plain race, released together
            results = _void_and_pay(uow_factory, org, contract_id, invoice_id, explicit=explicit,
                                    before_void=lambda: None, after_void=lambda: None)
        else:
            # The worst case: the payment has planned against the open invoice, then the void
            # commits, then the payment takes its locks (PostgreSQL). On SQLite the payment holds
            # the write lock, so the void waits for it and finds the invoice paid.
            planned, voided = threading.Event(), threading.Event()
            real_plan = payments._plan_allocation

            def plan(*args, _real=real_plan, **kwargs):
                found = _real(*args, **kwargs)
                planned.set()
                voided.wait(wait)
                return found

            monkeypatch.setattr(payments, "_plan_allocation", plan)
            results = _void_and_pay(uow_factory, org, contract_id, invoice_id, explicit=explicit,
                                    before_void=lambda: planned.wait(wait), after_void=voided.set)
            monkeypatch.undo()
        winners.append(_check_void_race(db, results, contract_id, invoice_id, explicit=explicit))
    if dialect == "postgresql":
        assert winners[2:] == ["void", "void"]  # forced: the void committed between plan and lock
    else:
        assert winners[2:] == ["payment", "payment"]
