"""Audit trail (one row per mutation, who/how/which request, change-only diffs) and the outbox."""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from domain.actor import Actor
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.errors import ValidationFailed
from domain.outbox import OutboxWorker, RecordingSink, dispatch_pending
from domain.services import approvals, leads, opportunities
from tests import builders

LEAD = {"source": "website", "company": "Audit Works Ltd", "contact_name": "Ada Auditor",
        "email": "Ada@Audit.Example", "need": "Traceability for every batch", "budget": "250000",
        "region": "east", "timeline": "within_6_months", "authority": "decision_maker"}


def audit_rows(db, request_id: str) -> list:
    return db.rows(t.audit_log, t.audit_log.c.request_id == request_id)


def outbox_keys(db) -> list[str]:
    return [r.key for r in db.rows(t.outbox)]


class Step:
    """Run one use case in its own transaction; report the audit rows and outbox keys it added."""

    def __init__(self, db, uow_factory) -> None:
        self.db, self.uow_factory = db, uow_factory

    def __call__(self, fn, *args, actor: Actor, **kwargs):
        keys_before = set(outbox_keys(self.db))
        with self.uow_factory() as uow:
            result = fn(*args, actor=actor, uow=uow, **kwargs)
            uow.commit()
        rows = audit_rows(self.db, actor.request_id)
        for row in rows:
            assert (row.actor_id, row.channel, row.via_agent) == (actor.user_id, actor.channel.value, actor.via_agent)
            assert row.at is not None
        new_keys = [k for k in outbox_keys(self.db) if k not in keys_before]
        return result, rows, new_keys


