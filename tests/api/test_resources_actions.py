"""Resource actions through the same services and approvals as chat: what the caller gets back, the rows
it leaves (audit rows on channel 'api' with the call's request id) and the approvals it opens."""
from __future__ import annotations

from domain.db import tables as t
from domain.services import approvals as approval_svc
from domain.settings import Settings
from tests import builders
from tests.api.test_resources import _error, auth, signed_deal
from tools.context import ToolContext
from tools.runner import invoke


def _audit(db, entity: str, entity_id: int) -> list:
    return db.rows(t.audit_log, t.audit_log.c.entity == entity, t.audit_log.c.entity_id == entity_id)


# --- leads ----------------------------------------------------------------------------------------------

def test_lead_qualify_convert_audited_on_the_api_channel(api, make_key, org, db):
    rep = auth(make_key, "rep")
    lead = api.post("/leads", headers=rep, json={"source": "trade_show", "company": "Convert Co",
                                                 "contact_name": "Li Na", "budget": "750000.25"})
    assert lead.status_code == 201, lead.text
    lead = lead.json()
    qualified = api.post(f"/leads/{lead['id']}/qualify", headers=rep)
    assert qualified.status_code == 200 and qualified.json()["status"] == "qualified"
    converted = api.post(f"/leads/{lead['id']}/convert", headers=rep,
                         json={"opportunity_name": "Convert Co MES", "industry": "chemicals"})
    assert converted.status_code == 200, converted.text
    body = converted.json()
    assert body["lead"]["status"] == "converted" and body["account_created"] is True
    deal = api.get(f"/opportunities/{body['opportunity_id']}", headers=rep).json()
    assert (deal["name"], deal["amount"], deal["stage"]) == ("Convert Co MES", "750000.25", "qualify")

    rows = _audit(db, "lead", lead["id"])
    assert [r.action for r in rows] == ["create", "status:qualified", "convert"]
    assert {(r.channel, r.actor_id, r.via_agent) for r in rows} == {("api", org["rep"], False)}
    assert rows[-1].request_id == converted.headers["x-request-id"]  # the call that did it, in its audit row
    assert {r.channel for r in _audit(db, "opportunity", body["opportunity_id"])} == {"api"}


def test_lead_disqualify_and_assign_follow_the_roles(api, make_key, org):
    rep, manager = auth(make_key, "rep"), auth(make_key, "manager")
    lead = api.post("/leads", headers=rep, json={"source": "website", "company": "Move Co",
                                                 "contact_name": "Wu"}).json()
    _error(api.post(f"/leads/{lead['id']}/assign", headers=rep, json={"owner_id": org["rep2"]}),
           403, "permission_denied")  # reassigning is for managers
    moved = api.post(f"/leads/{lead['id']}/assign", headers=manager, json={"owner_id": org["rep2"]})
    assert moved.status_code == 200 and moved.json()["owner_id"] == org["rep2"]
    _error(api.post(f"/leads/{lead['id']}/qualify", headers=rep), 404, "not_found")  # rep2's now: not rep's to see
    dropped = api.post(f"/leads/{lead['id']}/disqualify", headers=manager, json={"reason": "No budget"})
    assert dropped.json()["status"] == "disqualified" and dropped.json()["disqualify_reason"] == "No budget"
    _error(api.post(f"/leads/{lead['id']}/convert", headers=manager), 409, "invalid_transition")


# --- opportunities: gates, close, team --------------------------------------------------------------------

