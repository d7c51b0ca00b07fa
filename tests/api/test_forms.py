"""Website lead capture: a web form's public endpoint, its spam checks and de-duplication, the lead
it makes (assigned, audited, its owner told in chat), and the forms' administration (API and CLI).
Every test runs on SQLite and PostgreSQL through the REST API (tests/api/conftest.py)."""
from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.slack.notify import SlackNotifier
from domain.actor import Actor, Channel
from domain.db import tables as t
from domain.outbox import RecordingSink, dispatch_pending
from domain.services import users as user_svc
from domain.services import web_forms as form_svc
from tests.api.conftest import bearer

LI = {"name": "Li Wei", "company": "Hangzhou Valve Co", "email": "li.wei@valve.example",
      "phone": "+86 138 0000 1111", "title": "CIO", "message": "We need an MES for two plants"}


def new_form(ctx, org, slug: str = "contact", **extra) -> str:
    """A form created by sales ops; returns its secret."""
    with ctx.uow() as uow:
        made = form_svc.create_form({"name": "Website contact", "slug": slug, "region": "east", **extra},
                                    actor=org.actor("sales_ops"), uow=uow)
        uow.commit()
    return made.secret


def post(api, secret: str | None, slug: str = "contact", **fields):
    headers = {"X-LTC-Form-Secret": secret} if secret is not None else {}
    return api.post(f"/forms/{slug}/submissions", json=fields, headers=headers)


def submissions(db) -> list:
    return db.rows(t.web_form_submissions)


def outcomes(db) -> list[str]:
    return [r.outcome for r in submissions(db)]


# -- a good submission ---------------------------------------------------------------------------

class FakeSlack:
    """The two Web API calls a DM needs, recorded."""

    def __init__(self) -> None:
        self.posts: list[dict] = []

    def conversations_open(self, users: str) -> dict:
        return {"channel": {"id": f"D-{users}"}}

    def chat_postMessage(self, **kwargs) -> dict:
        self.posts.append(kwargs)
        return {"ok": True}


def test_a_good_submission_makes_one_assigned_website_lead_whose_owner_is_told_in_chat(api, ctx, org, db):
    secret = new_form(ctx, org)
    with ctx.uow() as uow:
        user_svc.link_slack_user(org["rep"], "U0REP", actor=org.actor("admin"), uow=uow)
        uow.commit()

    r = post(api, secret, **LI)

    assert r.status_code == 202 and r.json() == {"status": "received"}
    [lead] = db.rows(t.leads)
    assert (lead.source, lead.company, lead.contact_name, lead.email, lead.region) == \
        ("website", "Hangzhou Valve Co", "Li Wei", "li.wei@valve.example", "east")
    assert lead.need == "We need an MES for two plants" and "Web form: Website contact" in lead.notes
    assert lead.owner_id == org["rep"]  # the east rule's round robin starts with the first rep
    [sub] = submissions(db)
    # A server's post (the secret in the header, no Origin) is not counted per address: no address kept.
    assert (sub.outcome, sub.lead_id, sub.remote_hash) == ("created", lead.id, None)
    [created] = db.rows(t.audit_log, t.audit_log.c.entity == "lead")
    assert (created.action, created.channel, created.actor_id) == ("create", "api", org["system"])
    keys = [m.key for m in db.rows(t.outbox)]
    assert f"LeadCreated:{lead.id}" in keys and f"LeadAssigned:{lead.id}:1" in keys

    recording, slack = RecordingSink(), FakeSlack()
    notifier = SlackNotifier(SimpleNamespace(app=ctx), slack)
    while dispatch_pending(ctx.session_factory, [recording, notifier]):
        pass
    assert [x for x in recording.topics() if x.startswith("Lead")] == ["LeadCreated", "LeadAssigned"]
    [dm] = slack.posts
    assert dm["channel"] == "D-U0REP" and f"LEAD-{lead.id:05d}" in dm["text"] and "Hangzhou Valve Co" in dm["text"]


def test_form_encoded_fields_with_the_secret_as_a_field_work_like_json(api, ctx, org, db):
    secret = new_form(ctx, org)

    form = api.post("/forms/contact/submissions", data={**LI, "form_secret": secret})
    as_json = post(api, secret, name="Wang Fang", company="Suzhou Pump Ltd", email="wang@pump.example")

    assert (form.status_code, as_json.status_code) == (202, 202)
    assert form.json() == as_json.json() == {"status": "received"}
    assert sorted(r.email for r in db.rows(t.leads)) == ["li.wei@valve.example", "wang@pump.example"]
    assert outcomes(db) == ["created", "created"]


