"""The HTTP server (FastAPI): Slack's request URL, WeCom's callback URL and a health check.

`ltc serve` runs it under uvicorn. The same Bolt app also runs over Socket Mode (`ltc slack`).
When the server builds its surfaces itself (from settings), it also runs the background work
(the outbox worker with every surface's sinks, and the jobs) for as long as it serves.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool

from bot.api.app import create_api
from bot.context import AppContext
from domain.errors import Unauthenticated, ValidationFailed

log = logging.getLogger("ltc.server")
MAX_CALLBACK_BYTES = 64 * 1024  # a WeCom callback is a few hundred bytes


def create_server(app_context: AppContext, slack_app: App | None = None, background=None,
                  wecom_app=None) -> FastAPI:
    if slack_app is None and wecom_app is None and background is None:
        from bot import surfaces

        built = surfaces.from_settings(app_context)
        slack_app, wecom_app, background = built.slack_app, built.wecom_app, built.background

    @asynccontextmanager
    async def lifespan(_server: FastAPI):
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()
            if wecom_app is not None:
                wecom_app.close()

    server = FastAPI(title="LTC Copilot", lifespan=lifespan)
    server.mount("/api/v1", create_api(app_context))  # the integration REST API (bot/api)

    @server.get("/healthz")
    def healthz() -> dict:
        return {"ok": True, "schema_ready": app_context.schema_ready(), "slack": slack_app is not None,
                "wecom": wecom_app is not None}

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

    not_configured = PlainTextResponse("WeCom is not configured: set WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, "
                                       "WECOM_TOKEN and WECOM_ENCODING_AES_KEY", status_code=503)

    @server.get("/wecom/callback")
    def wecom_verify(request: Request) -> Response:
        """WeCom's URL check when the callback URL is saved: echo the decrypted echostr."""
        if wecom_app is None:
            return not_configured
        try:
            return PlainTextResponse(wecom_app.verify_url(dict(request.query_params)))
        except Unauthenticated as e:
            log.warning("WeCom URL check refused: %s", e.details.get("reason"))
            return PlainTextResponse("forbidden", status_code=403)

    @server.post("/wecom/callback")
    async def wecom_callback(request: Request) -> Response:
        """Check, record and queue; answer at once (WeCom waits 5 s, then retries)."""
        if wecom_app is None:
            return not_configured
        if int(request.headers.get("content-length") or 0) > MAX_CALLBACK_BYTES:  # before reading it
            return PlainTextResponse("too large", status_code=413)
        body = await request.body()
        try:
            await run_in_threadpool(wecom_app.receive, dict(request.query_params), body)
        except Unauthenticated as e:
            log.warning("WeCom callback refused: %s", e.details.get("reason"))
            return PlainTextResponse("forbidden", status_code=403)
        except ValidationFailed as e:
            log.warning("WeCom callback unreadable: %s", e.message)
            return PlainTextResponse("bad request", status_code=400)
        return PlainTextResponse("")  # an empty answer: no passive reply, ours goes through message/send

    return server
