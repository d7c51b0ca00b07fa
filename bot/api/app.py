"""`create_api(ctx)`: the integration REST API as its own FastAPI app, mounted at /api/v1.

Its own app (not routes on the chat server) so it has its own OpenAPI document, error schema
and middleware, and can be tested or served on its own.
"""
from __future__ import annotations

from fastapi import FastAPI

from bot.api import errors, idempotency
from bot.api.call_log import CallLog
from bot.api.ratelimit import RateLimiter
from bot.api.routes import discover
from bot.context import AppContext

DESCRIPTION = """Lead-to-Cash for integrations (ERP, billing, web forms).

Authenticate with `Authorization: Bearer <key>` (`ltc apikey create`). A key acts as its
service user: its scopes (`<resource>:read|write`, or `*`) and that user's roles both apply.
Every failure answers `{"error": {"code", "message", "field", "allowed", "details", "request_id"}}`.
Lists page with `limit` and an opaque `cursor` (`next_cursor`). POSTs accept `Idempotency-Key`.
Rate limit: per key, per server process (429 `rate_limited` with Retry-After).
"""


def create_api(ctx: AppContext, *, rate_per_minute: int | None = None) -> FastAPI:
    api = FastAPI(title="LTC Copilot API", version="1", description=DESCRIPTION)
    api.state.ctx = ctx
    api.state.limiter = RateLimiter(rate_per_minute or ctx.settings.api_rate_per_minute)
    idempotency.install(api)  # inside the request guard: the guard must wrap everything
    api.add_middleware(CallLog, uow_of=ctx.uow)  # outside idempotency: a replayed answer is a call too
    errors.install(api)
    for router in discover():
        api.include_router(router, responses=errors.RESPONSES)
    _document_idempotency(api)
    return api


def _document_idempotency(api: FastAPI) -> None:
    """List the Idempotency-Key header on every POST (it is read by middleware, not by a route)."""
    build = api.openapi

    def openapi() -> dict:
        if api.openapi_schema is None:
            for item in build()["paths"].values():  # build() caches the dict it returns: edit it in place
                post = item.get("post")
                if post is not None:
                    post.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
        return api.openapi_schema

    api.openapi = openapi


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Retry-safe POST: a repeat with the same key and body returns the first answer (24 h)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
