"""The mock WeCom API's own rules, which the WeCom bot tests rely on: tokens expire and are revoked
with WeCom's error codes, text over 2048 bytes is refused, template cards are validated, task ids
are unique and response codes are spent by one update."""
from __future__ import annotations

import httpx
import pytest

from tests.bot.wecom_mock import WeComMock

USER = "zhangsan"


@pytest.fixture
def wecom():
    with WeComMock() as mock:
        yield mock


@pytest.fixture
def api(wecom):
    with httpx.Client(base_url=wecom.base_url, timeout=10) as client:
        yield client


def token(wecom: WeComMock, api: httpx.Client) -> str:
    answer = api.get("gettoken", params={"corpid": wecom.corp_id, "corpsecret": wecom.secret}).json()
    assert answer["errcode"] == 0, answer
    return answer["access_token"]


def post(api: httpx.Client, path: str, tok: str | None, body: dict) -> dict:
    params = {"access_token": tok} if tok else {}
    response = api.post(path, params=params, json=body)
    assert response.status_code == 200
    return response.json()


def text(wecom: WeComMock, content: str, touser: str = USER) -> dict:
    return {"touser": touser, "msgtype": "text", "agentid": wecom.agent_id, "text": {"content": content}}


def card(wecom: WeComMock, task_id: str = "apr-3-a1", **overrides) -> dict:
    template = {"card_type": "button_interaction", "task_id": task_id,
                "main_title": {"title": "折扣审批 APR-00003", "desc": "华东电力 ¥1,200,000"},
                "horizontal_content_list": [{"keyname": "折扣", "value": "15%"}],
                "button_list": [{"text": "批准", "style": 1, "key": "approve:3"},
                                {"text": "驳回", "style": 2, "key": "reject:3"}]}
    template.update(overrides)
    return {"touser": USER, "msgtype": "template_card", "agentid": wecom.agent_id, "template_card": template}


# -- tokens ---------------------------------------------------------------------------------------

def test_gettoken_checks_the_corp_id_and_the_secret(wecom, api):
    assert api.get("gettoken", params={"corpid": "wwother", "corpsecret": wecom.secret}).json()["errcode"] == 40013
    assert api.get("gettoken", params={"corpid": wecom.corp_id, "corpsecret": "nope"}).json()["errcode"] == 40001
    answer = api.get("gettoken", params={"corpid": wecom.corp_id, "corpsecret": wecom.secret}).json()
    assert answer == {"errcode": 0, "errmsg": "ok", "access_token": "tok-1", "expires_in": 7200}
    assert wecom.tokens_issued == 1


def test_an_expired_token_answers_42001_until_a_new_one_is_fetched(wecom, api):
    old = token(wecom, api)
    wecom.expire_tokens()
    assert post(api, "message/send", old, text(wecom, "hi"))["errcode"] == 42001
    fresh = token(wecom, api)
    assert post(api, "message/send", fresh, text(wecom, "hi"))["errcode"] == 0
    assert post(api, "message/send", old, text(wecom, "hi"))["errcode"] == 42001
    assert wecom.tokens_issued == 2
    assert [c.errcode for c in wecom.of("message/send")] == [42001, 0, 42001]


def test_missing_unknown_and_revoked_tokens_are_refused(wecom, api):
    assert post(api, "message/send", None, text(wecom, "hi"))["errcode"] == 41001
    assert post(api, "message/send", "tok-999", text(wecom, "hi"))["errcode"] == 40014
    tok = token(wecom, api)
    wecom.revoke_tokens()
    assert post(api, "message/send", tok, text(wecom, "hi"))["errcode"] == 40014
    assert wecom.sent() == []


# -- message/send ---------------------------------------------------------------------------------

def test_text_over_2048_utf8_bytes_is_refused_with_45002(wecom, api):
    tok = token(wecom, api)
    assert post(api, "message/send", tok, text(wecom, "回" * 683))["errcode"] == 45002  # 2049 bytes
    assert post(api, "message/send", tok, text(wecom, "回" * 682 + "ab"))["errcode"] == 0  # 2048 bytes
    markdown = {"touser": USER, "msgtype": "markdown", "agentid": wecom.agent_id, "markdown": {"content": "x" * 2049}}
    assert post(api, "message/send", tok, markdown)["errcode"] == 45002
    assert [len(b["text"]["content"]) for b in wecom.sent(USER)] == [684]


def test_empty_content_wrong_agent_and_missing_user_are_refused(wecom, api):
    tok = token(wecom, api)
    assert post(api, "message/send", tok, text(wecom, ""))["errcode"] == 44004
    assert post(api, "message/send", tok, {**text(wecom, "hi"), "agentid": 1})["errcode"] == 40056
    assert post(api, "message/send", tok, text(wecom, "hi", touser=""))["errcode"] == 40058
    assert post(api, "message/send", tok, {**text(wecom, "hi"), "msgtype": "voice"})["errcode"] == 40008