def test_each_mutation_writes_one_audit_row_with_actor_channel_and_change_only_diff(db, uow_factory, org):
    step = Step(db, uow_factory)
    rep_slack = lambda rid: Actor(org["rep"], "slack", True, rid)  # noqa: E731

    # create lead: one row, no "before", the full snapshot "after"
    lead, rows, keys = step(leads.create_lead, LEAD, actor=rep_slack("r-create"))
    assert [(r.entity, r.entity_id, r.action) for r in rows] == [("lead", lead.id, "create")]
    assert rows[0].before is None
    assert rows[0].after["company"] == "Audit Works Ltd" and rows[0].after["status"] == "new"
    assert rows[0].after["owner_id"] == org["rep"] and Decimal(rows[0].after["budget"]) == Decimal("250000")
    assert keys == [f"LeadCreated:{lead.id}", f"LeadAssigned:{lead.id}:1"]

    # update lead: only the changed field appears in before/after
    _, rows, keys = step(leads.update_lead, lead.id, {"notes": "met at the fair"},
                         actor=Actor(org["rep"], "wecom", False, "r-update"))
    assert [(r.entity, r.action) for r in rows] == [("lead", "update")]
    assert rows[0].before == {"notes": None} and rows[0].after == {"notes": "met at the fair"}
    assert keys == []

    _, rows, keys = step(leads.qualify_lead, lead.id, actor=rep_slack("r-qualify"))
    assert [(r.entity, r.action) for r in rows] == [("lead", "status:qualified")]
    assert rows[0].before == {"status": "new"} and rows[0].after == {"status": "qualified"}
    assert keys == [f"LeadStatusChanged:{lead.id}:{rows[0].id}"]

    # convert: account, contact, opportunity and lead rows, in that order, one request
    conv, rows, keys = step(leads.convert_lead, lead.id, {"amount": "240000"}, actor=rep_slack("r-convert"))
    assert [(r.entity, r.entity_id, r.action) for r in rows] == [
        ("account", conv.account_id, "create"), ("contact", conv.contact_id, "create"),
        ("opportunity", conv.opportunity_id, "create"), ("lead", lead.id, "convert")]
    assert rows[0].after["name"] == "Audit Works Ltd" and rows[0].after["owner_id"] == org["rep"]
    assert rows[1].after["decision_role"] == "decision_maker" and rows[1].after["email"].lower() == "ada@audit.example"
    assert rows[2].after["stage"] == "qualify" and Decimal(rows[2].after["amount"]) == Decimal("240000")
    assert rows[3].before == {"status": "qualified", "account_id": None, "contact_id": None, "opportunity_id": None}
    assert rows[3].after == {"status": "converted", "account_id": conv.account_id, "contact_id": conv.contact_id,
                             "opportunity_id": conv.opportunity_id}
    opp = conv.opportunity_id
    assert keys == [f"OpportunityCreated:{opp}", f"LeadConverted:{lead.id}"]

    # iron triangle: only the seats that changed (owner stays, so it is not in the diff)
    _, rows, keys = step(opportunities.assign_iron_triangle, opp, sr_id=org["sr"], fr_id=org["fr"],
                         actor=rep_slack("r-triangle"))
    assert [(r.entity, r.entity_id, r.action) for r in rows] == [("opportunity", opp, "assign_triangle")]
    assert rows[0].before == {"SR": None, "FR": None} and rows[0].after == {"SR": org["sr"], "FR": org["fr"]}
    assert keys == [f"IronTriangleAssigned:{opp}:{rows[0].id}"]

    req, rows, keys = step(approvals.request_gate, opp, "ATI", actor=rep_slack("r-gate"))
    assert [(r.entity, r.entity_id, r.action) for r in rows] == [("approval", req.id, "request")]
    assert rows[0].before is None and rows[0].after["status"] == "pending" and rows[0].after["kind"] == "ATI"
    assert keys == [f"ApprovalRequested:{req.id}"]

    # decide → the approval row and the stage change row, same request id, manager via Slack agent
    _, rows, keys = step(approvals.decide_approval, req.id, "approve",
                         actor=Actor(org["manager"], "slack", True, "r-decide"))
    assert [(r.entity, r.entity_id, r.action) for r in rows] == [
        ("approval", req.id, "decide:approve"), ("opportunity", opp, "stage:initiated")]
    # the decision itself (step, outcome) is part of the change; an empty comment is not
    assert rows[0].before == {"status": "pending", "step": None, "outcome": None}
    assert rows[0].after == {"status": "approved", "step": 1, "outcome": "approve"}
    assert rows[1].before == {"stage": "qualify", "probability": 10}
    assert rows[1].after == {"stage": "initiated", "probability": 20}
    change_id = db.rows(t.stage_history, t.stage_history.c.to_stage == "initiated")[0].id
    assert keys == [f"ApprovalDecided:{req.id}:1", f"OpportunityStageChanged:{opp}:{change_id}",
                    f"GatePassed:{req.id}"]

    # a stage change without a gate: close as lost
    _, rows, keys = step(opportunities.close_opportunity, opp, "lost", "Budget frozen",
                         actor=Actor(org["manager"], "api", False, "r-close"))
    assert [(r.entity, r.action) for r in rows] == [("opportunity", "stage:lost")]
    assert rows[0].before == {"stage": "initiated", "probability": 20, "close_reason": None}
    assert rows[0].after == {"stage": "lost", "probability": 0, "close_reason": "Budget frozen"}
    lost_id = db.rows(t.stage_history, t.stage_history.c.to_stage == "lost")[0].id
    assert keys == [f"OpportunityStageChanged:{opp}:{lost_id}"]

    # nothing was audited outside these requests (after the org was built)
    requests = {"r-create", "r-update", "r-qualify", "r-convert", "r-triangle", "r-gate", "r-decide", "r-close"}
    business = [r for r in db.rows(t.audit_log) if r.entity not in ("user", "team", "assignment_rule")]
    assert {r.request_id for r in business} == requests
    assert len(business) == 1 + 1 + 1 + 4 + 1 + 1 + 2 + 1


def test_failed_use_case_after_writes_leaves_no_audit_or_outbox_rows(db, uow_factory, org):
    opp = builders.make_deal(uow_factory, org, triangle=False)
    before = db.snapshot_counts()
    # SR is seated (and flushed) before the FR check fails: rep cannot hold the FR seat.
    with pytest.raises(ValidationFailed):
        with uow_factory() as uow:
            opportunities.assign_iron_triangle(opp, sr_id=org["sr"], fr_id=org["rep"], actor=org.actor("rep"), uow=uow)
            uow.commit()
    assert db.snapshot_counts() == before
    assert db.rows(t.opportunity_members) == []


