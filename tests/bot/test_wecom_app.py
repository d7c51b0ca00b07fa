"""The WeCom endpoint end to end: URL check, encrypted messages to the agent, replies through the
mock message API, repeats, token expiry, strangers and forgeries."""
from __future__ import annotations

from sqlalchemy import func, select

from domain.db import tables as t
from tests.bot import wecom_reference as wx
from tests.bot.wecom_rig import AES_KEY, AGENT, CORP, TOKEN

NEW_LEAD = "新线索 华东电力 来源 展会 联系人 王芳 预算 200万"


def _leads(rig) -> list:
    with rig.app.engine.connect() as conn:
        return conn.execute(select(t.leads.c.id, t.leads.c.company, t.leads.c.owner_id)).all()


def _count(rig, table) -> int:
    with rig.app.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table))


# -- URL verification -----------------------------------------------------------------------------

def test_the_url_check_echoes_the_decrypted_echostr(wecom):
    response = wecom.http.get("/wecom/callback", params=wecom.ref.url_check("8736152001234567"))
    assert response.status_code == 200 and response.text == "8736152001234567"


def test_a_url_check_with_a_bad_signature_is_refused(wecom):
    params = wecom.ref.url_check("8736152001234567")
    params["msg_signature"] = "0" * 40
    response = wecom.http.get("/wecom/callback", params=params)
    assert response.status_code == 403 and "8736152001234567" not in response.text


# -- chat -----------------------------------------------------------------------------------------

def test_a_chinese_text_message_creates_a_lead_and_the_reply_is_sent(wecom):
    response = wecom.say("LiNa", NEW_LEAD)
    assert response.status_code == 200 and response.text == ""  # answered at once, reply via the API
    leads = _leads(wecom)
    assert [(x.company, x.owner_id) for x in leads] == [("华东电力", wecom.org["rep"])]
    replies = wecom.texts("LiNa")
    assert len(replies) == 1 and "LEAD-" in replies[0] and "华东电力" in replies[0]
    sent = wecom.mock.sent("LiNa")[0]
    assert sent["agentid"] == AGENT and sent["touser"] == "LiNa"
    with wecom.app.engine.connect() as conn:  # audited as done in WeCom, by the person who wrote
        row = conn.execute(select(t.audit_log.c.actor_id, t.audit_log.c.channel)
                           .where(t.audit_log.c.entity == "lead")).first()
    assert (row.actor_id, row.channel) == (wecom.org["rep"], "wecom")


def test_the_same_callback_delivered_three_times_is_processed_once(wecom):
    for _ in range(3):  # WeCom retries a callback it thinks went unanswered
        assert wecom.say("LiNa", NEW_LEAD, msg_id=7100000000000000001).status_code == 200
    assert len(_leads(wecom)) == 1
    assert len(wecom.texts("LiNa")) == 1
    assert _count(wecom, t.wecom_callbacks) == 1


def test_a_new_message_with_another_msgid_is_processed_again(wecom):
    wecom.say("LiNa", "我的商机", msg_id=7100000000000000002)
    wecom.say("LiNa", "我的商机", msg_id=7100000000000000003)
    assert len(wecom.texts("LiNa")) == 2


def test_an_expired_token_is_refreshed_and_the_send_retried(wecom):
    wecom.say("LiNa", "帮助")
    issued = wecom.mock.tokens_issued
    wecom.mock.expire_tokens()
    wecom.say("LiNa", NEW_LEAD)
    refused = [c for c in wecom.mock.of("message/send") if c.errcode == 42001]
    assert len(refused) == 1  # the stale token was refused once …
    assert wecom.mock.tokens_issued == issued + 1  # … a new one fetched …
    assert "LEAD-" in wecom.texts("LiNa")[-1]  # … and the reply delivered with it


def test_a_revoked_token_is_refreshed_too(wecom):
    wecom.say("LiNa", "帮助")
    wecom.mock.revoke_tokens()
    wecom.say("LiNa", NEW_LEAD)
    assert [c.errcode for c in wecom.mock.of("message/send")].count(40014) == 1
    assert "LEAD-" in wecom.texts("LiNa")[-1]


def test_the_token_is_fetched_once_and_reused(wecom):
    for text in ("帮助", "help", "我的商机"):
        wecom.say("LiNa", text)
    assert wecom.mock.tokens_issued == 1


def test_a_long_reply_is_split_into_messages_within_wecoms_byte_limit(wecom):
    for i in range(12):  # many leads: the list is long
        wecom.say("LiNa", f"新线索 华东电力第{i}分公司 来源 展会 联系人 王芳{i} 需求 {'智能制造执行系统升级改造' * 8}")
    wecom.say("LiNa", "帮助")
    help_parts = [m for m in wecom.mock.sent("LiNa")][12:]
    assert help_parts, "help was sent"
    assert all(len(m[m["msgtype"]]["content"].encode()) <= 2048 for m in wecom.mock.sent("LiNa"))
    assert sum(1 for c in wecom.mock.of("message/send") if c.errcode == 45002) == 0


def test_a_table_reply_is_flattened_into_lines(wecom):
    wecom.say("LiNa", NEW_LEAD)
    wecom.say("LiNa", "新线索 华南电网 来源 官网 联系人 李强")
    wecom.say("LiNa", "搜索线索 电")
    listing = wecom.texts("LiNa")[-1]
    assert "华东电力" in listing and "华南电网" in listing
    assert "-----" not in listing  # no monospace rule: WeCom's font would not line it up


