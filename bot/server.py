"""The HTTP server (FastAPI): Slack's request URL and a health check.

`ltc serve` runs it under uvicorn. The same Bolt app also runs over Socket Mode (`ltc slack`).
"""
from __future__ import annotations

from fastapi import FastAPI, Request, Response
from slack_bolt import App
from slack_bolt.adapter.fastapi import SlackRequestHandler

from bot.context import AppContext


def slack_app_from_settings(app_context: AppContext) -> App | None:
    """The Bolt app when Slack is configured (bot token + signing secret), else None."""
    settings = app_context.settings
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        return None
    from bot.agent.runtime import Agent
    from bot.slack.app import SlackServices, create_app

    return create_app(settings, SlackServices(app_context, Agent(app_context)))


def create_server(app_context: AppContext, slack_app: App | None = None) -> FastAPI:
    server = FastAPI(title="LTC Copilot")
    slack_app = slack_app or slack_app_from_settings(app_context)
    handler = SlackRequestHandler(slack_app) if slack_app is not None else None

    @server.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "schema_ready": app_context.schema_ready(), "slack": handler is not None}

    @server.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if handler is None:  # say so instead of a bare 404: Slack's dashboard shows this text
            return Response("Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET",
                            status_code=503)
        return await handler.handle(request)

    return server
