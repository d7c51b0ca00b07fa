"""The HTTP server (FastAPI): Slack's request URL and a health check.

`ltc serve` runs it under uvicorn. The same Bolt app also runs over Socket Mode (`ltc slack`).
When the server builds the Slack app itself (from settings), it also runs the Slack background
work (outbox sinks and jobs) for as long as it serves.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.context import AppContext


def slack_from_settings(app_context: AppContext):
    """(Bolt app, its background work) when Slack is configured (bot token + signing secret), else None."""
    settings = app_context.settings
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        return None
    from bot.agent.runtime import Agent
    from bot.slack.app import SlackServices, create_app
    from bot.slack.background import SlackBackground

    services = SlackServices(app_context, Agent(app_context))
    bolt = create_app(settings, services)
    return bolt, SlackBackground(services, bolt.client)


def create_server(app_context: AppContext, slack_app: App | None = None, background=None) -> FastAPI:
    if slack_app is None and (built := slack_from_settings(app_context)) is not None:
        slack_app, background = built

    @asynccontextmanager
    async def lifespan(_server: FastAPI):
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()

    server = FastAPI(title="LTC Copilot", lifespan=lifespan)

    @server.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "schema_ready": app_context.schema_ready(), "slack": slack_app is not None}

    @server.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        if slack_app is None:  # say so instead of a bare 404: Slack's dashboard shows this text
            return Response("Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET",
                            status_code=503)
        body = await request.body()
        # Bolt's dispatch is synchronous (it runs the ack function inline): off the event loop, so one
        # slow ack never holds up the other requests.
        response = await run_in_threadpool(slack_app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)

    return server