def test_a_plain_html_form_is_sent_on_to_the_forms_redirect_url(api, ctx, org, db):
    secret = new_form(ctx, org, redirect_url="https://www.example.com/thanks")

    r = api.post("/forms/contact/submissions", data={**LI, "form_secret": secret}, follow_redirects=False)

    assert r.status_code == 303 and r.headers["location"] == "https://www.example.com/thanks"
    assert db.count(t.leads) == 1


# -- de-duplication ------------------------------------------------------------------------------

def test_the_same_email_again_joins_the_open_lead_as_a_note_instead_of_a_second_lead(api, ctx, org, db):
    secret = new_form(ctx, org)
    post(api, secret, **LI)

    r = post(api, secret, **{**LI, "name": "Li W.", "phone": "", "email": " LI.WEI@Valve.example ",
                             "message": "Any news? We want to start in March"})

    assert r.status_code == 202 and r.json() == {"status": "received"}
    [lead] = db.rows(t.leads)
    [note] = db.rows(t.activities)
    assert (note.lead_id, note.kind, note.user_id) == (lead.id, "note", org["system"])
    assert "Any news? We want to start in March" in note.body
    assert outcomes(db) == ["created", "merged"]
    assert submissions(db)[1].lead_id == lead.id and "same email" in submissions(db)[1].reason
    assert [m.topic for m in db.rows(t.outbox)].count("LeadCreated") == 1
    assert lead.status == "new"  # a message from the customer is not the rep reaching out


def test_the_same_phone_with_another_email_joins_the_lead_too(api, ctx, org, db):
    secret = new_form(ctx, org)
    post(api, secret, **LI)

    post(api, secret, name="Someone Else", company="Other Co", email="other@else.example", phone="0086 13800001111")

    assert db.count(t.leads) == 1 and outcomes(db) == ["created", "merged"]
    assert "same phone" in submissions(db)[1].reason


def test_a_match_older_than_30_days_still_takes_the_message_and_the_log_says_how_old(ctx, org, db):
    secret = new_form(ctx, org, slug="old")
    system = Actor(org["system"], Channel.API)
    with ctx.uow() as uow:
        first = form_svc.submit("old", secret, LI, actor=system, uow=uow)
        uow.commit()
    with ctx.uow() as uow:
        later = form_svc.submit("old", secret, LI, actor=system, uow=uow, now=uow.now() + timedelta(days=40))
        uow.commit()

    assert (first.outcome, later.outcome, later.lead_id) == ("created", "merged", first.lead_id)
    assert "created" in later.reason and db.count(t.leads) == 1 and db.count(t.activities) == 1


# -- spam ----------------------------------------------------------------------------------------

def test_a_filled_honeypot_is_answered_like_success_but_makes_no_lead(api, ctx, org, db):
    secret = new_form(ctx, org)

    r = post(api, secret, **LI, website="http://cheap-pills.example")

    assert r.status_code == 202 and r.json() == {"status": "received"}
    assert db.count(t.leads) == 0 and db.count(t.audit_log, t.audit_log.c.entity == "lead") == 0
    [sub] = submissions(db)
    assert (sub.outcome, sub.lead_id, sub.reason) == ("spam", None, "honeypot field filled in")


