"""Approval cards through the real stack: a quote needing approval DMs its approver a card; a signed
click decides as the clicking user; every copy of the card is updated; the requester is told in
the deal's thread; late, repeated and racing clicks record one decision; reminders and escalation."""
from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import func, select

from bot.slack.approvals import ApprovalCards
from bot.background import ChatBackground
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.outbox import dispatch_pending
from domain.services import approvals, quotes, reminders, users
from tests.bot import approval_setup as setup

THREAD = "1700000100.000100"  # where the rep works the deal in #sales


@pytest.fixture
def cards(rig):
    """Starts the Slack background work as `ltc serve` runs it (every Slack sink, woken by each
    commit) once the deal is set up: the setup's own gates are not under test, so their events are
    marked delivered first (else a card for a gate could go out before the builder decides it)."""
    started = []

    def start() -> None:
        with rig.app.engine.begin() as conn:
            conn.execute(t.outbox.update().where(t.outbox.c.dispatched_at.is_(None)).values(dispatched_at=utcnow()))
        started.append(ChatBackground(rig.app, rig.services.sinks(rig.client), jobs=False).start())

    yield start
    for background in started:
        background.stop()


_call, _quote, _wait = setup.call, setup.quote_for_approval, setup.wait


def _submit_in_slack(rig, quote) -> None:
    """The rep submits in the deal's thread and confirms the proposal with the button."""
    rig.post_event({"type": "app_mention", "user": "U0REP", "text": f"<@U0BOT> submit quote {quote.ref}",
                    "ts": THREAD, "channel": "C0SALES", "event_ts": THREAD}, event_id="EvSubmit")
    post = _wait(lambda: [c.args for c in rig.slack.of("chat.postMessage") if c.args.get("channel") == "C0SALES"
                          and "ltc_confirm" in _buttons(c.args.get("blocks") or [])])[0]
    token = _buttons(post["blocks"])["ltc_confirm"]
    rig.click("U0REP", "ltc_confirm", token, channel="C0SALES", message_ts="1700000101.000001", thread_ts=THREAD)
    _wait(lambda: [u for u in rig.slack.of("chat.update") if u.args.get("channel") == "C0SALES"])  # confirmed