def test_a_gated_advance_is_409_and_opens_the_gate_as_chat_does(api, make_key, uow_factory, org, db):
    rest_deal = builders.make_deal(uow_factory, org, n=1)
    chat_deal = builders.make_deal(uow_factory, org, n=2)
    rep = auth(make_key, "rep")

    response = api.post(f"/opportunities/{rest_deal}/advance", headers=rep)
    error = _error(response, 409, "approval_required", "stage")
    details = error["details"]
    assert details["gate"] == "ATI" and details["approval_status"] == "pending"
    again = _error(api.post(f"/opportunities/{rest_deal}/advance", headers=rep, json={"to_stage": "initiated"}),
                   409, "approval_required")
    assert again["details"]["approval_id"] == details["approval_id"]  # the waiting request, not a second one

    outcome = invoke("advance_stage", {"opportunity": f"OPP-{chat_deal:05d}"},
                     ToolContext(actor=org.actor("rep", "slack"), uow=uow_factory,
                                 confirm_tools=frozenset(Settings().confirm_tools)))
    assert outcome.status == "ok", outcome
    with uow_factory() as uow:
        by_api = approval_svc.get_approval(details["approval_id"], actor=org.actor("rep"), uow=uow)
        by_chat = approval_svc.get_approval(outcome.result["approval"]["id"], actor=org.actor("rep"), uow=uow)
    same = ("kind", "status", "current_step", "steps", "requested_by", "eligible_approver_ids")
    assert {k: getattr(by_api, k) for k in same} == {k: getattr(by_chat, k) for k in same}
    assert by_api.subject_id == rest_deal and details["eligible_approver_ids"] == by_api.eligible_approver_ids
    assert db.count(t.approval_requests, t.approval_requests.c.subject_id == rest_deal) == 1
    [request_row] = _audit(db, "approval", details["approval_id"])
    assert (request_row.action, request_row.channel) == ("request", "api")
    assert api.get(f"/opportunities/{rest_deal}", headers=rep).json()["stage"] == "qualify"

    # The manager approves in chat; the deal moves on as with any gate.
    with uow_factory() as uow:
        approval_svc.decide_approval(details["approval_id"], "approve", actor=org.actor("manager", "slack"), uow=uow)
        uow.commit()
    assert api.get(f"/opportunities/{rest_deal}", headers=rep).json()["stage"] == "initiated"


