"""The Slack app over a migrated SQLite file, the offline model and the mock Slack Web API."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk import WebClient

from bot.agent.runtime import Agent
from bot.context import AppContext
from bot.server import create_server
from bot.slack.app import SlackServices, create_app
from domain.settings import Settings
from tests import builders
from tests.bot.slack_mock import SlackMock

SECRET = "test-signing-secret"
# Slack ids: rep and manager are known by their stored slack_user_id; rep2 only by email.
SLACK_IDS = {"rep": "U0REP", "manager": "U0MGR"}


def sign(body: str, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    """The headers Slack sends: v0 HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


@dataclass
class SlackRig:
    app: AppContext
    org: builders.Org
    slack: SlackMock
    http: TestClient
    services: SlackServices
    client: WebClient

    def post_event(self, event: dict, *, event_id: str, retry: int | None = None, secret: str = SECRET):
        body = json.dumps({"token": "x", "team_id": "T0LTC", "api_app_id": "A0LTC", "type": "event_callback",
                           "event_id": event_id, "event_time": int(time.time()), "event": event})
        headers = {"Content-Type": "application/json", **sign(body, secret)}
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.http.post("/slack/events", content=body, headers=headers)

    def post_form(self, form: dict):
        """A form-encoded, signed request (slash commands, interactivity payloads)."""
        body = urlencode(form)
        return self.http.post("/slack/events", content=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)})

    def click(self, user: str, action_id: str, value: str, *, channel: str, message_ts: str, thread_ts: str):
        payload = {"type": "block_actions", "team": {"id": "T0LTC"}, "user": {"id": user},
                   "api_app_id": "A0LTC", "token": "x", "trigger_id": "1.2.3",
                   "channel": {"id": channel}, "container": {"type": "message", "message_ts": message_ts},
                   "message": {"type": "message", "ts": message_ts, "thread_ts": thread_ts, "text": "..."},
                   "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                                "action_ts": str(time.time())}]}
        body = urlencode({"payload": json.dumps(payload)})
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        return self.http.post("/slack/events", content=body, headers=headers)


@pytest.fixture
def rig(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'slack.db'}", chroma_path=str(tmp_path / "chroma"),
                        slack_bot_token="xoxb-test", slack_signing_secret=SECRET)
    app = AppContext.from_settings(settings)
    app.migrate()
    org = builders.build_org(app.uow)
    with app.uow() as uow:
        for key, slack_id in SLACK_IDS.items():
            uow.users.get(org[key]).slack_user_id = slack_id
        uow.commit()
    with SlackMock(users={"U0REP2": "rep2@example.com", "U0NOBODY": "stranger@elsewhere.example"}) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        services = SlackServices(app, Agent(app))
        bolt = create_app(settings, services, client=client)
        with TestClient(create_server(app, bolt)) as http:
            yield SlackRig(app, org, slack, http, services, client)
    app.close()


@pytest.fixture
def wecom(tmp_path):
    """The WeCom rig (tests/bot/wecom_rig.py): the real endpoint, the mock WeCom server API."""
    from bot.agent.runtime import Agent
    from bot.wecom.api import WeComClient
    from bot.wecom.app import WeComApp, WeComServices
    from tests.bot.wecom_mock import WeComMock
    from tests.bot.wecom_rig import CORP, SECRET, AGENT, WeComRig, build_rig

    with WeComMock(corp_id=CORP, secret=SECRET, agent_id=AGENT) as mock:
        settings, app, org = build_rig(tmp_path, mock)
        client = WeComClient(CORP, SECRET, AGENT, base_url=mock.base_url, retry_pause=0.01)
        services = WeComServices(app, Agent(app), client)
        wecom_app = WeComApp(settings, services)
        with TestClient(create_server(app, wecom_app=wecom_app)) as http:
            yield WeComRig(app, org, mock, http, services, wecom_app)
        client.close()
    app.close()
