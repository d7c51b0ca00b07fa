"""The chat surfaces a process serves, built from settings: Slack (bot token + signing secret) and
WeCom (corp id, agent id, secret, token, EncodingAESKey). Also the outbox sinks of all of them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Surfaces:
    slack_app: object | None = None  # the Bolt app
    wecom_app: object | None = None  # bot.wecom.app.WeComApp
    background: object | None = None  # bot.background.ChatBackground


def all_sinks(app, agent, *, slack=None, wecom=None) -> list:
    """Every configured surface's outbox sinks. `slack` = (SlackServices, WebClient) and `wecom` =
    WeComServices when the caller built them already; the others are built from settings."""
    settings = app.settings
    sinks: list = []
    if slack is None and settings.slack_bot_token:
        from slack_sdk import WebClient

        from bot.slack.app import SlackServices

        slack = (SlackServices(app, agent), WebClient(token=settings.slack_bot_token))
    if slack is not None:
        sinks += slack[0].sinks(slack[1])
    if wecom is None and settings.wecom_configured:
        from bot.wecom.app import WeComServices

        wecom = WeComServices.from_settings(app, agent)
    if wecom is not None:
        sinks += wecom.sinks()
    return sinks


def from_settings(app) -> Surfaces:
    """The configured surfaces, and one background (worker + jobs) delivering for all of them."""
    from bot.agent.runtime import Agent
    from bot.background import ChatBackground

    settings = app.settings
    agent = Agent(app)
    out = Surfaces()
    slack = wecom = None
    if settings.slack_bot_token and settings.slack_signing_secret:
        from bot.slack.app import SlackServices, create_app

        services = SlackServices(app, agent)
        out.slack_app = create_app(settings, services)
        slack = (services, out.slack_app.client)
    if settings.wecom_configured:
        from bot.wecom.app import WeComApp, WeComServices

        wecom = WeComServices.from_settings(app, agent)
        out.wecom_app = WeComApp(settings, wecom)
    if slack is not None or wecom is not None:
        out.background = ChatBackground(app, all_sinks(app, agent, slack=slack, wecom=wecom))
    return out
