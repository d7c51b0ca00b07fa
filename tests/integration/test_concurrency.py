"""Races between sessions: approval clicks, duplicate leads, optimistic locking, gate requests.

Each racer runs in its own thread with its own unit of work (own session, own connection) and
starts from a threading.Barrier. PostgreSQL is where interleaving really happens (row locks with
FOR UPDATE, UNIQUE as the last line); SQLite serialises writers with BEGIN IMMEDIATE, so the
same tests there show that serialisation gives the same end state.

Where the natural race is probabilistic, the PostgreSQL runs also force the worst interleaving
(every racer has read the row before anyone writes) with a rendezvous inside the use case. On
SQLite such a rendezvous could never fill (the first racer holds the write lock), so it is only
installed on PostgreSQL.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import insert


from domain.db import repositories
from domain.db import tables as t
from domain.errors import Conflict, InvalidTransition
from domain.model.approvals import ApprovalRequest
from domain.outbox import dispatch_pending
from domain.services import accounts, approvals, leads
from domain.services import opportunities as opp_svc
from domain.services.approvals import ApprovalView
from tests import builders

RACE_REPEATS = 10


def race(n: int, work: Callable[[int], object], *, timeout: float = 60) -> list[object]:
    """Run work(i) in n threads released together; each slot holds a result or the exception."""
    start = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            start.wait(timeout)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"racer-{i}") for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "a racer hung (deadlock?)"
    return results


def rendezvous(n: int, timeout: float = 10.0) -> Callable[[], None]:
    """A barrier that never raises: once broken (timeout), everyone just goes on."""
    barrier = threading.Barrier(n)

    def wait() -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass

    return wait


def unexpected(results: list[object], *allowed: type[BaseException]) -> None:
    """Re-raise the first exception a racer got that is not an allowed domain outcome."""
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, allowed):
            raise r


# ------------------------------------------------------------------------------ approvals


@pytest.fixture
def two_eligible_approvers(engine, org):
    """The director also holds sales_manager: two people in rep's chain may decide ATI."""
    with engine.begin() as conn:
        conn.execute(insert(t.user_roles).values(user_id=org["director"], role="sales_manager"))


def test_racing_approval_decisions_record_exactly_one(db, dialect, uow_factory, org, two_eligible_approvers,
                                                     monkeypatch):
    deciders = ["manager", "director", "manager", "director", "manager", "director"]
    real_lock = approvals.lock_request
    for attempt in range(RACE_REPEATS):
        opp = builders.make_deal(uow_factory, org, n=attempt, prefix=f"race{attempt}-")
        with uow_factory() as uow:
            req = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow).id
            uow.commit()

        forced = dialect == "postgresql" and attempt % 2 == 0
        if forced:  # every racer has read the request and its user before anyone takes the first lock
            meet = rendezvous(len(deciders))

            def locking(uow, approval_id, _real=real_lock, _meet=meet):
                _meet()
                return _real(uow, approval_id)

            monkeypatch.setattr(approvals, "lock_request", locking)

        def decide(i: int, req=req) -> ApprovalView:
            with uow_factory() as uow:
                view = approvals.decide_approval(req, "approve", actor=org.actor(deciders[i], "slack"), uow=uow)
                uow.commit()
            return view

        results = race(len(deciders), decide)
        monkeypatch.undo()

        unexpected(results)  # no racer may crash: success or the recorded outcome
        assert all(isinstance(r, ApprovalView) and r.status == "approved" for r in results)
        winners = [r for r in results if r.message.startswith("You approved")]
        assert len(winners) == 1, [r.message for r in results]
        for r in results:
            if r is not winners[0]:
                assert r.message.startswith("Already recorded") or "already approved" in r.message, r.message

        where_req = (t.approval_decisions.c.request_id == req,)
        assert len(db.rows(t.approval_decisions, *where_req)) == 1
        request = db.rows(t.approval_requests, t.approval_requests.c.id == req)[0]
        assert request.status == "approved" and request.closed_at is not None
        initiated = db.rows(t.stage_history, t.stage_history.c.opportunity_id == opp,
                            t.stage_history.c.to_stage == "initiated")
        assert len(initiated) == 1
        assert db.rows(t.opportunities, t.opportunities.c.id == opp)[0].stage == "initiated"
        keys = [r.key for r in db.rows(t.outbox)]
        assert keys.count(f"GatePassed:{req}") == 1
        assert [k for k in keys if k.startswith(f"ApprovalDecided:{req}:")] == [f"ApprovalDecided:{req}:1"]
        assert keys.count(f"OpportunityStageChanged:{opp}:{initiated[0].id}") == 1
        assert len([k for k in keys if k.startswith(f"OpportunityStageChanged:{opp}:")]) == 1
        audit = [(r.entity, r.action) for r in db.rows(t.audit_log, t.audit_log.c.entity_id.in_([req, opp]))
                 if r.action in ("decide:approve", "stage:initiated")
                 and (r.entity, r.entity_id) in (("approval", req), ("opportunity", opp))]
        assert sorted(audit) == [("approval", "decide:approve"), ("opportunity", "stage:initiated")]


