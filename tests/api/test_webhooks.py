"""Outbound webhooks, as the ERP's receiver sees them: what arrives, signed how, retried when.

A real HTTP receiver on 127.0.0.1 (http.server in a thread) records every request and checks the
signature with its own HMAC code (not bot.webhooks.signing). Events go the production way: the
domain services write the outbox, the outbox worker's sinks queue deliveries, `deliver_due` sends
them; the clock of retries moves through its `now` argument, never by sleeping.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import update

from bot.cli import main
from bot.webhooks import signing
from bot.webhooks.sender import MAX_ATTEMPTS, deliver_due
from bot.webhooks.sink import WebhookSink
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.outbox import dispatch_pending
from domain.services import billing, delivery, leads, opportunities, payments
from tests import builders
from tests.api.conftest import bearer

FAST = 5.0  # the deliverer's timeout for a healthy receiver in tests: loopback on a busy machine (production: 10 s)
HANG = 0.5  # for a receiver that never answers: the test waits this long


# --- the ERP's receiver ------------------------------------------------------------------------------

def independent_check(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's own verification, written from the documented scheme only."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp, given = fields["t"], fields["v1"]
    except (ValueError, KeyError):
        return False
    mac = hmac.new(secret.encode("utf-8"), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, given) and abs(time.time() - int(stamp)) <= tolerance


class Receiver:
    """Answers each POST per `script` (a status code, or "hang" to never answer in time), then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body, "path": self.path})
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "hang":
                    receiver.release.wait(5)
                    return
                self.send_response(action)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ltc"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def other_receiver():
    r = Receiver()
    yield r
    r.close()


# --- helpers -----------------------------------------------------------------------------------------

@pytest.fixture
def ops_key(make_key):
    return make_key(["webhooks:read", "webhooks:write"], user="sales_ops", name="ops")