def test_a_gate_with_missing_preconditions_is_409_naming_them_and_opens_nothing(api, make_key, uow_factory, org,
                                                                                   db):
    deal = builders.make_deal(uow_factory, org, n=1, triangle=False)  # ATI needs the SR and FR seated
    rep = auth(make_key, "rep")
    error = _error(api.post(f"/opportunities/{deal}/advance", headers=rep), 409, "approval_required")
    assert error["details"]["gate"] == "ATI" and error["details"]["missing"]
    assert "approval_id" not in error["details"]
    _error(api.post(f"/opportunities/{deal}/request-gate", headers=rep, json={"kind": "ATI"}),
           422, "validation_failed", "preconditions")
    assert db.count(t.approval_requests) == 0

    team = api.post(f"/opportunities/{deal}/assign-team", headers=rep, json={"sr_id": org["sr"], "fr_id": org["fr"]})
    assert team.status_code == 200, team.text
    assert {(m["role"], m["user_id"]) for m in team.json()["members"]} >= {("SR", org["sr"]), ("FR", org["fr"])}
    first = api.post(f"/opportunities/{deal}/request-gate", headers=rep, json={"kind": "ATI", "note": "before Q1"})
    second = api.post(f"/opportunities/{deal}/request-gate", headers=rep, json={"kind": "ATI"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and first.json()["context"]["note"] == "before Q1"
    _error(api.post(f"/opportunities/{deal}/request-gate", headers=rep, json={"kind": "ATC"}),
           409, "invalid_transition")


def test_close_a_deal_lost_with_its_reason(api, make_key, uow_factory, org, db):
    deal = builders.make_deal(uow_factory, org, n=1)
    rep = auth(make_key, "rep")
    _error(api.post(f"/opportunities/{deal}/close", headers=rep, json={"outcome": "won", "reason": "yes"}),
           422, "validation_failed")
    closed = api.post(f"/opportunities/{deal}/close", headers=rep, json={"outcome": "lost", "reason": "Price"})
    assert closed.status_code == 200
    assert (closed.json()["stage"], closed.json()["close_reason"]) == ("lost", "Price")
    _error(api.post(f"/opportunities/{deal}/advance", headers=rep), 422, "validation_failed", "stage")
    assert [r.action for r in _audit(db, "opportunity", deal)][-1] == "stage:lost"


# --- quotes and contracts -------------------------------------------------------------------------------------

def test_quote_submit_send_accept_then_contract_submit(api, make_key, uow_factory, org, db):
    builders.seed_catalog(uow_factory, org)
    deal = builders.make_deal(uow_factory, org, n=1)
    rep = auth(make_key, "rep")
    line = {"product": "MES-LIC", "quantity": "40"}

    big = api.post("/quotes", headers=rep, json={"opportunity_id": deal, "lines": [{**line, "discount_pct": "25"}]})
    pending = api.post(f"/quotes/{big.json()['id']}/submit", headers=rep).json()
    assert pending["status"] == "pending_approval" and pending["approval_id"]
    with uow_factory() as uow:
        request = approval_svc.get_approval(pending["approval_id"], actor=org.actor("rep"), uow=uow)
    assert (request.kind, [s.role for s in request.steps]) == ("discount", ["director", "finance"])

    small = api.post("/quotes", headers=rep, json={"opportunity_id": deal, "lines": [line]}).json()
    assert api.get(f"/quotes/{big.json()['id']}", headers=rep).json()["status"] == "superseded"
    with uow_factory() as uow:  # the newer version cancelled the older one's approval
        assert approval_svc.get_approval(pending["approval_id"], actor=org.actor("rep"), uow=uow).status == "cancelled"
    _error(api.post(f"/quotes/{small['id']}/send", headers=rep), 409, "invalid_transition")
    approved = api.post(f"/quotes/{small['id']}/submit", headers=rep).json()
    assert approved["status"] == "approved"  # within the automatic band
    assert api.post(f"/quotes/{small['id']}/send", headers=rep).json()["status"] == "sent"
    accepted = api.post(f"/quotes/{small['id']}/accept", headers=rep).json()
    assert accepted["status"] == "accepted" and accepted["total"] == "40000.00"
    assert api.get(f"/opportunities/{deal}", headers=rep).json()["amount"] == "40000.00"

    plan = [{"label": "Advance", "pct": "40", "trigger": "signing"},
            {"label": "Acceptance", "pct": "60", "trigger": "final_acceptance"}]
    contract = api.post("/contracts", headers=rep, json={"quote_id": small["id"], "payment_terms_days": 45,
                                                         "milestones": plan})
    assert contract.status_code == 201, contract.text
    body = contract.json()
    assert (body["status"], body["value"], [m["amount"] for m in body["milestones"]]) == (
        "draft", "40000.00", ["16000.00", "24000.00"])
    submitted = api.post(f"/contracts/{body['id']}/submit", headers=rep)
    assert submitted.status_code == 200 and submitted.json()["status"] == "under_review"
    assert api.post(f"/contracts/{body['id']}/withdraw", headers=rep).json()["status"] == "draft"
    assert {r.channel for r in _audit(db, "quote", small["id"])} == {"api"}
    assert [r.action for r in _audit(db, "contract", body["id"])] == ["create", "submit", "withdraw"]


# --- orders, invoices, payments -----------------------------------------------------------------------------

def test_order_delivery_and_acceptance_issue_the_invoices(api, make_key, uow_factory, org):
    _, contract = signed_deal(uow_factory, org, n=1)
    fr, rep = auth(make_key, "fr"), auth(make_key, "rep")
    with uow_factory() as uow:
        today = uow.now().date().isoformat()
    plan = {"contract_id": contract, "milestones": [
        {"name": "Install", "planned_date": today},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}
    _error(api.post("/orders", headers=rep, json=plan), 403, "permission_denied")
    order = api.post("/orders", headers=fr, json=plan)
    assert order.status_code == 201, order.text
    order_id = order.json()["id"]
    assert api.get(f"/contracts/{contract}", headers=fr).json()["status"] == "executing"
    done = api.post(f"/orders/{order_id}/milestones/1/delivered", headers=fr)
    assert done.json()["milestones"][0]["status"] == "done"
    accepted = api.post(f"/orders/{order_id}/milestones/1/accept", headers=fr, json={"certificate_ref": "CERT-1"})
    assert accepted.json()["milestones"][0]["status"] == "accepted"
    _error(api.post(f"/orders/{order_id}/milestones/9/delivered", headers=fr), 404, "not_found", "seq")
    finance = auth(make_key, "finance")
    invoices = api.get("/invoices", headers=finance, params={"contract_id": contract}).json()["items"]
    assert [i["amount"] for i in invoices] == ["150000.00", "300000.00"]  # advance at signing, 60 % on acceptance


def test_void_and_reissue_an_invoice_as_finance_only(api, make_key, uow_factory, org, db):
    _, contract = signed_deal(uow_factory, org, n=1)
    finance, rep = auth(make_key, "finance"), auth(make_key, "rep")
    [advance] = api.get("/invoices", headers=finance, params={"contract_id": contract}).json()["items"]
    _error(api.post(f"/invoices/{advance['id']}/void", headers=rep, json={"reason": "typo"}), 403, "permission_denied")
    voided = api.post(f"/invoices/{advance['id']}/void", headers=finance, json={"reason": "Wrong address"})
    assert voided.status_code == 200 and voided.json()["status"] == "void"
    _error(api.post(f"/invoices/{advance['id']}/void", headers=finance, json={"reason": "again"}),
           409, "invalid_transition")
    again = api.post("/invoices", headers=finance, json={"contract_id": contract, "seq": 1})
    assert again.status_code == 201 and again.json()["id"] != advance["id"] and again.json()["amount"] == "150000.00"
    same = api.post("/invoices", headers=finance, json={"contract_id": contract, "seq": 1})
    assert same.status_code == 200 and same.json()["id"] == again.json()["id"]
    _error(api.post("/invoices", headers=finance, json={"contract_id": contract, "seq": 2}),
           422, "validation_failed", "seq")  # acceptance has not happened
    assert [r.action for r in _audit(db, "invoice", advance["id"])] == ["issue", "void"]
    assert _audit(db, "invoice", advance["id"])[-1].channel == "api"


def test_payments_record_allocate_propose_confirm_reject(api, make_key, uow_factory, org, db):
    _, contract = signed_deal(uow_factory, org, n=1)
    finance, rep = auth(make_key, "finance"), auth(make_key, "rep")
    [advance] = api.get("/invoices", headers=finance, params={"contract_id": contract}).json()["items"]
    with uow_factory() as uow:
        today = uow.now().date().isoformat()
    pay = {"contract_id": contract, "currency": "CNY", "received_on": today}

    credit = api.post("/payments", headers=finance, json={**pay, "amount": "50000.01", "bank_ref": "boc 0001",
                                                          "allocations": []})
    assert credit.status_code == 201, credit.text
    assert (credit.json()["status"], credit.json()["unapplied"], credit.json()["bank_ref"]) == (
        "confirmed", "50000.01", "BOC 0001")
    repeat = api.post("/payments", headers=finance, json={**pay, "amount": "50000.01", "bank_ref": "BOC  0001"})
    assert repeat.status_code == 200 and repeat.json()["id"] == credit.json()["id"]  # one bank line, one payment
    applied = api.post(f"/payments/{credit.json()['id']}/allocate", headers=finance)
    assert applied.status_code == 200, applied.text
    assert (applied.json()["allocated"], applied.json()["unapplied"]) == ("50000.01", "0.00")
    assert [a["invoice_id"] for a in applied.json()["allocations"]] == [advance["id"]]
    assert api.get(f"/invoices/{advance['id']}", headers=finance).json()["balance"] == "99999.99"
    _error(api.post(f"/payments/{credit.json()['id']}/allocate", headers=finance), 422, "validation_failed")

    reported = api.post("/payments", headers=rep, json={**pay, "amount": "99999.99", "bank_ref": "BOC 0002"})
    assert reported.status_code == 201 and reported.json()["status"] == "proposed"
    _error(api.post(f"/payments/{reported.json()['id']}/confirm", headers=rep), 403, "permission_denied")
    confirmed = api.post(f"/payments/{reported.json()['id']}/confirm", headers=finance)
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["unapplied"] == "0.00"
    assert api.get(f"/invoices/{advance['id']}", headers=finance).json()["status"] == "paid"

    wrong = api.post("/payments", headers=rep, json={**pay, "amount": "10.00", "bank_ref": "BOC 0003"}).json()
    rejected = api.post(f"/payments/{wrong['id']}/reject", headers=finance, json={"reason": "Not on the statement"})
    assert rejected.json()["status"] == "rejected"
    _error(api.post(f"/payments/{wrong['id']}/reject", headers=finance, json={"reason": "twice"}),
           409, "invalid_transition")
    assert {r.channel for r in db.rows(t.audit_log, t.audit_log.c.entity == "payment")} == {"api"}