def test_racing_gate_requests_open_one_request(db, uow_factory, org):
    for attempt in range(3):
        opp = builders.make_deal(uow_factory, org, n=attempt, prefix=f"gate{attempt}-")

        def ask(i: int, opp=opp):
            with uow_factory() as uow:
                view = approvals.request_gate(opp, "ATI", actor=org.actor(["rep", "sales_ops", "director", "rep"][i]),
                                              uow=uow)
                uow.commit()
            return view

        results = race(4, ask)
        unexpected(results)
        assert len({r.id for r in results}) == 1
        assert sum(r.message.endswith(f"requested for OPP-{opp:05d}") for r in results) == 1
        assert len(db.rows(t.approval_requests, t.approval_requests.c.subject_id == opp)) == 1
        assert [r.key for r in db.rows(t.outbox)].count(f"ApprovalRequested:{results[0].id}") == 1


# ------------------------------------------------------------------------------ leads


LEAD = {"source": "website", "company": "Race Conditions GmbH", "contact_name": "Rita Racer",
        "email": "Rita@Race.Example", "region": "east", "need": "Anything, fast"}

def test_racing_create_lead_with_one_email_creates_one_lead(db, dialect, uow_factory, org, monkeypatch):
    """Regression: on PostgreSQL the losers' INSERT hits uq_leads_email_norm inside
    SqlRepository.add's own flush; that IntegrityError must reach callers as a domain Conflict."""
    racers = 6
    real_find = repositories.LeadRepository.find_duplicate
    for attempt in range(3):
        email = f"rita{attempt}@race.example"
        if dialect == "postgresql":  # everyone checks for duplicates before anyone inserts
            meet = rendezvous(racers)

            def find(self, *args, _real=real_find, _meet=meet):
                found = _real(self, *args)
                _meet()
                return found

            monkeypatch.setattr(repositories.LeadRepository, "find_duplicate", find)

        def create(i: int, email=email):
            with uow_factory() as uow:
                view = leads.create_lead({**LEAD, "email": email, "contact_name": f"Rita {attempt}"},
                                         actor=org.actor(["rep", "rep2", "manager"][i % 3]), uow=uow)
                uow.commit()
            return view

        results = race(racers, create)
        monkeypatch.undo()

        unexpected(results, Conflict)
        rows = db.rows(t.leads, t.leads.c.email_norm == email)
        assert len(rows) == 1
        views = [r for r in results if not isinstance(r, Conflict)]
        assert sum(v.created for v in views) == 1
        assert {v.id for v in views} == {rows[0].id}
        assert [r.key for r in db.rows(t.outbox)].count(f"LeadCreated:{rows[0].id}") == 1


# ------------------------------------------------------------------------------ outbox dispatchers


