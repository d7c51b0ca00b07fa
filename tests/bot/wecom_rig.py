"""The WeCom app over a migrated SQLite file, the offline model and the mock WeCom server API.

Callbacks are sealed by the test-side reference crypto (tests/bot/wecom_reference.py), never by the
product's, and posted to the real FastAPI endpoint.
"""
from __future__ import annotations

import base64
import itertools
import time
from dataclasses import dataclass, field

from fastapi.testclient import TestClient

from bot.context import AppContext
from bot.wecom.app import WeComApp, WeComServices
from tests import builders
from tests.bot import wecom_reference as wx
from tests.bot.wecom_mock import WeComMock

TOKEN = "wecom-callback-token"
AES_KEY = base64.b64encode(bytes(range(7, 39))).decode().rstrip("=")  # 43 characters, as WeCom shows
CORP, SECRET, AGENT = "wwltc0001", "test-corp-secret", 1000002
# WeCom userids of the builders' people (rep2 has none: a colleague not in LTC Copilot's WeCom).
WECOM_IDS = {"rep": "LiNa", "manager": "WangFang", "director": "ChenZhiYuan", "sr": "ZhouMin", "fr": "SunLei",
             "finance": "QianFang"}
_ids = itertools.count(7_000_000_000_000_000_001)


@dataclass
class WeComRig:
    app: AppContext
    org: builders.Org
    mock: WeComMock
    http: TestClient
    services: WeComServices
    wecom_app: WeComApp
    ref: wx.ReferenceCrypto = field(default_factory=lambda: wx.ReferenceCrypto(TOKEN, AES_KEY, CORP))

    def post(self, xml: str, **sign):
        params, body = self.ref.callback(xml, **sign)
        return self.http.post("/wecom/callback", params=params, content=body.encode(),
                              headers={"Content-Type": "text/xml"})

    def say(self, userid: str, text: str, *, msg_id: int | None = None, wait: bool = True):
        response = self.post(wx.text_xml(userid, text, msg_id or next(_ids), corp_id=CORP, agent_id=AGENT))
        if wait:
            self.wecom_app.wait()
        return response

    def click(self, userid: str, card: dict, key_prefix: str, *, wait: bool = True):
        """Press the button whose key starts with `key_prefix` on a card that was sent to `userid`."""
        key = next(b["key"] for b in card["button_list"] if b["key"].startswith(key_prefix))
        task = card["task_id"]
        response = self.post(wx.card_event_xml(userid, task_id=task, event_key=key,
                                               response_code=self.mock.click_code(task), corp_id=CORP,
                                               agent_id=AGENT))
        if wait:
            self.wecom_app.wait()
        return response

    def texts(self, userid: str) -> list[str]:
        """What `userid` was sent as text or markdown, in order."""
        return [m[m["msgtype"]]["content"] for m in self.mock.sent(userid) if m["msgtype"] in ("text", "markdown")]

    def cards(self, userid: str) -> list[dict]:
        return [m["template_card"] for m in self.mock.sent(userid, "template_card")]

    def wait_for_card(self, userid: str, n: int = 1, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while len(self.cards(userid)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no card #{n} for {userid}: {[c.path for c in self.mock.calls]}")
            time.sleep(0.02)
        return self.cards(userid)[n - 1]


def build_rig(tmp_path, mock: WeComMock, **overrides):
    from domain.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'wecom.db'}", chroma_path=str(tmp_path / "chroma"),
                        wecom_corp_id=CORP, wecom_agent_id=AGENT, wecom_secret=SECRET, wecom_token=TOKEN,
                        wecom_encoding_aes_key=AES_KEY, wecom_api_base_url=mock.base_url, **overrides)
    app = AppContext.from_settings(settings)
    app.migrate()
    org = builders.build_org(app.uow)
    with app.uow() as uow:
        for key, userid in WECOM_IDS.items():
            user = uow.users.get(org[key])
            user.wecom_userid, user.locale = userid, "zh"
        uow.commit()
    return settings, app, org