def subscribe(api, key: str, url: str, events: list[str]) -> dict:
    response = api.post("/webhooks/endpoints", json={"url": url, "events": events, "description": "ERP"},
                        headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()


def pump(ctx) -> None:
    """The outbox worker's dispatch with the webhook sink only: events → pending deliveries."""
    while dispatch_pending(ctx.session_factory, [WebhookSink(ctx.session_factory)]):
        pass


def new_lead(uow_factory, org, n: int = 1) -> int:
    with uow_factory() as uow:
        lead = leads.create_lead({"source": "website", "company": f"Hook Test {n} Co", "contact_name": f"Li {n}",
                                  "email": f"li{n}@hooktest{n}.example", "region": "east"},
                                 actor=org.actor("rep"), uow=uow)
        uow.commit()
    return lead.id


def call(uow_factory, fn, *args, **kwargs):
    with uow_factory() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


def deliveries(db, *where) -> list:
    return db.rows(t.webhook_deliveries, *where)


def attempts_of(db, delivery_id: int) -> list:
    return db.rows(t.webhook_attempts, t.webhook_attempts.c.delivery_id == delivery_id)


# --- what the ERP hears about ---------------------------------------------------------------------------

def test_each_business_fact_reaches_the_erp_once_signed_with_its_documented_data(
        ctx, api, ops_key, receiver, uow_factory, org, db):
    endpoint = subscribe(api, ops_key, receiver.url, ["*"])
    opp = builders.make_deal(uow_factory, org, n=1)
    lost = builders.make_deal(uow_factory, org, n=2)
    call(uow_factory, opportunities.close_opportunity, lost, "lost", "Chose a cheaper rival",
         actor=org.actor("manager"))
    builders.full_cycle(uow_factory, org, opp)  # won; ATC signs the contract, the 30 % advance is invoiced
    with uow_factory() as uow:
        contract = uow.contracts.for_opportunity(opp)
        contract_id, contract_ref = contract.id, contract.ref
        first = uow.invoices.for_contract(contract_id)[0]
        first_id, first_ref = first.id, first.ref
        today = uow.now().date().isoformat()
    finance, fr = org.actor("finance"), org.actor("fr")
    call(uow_factory, delivery.create_order, contract_id, {"milestones": [
        {"name": "Install", "planned_date": today},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}, actor=fr)
    call(uow_factory, billing.void_invoice, first_id, {"reason": "wrong tax id"}, actor=finance)
    again = call(uow_factory, billing.issue_invoice, contract_id, {"seq": 1}, actor=finance)
    paid = call(uow_factory, payments.record_payment, {"contract_id": contract_id, "currency": "CNY",
                                                       "amount": str(again.amount), "received_on": today,
                                                       "bank_ref": "BOC-HOOK-1"}, actor=finance)

    ctx.outbox_worker([]).run_once()  # the production wiring: outbox → webhook sink → deliverer

    got = receiver.bodies()
    assert Counter(b["type"] for b in got) == {
        "lead.created": 2, "opportunity.lost": 1, "opportunity.won": 1, "contract.signed": 1, "order.created": 1,
        "invoice.issued": 2, "invoice.voided": 1, "payment.recorded": 1}
    rows = {r.id: r for r in deliveries(db)}
    for request, body in zip(receiver.requests, got):
        h = request["headers"]
        assert independent_check(endpoint["secret"], h["x-ltc-signature"], request["body"])
        assert h["x-ltc-event"] == body["type"] and h["content-type"].startswith("application/json")
        row = rows[int(h["x-ltc-delivery"])]
        assert (row.event_id, row.status, row.attempts, row.last_status_code) == (body["id"], "delivered", 1, 200)
        assert body["id"].startswith("evt_") and body["created_at"].endswith("Z")
    assert len({b["id"] for b in got}) == len(got)

    by_type = {b["type"]: b["data"] for b in got}
    won = by_type["opportunity.won"]
    assert won["opportunity_ref"] == f"OPP-{opp:05d}" and won["stage"] == "won"
    assert (won["amount"], won["currency"]) == ("500000.00", "CNY")
    assert won["account"]["name"] == "Customer 1 Ltd" and won["owner"]["email"] == "rep@example.com"
    assert by_type["opportunity.lost"]["reason"] == "Chose a cheaper rival"
    signed = by_type["contract.signed"]
    assert (signed["contract_ref"], signed["value"], signed["opportunity_id"]) == (contract_ref, "500000.00", opp)
    assert [m["pct"] for m in signed["payment_plan"]] == ["30.00", "60.00", "10.00"]
    order = by_type["order.created"]
    assert order["contract_ref"] == contract_ref and [m["name"] for m in order["milestones"]] == [
        "Install", "Final acceptance"]
    voided = by_type["invoice.voided"]
    assert (voided["invoice_ref"], voided["reason"], voided["amount"]) == (first_ref, "wrong tax id", "150000.00")
    issued = sorted((b["data"] for b in got if b["type"] == "invoice.issued"), key=lambda i: i["invoice_id"])
    assert [i["invoice_ref"] for i in issued] == [first_ref, again.number]
    assert issued[1]["amount"] == "150000.00" and issued[1]["due_on"] == again.due_on.isoformat()
    payment = by_type["payment.recorded"]
    assert (payment["payment_ref"], payment["amount"], payment["unapplied"]) == (paid.number, "150000.00", "0.00")
    assert payment["allocations"] == [{"invoice_id": again.id, "invoice_ref": again.number, "amount": "150000.00"}]

    ctx.outbox_worker([]).run_once()  # at least once: nothing is queued or sent twice
    assert len(receiver.requests) == len(got) and len(deliveries(db)) == len(got)


def test_unsubscribed_events_are_not_sent(ctx, api, ops_key, receiver, uow_factory, org, db):
    subscribe(api, ops_key, receiver.url, ["invoice.issued"])
    new_lead(uow_factory, org)
    pump(ctx)
    assert deliver_due(ctx.session_factory, timeout=FAST) == 0
    assert receiver.requests == [] and deliveries(db) == []


def test_a_disabled_endpoint_gets_nothing(ctx, api, ops_key, receiver, other_receiver, uow_factory, org, db):
    kept = subscribe(api, ops_key, receiver.url, ["lead.created"])
    dropped = subscribe(api, ops_key, other_receiver.url, ["*"])
    response = api.post(f"/webhooks/endpoints/{dropped['id']}/disable", headers=bearer(ops_key))
    assert response.status_code == 200 and response.json()["active"] is False
    new_lead(uow_factory, org, 1)
    pump(ctx)
    deliver_due(ctx.session_factory, timeout=FAST)
    assert [r.endpoint_id for r in deliveries(db)] == [kept["id"]]
    assert len(receiver.requests) == 1 and other_receiver.requests == []

    # Queued while active, then disabled: it waits, unsent, until the endpoint is enabled again.
    new_lead(uow_factory, org, 2)
    pump(ctx)
    api.post(f"/webhooks/endpoints/{kept['id']}/disable", headers=bearer(ops_key))
    assert deliver_due(ctx.session_factory, timeout=FAST) == 0 and len(receiver.requests) == 1
    api.post(f"/webhooks/endpoints/{kept['id']}/enable", headers=bearer(ops_key))
    assert deliver_due(ctx.session_factory, timeout=FAST) == 1 and len(receiver.requests) == 2


def test_the_sink_queues_one_delivery_per_endpoint_however_often_the_outbox_repeats(
        ctx, api, ops_key, receiver, other_receiver, uow_factory, org, db):
    subscribe(api, ops_key, receiver.url, ["lead.created"])
    subscribe(api, ops_key, other_receiver.url, ["lead.created", "invoice.issued"])
    new_lead(uow_factory, org)
    message = db.rows(t.outbox, t.outbox.c.topic == "LeadCreated")[0]
    sink = WebhookSink(ctx.session_factory)
    for _ in range(3):  # at-least-once delivery by the outbox
        sink.handle(message.key, message.topic, message.payload)
    rows = deliveries(db)
    assert len(rows) == 2 and len({r.event_id for r in rows}) == 1
    sink.handle("LeadAssigned:1:1", "LeadAssigned", {"lead_id": 1, "owner_id": None, "seq": 1})  # not public
    assert len(deliveries(db)) == 2


# --- failures, backoff, replay ---------------------------------------------------------------------------

def test_a_failing_receiver_is_retried_after_backoff_and_every_attempt_is_logged(
        ctx, api, ops_key, receiver, uow_factory, org, db):
    endpoint = subscribe(api, ops_key, receiver.url, ["lead.created"])
    receiver.script = [500, "hang"]  # then 200
    new_lead(uow_factory, org)
    pump(ctx)
    t0 = utcnow()

    assert deliver_due(ctx.session_factory, t0, timeout=FAST) == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert row.last_error.startswith("HTTP 500") and row.next_attempt_at == t0 + timedelta(minutes=1)

    assert deliver_due(ctx.session_factory, t0 + timedelta(seconds=59), timeout=FAST) == 0  # not due yet
    assert len(receiver.requests) == 1

    t1 = t0 + timedelta(minutes=1)
    assert deliver_due(ctx.session_factory, t1, timeout=HANG) == 1  # the receiver never answers
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 2, None)
    assert row.last_error.startswith("timeout") and row.next_attempt_at == t1 + timedelta(minutes=5)

    t2 = t1 + timedelta(minutes=5)
    assert deliver_due(ctx.session_factory, t2, timeout=FAST) == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 3, 200, None)
    assert row.delivered_at == t2 and row.next_attempt_at is None
    log = attempts_of(db, row.id)
    assert [(a.attempted_at, a.status_code) for a in log] == [(t0, 500), (t1, None), (t2, 200)]
    assert "timeout" in log[1].error and log[1].duration_ms >= HANG * 1000 * 0.9

    # The same event each time, each time signed afresh; the API shows the same log.
    assert len({r["body"] for r in receiver.requests}) == 1
    assert {r["headers"]["x-ltc-delivery"] for r in receiver.requests} == {str(row.id)}
    assert all(independent_check(endpoint["secret"], r["headers"]["x-ltc-signature"], r["body"])
               for r in receiver.requests)
    shown = api.get(f"/webhooks/deliveries/{row.id}", headers=bearer(ops_key)).json()
    assert [a["status_code"] for a in shown["log"]] == [500, None, 200]
    assert shown["payload"]["id"] == row.event_id and shown["status"] == "delivered"