def test_outbox_rows_are_written_in_the_use_case_transaction(db, uow_factory, org):
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        in_tx = [m.key for m in uow.outbox.all()]
        assert in_tx == [f"LeadCreated:{lead.id}", f"LeadAssigned:{lead.id}:1"]
        # no commit: leaving the block rolls back the lead and its messages together
    assert db.rows(t.outbox) == [] and db.rows(t.leads) == []
    assert db.rows(t.audit_log, t.audit_log.c.entity == "lead") == []
    sink = RecordingSink()
    assert dispatch_pending(uow_factory.session_factory, [sink]) == 0
    assert sink.received == []


def test_outbox_is_dispatched_only_after_commit(db, dialect, uow_factory, org):
    sink = RecordingSink()
    delivered: list[int] = []
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.flush()
        # A dispatcher running now must not deliver uncommitted messages. PostgreSQL: it does not
        # see them and returns 0 at once. SQLite: it waits for the writer's lock (BEGIN IMMEDIATE).
        worker = threading.Thread(
            target=lambda: delivered.append(dispatch_pending(uow_factory.session_factory, [sink])))
        worker.start()
        if dialect == "postgresql":
            worker.join(10)
            assert not worker.is_alive() and delivered == [0]
        else:
            worker.join(0.5)
            assert worker.is_alive() and delivered == []
        assert sink.received == []
        uow.commit()
    worker.join(10)
    assert not worker.is_alive()
    if dialect == "postgresql":
        assert dispatch_pending(uow_factory.session_factory, [sink]) == 2
    else:
        assert delivered == [2]  # the waiting dispatcher went on after the commit
    assert sink.topics() == ["LeadCreated", "LeadAssigned"]
    assert sink.received[0] == (f"LeadCreated:{lead.id}", "LeadCreated",
                                {"lead_id": lead.id, "source": "website", "owner_id": org["rep"]})
    rows = db.rows(t.outbox)
    assert all(r.dispatched_at is not None and r.attempts == 1 and r.last_error is None for r in rows)
    assert dispatch_pending(uow_factory.session_factory, [sink]) == 0  # nothing left


class FailingOnce:
    """A sink that raises the first time it sees `key`, then accepts it."""

    def __init__(self, key: str) -> None:
        self.key, self.calls = key, []

    def handle(self, key, topic, payload) -> None:
        self.calls.append(key)
        if key == self.key and self.calls.count(key) == 1:
            raise ConnectionError("chat API unavailable")


def test_sink_failure_is_retried_later_and_recording_sink_handles_each_key_once(db, engine, uow_factory, org):
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.commit()
    created, assigned = f"LeadCreated:{lead.id}", f"LeadAssigned:{lead.id}:1"
    recording, flaky = RecordingSink(), FailingOnce(created)
    sinks = [recording, flaky]  # the recording sink gets the message before the flaky one fails
    sf = uow_factory.session_factory

    assert dispatch_pending(sf, sinks) == 1  # LeadAssigned went out; LeadCreated failed
    row = db.rows(t.outbox, t.outbox.c.key == created)[0]
    assert row.dispatched_at is None and row.attempts == 1 and "chat API unavailable" in row.last_error
    assert row.available_at > utcnow()  # backed off

    assert dispatch_pending(sf, sinks) == 0  # not due yet: nobody is called again
    assert flaky.calls == [created, assigned]

    with engine.begin() as conn:  # pass time: the retry is due
        conn.execute(update(t.outbox).where(t.outbox.c.key == created)
                     .values(available_at=utcnow() - timedelta(seconds=1)))
    assert dispatch_pending(sf, sinks) == 1
    row = db.rows(t.outbox, t.outbox.c.key == created)[0]
    assert row.dispatched_at is not None and row.attempts == 2 and row.last_error is None
    assert flaky.calls == [created, assigned, created]  # at least once: delivered again
    assert [k for k, _, _ in recording.received] == [created, assigned]  # ...but recorded once

    # A crash after delivery and before marking: once the dead worker's lease has run out every
    # message comes again; still recorded once.
    with engine.begin() as conn:
        conn.execute(update(t.outbox).values(dispatched_at=None, available_at=utcnow() - timedelta(seconds=1)))
    assert dispatch_pending(sf, sinks) == 2
    assert [k for k, _, _ in recording.received] == [created, assigned]


