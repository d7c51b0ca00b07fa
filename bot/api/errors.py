"""One error schema for every non-2xx answer of the API, and the handlers that produce it.

    {"error": {"code", "message", "field", "allowed", "details", "request_id"}}

Integrations branch on `code` (stable, machine-readable); `message` is English for the developer
reading logs; `details` carries the domain's structured detail (e.g. which approval gate).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import (
    ApprovalRequired,
    Conflict,
    InvalidTransition,
    LTCError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)

log = logging.getLogger("ltc.api")

STATUS: dict[type[LTCError], int] = {
    NotFound: 404, PermissionDenied: 403, Unauthenticated: 401, ValidationFailed: 422,
    InvalidTransition: 409, Conflict: 409, ApprovalRequired: 409,
}
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "validation_failed", 429: "rate_limited"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    allowed: list[Any] | None = None
    details: dict[str, Any] = {}
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# Documented on every operation, so clients (and schemathesis) know the shape of a failure.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((401, "Missing, unknown or revoked API key"), (403, "Scope or role missing"),
                         (404, "Not found"), (409, "Conflict, invalid transition or approval required"),
                         (422, "Invalid request"), (429, "Rate limited (see Retry-After)"),
                         (500, "Internal error (quote the request_id)"))
}


class ApiError(Exception):
    """An error of the API edge itself (scope, rate limit, idempotency), not of the domain."""

    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]


def error_response(request: Request, status: int, code: str, message: str, *, field: str | None = None,
                   allowed: list[Any] | None = None, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field, "allowed": allowed,
                      "details": details or {}, "request_id": request_id(request)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _domain(request: Request, exc: LTCError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    details = dict(exc.details)
    if exc.missing is not None:
        details["missing"] = exc.missing
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(request, status, exc.code, exc.message, field=exc.field,
                          allowed=_jsonable(exc.allowed), details=_jsonable(details), headers=headers)


def _api(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(request, exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers)


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
                for e in exc.errors()]
    first = problems[0] if problems else {"loc": [], "msg": "invalid request", "type": None}
    # loc is ("body"|"query"|"path"|"header", name, ...): the field is what follows the location
    # (for unparsable JSON it is a character position: no field then).
    field = None if first["type"] == "json_invalid" else ".".join(first["loc"][1:]) or None
    message = f"{field}: {first['msg']}" if field else first["msg"]
    return error_response(request, 422, "validation_failed", message, field=field, details={"problems": problems})


def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def install(app: FastAPI) -> None:
    app.add_exception_handler(LTCError, _domain)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_middleware(RequestGuard)


class RequestGuard:
    """The outermost layer: a request id for every call, and a 500 in the one schema for a crash.

    Pure ASGI (not BaseHTTPMiddleware): it must see exceptions the handlers did not translate and
    answer instead of re-raising them, so no stack trace or driver text ever reaches a client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("API request %s failed: %s %s", rid, scope.get("method"), scope.get("path"))
            if started:  # too late for a clean answer; the server closes the connection
                raise
            body = json.dumps({"error": {"code": "internal", "message": "Internal error; quote the request_id",
                                         "field": None, "allowed": None, "details": {},
                                         "request_id": rid}}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"x-request-id", rid.encode())]})
            await send({"type": "http.response.body", "body": body})


def _incoming_id(scope: Scope) -> str | None:
    """A caller's X-Request-ID is kept when it is short and plain (it ends up in logs and audit rows)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None
