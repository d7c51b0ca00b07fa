"""Approvals on WeCom through the real endpoint and the mock server API: a quote needing approval
sends its approver a button_interaction card; a click decides as the clicking userid; the cards are
updated with update_template_card (each response code once); the requester is told; repeated and
late clicks record one decision; Reject / Request changes take the reason from the next message."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from bot.background import ChatBackground
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.services import approvals, quotes, users
from tests.bot import approval_setup as setup


@pytest.fixture
def cards(wecom):
    """Starts the background work as `ltc serve` runs it (the WeCom sinks, woken by each commit),
    once the deal is set up: the setup's own gates are not under test, so their events are marked
    delivered first (else a card for a gate could go out before the builder decides it)."""
    started = []

    def start() -> None:
        with wecom.app.engine.begin() as conn:
            conn.execute(t.outbox.update().where(t.outbox.c.dispatched_at.is_(None)).values(dispatched_at=utcnow()))
        started.append(ChatBackground(wecom.app, wecom.services.sinks(), jobs=False).start())

    yield start
    for background in started:
        background.stop()


_call, _wait = setup.call, setup.wait


def _quote(rig, discount: str):
    return setup.quote_for_approval(rig, discount)[1]


def _decisions(rig, approval_id) -> list[tuple]:
    d = t.approval_decisions.c
    with rig.app.engine.connect() as conn:
        return conn.execute(select(d.decider_id, d.outcome, d.channel, d.comment)
                            .where(d.request_id == int(approval_id)).order_by(d.step_seq)).all()


def _card_for(rig, userid: str, approval_id) -> dict:
    """The card about `approval_id` sent to `userid` (the gates run to set the deal up may have
    posted cards of their own before they were decided)."""
    key = f"ltc_approve:{approval_id}"
    return _wait(lambda: [c for c in rig.cards(userid) if any(b["key"] == key for b in c["button_list"])])[0]


def _approval_of(rig, quote_id) -> int:
    with rig.app.uow() as uow:
        return uow.quotes.get(quote_id).approval_id


def _quote_status(rig, quote_id) -> str:
    with rig.app.uow() as uow:
        return uow.quotes.get(quote_id).status


def _submit_in_wecom(rig, quote) -> dict:
    """The rep submits by message and confirms the proposal card; returns the approver's card."""
    rig.say("LiNa", f"提交报价 {quote.ref}")
    proposal = rig.wait_for_card("LiNa")
    assert proposal["main_title"]["title"] == "需要您确认" and quote.ref in proposal["sub_title_text"]
    assert _quote_status(rig, quote.id) == "draft"  # nothing happens before the yes
    rig.click("LiNa", proposal, "ltc_confirm:")
    closed = _wait(lambda: rig.mock.updates("LiNa"))[0]["template_card"]
    assert closed["replace_text"] == "已确认" and closed["task_id"] == proposal["task_id"]
    return _card_for(rig, "WangFang", _approval_of(rig, quote.id))


def test_a_quote_needing_approval_sends_a_card_and_a_click_approves_it(wecom, cards):
    quote = _quote(wecom, "15")  # ≤ 20 %: the sales manager decides
    cards()
    card = _submit_in_wecom(wecom, quote)
    with wecom.app.uow() as uow:
        approval_id = uow.quotes.get(quote.id).approval_id
    assert card["card_type"] == "button_interaction" and quote.ref in card["main_title"]["desc"]
    facts = {row["keyname"]: row["value"] for row in card["horizontal_content_list"]}
    assert facts["折扣"] == "15%" and {"金额", "申请人", "审批人", "折后毛利率"} <= set(facts)
    assert [b["key"] for b in card["button_list"]] == [f"ltc_approve:{approval_id}", f"ltc_revise:{approval_id}",
                                                       f"ltc_reject:{approval_id}"]
    assert "replace_text" not in card
    details = [x for x in wecom.texts("WangFang") if x.startswith(f"APR-{approval_id:05d} ")]
    assert details and "截止时间" in details[0]  # what the card cannot hold, in a message above it

    wecom.click("WangFang", card, "ltc_approve:")
    assert _quote_status(wecom, quote.id) == "approved"
    assert [d[:3] for d in _decisions(wecom, approval_id)] == [(wecom.org["manager"], "approve", "wecom")]
    update = _wait(lambda: wecom.mock.updates("WangFang"))[0]
    assert update["userids"] == ["WangFang"] and update["template_card"]["replace_text"] == "已批准"
    assert update["template_card"]["task_id"] == card["task_id"]
    told = _wait(lambda: [x for x in wecom.texts("LiNa") if quote.ref in x and "已批准" in x])
    assert told  # the requester hears how it ended
    assert any("批准" in x for x in wecom.texts("WangFang")[1:])  # the clicker is answered


