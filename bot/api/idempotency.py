"""`Idempotency-Key` on POST: a retried request returns the first answer instead of acting twice.

Scoped to the API key. The first request reserves (key, fingerprint) with an INSERT that the
unique constraint (api_key_id, key) arbitrates, so two concurrent duplicates cannot both run
(no read-then-write race, on PostgreSQL or SQLite). After the handler, the recorder stores the
status and body (2xx and 4xx only: a 5xx may be retried, so its reservation is dropped).

* same key, same fingerprint, finished → the stored answer, header `Idempotent-Replayed: true`
* same key, other fingerprint → 409 `idempotency_key_reused`
* same key while the first still runs → 409 `idempotency_in_progress`
* rows older than 24 h are ignored and replaced (and swept now and then).

If the process dies between the handler's commit and the recording, the reservation stays "in
progress" until it expires: the client gets 409 rather than a second execution (never act twice).
"""
from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.errors import ApiError
from domain.db import tables as t
from domain.db.uow import utcnow

HEADER = "idempotency-key"
TTL = timedelta(hours=24)
SWEEP_SECONDS = 600
STATE = "idempotency_row"
BODY = "idempotency_body"
_last_sweep = 0.0


class Replay(Exception):
    def __init__(self, status: int, content_type: str | None, body: bytes) -> None:
        self.status, self.content_type, self.body = status, content_type, body


def fingerprint(method: str, path: str, query: str, body_sha256: str) -> str:
    return hashlib.sha256("\n".join([method.upper(), path, query, body_sha256]).encode()).hexdigest()


class _BodyHash:
    """SHA-256 of the request body as it streams past: JSON, forms and uploads alike (a multipart
    parser consumes the stream, so the body cannot be read again afterwards)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.done = False

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


async def begin(request: Request, ctx, key_id: int) -> None:
    """Reserve the key before the handler runs (called by `deps.caller` once authenticated)."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None or STATE in request.scope.get("state", {}):
        return
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise ApiError(422, "validation_failed", "Idempotency-Key must be 1 to 255 printable ASCII characters",
                       details={"header": "Idempotency-Key"})
    seen: _BodyHash = request.scope["state"][BODY]
    if not seen.done:  # a route without body parameters: nobody read it yet (reading hashes it)
        try:
            await request.body()
        except RuntimeError:  # consumed and cut short (client gone): the hash so far will do
            pass
    fp = fingerprint(request.method, request.url.path, request.url.query, seen.hexdigest())
    row_id = await run_in_threadpool(_reserve, ctx.engine, key_id, key, fp)
    request.state.idempotency_row = row_id


def _reserve(engine, key_id: int, key: str, fp: str) -> int:
    _maybe_sweep(engine)
    for _ in range(3):  # insert; on a clash look at the holder; an expired holder is replaced
        now = utcnow()
        try:
            with engine.begin() as conn:
                return conn.execute(insert(t.idempotency_keys).values(
                    api_key_id=key_id, key=key, fingerprint=fp, created_at=now)).inserted_primary_key[0]
        except IntegrityError:
            pass
        k = t.idempotency_keys.c
        with engine.begin() as conn:
            row = conn.execute(select(k.id, k.fingerprint, k.created_at, k.status_code, k.content_type,
                                      k.response_body).where(k.api_key_id == key_id, k.key == key)).first()
            if row is None:
                continue  # its holder failed (5xx) and let go: try again
            if row.created_at < now - TTL:
                conn.execute(delete(t.idempotency_keys).where(k.id == row.id, k.created_at < now - TTL))
                continue
        if row.fingerprint != fp:
            raise ApiError(409, "idempotency_key_reused",
                           "This Idempotency-Key was used for a different request (method, path, query or body)",
                           details={"idempotency_key": key})
        if row.status_code is None:
            raise ApiError(409, "idempotency_in_progress",
                           "A request with this Idempotency-Key is still running; retry shortly",
                           details={"idempotency_key": key}, headers={"Retry-After": "1"})
        raise Replay(row.status_code, row.content_type, bytes(row.response_body or b""))
    raise ApiError(409, "idempotency_in_progress", "This Idempotency-Key is contended; retry shortly",
                   details={"idempotency_key": key}, headers={"Retry-After": "1"})


def _maybe_sweep(engine) -> None:
    """Drop expired rows now and then, so the table stays the size of one day of POSTs."""
    global _last_sweep
    if time.monotonic() - _last_sweep < SWEEP_SECONDS:
        return
    _last_sweep = time.monotonic()
    with engine.begin() as conn:
        conn.execute(delete(t.idempotency_keys).where(t.idempotency_keys.c.created_at < utcnow() - TTL))


def _finish(engine, row_id: int, status: int | None, content_type: str | None, body: bytes) -> None:
    k = t.idempotency_keys.c
    with engine.begin() as conn:
        if status is None or status >= 500 or status < 200:
            conn.execute(delete(t.idempotency_keys).where(k.id == row_id))
        else:
            conn.execute(update(t.idempotency_keys).where(k.id == row_id).values(
                status_code=status, content_type=content_type, response_body=body, completed_at=utcnow()))


def _replay(_request: Request, exc: Replay) -> Response:
    return Response(exc.body, status_code=exc.status, media_type=exc.content_type,
                    headers={"Idempotent-Replayed": "true"})


class Recorder:
    """Holds back the answer of a reserved request, stores it, then sends it.

    Stored before it is sent: a client that retries the moment it reads the answer must get the
    replay, not `idempotency_in_progress`.
    """

    def __init__(self, app: ASGIApp, engine_of) -> None:
        self.app = app
        self.engine_of = engine_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not any(
                name == HEADER.encode() for name, _ in scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        seen = scope.setdefault("state", {})[BODY] = _BodyHash()

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen.sha.update(message.get("body", b""))
                seen.done = not message.get("more_body", False)
            return message

        held: list[Message] = []
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            row = scope.get("state", {}).get(STATE)
            if row is None:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, hashing_receive, hold)
        except BaseException:
            row = scope.get("state", {}).get(STATE)
            if row is not None:
                with anyio.CancelScope(shield=True):  # a client that hung up must not leave it "running"
                    await run_in_threadpool(_finish, self.engine_of(), row, None, None, b"")
            raise
        row = scope.get("state", {}).get(STATE)
        if row is None:
            return
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = start["status"] if start else None
        content_type = next((v.decode("latin-1") for n, v in (start or {}).get("headers", ())
                             if n.lower() == b"content-type"), None)
        await run_in_threadpool(_finish, self.engine_of(), row, status, content_type, b"".join(chunks))
        for message in held:
            await send(message)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Replay, _replay)
    app.add_middleware(Recorder, engine_of=lambda: app.state.ctx.engine)
