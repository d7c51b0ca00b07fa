"""The Slack app through the real FastAPI + Bolt stack: signed requests in, Web API calls out."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from domain.db import tables as t
from domain.services import approvals
from tests import builders


def _count(app, table) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _mention(user: str, text: str, ts: str = "1700000001.000100", channel: str = "C0SALES") -> dict:
    return {"type": "app_mention", "user": user, "text": f"<@U0BOT> {text}", "ts": ts, "channel": channel,
            "event_ts": ts}


def _settle(rig, seconds: float = 0.5) -> None:
    """Give lazy listeners that should NOT post anything the time to prove it."""
    time.sleep(seconds)


# -- conversations -----------------------------------------------------------------------------

def test_a_mention_creates_the_lead_and_replies_in_thread_with_blocks(rig):
    response = rig.post_event(_mention("U0REP", "new lead Acme Robotics from trade show, contact Li Wei"),
                              event_id="Ev001")
    assert response.status_code == 200
    post = rig.slack.wait_for("chat.postMessage")[0].args
    assert post["channel"] == "C0SALES" and post["thread_ts"] == "1700000001.000100"
    assert post["blocks"] and post["blocks"][0]["type"] == "section"
    with rig.app.engine.connect() as conn:
        leads = conn.execute(select(t.leads.c.company, t.leads.c.contact_name)).all()
    assert [(c, n) for c, n in leads if "Acme Robotics" in c] == [("Acme Robotics", "Li Wei")]
    added = rig.slack.of("reactions.add")
    assert [c.args["name"] for c in added] == ["eyes"] and rig.slack.wait_for("reactions.remove")


def test_a_dm_goes_to_the_agent_and_bot_messages_are_ignored(rig):
    dm = {"type": "message", "channel_type": "im", "user": "U0REP", "text": "my leads", "ts": "1700000002.000100",
          "channel": "D0REP"}
    rig.post_event({**dm, "bot_id": "B0BOT", "ts": "1700000002.000050"}, event_id="EvBot")
    rig.post_event(dm, event_id="EvDm")
    posts = rig.slack.wait_for("chat.postMessage")
    _settle(rig)
    assert [(p.args["channel"], p.args["thread_ts"]) for p in rig.slack.of("chat.postMessage")] == \
        [("D0REP", "1700000002.000100")]
    assert posts[0].args["text"]


# -- security and reliability ------------------------------------------------------------------

def test_a_forged_signature_gets_401_and_nothing_happens(rig):
    leads_before = _count(rig.app, t.leads)
    response = rig.post_event(_mention("U0REP", "new lead Forged Ltd from trade show, contact Eve"),
                              event_id="EvForged", secret="not-the-secret")
    assert response.status_code == 401
    _settle(rig)
    assert _count(rig.app, t.leads) == leads_before
    assert _count(rig.app, t.slack_events) == 0
    assert rig.slack.of("chat.postMessage") == []


def test_the_same_event_sent_three_times_is_processed_once(rig):
    event = _mention("U0REP", "new lead Acme Robotics from trade show, contact Li Wei")
    assert rig.post_event(event, event_id="EvDup").status_code == 200
    assert rig.post_event(event, event_id="EvDup", retry=1).status_code == 200
    assert rig.post_event(event, event_id="EvDup", retry=2).status_code == 200
    rig.slack.wait_for("chat.postMessage")
    _settle(rig, 1.0)
    assert len(rig.slack.of("chat.postMessage")) == 1
    with rig.app.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(t.leads.c.company == "Acme Robotics")).scalar_one() == 1


def test_an_unknown_slack_user_gets_onboarding_in_both_languages_and_no_data(rig):
    leads_before, audit_before = _count(rig.app, t.leads), _count(rig.app, t.audit_log)
    rig.post_event(_mention("U0NOBODY", "new lead Sneaky Ltd from trade show, contact Mallory"), event_id="EvWho")
    note = rig.slack.wait_for("chat.postEphemeral")[0].args
    assert note["user"] == "U0NOBODY" and "stranger@elsewhere.example" in note["text"]
    assert "LTC Copilot" in note["text"] and "管理员" in note["text"]
    _settle(rig)
    assert rig.slack.of("chat.postMessage") == []
    assert (_count(rig.app, t.leads), _count(rig.app, t.audit_log)) == (leads_before, audit_before)


def test_a_slack_user_found_by_email_is_remembered_with_an_audit_row(rig):
    rig.post_event(_mention("U0REP2", "my leads"), event_id="EvEmail")
    rig.slack.wait_for("chat.postMessage")
    with rig.app.engine.connect() as conn:
        assert conn.execute(select(t.users.c.slack_user_id).where(t.users.c.id == rig.org["rep2"])).scalar_one() \
            == "U0REP2"
        actions = conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.entity == "user",
                                                                  t.audit_log.c.entity_id == rig.org["rep2"])).all()
    assert ("link_slack",) in actions
    rig.post_event(_mention("U0REP2", "my leads", ts="1700000009.000100"), event_id="EvEmail2")
    rig.slack.wait_for("chat.postMessage", 2)
    assert len(rig.slack.of("users.info")) == 1  # the second message needed no lookup


# -- proposals and buttons ---------------------------------------------------------------------

def _pending_approval(rig):
    opp = builders.make_deal(rig.app.uow, rig.org)
    with rig.app.uow() as uow:
        request = approvals.request_gate(opp, "ATI", actor=rig.org.actor("rep"), uow=uow)
        uow.commit()
    return request


def _status(rig, request_id):
    with rig.app.engine.connect() as conn:
        return conn.execute(select(t.approval_requests.c.status).where(
            t.approval_requests.c.id == request_id)).scalar_one()


def _propose(rig, request):
    rig.post_event(_mention("U0MGR", f"approve {request.ref}", ts="1700000050.000100"), event_id="EvApprove")
    post = rig.slack.wait_for("chat.postMessage")[0]
    actions = [b for b in post.args["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1
    buttons = {e["action_id"]: e["value"] for e in actions[0]["elements"]}
    assert set(buttons) == {"ltc_confirm", "ltc_cancel"} and buttons["ltc_confirm"] == buttons["ltc_cancel"]
    return buttons["ltc_confirm"], "1700000999.000001"


def test_a_proposal_posts_buttons_and_the_proposers_click_decides_it(rig):
    request = _pending_approval(rig)
    token, message_ts = _propose(rig, request)
    assert _status(rig, request.id) == "pending"  # nothing happens before the click
    response = rig.click("U0MGR", "ltc_confirm", token, channel="C0SALES", message_ts=message_ts,
                         thread_ts="1700000050.000100")
    assert response.status_code == 200
    update = rig.slack.wait_for("chat.update")[0].args
    assert update["channel"] == "C0SALES" and update["ts"] == message_ts
    assert not [b for b in update["blocks"] if b["type"] == "actions"]  # the buttons are gone
    assert _status(rig, request.id) == "approved"


def test_another_users_click_is_refused_privately_and_decides_nothing(rig):
    request = _pending_approval(rig)
    token, message_ts = _propose(rig, request)
    rig.click("U0REP", "ltc_confirm", token, channel="C0SALES", message_ts=message_ts,
              thread_ts="1700000050.000100")
    refusal = rig.slack.wait_for("chat.postEphemeral")[0].args
    assert refusal["user"] == "U0REP"
    _settle(rig)
    assert rig.slack.of("chat.update") == []
    assert _status(rig, request.id) == "pending"


def test_cancel_leaves_the_approval_pending_and_updates_the_card(rig):
    request = _pending_approval(rig)
    token, message_ts = _propose(rig, request)
    rig.click("U0MGR", "ltc_cancel", token, channel="C0SALES", message_ts=message_ts,
              thread_ts="1700000050.000100")
    rig.slack.wait_for("chat.update")
    assert _status(rig, request.id) == "pending"


def test_healthz_answers(rig):
    assert rig.http.get("/healthz").json()["ok"] is True


def test_a_second_click_on_a_used_proposal_is_refused_and_decides_once(rig):
    request = _pending_approval(rig)
    token, message_ts = _propose(rig, request)
    for _ in range(2):
        rig.click("U0MGR", "ltc_confirm", token, channel="C0SALES", message_ts=message_ts,
                  thread_ts="1700000050.000100")
    rig.slack.wait_for("chat.update")
    rig.slack.wait_for("chat.postEphemeral")
    _settle(rig)
    assert len(rig.slack.of("chat.update")) == 1
    with rig.app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.approval_decisions)).scalar_one() == 1


def test_a_stale_timestamp_gets_401(rig):
    import json

    from tests.bot.conftest import sign

    body = json.dumps({"type": "event_callback", "event_id": "EvOld", "event": _mention("U0REP", "my leads")})
    headers = {"Content-Type": "application/json", **sign(body, ts=int(time.time()) - 3600)}
    assert rig.http.post("/slack/events", content=body, headers=headers).status_code == 401
    _settle(rig)
    assert rig.slack.of("chat.postMessage") == []


def test_a_rate_limited_reply_is_retried_after_retry_after(rig):
    rig.slack.rate_limit_once("chat.postMessage")
    rig.post_event(_mention("U0REP", "my leads"), event_id="EvLimited")
    posts = rig.slack.wait_for("chat.postMessage", 2)
    assert posts[0].args["thread_ts"] == posts[1].args["thread_ts"] == "1700000001.000100"


def test_an_unknown_user_in_a_dm_is_answered_in_the_dm(rig):
    rig.post_event({"type": "message", "channel_type": "im", "user": "U0GHOST", "text": "hi",
                    "ts": "1700000003.000100", "channel": "D0GHOST"}, event_id="EvGhost")
    note = rig.slack.wait_for("chat.postMessage")[0].args
    assert note["channel"] == "D0GHOST" and "管理员" in note["text"] and "admin" in note["text"]


# -- field lists and follow-up buttons ----------------------------------------------------------

def _follow_ups(blocks_: list[dict]) -> dict[str, dict]:
    import json

    return {e["text"]["text"]: json.loads(e["value"]) for b in blocks_ if b["type"] == "actions"
            for e in b["elements"] if e["action_id"].startswith("ltc_follow_up_")}


def test_a_new_lead_reply_lists_its_fields_and_a_follow_up_click_qualifies_it_as_the_clicker(rig):
    with rig.app.uow() as uow:
        uow.users.get(rig.org["rep"]).locale = "en"
        uow.commit()
    rig.post_event(_mention("U0REP", "new lead Acme Robotics from trade show, contact Li Wei"), event_id="EvFu")
    post = rig.slack.wait_for("chat.postMessage")[0].args
    fields = [f["text"] for b in post["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    assert any("Acme Robotics" in f for f in fields) and any("Li Wei" in f for f in fields)
    buttons = _follow_ups(post["blocks"])
    (label, step), = buttons.items()  # a new lead can be qualified, not yet converted
    assert label.startswith("Qualify LEAD-") and step["tool"] == "qualify_lead"
    action_id = next(e["action_id"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
    import json as _json

    # Another rep's click runs as that rep: they may not touch this lead, and nothing changes.
    rig.click("U0REP2", action_id, _json.dumps(step), channel="C0SALES", message_ts="1700000001.000200",
              thread_ts="1700000001.000100")
    refused = rig.slack.wait_for("chat.postMessage", 2)[1].args
    with rig.app.engine.connect() as conn:
        status = conn.execute(select(t.leads.c.status).where(t.leads.c.company == "Acme Robotics")).scalar_one()
    assert status == "new" and refused["thread_ts"] == "1700000001.000100"
    rig.click("U0REP", action_id, _json.dumps(step), channel="C0SALES", message_ts="1700000001.000200",
              thread_ts="1700000001.000100")
    answer = rig.slack.wait_for("chat.postMessage", 3)[2].args
    with rig.app.engine.connect() as conn:
        status = conn.execute(select(t.leads.c.status).where(t.leads.c.company == "Acme Robotics")).scalar_one()
    assert status == "qualified" and answer["thread_ts"] == "1700000001.000100"
    assert [s["tool"] for s in _follow_ups(answer["blocks"]).values()] == ["convert_lead"]