def test_a_delivery_that_keeps_failing_ends_failed_and_shows_in_the_failure_log(
        ctx, api, ops_key, receiver, uow_factory, org, db):
    subscribe(api, ops_key, receiver.url, ["*"])
    receiver.script = [503] * MAX_ATTEMPTS
    new_lead(uow_factory, org)
    pump(ctx)
    now = utcnow()
    for _ in range(MAX_ATTEMPTS):
        assert deliver_due(ctx.session_factory, now, timeout=FAST) == 1
        now += timedelta(days=2)
    assert deliver_due(ctx.session_factory, now, timeout=FAST) == 0
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == ("failed", MAX_ATTEMPTS, 503,
                                                                                       None)
    assert len(attempts_of(db, row.id)) == MAX_ATTEMPTS
    failed = api.get("/webhooks/deliveries", params={"status": "failed"}, headers=bearer(ops_key)).json()
    assert [d["id"] for d in failed["items"]] == [row.id] and failed["items"][0]["last_status_code"] == 503
    assert api.get("/webhooks/deliveries", params={"status": "delivered"},
                   headers=bearer(ops_key)).json()["items"] == []


def test_replay_sends_the_same_event_again_and_is_audited(ctx, api, ops_key, receiver, uow_factory, org, db):
    endpoint = subscribe(api, ops_key, receiver.url, ["lead.created"])
    new_lead(uow_factory, org)
    pump(ctx)
    deliver_due(ctx.session_factory, timeout=FAST)
    [row] = deliveries(db)
    assert row.status == "delivered"

    response = api.post(f"/webhooks/deliveries/{row.id}/replay", headers=bearer(ops_key))
    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["attempts"]) == ("pending", 0)
    assert deliver_due(ctx.session_factory, timeout=FAST) == 1

    first, second = receiver.requests
    assert first["body"] == second["body"] and json.loads(second["body"])["id"] == row.event_id
    assert first["headers"]["x-ltc-delivery"] == second["headers"]["x-ltc-delivery"] == str(row.id)
    assert independent_check(endpoint["secret"], second["headers"]["x-ltc-signature"], second["body"])
    [after] = deliveries(db)
    assert (after.status, after.attempts) == ("delivered", 1) and len(attempts_of(db, row.id)) == 2
    audit = db.rows(t.audit_log, t.audit_log.c.entity == "webhook_delivery")
    assert [(a.entity_id, a.action, a.channel) for a in audit] == [(row.id, "replay", "api")]