def test_many_links_a_link_as_name_and_a_form_sent_within_seconds_are_spam(api, ctx, org, db):
    secret = new_form(ctx, org)
    now_ms = int(time.time() * 1000)

    links = post(api, secret, **{**LI, "message": "see http://a.example http://b.example www.c.example"})
    named = post(api, secret, **{**LI, "name": "https://buy.example"})
    quick = post(api, secret, **LI, rendered_at=str(now_ms))
    human = post(api, secret, **LI, rendered_at=str(now_ms // 1000 - 90))

    assert {r.status_code for r in (links, named, quick, human)} == {202}
    assert outcomes(db) == ["spam", "spam", "spam", "created"]
    assert [s.reason.split(" ")[0] for s in submissions(db)[:3]] == ["3", "a", "filled"]
    assert db.count(t.leads) == 1


def test_a_flood_from_one_address_is_spam(ctx, org, db):
    secret = new_form(ctx, org)
    system = Actor(org["system"], Channel.API)
    for _ in range(form_svc.FLOOD_LIMIT):
        with ctx.uow() as uow:
            form_svc.submit("contact", secret, {**LI, "website": "x"}, actor=system, uow=uow, remote="203.0.113.9")
            uow.commit()
    with ctx.uow() as uow:
        flood = form_svc.submit("contact", secret, LI, actor=system, uow=uow, remote="203.0.113.9")
        other = form_svc.submit("contact", secret, LI, actor=system, uow=uow, remote="198.51.100.7")
        uow.commit()

    assert flood.outcome == "spam" and "posts from one address" in flood.reason
    assert other.outcome == "created" and db.count(t.leads) == 1


# -- refusals ------------------------------------------------------------------------------------

def test_a_wrong_or_missing_secret_is_refused_with_401_and_nothing_is_kept(api, ctx, org, db):
    new_form(ctx, org)

    wrong = post(api, "ltcf_not-the-secret", **LI)
    missing = post(api, None, **LI)

    for r in (wrong, missing):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthenticated" and r.json()["error"]["request_id"]
    assert db.count(t.leads) == 0 and submissions(db) == []


def test_a_disabled_or_unknown_form_answers_404(api, ctx, org, db, make_key):
    secret = new_form(ctx, org)
    key = make_key(["forms:write"])

    disabled = api.post("/forms/contact/disable", headers=bearer(key))
    r = post(api, secret, **LI)
    unknown = post(api, secret, slug="nope", **LI)

    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert (r.status_code, unknown.status_code) == (404, 404)
    assert r.json()["error"]["message"] == unknown.json()["error"]["message"].replace("nope", "contact")
    assert db.count(t.leads) == 0
    [row] = db.rows(t.audit_log, t.audit_log.c.entity == "web_form", t.audit_log.c.action == "disable")
    assert row.channel == "api"
    assert api.post("/forms/contact/enable", headers=bearer(key)).json()["active"] is True
    assert post(api, secret, **LI).status_code == 202


def test_a_rotated_secret_refuses_the_old_one(api, ctx, org, db, make_key):
    old = new_form(ctx, org)

    rotated = api.post("/forms/contact/rotate-secret", headers=bearer(make_key(["forms:write"])))
    new = rotated.json()["secret"]

    assert rotated.status_code == 200 and new.startswith("ltcf_") and new != old
    assert post(api, old, **LI).status_code == 401
    assert post(api, new, **LI).status_code == 202
    assert db.count(t.leads) == 1


def test_invalid_fields_are_refused_with_422_naming_the_field_and_logged_as_rejected(api, ctx, org, db):
    secret = new_form(ctx, org)

    bad_email = post(api, secret, **{**LI, "email": "not-an-email"})
    no_company = post(api, secret, **{**LI, "company": " "})
    no_contact = post(api, secret, name="Li Wei", company="Hangzhou Valve Co")
    not_text = post(api, secret, **{**LI, "name": ["a", "b"]})
    not_a_form = api.post("/forms/contact/submissions", content=b"hello", headers={"Content-Type": "text/plain",
                                                                                      "X-LTC-Form-Secret": secret})

    assert [r.status_code for r in (bad_email, no_company, no_contact, not_text)] == [422] * 4
    assert [r.json()["error"]["field"] for r in (bad_email, no_company, no_contact, not_text)] == \
        ["email", "company", "email", "name"]
    assert not_a_form.status_code == 415 and not_a_form.json()["error"]["code"] == "unsupported_media_type"
    assert outcomes(db) == ["rejected"] * 3 and db.count(t.leads) == 0


# -- browsers ------------------------------------------------------------------------------------

def test_cors_allows_the_forms_own_origins_only(api, ctx, org, db):
    secret = new_form(ctx, org, allowed_origins=["https://www.example.com"])
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    ok = api.options("/forms/contact/submissions", headers={"Origin": "https://www.example.com", **ask})
    foreign = api.options("/forms/contact/submissions", headers={"Origin": "https://evil.example", **ask})
    posted = api.post("/forms/contact/submissions", json=LI,
                      headers={"Origin": "https://www.example.com", "X-LTC-Form-Secret": secret})
    refused = api.post("/forms/contact/submissions", json={**LI, "email": "x@evil.example"},
                       headers={"Origin": "https://evil.example", "X-LTC-Form-Secret": secret})

    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://www.example.com"
    assert "X-LTC-Form-Secret" in ok.headers["access-control-allow-headers"]
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers
    assert posted.status_code == 202 and posted.headers["access-control-allow-origin"] == "https://www.example.com"
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert db.count(t.leads) == 1


# -- administration ------------------------------------------------------------------------------

def test_forms_are_created_and_listed_through_the_api_with_the_forms_scopes(api, ctx, org, db, make_key):
    writer, reader = make_key(["forms:write"]), make_key(["forms:read"], name="reader")

    made = api.post("/forms", headers=bearer(writer), json={
        "name": "Trade show tablet", "slug": "expo-2026", "source": "trade_show",
        "allowed_origins": ["https://Expo.Example.com/"]})
    post(api, made.json()["secret"], slug="expo-2026", **LI)
    listed = api.get("/forms", headers=bearer(reader))

    assert made.status_code == 201 and made.json()["secret"].startswith("ltcf_")
    assert made.json()["form"]["allowed_origins"] == ["https://expo.example.com"]
    [form] = listed.json()
    assert (form["slug"], form["source"], form["submissions"]) == ("expo-2026", "trade_show", {"created": 1})
    assert "secret" not in form and "secret_hash" not in form
    [row] = db.rows(t.audit_log, t.audit_log.c.entity == "web_form")
    assert (row.action, row.channel) == ("create", "api") and "secret" not in str(row.after)
    assert db.rows(t.leads)[0].source == "trade_show"


def test_form_administration_needs_the_scope_and_an_admin_or_sales_ops_user(api, ctx, org, make_key):
    body = {"name": "Contact", "slug": "contact"}

    no_scope = api.post("/forms", headers=bearer(make_key(["leads:write"])), json=body)
    a_rep = api.post("/forms", headers=bearer(make_key(["forms:write"], user="rep")), json=body)
    bad_slug = api.post("/forms", headers=bearer(make_key(["forms:write"], name="w")), json={**body, "slug": "Con tact"})
    anonymous = api.get("/forms")

    assert (no_scope.status_code, no_scope.json()["error"]["code"]) == (403, "scope_missing")
    assert (a_rep.status_code, a_rep.json()["error"]["code"]) == (403, "permission_denied")
    assert (bad_slug.status_code, bad_slug.json()["error"]["field"]) == (422, "slug")
    assert anonymous.status_code == 401


def test_a_taken_slug_is_a_conflict(ctx, org):
    new_form(ctx, org)
    with ctx.uow() as uow, pytest.raises(form_svc.Conflict):
        form_svc.create_form({"name": "Again", "slug": "contact"}, actor=org.actor("admin"), uow=uow)


# -- the CLI -------------------------------------------------------------------------------------

def test_cli_creates_lists_and_rotates_forms_and_prints_the_html_once(ctx, org, db, db_url, capsys):
    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["--db", db_url, "form", *argv])
        return code, capsys.readouterr().out

    code, created = run("create", "--name", "Website contact", "--slug", "contact", "--region", "east",
                        "--base-url", "https://ltc.example.com")
    secret = next(line for line in created.splitlines() if line.startswith("ltcf_"))
    code_list, listed = run("list")
    code_rot, rotated = run("rotate", "contact")
    code_again, _ = run("create", "--name", "Dup", "--slug", "contact")

    assert code == code_list == code_rot == 0 and code_again == 1
    assert 'action="https://ltc.example.com/api/v1/forms/contact/submissions"' in created
    assert f'name="form_secret" value="{secret}"' in created and 'name="website"' in created
    assert 'name="email"' in created and 'name="rendered_at"' in created
    assert "Web forms (1)" in listed and "contact" in listed and "active" in listed
    assert secret not in rotated and "old one no longer works" in rotated
    with ctx.uow() as uow:
        row = uow.session.execute(select(t.web_forms)).one()
    assert row.secret_hash != form_svc.hash_secret(secret)  # rotated
    assert [r.channel for r in db.rows(t.audit_log, t.audit_log.c.entity == "web_form")] == ["cli", "cli"]
