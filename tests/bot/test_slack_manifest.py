"""The app manifest (bot/slack/manifest.yaml) against what the Bolt app registers and the code calls.

An app created from the manifest must receive every event, command, shortcut and click the code
listens for, and hold every scope the Web API methods it calls need; a missing scope only shows
up in production as `missing_scope` errors.
"""
from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest
import yaml
from slack_bolt import BoltRequest, BoltResponse
from slack_sdk import WebClient

import bot
from bot.agent.runtime import Agent
from bot.context import AppContext
from bot.server import create_server
from bot.slack.app import SlackServices, create_app
from domain.settings import Settings
from tests.bot.slack_mock import SlackMock

BOT_DIR = Path(bot.__file__).parent
MANIFEST = BOT_DIR / "slack" / "manifest.yaml"
REQUEST_URL = "https://YOUR-HOST/slack/events"

# Bot-token scopes each Web API method needs (api.slack.com/methods), by WebClient method name.
# A method the code starts calling must be added here; the test says so.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth_test": set(),
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_scheduleMessage": {"chat:write"},
    "chat_getPermalink": set(),
    "reactions_add": {"reactions:write"},
    "reactions_remove": {"reactions:write"},
    "users_info": {"users:read", "users:read.email"},  # the profile's email needs users:read.email
    "users_lookupByEmail": {"users:read", "users:read.email"},
    "users_list": {"users:read"},
    # Deal channels are private (groups:write) and an existing public one may be attached (channels:manage).
    "conversations_create": {"channels:manage", "groups:write"},
    "conversations_invite": {"channels:manage", "groups:write"},
    "conversations_setTopic": {"channels:manage"},
    "conversations_setPurpose": {"channels:manage"},
    "conversations_rename": {"channels:manage"},
    "conversations_archive": {"channels:manage"},
    "conversations_join": {"channels:join"},
    "conversations_info": {"channels:read"},
    "conversations_list": {"channels:read"},
    "conversations_members": {"channels:read"},
    "conversations_history": {"channels:history"},
    "conversations_replies": {"channels:history"},
    "conversations_open": {"im:write"},
    "views_open": set(),
    "views_publish": set(),
    "views_update": set(),
    "views_push": set(),
    "files_upload_v2": {"files:write"},
    "files_getUploadURLExternal": {"files:write"},
    "files_completeUploadExternal": {"files:write"},
}
# Scopes the subscriptions themselves need (api.slack.com/events).
EVENT_SCOPES = {"app_mention": {"app_mentions:read"}, "message.im": {"im:history"}, "app_home_opened": set(),
                "message.channels": {"channels:history"}, "message.groups": {"groups:history"}}
API_METHODS = {name for name, value in vars(WebClient).items() if callable(value) and not name.startswith("_")}