def test_a_disabled_endpoints_delivery_is_not_replayed(ctx, api, ops_key, receiver, uow_factory, org, db):
    endpoint = subscribe(api, ops_key, receiver.url, ["lead.created"])
    new_lead(uow_factory, org)
    pump(ctx)
    [row] = deliveries(db)
    api.post(f"/webhooks/endpoints/{endpoint['id']}/disable", headers=bearer(ops_key))
    response = api.post(f"/webhooks/deliveries/{row.id}/replay", headers=bearer(ops_key))
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"
    assert api.post("/webhooks/deliveries/999999/replay", headers=bearer(ops_key)).status_code == 404


# --- the signature -----------------------------------------------------------------------------------------

def test_a_tampered_body_a_wrong_secret_or_a_stale_timestamp_fail_verification():
    secret, body = "whsec_test", b'{"id":"evt_1","type":"invoice.issued","data":{"amount":"100.00"}}'
    header = signing.sign(secret, body)
    assert signing.verify(secret, header, body) and independent_check(secret, header, body)
    tampered = body.replace(b"100.00", b"1.00")
    assert not signing.verify(secret, header, tampered) and not independent_check(secret, header, tampered)
    assert not signing.verify("whsec_other", header, body)
    old = signing.sign(secret, body, t=int(time.time()) - 301)
    assert not signing.verify(secret, old, body) and signing.verify(secret, old, body, tolerance=600)
    for bad in ("", "t=abc,v1=00", "v1=" + header.split("v1=")[1], header.split(",")[0], "garbage"):
        assert not signing.verify(secret, bad, body)
    rotated = f"{header.split(',')[0]},v1={'0' * 64},{header.split(',')[1]}"  # any one v1 may match
    assert signing.verify(secret, rotated, body)


def test_a_receiver_rejects_a_request_whose_body_was_changed_in_transit(ctx, api, ops_key, receiver, uow_factory,
                                                                          org):
    endpoint = subscribe(api, ops_key, receiver.url, ["lead.created"])
    new_lead(uow_factory, org)
    pump(ctx)
    deliver_due(ctx.session_factory, timeout=FAST)
    [request] = receiver.requests
    header, body = request["headers"]["x-ltc-signature"], request["body"]
    assert signing.verify(endpoint["secret"], header, body)
    forged = body.replace(b"Hook Test 1 Co", b"Hook Test 9 Co")
    assert forged != body
    assert not independent_check(endpoint["secret"], header, forged)
    assert not signing.verify(endpoint["secret"], header, forged)


# --- managing endpoints --------------------------------------------------------------------------------------

