"""A mock WeCom (企业微信) server API on a free loopback port, recording every call.

    with WeComMock() as wecom:
        http.get(wecom.base_url + "gettoken", params={"corpid": wecom.corp_id, "corpsecret": wecom.secret})
        ...
        wecom.wait_for("message/send")
        wecom.sent(touser="zhangsan", msgtype="template_card")[0]["template_card"]["task_id"]

Like WeCom it answers HTTP 200 with JSON whose `errcode` 0 means ok, and it enforces the rules our
code must live with, stricter where WeCom would quietly degrade: text and markdown over 2048 bytes
are refused (45002) rather than truncated, so message splitting is tested; template cards are
validated (40058 "invalid parameter: ..."), task ids are unique, response codes are single use.

Tokens: `expire_tokens()` makes every token issued so far answer 42001, `revoke_tokens()` 40014,
so refresh-and-retry is tested. `fail_next(path, errcode)` makes the next call of `path` fail.
A click is simulated with `click_code(task_id)`: a fresh response_code, as a click callback carries.

Pictures: `media/upload?type=image` takes multipart/form-data with the file in the field `media`
(PNG or JPG by its bytes, 5 bytes to 2 MB) and answers a media_id; `media` maps it to the upload
(filename, content_type, data). message/send with msgtype image needs a media_id it issued.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.loopback import LoopbackPeer

CONTENT_BYTES = 2048
TASK_ID = re.compile(r"[A-Za-z0-9_\-@]{1,128}")
CARD_TYPES = {"button_interaction", "text_notice"}
IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPG


@dataclass(frozen=True)
class Call:
    path: str  # "gettoken", "message/send", "message/update_template_card"
    params: dict[str, Any]
    body: dict[str, Any] | None
    errcode: int


class Refused(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


def _invalid(what: str) -> Refused:
    return Refused(40058, f"invalid parameter: {what}")


def _size(text: Any) -> int:
    return len(str(text).encode("utf-8"))


class WeComMock(LoopbackPeer):
    NAME = "wecom-mock"

    def __init__(self, corp_id: str = "wwltc0001", secret: str = "test-corp-secret", agent_id: int = 1000002,
                 token_ttl: int = 7200) -> None:
        self.corp_id, self.secret, self.agent_id, self.token_ttl = corp_id, secret, agent_id, token_ttl
        self.calls: list[Call] = []
        self.tokens_issued = 0
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[int, str]] = {}  # token → (errcode, errmsg) it answers; 0 = valid
        self._failing: dict[str, list[tuple[int, str]]] = {}
        self._cards: dict[str, dict[str, Any]] = {}  # task_id → the send body of that card
        self._codes: dict[str, tuple[str, bool]] = {}  # response_code → (task_id, spent)
        self.media: dict[str, dict[str, Any]] = {}  # media_id → filename, content_type, data
        self._n = 0
        self.app = FastAPI()
        self.app.add_api_route("/cgi-bin/{path:path}", self._handle, methods=["GET", "POST"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    # -- test controls --------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = (42001, "access_token expired")

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = (40014, "invalid access_token")

    def fail_next(self, path: str, errcode: int, errmsg: str = "injected") -> None:
        with self._lock:
            self._failing.setdefault(path, []).append((errcode, errmsg))

    def click_code(self, task_id: str) -> str:
        """A fresh response_code for the card sent with `task_id`: what a click's callback carries."""
        with self._lock:
            if task_id not in self._cards:
                raise KeyError(f"no card was sent with task_id {task_id!r}: {sorted(self._cards)}")
            return self._issue_code(task_id)

    # -- what was called ------------------------------------------------------------------------

    def of(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def wait_for(self, path: str, n: int = 1, timeout: float = 20.0) -> list[Call]:
        """The calls of `path` once there are at least `n` (the bot answers from worker threads)."""
        deadline = time.monotonic() + timeout
        while len(self.of(path)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} called {len(self.of(path))} times, wanted {n}: "
                                     f"{[c.path for c in self.calls]}")
            time.sleep(0.02)
        return self.of(path)

    def sent(self, touser: str | None = None, msgtype: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the successful message/send calls, to `touser` (one of its "|" ids) and of `msgtype`."""
        return [c.body for c in self.of("message/send") if c.errcode == 0 and c.body is not None
                and (touser is None or touser in str(c.body.get("touser", "")).split("|"))
                and (msgtype is None or c.body.get("msgtype") == msgtype)]

    def updates(self, userid: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the successful message/update_template_card calls that reached `userid`."""
        return [c.body for c in self.of("message/update_template_card") if c.errcode == 0 and c.body is not None
                and (userid is None or userid in (c.body.get("userids") or []))]

    # -- the API --------------------------------------------------------------------------------

    async def _handle(self, path: str, request: Request) -> JSONResponse:
        raw = await request.body()
        params = dict(request.query_params)
        body: dict[str, Any] | None = None
        malformed = False
        if raw and path == "media/upload":  # multipart/form-data, not JSON
            body = _multipart(request.headers.get("content-type", ""), raw)
            malformed = body is None
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                malformed = True
            if not isinstance(body, dict):
                body, malformed = None, True
        with self._lock:
            try:
                answer = self._answer(path, request.method, params, body, malformed)
            except Refused as e:
                answer = {"errcode": e.errcode, "errmsg": e.errmsg}
            answer = {"errcode": 0, "errmsg": "ok", **answer}
            self.calls.append(Call(path, params, body, answer["errcode"]))
        return JSONResponse(answer)

    def _answer(self, path: str, method: str, params: dict[str, Any], body: dict[str, Any] | None,
                malformed: bool) -> dict[str, Any]:
        if self._failing.get(path):
            errcode, errmsg = self._failing[path].pop(0)
            raise Refused(errcode, errmsg)
        if path == "gettoken":
            return self._gettoken(params)
        if path == "media/upload":
            self._check_token(params.get("access_token"))
            return self._upload(method, params, body, malformed)
        if path not in ("message/send", "message/update_template_card"):
            raise Refused(40058, f"unknown api: {path}")
        self._check_token(params.get("access_token"))
        if method != "POST":
            raise Refused(43002, "require POST method")
        if malformed:
            raise Refused(47001, "data format error")
        if body is None:
            raise Refused(44002, "empty post data")
        if str(body.get("agentid", "")) != str(self.agent_id):
            raise Refused(40056, "invalid agentid")
        if path == "message/send":
            return self._send(body)
        return self._update(body)

    def _gettoken(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("corpid") != self.corp_id:
            raise Refused(40013, "invalid corpid")
        if params.get("corpsecret") != self.secret:
            raise Refused(40001, "invalid credential")
        self.tokens_issued += 1
        token = f"tok-{self.tokens_issued}"
        self._tokens[token] = (0, "ok")
        return {"access_token": token, "expires_in": self.token_ttl}

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise Refused(41001, "access_token missing")
        errcode, errmsg = self._tokens.get(token, (40014, "invalid access_token"))
        if errcode:
            raise Refused(errcode, errmsg)

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        if not str(body.get("touser") or "").strip("|"):
            raise _invalid("touser")
        msgtype = body.get("msgtype")
        answer: dict[str, Any] = {"invaliduser": ""}
        if msgtype in ("text", "markdown"):
            content = (body.get(msgtype) or {}).get("content")
            if not content:
                raise Refused(44004, "empty content")
            if _size(content) > CONTENT_BYTES:
                raise Refused(45002, "content size out of limit")
        elif msgtype == "template_card":
            card = body.get("template_card") or {}
            self._check_card(card)
            task_id = card.get("task_id")
            if task_id and task_id in self._cards:
                raise Refused(40058, "task_id exists")
            if task_id:
                self._cards[task_id] = body
            if card["card_type"] == "button_interaction":
                answer["response_code"] = self._issue_code(task_id)
        elif msgtype == "image":
            if (body.get("image") or {}).get("media_id") not in self.media:
                raise Refused(40007, "invalid media_id")
        else:
            raise Refused(40008, "invalid message type")
        self._n += 1
        return {**answer, "msgid": f"msg-{self._n}"}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        userids = body.get("userids")
        if not (isinstance(userids, list) and userids) and body.get("atall") != 1:
            raise _invalid("userids")
        code = body.get("response_code")
        if code not in self._codes or self._codes[code][1]:
            raise Refused(40058, "invalid response_code")
        task_id = self._codes[code][0]
        if "button" in body:
            if not (body["button"] or {}).get("replace_name"):
                raise _invalid("button.replace_name")
        elif "template_card" in body:
            card = body["template_card"] or {}
            self._check_card(card)
            if card.get("task_id") and card["task_id"] != task_id:
                raise _invalid("template_card.task_id differs from the original card's")
        else:
            raise _invalid("button or template_card")
        self._codes[code] = (task_id, True)
        return {"invaliduser": []}

    def _upload(self, method: str, params: dict[str, Any], body: dict[str, Any] | None,
                malformed: bool) -> dict[str, Any]:
        if method != "POST":
            raise Refused(43002, "require POST method")
        if params.get("type") != "image":  # the only kind we send
            raise Refused(40004, "invalid media type")
        media = (body or {}).get("media")
        if malformed or not media or not media["filename"]:
            raise Refused(44001, "empty media data")
        data = media["data"]
        if not 5 < len(data) <= IMAGE_BYTES:
            raise Refused(40006, "invalid file size")
        if not data.startswith(IMAGE_MAGIC):
            raise Refused(40005, "invalid file type")
        self._n += 1
        media_id = f"media-{self._n}"
        self.media[media_id] = media
        return {"type": "image", "media_id": media_id, "created_at": str(int(time.time()))}

    def _issue_code(self, task_id: str) -> str:
        self._n += 1
        code = f"rc-{self._n}"
        self._codes[code] = (task_id, False)
        return code

    @staticmethod
    def _check_card(card: dict[str, Any]) -> None:
        card_type = card.get("card_type")
        if card_type not in CARD_TYPES:
            raise _invalid(f"template_card.card_type {card_type!r}")
        task_id = card.get("task_id")
        if task_id is not None or card_type == "button_interaction":
            if not isinstance(task_id, str) or _size(task_id) > 128 or not TASK_ID.fullmatch(task_id):
                raise _invalid("template_card.task_id")
        if not ((card.get("main_title") or {}).get("title") or card.get("sub_title_text")):
            raise _invalid("template_card.main_title.title or sub_title_text")
        rows = card.get("horizontal_content_list") or []
        if len(rows) > 6 or any(not isinstance(r, dict) or not r.get("keyname") for r in rows):
            raise _invalid("template_card.horizontal_content_list")
        if card_type == "button_interaction":
            buttons = card.get("button_list") or []
            if not 1 <= len(buttons) <= 6:
                raise _invalid("template_card.button_list needs 1 to 6 buttons")
            keys = [b.get("key") if isinstance(b, dict) else None for b in buttons]
            if any(not isinstance(b, dict) or not b.get("text") for b in buttons):
                raise _invalid("template_card.button_list[].text")
            if any(not k or _size(k) > 1024 for k in keys):
                raise _invalid("template_card.button_list[].key")
            if len(set(keys)) != len(keys):
                raise _invalid("template_card.button_list keys repeat")


def _multipart(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """multipart/form-data fields → {name: {filename, content_type, data}}; None when it is not that."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        return None
    return {part.get_param("name", header="content-disposition"): {
        "filename": part.get_filename(), "content_type": part.get_content_type(),
        "data": part.get_payload(decode=True) or b""} for part in message.iter_parts()}