def test_a_picture_is_answered_with_what_the_app_can_read(wecom):
    xml = wx._xml([("ToUserName", CORP, True), ("FromUserName", "LiNa", True), ("CreateTime", 1700000000, False),
                   ("MsgType", "image", True), ("PicUrl", "http://example.invalid/p.jpg", True),
                   ("MediaId", "m1", True), ("MsgId", 7100000000000000099, False), ("AgentID", AGENT, False)])
    wecom.post(xml)
    wecom.wecom_app.wait()
    assert wecom.texts("LiNa") == ["目前我只能读懂文字消息，请用文字告诉我要做什么。"]


def test_opening_the_app_greets_once_a_day(wecom):
    for t0 in (1700000000, 1700000100):
        wecom.post(wx.event_xml("LiNa", "enter_agent", corp_id=CORP, agent_id=AGENT, create_time=t0))
        wecom.wecom_app.wait()
    greetings = wecom.texts("LiNa")
    assert len(greetings) == 1 and "LTC Copilot" in greetings[0] and "帮助" in greetings[0]


def test_memory_is_per_user(wecom):
    wecom.say("LiNa", NEW_LEAD)
    wecom.say("WangFang", "帮助")
    with wecom.app.engine.connect() as conn:  # one conversation per WeCom user (and person)
        threads = {r[0].split("#")[0] for r in conn.execute(select(t.agent_checkpoints.c.thread_id))}
    assert threads == {"wecom:lina", "wecom:wangfang"}


# -- strangers and forgeries ------------------------------------------------------------------------

def test_an_unknown_userid_is_refused_politely_in_chinese_and_nothing_is_written(wecom):
    before = _count(wecom, t.audit_log)
    wecom.say("ZhaoLei", NEW_LEAD)
    replies = wecom.texts("ZhaoLei")
    assert len(replies) == 1
    assert replies[0].startswith("您好！您的企业微信账号（ZhaoLei）还没有在 LTC Copilot 中开通")
    assert "Your WeCom account (ZhaoLei)" in replies[0]  # English follows the Chinese
    assert _leads(wecom) == [] and _count(wecom, t.audit_log) == before


def test_a_deactivated_user_is_refused_like_a_stranger(wecom):
    with wecom.app.uow() as uow:
        uow.users.get(wecom.org["rep"]).active = False
        uow.commit()
    wecom.say("LiNa", NEW_LEAD)
    assert _leads(wecom) == [] and "还没有在 LTC Copilot 中开通" in wecom.texts("LiNa")[0]


def test_a_forged_signature_is_refused_and_nothing_happens(wecom):
    params, body = wecom.ref.callback(wx.text_xml("LiNa", NEW_LEAD, 1, corp_id=CORP, agent_id=AGENT))
    params["msg_signature"] = params["msg_signature"][::-1]
    response = wecom.http.post("/wecom/callback", params=params, content=body.encode())
    wecom.wecom_app.wait()
    assert response.status_code == 403
    assert _leads(wecom) == [] and wecom.mock.of("message/send") == [] and _count(wecom, t.wecom_callbacks) == 0


def test_a_message_sealed_for_another_corp_is_refused(wecom):
    other = wx.ReferenceCrypto(TOKEN, AES_KEY, "wwsomeoneelse")
    params, body = other.callback(wx.text_xml("LiNa", NEW_LEAD, 2, corp_id="wwsomeoneelse", agent_id=AGENT))
    response = wecom.http.post("/wecom/callback", params=params, content=body.encode())
    assert response.status_code == 403 and _leads(wecom) == []


def test_a_tampered_ciphertext_is_refused(wecom):
    params, body = wecom.ref.callback(wx.text_xml("LiNa", NEW_LEAD, 3, corp_id=CORP, agent_id=AGENT))
    start = body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    flipped = "A" if body[start + 10] != "A" else "B"
    response = wecom.http.post("/wecom/callback", params=params,
                               content=(body[:start + 10] + flipped + body[start + 11:]).encode())
    assert response.status_code == 403 and _leads(wecom) == []


def test_a_body_that_is_not_a_callback_is_a_bad_request(wecom):
    for body in ("not xml", "<xml><ToUserName>x</ToUserName></xml>",
                 '<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>'):
        response = wecom.http.post("/wecom/callback", params={"msg_signature": "x", "timestamp": "1", "nonce": "2"},
                                   content=body.encode())
        assert response.status_code == 400


def test_the_health_check_says_wecom_is_served(wecom):
    assert wecom.http.get("/healthz").json()["wecom"] is True


def test_the_callback_is_answered_at_once_while_a_slow_turn_runs_in_the_background(wecom, monkeypatch):
    import time as clock

    real = wecom.services.agent.reply

    def slow_reply(**kwargs):  # a slow LLM: far beyond WeCom's 5 s, were it in the request
        clock.sleep(2.0)
        return real(**kwargs)

    monkeypatch.setattr(wecom.services.agent, "reply", slow_reply)
    started = clock.monotonic()
    response = wecom.say("LiNa", NEW_LEAD, wait=False)
    answered = clock.monotonic() - started
    assert response.status_code == 200 and answered < 1.0
    assert wecom.texts("LiNa") == []  # the reply has not gone out yet …
    wecom.wecom_app.wait()
    assert "LEAD-" in wecom.texts("LiNa")[0]  # … and arrives when the turn is done