def test_the_secret_is_shown_once_and_never_audited(api, ops_key, receiver, db):
    created = subscribe(api, ops_key, receiver.url, ["invoice.issued", "invoice.issued", "payment.recorded"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["invoice.issued", "payment.recorded"] and created["active"] is True
    listed = api.get("/webhooks/endpoints", headers=bearer(ops_key)).json()["items"]
    assert [(e["id"], e["secret"]) for e in listed] == [(created["id"], None)]
    assert api.get(f"/webhooks/endpoints/{created['id']}", headers=bearer(ops_key)).json()["secret"] is None
    [audit] = db.rows(t.audit_log, t.audit_log.c.entity == "webhook_endpoint")
    assert (audit.action, audit.channel, audit.entity_id) == ("create", "api", created["id"])
    assert created["secret"] not in json.dumps(audit.after)


def test_only_admin_and_sales_ops_with_the_webhook_scopes_manage_webhooks(api, make_key, receiver):
    body = {"url": receiver.url, "events": ["*"]}
    rep = make_key(["webhooks:read", "webhooks:write"], user="rep")
    refused = api.post("/webhooks/endpoints", json=body, headers=bearer(rep))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    reader = make_key(["webhooks:read"], user="admin")
    assert api.post("/webhooks/endpoints", json=body, headers=bearer(reader)).status_code == 403
    assert api.get("/webhooks/endpoints", headers=bearer(reader)).status_code == 200
    other = make_key(["leads:read"], user="admin")
    assert api.get("/webhooks/deliveries", headers=bearer(other)).status_code == 403
    assert api.get("/webhooks/deliveries").status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"url": "https://erp.example.com/h", "events": ["invoice.paid"]}, "events"),
    ({"url": "https://erp.example.com/h", "events": []}, "events"),
    ({"url": "ftp://erp.example.com/h", "events": ["*"]}, "url"),
    ({"url": "https://user:pw@erp.example.com/h", "events": ["*"]}, "url"),
    ({"url": "erp.example.com", "events": ["*"]}, "url"),
])
def test_a_bad_endpoint_is_refused_naming_the_field(api, ops_key, body, field):
    response = api.post("/webhooks/endpoints", json=body, headers=bearer(ops_key))
    assert response.status_code == 422, response.text
    assert field in (response.json()["error"]["field"] or "")


# --- the command line ------------------------------------------------------------------------------------------

def test_the_cli_adds_lists_logs_and_replays(capsys, monkeypatch, tmp_path, db_url, receiver, uow_factory, org, db):
    monkeypatch.setenv("LTC_CHROMA_PATH", str(tmp_path / "chroma"))  # no playbook index: the worker only delivers

    def ltc(*argv: str) -> str:
        capsys.readouterr()
        assert main(["--db", db_url, *argv]) == 0, capsys.readouterr()
        return capsys.readouterr().out

    added = ltc("webhook", "add", receiver.url, "--event", "lead.created", "--description", "ERP")
    [endpoint] = db.rows(t.webhook_endpoints)
    assert endpoint.secret in added and "shown once" in added
    assert receiver.url in ltc("webhook", "list") and endpoint.secret not in ltc("webhook", "list")
    receiver.script = [500]
    new_lead(uow_factory, org)
    ltc("worker", "--once")
    [row] = deliveries(db)
    assert (row.status, row.last_status_code) == ("pending", 500)
    log = ltc("webhook", "log", "--status", "pending")
    assert "lead.created" in log and "HTTP 500" in log
    assert "No deliveries match" in ltc("webhook", "log", "--status", "failed")
    shown = ltc("webhook", "show", str(row.id))
    assert row.event_id in shown and "HTTP 500" in shown and "Hook Test 1 Co" in shown
    assert main(["--db", db_url, "webhook", "replay", str(row.id)]) == 1  # still queued: a sender may hold it
    with uow_factory() as uow:  # as after its last attempt
        uow.session.execute(update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == row.id)
                            .values(status="failed"))
        uow.commit()
    assert "queued again" in ltc("webhook", "replay", str(row.id))
    ltc("worker", "--once")
    assert deliveries(db)[0].status == "delivered" and len(receiver.requests) == 2
    assert "disabled" in ltc("webhook", "disable", str(endpoint.id))
    assert main(["--db", db_url, "webhook", "replay", "999999"]) == 1