class CountingSink:
    """Unlike RecordingSink it does not de-duplicate: it shows what the dispatchers delivered."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def handle(self, key, topic, payload) -> None:
        self.keys.append(key)


def test_concurrent_dispatchers_deliver_each_message_once(db, uow_factory, org):
    with uow_factory() as uow:
        for i in range(12):
            leads.create_lead({**LEAD, "email": f"d{i}@race.example", "contact_name": f"D {i}"},
                              actor=org.actor("rep"), uow=uow)
        uow.commit()
    expected = sorted(r.key for r in db.rows(t.outbox))
    assert len(expected) == 24
    sinks = [CountingSink() for _ in range(4)]

    def drain(i: int) -> int:
        total = 0
        while n := dispatch_pending(uow_factory.session_factory, [sinks[i]], batch=5):
            total += n
        return total

    results = race(len(sinks), drain)
    unexpected(results)
    delivered = sorted(k for s in sinks for k in s.keys)
    assert delivered == expected  # every message once, none twice (SKIP LOCKED / BEGIN IMMEDIATE)
    assert sum(results) == 24
    assert all(r.dispatched_at is not None and r.attempts == 1 for r in db.rows(t.outbox))


# ------------------------------------------------------------------------------ optimistic locking


def test_stale_opportunity_write_is_rejected_at_commit_with_conflict(db, uow_factory, org):
    opp_id = builders.make_deal(uow_factory, org)
    with uow_factory() as a:
        stale = a.opportunities.get(opp_id)
        version = stale.version
        a.commit()  # A's transaction ends; its copy (expire_on_commit=False) keeps the old version

        with uow_factory() as b:
            opp_svc.update_opportunity(opp_id, {"amount": "600000"}, actor=org.actor("rep"), uow=b)
            b.commit()

        stale.next_step = "send the proposal"
        with pytest.raises(Conflict) as info:
            a.commit()
        assert "someone else changed" in info.value.message.lower()
    row = db.rows(t.opportunities, t.opportunities.c.id == opp_id)[0]
    assert row.version == version + 1
    assert (row.amount, row.next_step) == (Decimal("600000.00"), None)


def test_second_of_two_concurrent_opportunity_updates_gets_conflict(db, dialect, uow_factory, org, monkeypatch):
    """Regression: the loser's versioned UPDATE raises StaleDataError inside update_opportunity's
    uow.flush(); callers must see a domain Conflict, not the SQLAlchemy error."""
    opp_id = builders.make_deal(uow_factory, org)
    version = db.rows(t.opportunities, t.opportunities.c.id == opp_id)[0].version
    real_check = opp_svc.require_manager_of
    # Both have loaded the deal before either writes (PostgreSQL). On SQLite the second cannot
    # even begin while the first holds the write lock, so it waits and then loads the new row.
    meet = rendezvous(2, timeout=10 if dialect == "postgresql" else 0.5)

    def loaded(ctx, opp, what):
        real_check(ctx, opp, what)
        meet()

    monkeypatch.setattr(opp_svc, "require_manager_of", loaded)
    changes = [("rep", {"amount": "610000"}), ("manager", {"next_step": "Call the CFO"})]

    def update(i: int):
        who, data = changes[i]
        with uow_factory() as uow:
            view = opp_svc.update_opportunity(opp_id, data, actor=org.actor(who), uow=uow)
            uow.commit()
        return view

    results = race(2, update)
    unexpected(results, Conflict)
    row = db.rows(t.opportunities, t.opportunities.c.id == opp_id)[0]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    if dialect == "postgresql":
        assert len(conflicts) == 1  # the second writer must reload and retry
        assert row.version == version + 1
        assert (row.amount == Decimal("610000.00")) != (row.next_step == "Call the CFO")
    else:
        assert conflicts == []  # serialised: the second read the first one's commit; nothing lost
        assert row.version == version + 2
        assert (row.amount, row.next_step) == (Decimal("610000.00"), "Call the CFO")
    updates = db.rows(t.audit_log, t.audit_log.c.entity == "opportunity", t.audit_log.c.action == "update")
    assert len(updates) == row.version - version


# ------------------------------------------------------------------------------ lost updates between use cases

def test_racing_conversions_of_one_lead_create_one_opportunity(db, dialect, uow_factory, org, monkeypatch, request):
    """A double click on "convert" for a lead whose customer already exists as an account."""
    rep = org.actor("rep")
    with uow_factory() as uow:
        accounts.create_account({"name": "Twin Turbines", "region": "east"}, actor=rep, uow=uow)
        lead = leads.create_lead({**LEAD, "company": "Twin Turbines", "email": "tina@twin.example",
                                  "contact_name": "Tina Twin"}, actor=rep, uow=uow)
        leads.qualify_lead(lead.id, actor=rep, uow=uow)
        uow.commit()
    if dialect == "postgresql":  # both clicks reach the lead's read at the same moment
        meet, real_visible = rendezvous(2), leads._visible_lead

        def visible(uow, ctx, lead_id, **kwargs):
            meet()
            return real_visible(uow, ctx, lead_id, **kwargs)

        monkeypatch.setattr(leads, "_visible_lead", visible)

    def convert(i: int):
        with uow_factory() as uow:
            view = leads.convert_lead(lead.id, actor=org.actor("rep", "slack"), uow=uow)
            uow.commit()
        return view

    results = race(2, convert)
    monkeypatch.undo()
    unexpected(results, Conflict, InvalidTransition)
    opps = db.rows(t.opportunities, t.opportunities.c.lead_id == lead.id)
    assert len(opps) == 1, f"{len(opps)} opportunities for one lead"
    assert len(db.rows(t.contacts)) == 1
    assert db.rows(t.leads, t.leads.c.id == lead.id)[0].opportunity_id == opps[0].id
    assert sum(not isinstance(r, BaseException) for r in results) == 1




def test_cancel_racing_a_decision_leaves_a_consistent_outcome(db, dialect, uow_factory, org, monkeypatch, request):
    opp = builders.make_deal(uow_factory, org)
    with uow_factory() as uow:
        req = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow).id
        uow.commit()
    cancel_has_read, decided = threading.Event(), threading.Event()
    real_cancel = ApprovalRequest.cancel

    def cancel(self, at):
        cancel_has_read.set()  # the canceller has seen 'pending' and is about to write
        # PostgreSQL: wait for the decision to commit. SQLite: the decider cannot even start
        # while we hold the write lock, so give up waiting quickly.
        decided.wait(2 if dialect == "postgresql" else 0.5)  # the decider waits on our lock: this times out
        return real_cancel(self, at)

    monkeypatch.setattr(ApprovalRequest, "cancel", cancel)

    def work(i: int):
        if i == 0:
            with uow_factory() as uow:
                view = approvals.cancel_approval(req, actor=org.actor("rep"), uow=uow, reason="changed my mind")
                uow.commit()
            return view
        cancel_has_read.wait(10)
        try:
            with uow_factory() as uow:
                view = approvals.decide_approval(req, "approve", actor=org.actor("manager"), uow=uow)
                uow.commit()
            return view
        finally:
            decided.set()

    results = race(2, work)
    monkeypatch.undo()
    unexpected(results, Conflict, InvalidTransition)
    status = db.rows(t.approval_requests, t.approval_requests.c.id == req)[0].status
    stage = db.rows(t.opportunities, t.opportunities.c.id == opp)[0].stage
    decisions = db.rows(t.approval_decisions, t.approval_decisions.c.request_id == req)
    topics = [r.topic for r in db.rows(t.outbox)]
    assert (status, stage, len(decisions)) in (("approved", "initiated", 1), ("cancelled", "qualify", 0))
    assert ("GatePassed" in topics) == (status == "approved")
    assert ("ApprovalClosed" in topics) == (status == "cancelled")




def test_closing_a_deal_while_its_gate_is_decided_never_crashes(db, dialect, uow_factory, org, monkeypatch,
                                                                  request):
    opp = builders.make_deal(uow_factory, org)
    with uow_factory() as uow:
        req = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow).id
        uow.commit()
    # Each waits until the other holds its first lock (PostgreSQL). On SQLite the first one in
    # holds the database lock, so the wait times out and the two run one after the other.
    wait = 2 if dialect == "postgresql" else 0.5  # lock order makes one of them time out
    request_locked, opp_locked = threading.Event(), threading.Event()
    real_lock_request = repositories.ApprovalRepository.get_for_update
    real_visible = opp_svc.visible_opportunity

    def lock_request(self, id_):
        found = real_lock_request(self, id_)
        request_locked.set()
        opp_locked.wait(wait)
        return found

    def visible(uow, ctx, opp_id, *, for_update=False):
        found = real_visible(uow, ctx, opp_id, for_update=for_update)
        if for_update:
            opp_locked.set()
            request_locked.wait(wait)
        return found

    monkeypatch.setattr(repositories.ApprovalRepository, "get_for_update", lock_request)
    monkeypatch.setattr(opp_svc, "visible_opportunity", visible)

    def work(i: int):
        with uow_factory() as uow:
            if i == 0:
                view = approvals.decide_approval(req, "approve", actor=org.actor("manager"), uow=uow)
            else:
                view = opp_svc.close_opportunity(opp, "lost", "Customer went silent", actor=org.actor("rep"), uow=uow)
            uow.commit()
        return view

    results = race(2, work)
    monkeypatch.undo()
    unexpected(results, Conflict, InvalidTransition)
    status = db.rows(t.approval_requests, t.approval_requests.c.id == req)[0].status
    stage = db.rows(t.opportunities, t.opportunities.c.id == opp)[0].stage
    assert (status, stage) in (("approved", "lost"), ("approved", "initiated"), ("cancelled", "lost"))