def test_sent_filters_successful_sends_by_user_and_type(wecom, api):
    tok = token(wecom, api)
    post(api, "message/send", tok, text(wecom, "to both", touser="lisi|zhangsan"))
    post(api, "message/send", tok, text(wecom, "to lisi", touser="lisi"))
    post(api, "message/send", tok, card(wecom))
    post(api, "message/send", tok, text(wecom, ""))  # refused: not in sent()
    assert [b["text"]["content"] for b in wecom.sent("zhangsan", "text")] == ["to both"]
    assert len(wecom.sent("lisi")) == 2 and len(wecom.sent(msgtype="template_card")) == 1
    assert len(wecom.wait_for("message/send", 4, timeout=1)) == 4


def test_fail_next_injects_an_error_once(wecom, api):
    tok = token(wecom, api)
    wecom.fail_next("message/send", 45009, "api freq out of limit")
    assert post(api, "message/send", tok, text(wecom, "hi")) == {"errcode": 45009, "errmsg": "api freq out of limit"}
    assert post(api, "message/send", tok, text(wecom, "hi"))["errcode"] == 0


def test_an_unknown_api_is_an_error(wecom, api):
    tok = token(wecom, api)
    answer = post(api, "message/recall", tok, {"msgid": "msg-1"})
    assert answer["errcode"] != 0 and "unknown api" in answer["errmsg"]


# -- template cards -------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {"card_type": "vote_interaction"},
    {"task_id": None},
    {"task_id": "has space"},
    {"task_id": "x" * 129},
    {"button_list": []},
    {"button_list": [{"text": str(i), "key": f"k{i}"} for i in range(7)]},
    {"button_list": [{"text": "a", "key": "same"}, {"text": "b", "key": "same"}]},
    {"button_list": [{"text": "a", "key": "k" * 1025}]},
    {"button_list": [{"key": "k"}]},
    {"main_title": {}},
    {"horizontal_content_list": [{"keyname": str(i), "value": "v"} for i in range(7)]},
    {"horizontal_content_list": [{"value": "no keyname"}]},
], ids=lambda o: next(iter(o)))
def test_an_invalid_card_is_refused_with_40058(wecom, api, overrides):
    answer = post(api, "message/send", token(wecom, api), card(wecom, **overrides))
    assert answer["errcode"] == 40058 and answer["errmsg"].startswith("invalid parameter"), answer
    assert wecom.sent() == []


def test_a_valid_button_card_gets_a_response_code_and_task_ids_are_unique(wecom, api):
    tok = token(wecom, api)
    sub_title_only = card(wecom, task_id="x" * 128, main_title=None, sub_title_text="请审批")
    answer = post(api, "message/send", tok, sub_title_only)
    assert answer["errcode"] == 0 and answer["response_code"].startswith("rc-") and answer["msgid"]
    assert post(api, "message/send", tok, card(wecom, "apr-3_a@b"))["errcode"] == 0
    assert post(api, "message/send", tok, card(wecom, "apr-3_a@b")) == {"errcode": 40058, "errmsg": "task_id exists"}


def test_a_response_code_updates_its_card_once(wecom, api):
    tok = token(wecom, api)
    code = post(api, "message/send", tok, card(wecom))["response_code"]
    update = {"userids": [USER], "agentid": wecom.agent_id, "response_code": code,
              "button": {"replace_name": "已批准"}}
    assert post(api, "message/update_template_card", tok, update) == {"errcode": 0, "errmsg": "ok", "invaliduser": []}
    assert post(api, "message/update_template_card", tok, update)["errmsg"] == "invalid response_code"
    assert post(api, "message/update_template_card", tok, {**update, "response_code": "rc-made-up"})["errcode"] == 40058
    assert [u["button"]["replace_name"] for u in wecom.updates(USER)] == ["已批准"]
    assert wecom.updates("lisi") == []


def test_a_click_code_replaces_the_card_once_and_keeps_its_task_id(wecom, api):
    tok = token(wecom, api)
    post(api, "message/send", tok, card(wecom, "apr-3-a1"))
    with pytest.raises(KeyError):
        wecom.click_code("never-sent")
    code = wecom.click_code("apr-3-a1")
    replacement = card(wecom, "apr-3-a1", card_type="text_notice", button_list=None)["template_card"]
    update = {"userids": [USER], "agentid": wecom.agent_id, "response_code": code}
    foreign = {**update, "template_card": {**replacement, "task_id": "apr-9-zz"}}
    assert post(api, "message/update_template_card", tok, foreign)["errcode"] == 40058
    assert post(api, "message/update_template_card", tok, {**update, "template_card": replacement})["errcode"] == 0
    assert post(api, "message/update_template_card", tok, {**update, "template_card": replacement})["errcode"] == 40058
    assert wecom.updates(USER)[0]["template_card"]["card_type"] == "text_notice"
    assert post(api, "message/update_template_card", tok, {**update, "response_code": wecom.click_code("apr-3-a1"),
                                                           "button": {}})["errcode"] == 40058