def test_a_failing_sink_does_not_hold_back_the_sinks_after_it(db, engine, uow_factory, org):
    """One chat surface being down (Slack first in the list) must not keep the next (WeCom) waiting."""
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.commit()
    created = f"LeadCreated:{lead.id}"
    flaky, after = FailingOnce(created), RecordingSink()
    dispatch_pending(uow_factory.session_factory, [flaky, after])
    assert created in [k for k, _, _ in after.received]  # served in the same attempt …
    row = db.rows(t.outbox, t.outbox.c.key == created)[0]
    assert row.dispatched_at is None and "chat API unavailable" in row.last_error  # … and still retried


def test_outbox_gives_up_after_max_attempts(db, engine, uow_factory, org):
    class AlwaysFails:
        def handle(self, key, topic, payload):
            raise RuntimeError("down")

    with uow_factory() as uow:
        leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.commit()
    for _ in range(3):
        dispatch_pending(uow_factory.session_factory, [AlwaysFails()], max_attempts=3)
        with engine.begin() as conn:
            conn.execute(update(t.outbox).values(available_at=utcnow() - timedelta(seconds=1)))
    assert [r.attempts for r in db.rows(t.outbox)] == [3, 3]
    sink = RecordingSink()
    assert dispatch_pending(uow_factory.session_factory, [sink], max_attempts=3) == 0
    assert sink.received == []


class ObservedWorker(OutboxWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.idle = threading.Event()

    def run_once(self) -> int:
        n = super().run_once()
        self.idle.set()  # the loop goes straight back to waiting for a kick
        return n


def test_outbox_worker_kick_after_commit_delivers_within_a_second(db, uow_factory, org):
    sink = RecordingSink()
    worker = ObservedWorker(uow_factory.session_factory, [sink], poll_seconds=60)
    worker.start()
    try:
        assert worker.idle.wait(10)
        with uow_factory() as uow:  # no kick: the worker sleeps on (poll every 60 s)
            quiet = leads.create_lead({**LEAD, "email": "quiet@audit.example", "contact_name": "Q"},
                                      actor=org.actor("rep"), uow=uow)
            uow.commit()
        time.sleep(0.3)
        assert sink.received == []

        with uow_factory(after_commit=[worker.kick]) as uow:
            lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
            uow.commit()
            committed = time.monotonic()
        want = {f"LeadCreated:{quiet.id}", f"LeadCreated:{lead.id}"}
        while not want <= {k for k, _, _ in sink.received} and time.monotonic() - committed < 1.0:
            time.sleep(0.01)
        assert want <= {k for k, _, _ in sink.received}, "kick did not deliver within a second"
    finally:
        worker.stop()
    assert all(r.dispatched_at is not None for r in db.rows(t.outbox))


def test_audit_diff_ignores_an_amount_restated_in_another_notation(db, uow_factory, org):
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.commit()
    actor = Actor(org["rep"], "slack", True, "restate-budget")
    with uow_factory() as uow:
        leads.update_lead(lead.id, {"budget": "250000", "notes": "same budget, confirmed"}, actor=actor, uow=uow)
        uow.commit()
    row = audit_rows(db, actor.request_id)[0]
    assert row.before == {"notes": None}
    assert row.after == {"notes": "same budget, confirmed"}


def test_a_sink_that_reads_through_its_own_unit_of_work_is_not_blocked_by_the_dispatcher(db, uow_factory, org):
    """Sinks such as the iron-triangle nudger read the deal in a unit of work of their own; on
    SQLite (one writer at a time) the dispatcher must not hold the lock while they run."""
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        uow.commit()
    seen = []

    class ReadingSink:
        def handle(self, key, topic, payload):
            with uow_factory() as uow:
                seen.append((topic, uow.leads.get(lead.id).company))

    started = time.monotonic()
    assert dispatch_pending(uow_factory.session_factory, [ReadingSink()]) == 2
    assert time.monotonic() - started < 5  # a held lock would make each read wait for the busy timeout
    assert [topic for topic, _ in seen] == ["LeadCreated", "LeadAssigned"]
    assert {company for _, company in seen} == {LEAD["company"]}