def test_a_repeated_click_callback_is_processed_once(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    from tests.bot import wecom_reference as wx
    from tests.bot.wecom_rig import AGENT, CORP
    key = card["button_list"][0]["key"]
    xml = wx.card_event_xml("WangFang", task_id=card["task_id"], event_key=key,
                            response_code=wecom.mock.click_code(card["task_id"]), corp_id=CORP, agent_id=AGENT)
    for _ in range(3):  # the same TaskId + EventKey: WeCom's retries
        assert wecom.post(xml).status_code == 200
    wecom.wecom_app.wait()
    assert len(_decisions(wecom, key.split(":")[1])) == 1
    answers = [x for x in wecom.texts("WangFang")[1:] if quote.ref in x or "APR" in x]
    assert len(answers) == 1


def test_two_approvers_clicking_at_once_record_one_decision_and_both_cards_close(wecom, cards):
    """A 25 % quote: director first, then finance (either of two finance users)."""
    org = wecom.org
    with wecom.app.uow() as uow:
        users.create_user({"email": "finance2@example.com", "name_en": "Fin Two", "name_zh": "财务二",
                           "roles": ["finance"], "locale": "zh", "wecom_userid": "CaiWu2"},
                          actor=org.actor("admin"), uow=uow)
        uow.commit()
    quote = _quote(wecom, "25")
    cards()
    submitted = _call(wecom, quotes.submit_quote, quote.id, actor=org.actor("rep"))
    _call(wecom, approvals.decide_approval, submitted.approval_id, "approve", actor=org.actor("director"))
    first, second = (_card_for(wecom, who, submitted.approval_id) for who in ("QianFang", "CaiWu2"))
    clicks = [threading.Thread(target=wecom.click, args=(who, c, "ltc_approve:"), kwargs={"wait": False})
              for who, c in (("QianFang", first), ("CaiWu2", second))]
    for c in clicks:
        c.start()
    for c in clicks:
        c.join()
    wecom.wecom_app.wait()
    assert [d[1] for d in _decisions(wecom, submitted.approval_id)] == ["approve", "approve"]
    assert _quote_status(wecom, quote.id) == "approved"
    for who in ("QianFang", "CaiWu2"):
        _wait(lambda who=who: [u for u in wecom.mock.updates(who)
                               if u["template_card"].get("replace_text") == "已批准"])


def test_reject_asks_for_the_reason_and_the_next_message_decides(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = card["button_list"][0]["key"].split(":")[1]
    wecom.click("WangFang", card, "ltc_reject:")
    assert "驳回" in wecom.texts("WangFang")[-1] and "原因" in wecom.texts("WangFang")[-1]
    assert _decisions(wecom, approval_id) == []  # nothing until the reason comes
    wecom.say("WangFang", "500 套的折扣太深，请先谈三年期")
    assert [d[1:] for d in _decisions(wecom, approval_id)] == [("reject", "wecom", "500 套的折扣太深，请先谈三年期")]
    assert _quote_status(wecom, quote.id) == "rejected"
    update = _wait(lambda: wecom.mock.updates("WangFang"))[0]["template_card"]
    assert update["replace_text"] == "已驳回" and "三年期" in update["sub_title_text"]
    _wait(lambda: [x for x in wecom.texts("LiNa") if quote.ref in x and "三年期" in x])


def test_request_changes_sends_the_quote_back_to_draft(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    wecom.click("WangFang", card, "ltc_revise:")
    wecom.say("WangFang", "请把交付分两期，并加上三年维保")
    with wecom.app.uow() as uow:
        q = uow.quotes.get(quote.id)
        assert (q.status, q.approval_id) == ("draft", None)
    _wait(lambda: [x for x in wecom.texts("LiNa") if quote.ref in x and "已要求修改" in x and "三年维保" in x])


def test_cancel_instead_of_a_reason_decides_nothing_and_the_next_message_goes_to_the_agent(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = card["button_list"][0]["key"].split(":")[1]
    wecom.click("WangFang", card, "ltc_reject:")
    wecom.say("WangFang", "取消")
    assert "暂不处理" in wecom.texts("WangFang")[-1]
    wecom.say("WangFang", "我的商机")  # not taken as a reason any more
    assert _decisions(wecom, approval_id) == [] and _quote_status(wecom, quote.id) == "pending_approval"


def test_a_reason_after_the_question_expired_decides_nothing(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = card["button_list"][0]["key"].split(":")[1]
    wecom.click("WangFang", card, "ltc_reject:")
    with wecom.app.engine.begin() as conn:  # ten minutes pass
        conn.execute(t.approval_reason_prompts.update().values(expires_at=__import__("datetime").datetime(2000, 1, 1)))
    wecom.say("WangFang", "价格太低")
    assert _decisions(wecom, approval_id) == []


def test_a_click_on_an_expired_request_is_answered_and_the_card_closed(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = int(card["button_list"][0]["key"].split(":")[1])
    with wecom.app.uow() as uow:  # its time ran out
        uow.approvals.get(approval_id).expires_at = uow.now().replace(year=2000)
        uow.commit()
    wecom.click("WangFang", card, "ltc_approve:")
    assert _decisions(wecom, approval_id) == []
    assert any("过期" in x for x in wecom.texts("WangFang")[1:])
    _wait(lambda: [u for u in wecom.mock.updates("WangFang") if u["template_card"].get("replace_text") == "已过期"])


def test_a_stranger_pressing_a_card_button_decides_nothing(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = card["button_list"][0]["key"].split(":")[1]
    from tests.bot import wecom_reference as wx
    from tests.bot.wecom_rig import AGENT, CORP
    wecom.post(wx.card_event_xml("ZhaoLei", task_id=card["task_id"], event_key=f"ltc_approve:{approval_id}",
                                 response_code="rc-x", corp_id=CORP, agent_id=AGENT))
    wecom.wecom_app.wait()
    assert _decisions(wecom, approval_id) == [] and "还没有在 LTC Copilot 中开通" in wecom.texts("ZhaoLei")[0]


def test_a_rep_cannot_approve_by_pressing_a_forged_key(wecom, cards):
    """The key names the request, the callback names who pressed: the rep may not decide their own quote."""
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    approval_id = card["button_list"][0]["key"].split(":")[1]
    from tests.bot import wecom_reference as wx
    from tests.bot.wecom_rig import AGENT, CORP
    wecom.post(wx.card_event_xml("LiNa", task_id="forged-task", event_key=f"ltc_approve:{approval_id}",
                                 response_code="rc-x", corp_id=CORP, agent_id=AGENT))
    wecom.wecom_app.wait()
    assert _decisions(wecom, approval_id) == [] and _quote_status(wecom, quote.id) == "pending_approval"


def test_a_card_whose_code_is_spent_tells_its_holder_how_it_ended(wecom, cards):
    """Two steps: the director's card is closed after step 1 (its code spent); when finance decides
    step 2 the director's card cannot change any more, so the director is told in a message."""
    quote = _quote(wecom, "25")
    cards()
    submitted = _call(wecom, quotes.submit_quote, quote.id, actor=wecom.org.actor("rep"))
    director_card = _card_for(wecom, "ChenZhiYuan", submitted.approval_id)
    wecom.click("ChenZhiYuan", director_card, "ltc_approve:")
    waiting = _wait(lambda: wecom.mock.updates("ChenZhiYuan"))[0]["template_card"]
    assert waiting["replace_text"] == "等待后续审批"
    finance_card = _card_for(wecom, "QianFang", submitted.approval_id)
    wecom.click("QianFang", finance_card, "ltc_approve:")
    assert _quote_status(wecom, quote.id) == "approved"
    _wait(lambda: [x for x in wecom.texts("ChenZhiYuan") if submitted.ref in x and "已批准" in x]) \
        if hasattr(submitted, "ref") else _wait(lambda: [x for x in wecom.texts("ChenZhiYuan") if "已批准" in x])
    assert len(wecom.mock.updates("ChenZhiYuan")) == 1  # never a spent code twice


def test_cancelling_a_proposal_closes_its_card_and_changes_nothing(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    wecom.say("LiNa", f"提交报价 {quote.ref}")
    proposal = wecom.wait_for_card("LiNa")
    wecom.click("LiNa", proposal, "ltc_cancel:")
    closed = _wait(lambda: wecom.mock.updates("LiNa"))[0]["template_card"]
    assert closed["replace_text"] == "已取消"
    assert _quote_status(wecom, quote.id) == "draft" and wecom.cards("WangFang") == []
    wecom.click("LiNa", proposal, "ltc_confirm:")  # a later yes on the spent proposal does nothing
    assert _quote_status(wecom, quote.id) == "draft"


def test_a_waiting_step_reminds_its_approver_then_escalates_to_their_manager_once(wecom):
    from datetime import timedelta

    from bot.wecom.approvals import WeComApprovalCards
    from domain.outbox import dispatch_pending
    from domain.services import reminders

    org = wecom.org
    quote = _quote(wecom, "15")
    submitted = _call(wecom, quotes.submit_quote, quote.id, actor=org.actor("rep"))
    sink = WeComApprovalCards(wecom.services)
    dispatch_pending(wecom.app.session_factory, [sink])
    _card_for(wecom, "WangFang", submitted.approval_id)
    with wecom.app.uow() as uow:  # it has waited 50 hours
        uow.approvals.get(submitted.approval_id).created_at = uow.now().replace(microsecond=0) - timedelta(hours=50)
        uow.commit()
    for _ in range(2):  # the hourly job runs twice: each reminder goes out once
        _call(wecom, reminders.raise_reminders, actor=wecom.app.system_actor(), remind_after_hours=24,
              escalate_after_hours=48, quote_notice_days=3, milestone_notice_days=3)
        dispatch_pending(wecom.app.session_factory, [sink])
    reminded = [x for x in wecom.texts("WangFang") if "提醒" in x]
    assert len(reminded) == 1 and "50" in reminded[0]
    escalation = _card_for(wecom, "ChenZhiYuan", submitted.approval_id)
    assert escalation["sub_title_text"].startswith("⚠️ 升级") and escalation["replace_text"] == "仅供知悉"  # may not decide
    assert any(x.startswith("⚠️ 升级") and "50 小时" in x for x in wecom.texts("ChenZhiYuan"))  # in full above it
    assert len(wecom.cards("ChenZhiYuan")) == 1


def test_every_approver_gets_a_card_in_the_first_attempt(wecom):
    """Two finance approvers at one step: both cards go out in one delivery, not one per retry."""
    from domain.outbox import dispatch_pending

    org = wecom.org
    with wecom.app.uow() as uow:
        users.create_user({"email": "finance2@example.com", "name_en": "Fin Two", "roles": ["finance"],
                           "locale": "zh", "wecom_userid": "CaiWu2"}, actor=org.actor("admin"), uow=uow)
        uow.commit()
    quote = _quote(wecom, "25")
    submitted = _call(wecom, quotes.submit_quote, quote.id, actor=org.actor("rep"))
    _call(wecom, approvals.decide_approval, submitted.approval_id, "approve", actor=org.actor("director"))
    dispatch_pending(wecom.app.session_factory, wecom.services.sinks())
    for who in ("QianFang", "CaiWu2"):
        _card_for(wecom, who, submitted.approval_id)
    with wecom.app.engine.connect() as conn:
        rows = conn.execute(select(t.outbox.c.key, t.outbox.c.attempts, t.outbox.c.last_error)
                            .where(t.outbox.c.topic.in_(["ApprovalRequested", "ApprovalStepOpened"]))).all()
    assert rows and all(r.attempts == 1 and r.last_error is None for r in rows), rows


def test_pressing_reject_again_after_cancelling_asks_again(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    wecom.click("WangFang", card, "ltc_reject:")
    wecom.say("WangFang", "取消")
    wecom.click("WangFang", card, "ltc_reject:")  # a new press, not WeCom's retry of the first
    asked = [x for x in wecom.texts("WangFang") if "驳回" in x and "原因" in x]
    assert len(asked) == 2
    wecom.say("WangFang", "价格低于底价")
    assert _quote_status(wecom, quote.id) == "rejected"


def test_someone_who_may_not_decide_is_told_so_instead_of_being_asked_for_a_reason(wecom, cards):
    quote = _quote(wecom, "15")
    cards()
    card = _submit_in_wecom(wecom, quote)
    wecom.click("LiNa", card, "ltc_reject:")  # the rep, pressing a (forwarded) card of their own quote
    assert "不由您审批" in wecom.texts("LiNa")[-1] and "Manager" in wecom.texts("LiNa")[-1]
    wecom.say("LiNa", "我的商机")  # their next message is theirs, not a reason
    assert _quote_status(wecom, quote.id) == "pending_approval"