def load_manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def web_api_calls(root: Path = BOT_DIR) -> dict[str, set[str]]:
    """WebClient methods named anywhere under bot/ (calls and references) → the files naming them."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        names = {m for m in re.findall(r"\.([a-z]+_[A-Za-z0-9_]+)\b", source) if m in API_METHODS}
        names |= {m.replace(".", "_", 1) for m in re.findall(r"api_call\(\s*[\"']([\w.]+)[\"']", source)}
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(root.parent)))
    return found


def missing_scopes(manifest: dict, methods) -> dict[str, set[str]]:
    """Scope → what needs it, for every scope the manifest lacks."""
    have = set(manifest["oauth_config"]["scopes"]["bot"])
    settings, features = manifest["settings"], manifest.get("features", {})
    needs: dict[str, set[str]] = {}
    for method in methods:
        for scope in METHOD_SCOPES[method]:
            needs.setdefault(scope, set()).add(method)
    for event in settings["event_subscriptions"]["bot_events"]:
        for scope in EVENT_SCOPES.get(event, set()):
            needs.setdefault(scope, set()).add(f"event {event}")
    if features.get("slash_commands") or features.get("shortcuts"):
        needs.setdefault("commands", set()).add("slash commands / shortcuts")
    return {scope: why for scope, why in needs.items() if scope not in have}


def registered(bolt) -> dict[str, set]:
    """What the Bolt app listens for, read from its built-in listener matchers: kind → names.

    Kinds: event, command, shortcut, action, view_submission (Bolt's matcher builders).
    """
    out: dict[str, set] = {}
    for listener in bolt._listeners:
        for matcher in listener.matchers:
            func = getattr(matcher, "func", None)
            if func is None or ".<locals>." not in func.__qualname__:
                continue
            kind = func.__qualname__.split(".<locals>.")[0]
            for value in inspect.getclosurevars(func).nonlocals.values():
                if isinstance(value, (str, re.Pattern)):
                    out.setdefault(kind, set()).add(value.pattern if isinstance(value, re.Pattern) else value)
    return out


def handled(bolt, body: str, content_type: str) -> bool:
    """Would some listener of the app take this Slack request?"""
    request = BoltRequest(body=body, headers={"content-type": [content_type]})
    return any(listener.matches(req=request, resp=BoltResponse(status=200)) for listener in bolt._listeners)


@pytest.fixture(scope="module")
def bolt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("manifest")
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp / 'm.db'}", chroma_path=str(tmp / "chroma"),
                        slack_bot_token="xoxb-test", slack_signing_secret="s")
    app = AppContext.from_settings(settings)
    with SlackMock() as slack:  # Bolt calls auth.test while it is built
        yield create_app(settings, SlackServices(app, Agent(app)),
                         client=WebClient(token="xoxb-test", base_url=slack.base_url))
    app.close()


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


# -- shape ----------------------------------------------------------------------------------------

def test_the_manifest_is_a_slack_app_manifest_for_the_http_endpoint(manifest):
    assert manifest["_metadata"]["major_version"] in (1, 2)
    assert manifest["display_information"]["name"] and len(manifest["display_information"]["description"]) <= 140
    assert 175 <= len(manifest["display_information"]["long_description"]) <= 4000
    features, settings = manifest["features"], manifest["settings"]
    assert features["bot_user"]["display_name"]
    assert features["app_home"]["home_tab_enabled"] is True and features["app_home"]["messages_tab_enabled"] is True
    urls = [settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"],
            *(c["url"] for c in features["slash_commands"])]
    assert set(urls) == {REQUEST_URL}
    assert settings["interactivity"]["is_enabled"] is True
    assert (settings["socket_mode_enabled"], settings["org_deploy_enabled"], settings["token_rotation_enabled"]) \
        == (False, False, False)


def test_the_request_url_is_the_route_the_server_serves(tmp_path):
    app = AppContext.from_settings(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 's.db'}",
                                            slack_bot_token=None, slack_signing_secret=None))
    paths = {route.path for route in create_server(app).routes}
    assert urlparse(REQUEST_URL).path in paths
    app.close()


def test_the_slash_command_and_shortcut_speak_english_with_a_usage_hint(manifest):
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/ltc" and command["usage_hint"].isascii() and "help" in command["usage_hint"]
    assert {(s["type"], s["callback_id"], s["name"]) for s in manifest["features"]["shortcuts"]} \
        == {("global", "ltc_new_lead", "New lead")}


# -- what the app listens for ---------------------------------------------------------------------

def test_every_event_command_and_shortcut_the_app_registers_is_in_the_manifest(bolt, manifest):
    listens = registered(bolt)
    assert listens.get("event") and listens.get("command"), f"no listeners read from Bolt: {listens}"
    subscribed = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    # The message listener takes direct messages only; channel messages come as app_mention.
    wanted = {"message.im" if e == "message" else e for e in listens["event"]}
    assert wanted <= subscribed, f"subscribe to {wanted - subscribed}"
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert listens["command"] <= commands
    shortcuts = {s["callback_id"] for s in manifest["features"]["shortcuts"]}
    assert listens.get("shortcut", set()) <= shortcuts
    assert listens.get("action") and listens.get("view_submission")  # buttons and modals need interactivity
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_everything_the_manifest_subscribes_to_has_a_listener(bolt, manifest):
    events = {"app_mention": {"type": "app_mention", "user": "U1", "text": "hi", "ts": "1.1", "channel": "C1"},
              "message.im": {"type": "message", "channel_type": "im", "user": "U1", "text": "hi", "ts": "1.1",
                             "channel": "D1"},
              "app_home_opened": {"type": "app_home_opened", "user": "U1", "tab": "home", "channel": "D1"}}
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(subscribed) == set(events)
    for name in subscribed:
        body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": events[name]})
        assert handled(bolt, body, "application/json"), name
    for command in manifest["features"]["slash_commands"]:
        body = urlencode({"command": command["command"], "text": "help", "user_id": "U1", "team_id": "T1",
                          "channel_id": "C1", "trigger_id": "1.2.3"})
        assert handled(bolt, body, "application/x-www-form-urlencoded"), command["command"]
    for shortcut in manifest["features"]["shortcuts"]:
        payload = {"type": "shortcut", "callback_id": shortcut["callback_id"], "user": {"id": "U1"},
                   "team": {"id": "T1"}, "trigger_id": "1.2.3"}
        assert handled(bolt, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def test_the_issue_s_events_command_and_shortcut_are_declared(manifest):
    assert {"app_mention", "message.im", "app_home_opened"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"])
    assert "/ltc" in {c["command"] for c in manifest["features"]["slash_commands"]}
    assert "ltc_new_lead" in {s["callback_id"] for s in manifest["features"]["shortcuts"]}


# -- scopes ---------------------------------------------------------------------------------------

def test_every_web_api_method_the_code_calls_has_its_scopes_in_the_manifest(manifest):
    calls = web_api_calls()
    unknown = {m: sorted(where) for m, where in calls.items() if m not in METHOD_SCOPES}
    assert not unknown, f"add the bot scopes of these methods to METHOD_SCOPES: {unknown}"
    assert {"chat_postMessage", "reactions_add", "users_info", "conversations_open"} <= calls.keys()
    assert missing_scopes(manifest, calls) == {}


@pytest.mark.parametrize("method, scope", [
    ("chat_postMessage", "chat:write"), ("reactions_add", "reactions:write"), ("users_info", "users:read"),
    ("users_info", "users:read.email"), ("conversations_create", "channels:manage"),
    ("conversations_create", "groups:write"), ("conversations_open", "im:write"),
])
def test_a_manifest_without_a_needed_scope_is_caught(manifest, method, scope):
    assert scope in manifest["oauth_config"]["scopes"]["bot"]
    trimmed = json.loads(json.dumps(manifest))
    trimmed["oauth_config"]["scopes"]["bot"].remove(scope)
    assert method in missing_scopes(trimmed, [method]).get(scope, set())


def test_subscriptions_and_the_command_need_their_scopes(manifest):
    for scope, why in (("app_mentions:read", "event app_mention"), ("im:history", "event message.im"),
                       ("commands", "slash commands / shortcuts")):
        trimmed = json.loads(json.dumps(manifest))
        trimmed["oauth_config"]["scopes"]["bot"].remove(scope)
        assert missing_scopes(trimmed, []) == {scope: {why}}


def test_views_need_no_extra_scope(manifest):
    assert missing_scopes({**manifest, "oauth_config": {"scopes": {"bot": ["app_mentions:read", "im:history",
                                                                            "commands"]}}},
                          ["views_publish", "views_open"]) == {}