def _card_for(rig, slack_user: str, n: int = 1):
    """The card DM'd to `slack_user` (the mock opens DM D<user>)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        posts = [c for c in rig.slack.of("chat.postMessage") if c.args.get("channel") == f"D{slack_user}"
                 and any(b["type"] == "header" for b in c.args.get("blocks") or [])]
        if len(posts) >= n:
            return posts[n - 1]
        time.sleep(0.02)
    raise AssertionError(f"no card for {slack_user}: {[c.method for c in rig.slack.calls]}")


def _buttons(blocks) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def _card_ts(rig, card) -> str:
    """The mock answers each post with a fresh ts; the card row remembers it (just after the post)."""
    def row():
        with rig.app.engine.connect() as conn:
            return conn.execute(select(t.chat_cards.c.message_id).where(
                t.chat_cards.c.channel == card.args["channel"])).scalar_one_or_none()
    return _wait(row)


def _updates(rig, channel: str) -> list:
    return [c for c in rig.slack.of("chat.update") if c.args.get("channel") == channel]


def _text(blocks) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def _decisions(rig, approval_id) -> list[tuple]:
    d = t.approval_decisions.c
    with rig.app.engine.connect() as conn:
        return conn.execute(select(d.decider_id, d.outcome, d.channel).where(d.request_id == int(approval_id))
                            .order_by(d.step_seq)).all()


def _english(rig, *keys: str) -> None:
    with rig.app.uow() as uow:
        for key in keys:
            uow.users.get(rig.org[key]).locale = "en"
        uow.commit()


# -- the card and the click ----------------------------------------------------------------------

def test_a_quote_needing_approval_dms_the_approver_a_card_and_a_click_approves_it(rig, cards):
    _english(rig, "manager", "rep")
    opp, quote = _quote(rig, "15")  # ≤ 20 %: the sales manager decides
    cards()
    _submit_in_slack(rig, quote)
    card = _card_for(rig, "U0MGR")
    text = _text(card.args["blocks"])
    for fact in ("15%", "Price parity", "Requested by", "Margin after discount", quote.ref):
        assert fact in text
    assert set(_buttons(card.args["blocks"])) == {"ltc_approve", "ltc_reject", "ltc_revise"}
    with rig.app.uow() as uow:
        approval_id = uow.quotes.get(quote.id).approval_id
    assert _buttons(card.args["blocks"])["ltc_approve"] == str(approval_id)

    ts = _card_ts(rig, card)
    rig.click("U0MGR", "ltc_approve", str(approval_id), channel="DU0MGR", message_ts=ts, thread_ts=ts)
    update = _wait(lambda: [u for u in _updates(rig, "DU0MGR") if "Approved" in _text(u.args["blocks"])])[0]
    assert update.args["ts"] == ts and not _buttons(update.args["blocks"])
    with rig.app.uow() as uow:
        assert uow.quotes.get(quote.id).status == "approved"
    assert _decisions(rig, approval_id) == [(rig.org["manager"], "approve", "slack")]
    told = _wait(lambda: [c for c in rig.slack.of("chat.postMessage")
                          if c.args.get("channel") == "C0SALES" and c.args.get("thread_ts") == THREAD
                          and "<@U0REP>" in c.args.get("text", "") and quote.ref in c.args["text"]])
    assert "Approved" in told[0].args["text"]
    private = rig.slack.wait_for("chat.postEphemeral")[0].args
    assert private["user"] == "U0MGR" and "approved" in private["text"].lower()


def test_a_second_click_is_answered_and_records_one_decision(rig, cards):
    _english(rig, "manager")
    _opp, quote = _quote(rig, "15")
    cards()
    _submit_in_slack(rig, quote)
    card = _card_for(rig, "U0MGR")
    approval = _buttons(card.args["blocks"])["ltc_approve"]
    ts = _card_ts(rig, card)
    for _ in range(2):
        rig.click("U0MGR", "ltc_approve", approval, channel="DU0MGR", message_ts=ts, thread_ts=ts)
    answers = rig.slack.wait_for("chat.postEphemeral", 2)
    assert len(_decisions(rig, approval)) == 1
    assert any("already" in a.args["text"].lower() for a in answers)


def test_two_approvers_clicking_at_once_record_one_decision_and_both_cards_show_it(rig, cards):
    """A 25 % quote: director first, then finance (any finance user: two are eligible)."""
    org = rig.org
    with rig.app.uow() as uow:
        uow.users.get(org["finance"]).slack_user_id = "U0FIN"
        uow.users.get(org["finance"]).locale = "en"
        users.create_user({"email": "finance2@example.com", "name_en": "Fin Two", "roles": ["finance"],
                           "locale": "en", "slack_user_id": "U0FIN2"}, actor=org.actor("admin"), uow=uow)
        uow.commit()
    _opp, quote = _quote(rig, "25")
    cards()
    submitted = _call(rig, quotes.submit_quote, quote.id, actor=org.actor("rep"))
    _call(rig, approvals.decide_approval, submitted.approval_id, "approve", actor=org.actor("director"))
    cards_ = [_card_for(rig, "U0FIN"), _card_for(rig, "U0FIN2")]
    value = str(submitted.approval_id)
    clicks = [threading.Thread(target=rig.click, args=(who, "ltc_approve", value),
                               kwargs={"channel": f"D{who}", "message_ts": _card_ts(rig, c), "thread_ts": "x"})
              for who, c in (("U0FIN", cards_[0]), ("U0FIN2", cards_[1]))]
    for c in clicks:
        c.start()
    for c in clicks:
        c.join()
    rig.slack.wait_for("chat.postEphemeral", 2)
    assert [d[1] for d in _decisions(rig, value)] == ["approve", "approve"]  # the director's, and one finance
    for who in ("U0FIN", "U0FIN2"):
        _wait(lambda who=who: [u for u in _updates(rig, f"D{who}") if "Approved" in _text(u.args["blocks"])
                               and not _buttons(u.args["blocks"])])
    with rig.app.uow() as uow:
        assert uow.quotes.get(quote.id).status == "approved"


def test_reject_asks_for_a_reason_in_a_modal_and_an_empty_one_is_refused_inline(rig, cards):
    _english(rig, "manager")
    _opp, quote = _quote(rig, "15")
    cards()
    _submit_in_slack(rig, quote)
    card = _card_for(rig, "U0MGR")
    approval = _buttons(card.args["blocks"])["ltc_reject"]
    ts = _card_ts(rig, card)
    rig.click("U0MGR", "ltc_reject", approval, channel="DU0MGR", message_ts=ts, thread_ts=ts)
    modal = rig.slack.wait_for("views.open")[0].args
    view = modal["view"] if isinstance(modal["view"], dict) else json.loads(modal["view"])
    assert view["callback_id"] == "ltc_approval_comment"
    empty = _comment(rig, "U0MGR", view, "  ")
    assert empty.status_code == 200 and empty.json()["response_action"] == "errors"
    assert _decisions(rig, approval) == []
    assert _comment(rig, "U0MGR", view, "Too deep for a 500-seat deal").status_code == 200
    _wait(lambda: _decisions(rig, approval))
    assert _decisions(rig, approval) == [(rig.org["manager"], "reject", "slack")]
    with rig.app.uow() as uow:
        assert uow.quotes.get(quote.id).status == "rejected"


def test_request_changes_sends_the_quote_back_to_draft_and_tells_the_requester(rig, cards):
    _english(rig, "manager", "rep")
    _opp, quote = _quote(rig, "15")
    cards()
    _submit_in_slack(rig, quote)
    card = _card_for(rig, "U0MGR")
    ts = _card_ts(rig, card)
    rig.click("U0MGR", "ltc_revise", _buttons(card.args["blocks"])["ltc_revise"], channel="DU0MGR",
              message_ts=ts, thread_ts=ts)
    view = rig.slack.wait_for("views.open")[0].args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    _comment(rig, "U0MGR", view, "Ask for a 3-year term in exchange")
    told = _wait(lambda: [c for c in rig.slack.of("chat.postMessage") if c.args.get("thread_ts") == THREAD
                          and "<@U0REP>" in c.args.get("text", "") and quote.ref in c.args["text"]])
    assert "Changes requested" in told[0].args["text"] and "3-year term" in told[0].args["text"]
    with rig.app.uow() as uow:
        q = uow.quotes.get(quote.id)
        assert (q.status, q.approval_id) == ("draft", None)


def _comment(rig, user: str, view: dict, text: str):
    payload = {"type": "view_submission", "team": {"id": "T0LTC"}, "user": {"id": user}, "api_app_id": "A0LTC",
               "token": "x", "trigger_id": "1.2.3",
               "view": {**view, "id": "V0C", "hash": "h",
                        "state": {"values": {"comment": {"comment_text": {"type": "plain_text_input",
                                                                          "value": text}}}}}}
    return rig.post_form({"payload": json.dumps(payload)})


def test_a_click_on_an_expired_request_is_answered_and_the_card_updated(rig, cards):
    _english(rig, "manager")
    _opp, quote = _quote(rig, "15")
    cards()
    _submit_in_slack(rig, quote)
    card = _card_for(rig, "U0MGR")
    approval = int(_buttons(card.args["blocks"])["ltc_approve"])
    with rig.app.uow() as uow:  # its time ran out
        uow.approvals.get(approval).expires_at = uow.now().replace(year=2000)
        uow.commit()
    ts = _card_ts(rig, card)
    rig.click("U0MGR", "ltc_approve", str(approval), channel="DU0MGR", message_ts=ts, thread_ts=ts)
    answer = rig.slack.wait_for("chat.postEphemeral")[0].args
    assert "expired" in answer["text"].lower()
    _wait(lambda: [u for u in _updates(rig, "DU0MGR") if "Expired" in _text(u.args["blocks"])])
    assert _decisions(rig, approval) == []


def test_an_unknown_slack_user_clicking_a_card_decides_nothing(rig, cards):
    _opp, quote = _quote(rig, "15")
    cards()
    submitted = _call(rig, quotes.submit_quote, quote.id, actor=rig.org.actor("rep"))
    rig.click("U0NOBODY", "ltc_approve", str(submitted.approval_id), channel="DU0NOBODY",
              message_ts="1.1", thread_ts="1.1")
    note = rig.slack.wait_for("chat.postEphemeral")[0].args
    assert "管理员" in note["text"] and _decisions(rig, submitted.approval_id) == []


# -- reminders and escalation ------------------------------------------------------------------------

def test_a_waiting_step_reminds_its_approver_then_escalates_to_their_manager_once(rig):
    org = rig.org
    with rig.app.uow() as uow:
        uow.users.get(org["director"]).slack_user_id = "U0DIR"
        uow.commit()
    _opp, quote = _quote(rig, "15")
    submitted = _call(rig, quotes.submit_quote, quote.id, actor=org.actor("rep"))
    sink = ApprovalCards(rig.services, rig.client)
    dispatch_pending(rig.app.session_factory, [sink])
    _card_for(rig, "U0MGR")
    with rig.app.uow() as uow:  # it has waited 50 hours
        uow.approvals.get(submitted.approval_id).created_at = uow.now().replace(microsecond=0) \
            - __import__("datetime").timedelta(hours=50)
        uow.commit()
    for _ in range(2):  # the hourly job runs twice: each reminder goes out once
        _call(rig, reminders.raise_reminders, actor=rig.app.system_actor(), remind_after_hours=24,
              escalate_after_hours=48, quote_notice_days=3, milestone_notice_days=3)
        dispatch_pending(rig.app.session_factory, [sink])
    reminders_ = [c for c in rig.slack.of("chat.postMessage") if c.args.get("reply_broadcast")]
    assert len(reminders_) == 1 and reminders_[0].args["channel"] == "DU0MGR" and "50" in reminders_[0].args["text"]
    escalation = _card_for(rig, "U0DIR")
    assert "50" in escalation.args["text"] and not _buttons(escalation.args["blocks"])  # the director may not decide
    assert len([c for c in rig.slack.of("chat.postMessage") if c.args.get("channel") == "DU0DIR"]) == 1
    with rig.app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.chat_cards)).scalar_one() == 2
