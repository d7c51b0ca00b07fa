"""The WeCom server API (企业微信 服务端 API): access_token, message/send, update_template_card, media/upload.

The access_token is fetched with the corp id and the app's secret, cached until shortly before it
expires (WeCom gives 7200 s) and shared by every thread. A call answered 40014 (invalid token),
42001 (expired) or 41001 (missing) fetches a new token and is sent again once: tokens are also
invalidated when someone fetches one elsewhere or the secret is reset. Busy answers (-1, 45009,
45033) and network failures are retried once after a short pause and then raised as transient, so
the outbox retries the message later; anything else is permanent (fix the app or the data).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

log = logging.getLogger("ltc.wecom")

TOKEN_ERRORS = frozenset({40014, 42001, 41001})
BUSY = frozenset({-1, 45009, 45033, 45011})
REFRESH_MARGIN = 300  # seconds before expiry a cached token is renewed
TEXT_LIMIT = 2048  # bytes of UTF-8 in a text or markdown message


class WeComApiError(Exception):
    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom {path}: {errcode} {errmsg}")
        self.path, self.errcode, self.errmsg = path, errcode, errmsg

    @property
    def transient(self) -> bool:
        """A retry later may succeed (busy, rate limited, network); else the app or data must change."""
        return self.errcode in BUSY or self.errcode in TOKEN_ERRORS


class WeComClient:
    def __init__(self, corp_id: str, secret: str, agent_id: int, *,
                 base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/", timeout: float = 10.0,
                 retry_pause: float = 0.5) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.http = httpx.Client(timeout=timeout)
        self.retry_pause = retry_pause
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.token_fetches = 0

    @classmethod
    def from_settings(cls, settings) -> WeComClient:
        return cls(settings.wecom_corp_id, settings.wecom_secret, settings.wecom_agent_id,
                   base_url=settings.wecom_api_base_url)

    # -- access token ---------------------------------------------------------------------------

    def access_token(self, *, stale: str | None = None) -> str:
        """The cached token; a new one when it is near expiry or is the `stale` one a call refused."""
        with self._lock:
            if self._token and self._token != stale and time.monotonic() < self._expires_at:
                return self._token
            data = self._get("gettoken", {"corpid": self.corp_id, "corpsecret": self.secret})
            self.token_fetches += 1
            self._token = data["access_token"]
            self._expires_at = time.monotonic() + max(int(data.get("expires_in", 7200)) - REFRESH_MARGIN, 60)
            return self._token

    # -- calls ----------------------------------------------------------------------------------

    def call(self, path: str, body: dict[str, Any]) -> dict:
        """POST `body` to `path` with the token; a refused token is renewed and the call sent again once."""
        return self._with_token(path, lambda token: self._post(path, token, body))

    def _with_token(self, path: str, send) -> dict:
        """`send(token)`, again once with a new token when it was refused, and once more after a busy answer."""
        token = self.access_token()
        renewed = paused = False
        while True:
            try:
                return send(token)
            except WeComApiError as e:
                if e.errcode in TOKEN_ERRORS and not renewed:
                    log.info("WeCom %s refused the access token (%s): fetching a new one", path, e.errcode)
                    renewed, token = True, self.access_token(stale=token)
                    continue
                if e.errcode in BUSY and not paused:
                    paused = True
                    time.sleep(self.retry_pause)
                    continue
                raise

    def send(self, touser: str, msgtype: str, content: dict[str, Any]) -> dict:
        return self.call("message/send", {"touser": touser, "msgtype": msgtype, "agentid": self.agent_id,
                                          msgtype: content, "enable_duplicate_check": 0})

    def send_text(self, touser: str, text: str) -> dict:
        return self.send(touser, "text", {"content": text})

    def send_markdown(self, touser: str, text: str) -> dict:
        return self.send(touser, "markdown", {"content": text})

    def send_card(self, touser: str, card: dict[str, Any]) -> dict:
        """A template card; a button_interaction card's answer carries the response_code to update it once."""
        return self.send(touser, "template_card", card)

    def upload_image(self, png: bytes, filename: str) -> str:
        """A temporary image (kept 3 days by WeCom) for `send_image`; returns its media_id."""
        media = (filename, png, "image/png" if filename.lower().endswith(".png") else "image/jpeg")
        data = self._with_token("media/upload", lambda token: self._upload("media/upload", token, "image", media))
        return data["media_id"]

    def send_image(self, touser: str, media_id: str) -> dict:
        return self.send(touser, "image", {"media_id": media_id})

    def update_card(self, userids: list[str], response_code: str, card: dict[str, Any]) -> dict:
        return self.call("message/update_template_card", {"userids": userids, "agentid": self.agent_id,
                                                          "response_code": response_code, "template_card": card})

    def close(self) -> None:
        self.http.close()

    # -- transport ------------------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, str]) -> dict:
        try:
            response = self.http.get(self.base_url + path, params=params)
        except httpx.HTTPError as e:
            raise WeComApiError(path, -1, f"network: {e!r}") from None
        return self._checked(path, response)

    def _post(self, path: str, token: str, body: dict[str, Any]) -> dict:
        try:
            response = self.http.post(self.base_url + path, params={"access_token": token}, json=body)
        except httpx.HTTPError as e:
            raise WeComApiError(path, -1, f"network: {e!r}") from None
        return self._checked(path, response)

    def _upload(self, path: str, token: str, kind: str, media: tuple[str, bytes, str]) -> dict:
        """multipart/form-data with the file in the field `media`, as WeCom's media API wants."""
        try:
            response = self.http.post(self.base_url + path, params={"access_token": token, "type": kind},
                                      files={"media": media})
        except httpx.HTTPError as e:
            raise WeComApiError(path, -1, f"network: {e!r}") from None
        return self._checked(path, response)

    @staticmethod
    def _checked(path: str, response: httpx.Response) -> dict:
        if response.status_code >= 500:
            raise WeComApiError(path, -1, f"http {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise WeComApiError(path, -1, f"not JSON (http {response.status_code})") from None
        if data.get("errcode", 0) != 0:
            raise WeComApiError(path, int(data["errcode"]), str(data.get("errmsg", "")))
        return data
