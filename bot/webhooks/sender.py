"""The webhook deliverer: POST each due delivery, signed, and schedule retries with backoff.

Like the outbox, a short transaction claims a batch (pushing `next_attempt_at` one lease ahead,
FOR UPDATE SKIP LOCKED on PostgreSQL), so replicas never send the same row at once and no lock is
held during HTTP. Success is any 2xx (redirects are not followed: a 3xx is a failure). A failure is
retried after 1 min, 5 min, 30 min, 2 h, 6 h, 12 h, 24 h; after the 8th attempt the delivery is
`failed` (replay sends it again). Every attempt is logged (webhook_attempts, and the logger).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.webhooks import signing
from domain.db import tables as t
from domain.db.uow import utcnow

log = logging.getLogger(__name__)

BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=6), timedelta(hours=12), timedelta(hours=24))
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT = 10.0
PARALLEL = 4  # one slow receiver must not hold back the others for a whole batch of timeouts
USER_AGENT = "LTC-Copilot-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_bytes(payload: dict) -> bytes:
    """The exact bytes sent and signed (UTF-8 JSON, compact)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt (1-based)."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def post(client: httpx.Client, row) -> Outcome:
    body = body_bytes(row.payload)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
               "X-LTC-Event": row.event_type, "X-LTC-Delivery": str(row.id),
               signing.HEADER: signing.sign(row.secret, body)}
    started = time.monotonic()
    try:
        with client.stream("POST", row.url, content=body, headers=headers) as response:
            code = response.status_code
            snippet = b""
            if not 200 <= code < 300:
                for chunk in response.iter_bytes():  # enough to say why, never a whole page
                    snippet += chunk
                    if len(snippet) >= 300:
                        break
    except httpx.TimeoutException as exc:
        return Outcome(None, f"timeout: {type(exc).__name__}", _ms(started))
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], _ms(started))
    error = None if 200 <= code < 300 else f"HTTP {code}: {snippet[:300].decode('utf-8', 'replace')}".strip()
    return Outcome(code, error, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def deliver_due(session_factory: Callable[[], Session], now: datetime | None = None, *, batch: int = 50,
                timeout: float = TIMEOUT, max_attempts: int = MAX_ATTEMPTS) -> int:
    """Send every delivery due at `now` (default: the current time) once; returns the attempts made.

    Failed ones are rescheduled after `now`, so one call always ends. Tests move the clock with `now`.
    """
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    made, client = 0, None
    try:
        while True:
            # The lease outlasts the whole batch, every round timing out (each request's phases can
            # add up to a few timeouts): no other process may take a row still being sent.
            rounds = -(-batch // PARALLEL)
            claimed = _claim(session_factory, clock(), batch, lease=timedelta(seconds=rounds * timeout * 4 + 60))
            if not claimed:
                return made
            if client is None:  # only when there is something to send: the worker polls every second
                client = httpx.Client(timeout=timeout, follow_redirects=False)
            with ThreadPoolExecutor(max_workers=min(PARALLEL, len(claimed))) as pool:
                outcomes = list(pool.map(lambda row: post(client, row), claimed))
            _record(session_factory, list(zip(claimed, outcomes)), clock(), max_attempts)
            made += len(claimed)
            if len(claimed) < batch:
                return made
    finally:
        if client is not None:
            client.close()


def _claim(session_factory, now: datetime, batch: int, *, lease: timedelta) -> list:
    d, e = t.webhook_deliveries, t.webhook_endpoints
    with session_factory() as session:
        q = (select(d.c.id, d.c.event_type, d.c.payload, d.c.attempts, e.c.url, e.c.secret)
             .select_from(d.join(e, e.c.id == d.c.endpoint_id))
             .where(d.c.status == "pending", d.c.next_attempt_at <= now, e.c.active.is_(True))
             .order_by(d.c.next_attempt_at, d.c.id).limit(batch))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(of=d, skip_locked=True)
        rows = session.execute(q).all()
        if rows:
            session.execute(update(d).where(d.c.id.in_([r.id for r in rows])).values(next_attempt_at=now + lease))
            session.commit()
        return rows


def _record(session_factory, outcomes: list, at: datetime, max_attempts: int) -> None:
    d = t.webhook_deliveries
    with session_factory() as session:
        for row, out in outcomes:
            attempts = row.attempts + 1
            values: dict = {"attempts": attempts, "last_status_code": out.status_code, "last_error": out.error}
            if out.ok:
                values.update(status="delivered", delivered_at=at, next_attempt_at=None)
            elif attempts >= max_attempts:
                values.update(status="failed", next_attempt_at=None)
            else:
                values.update(next_attempt_at=at + backoff(attempts))
            session.execute(update(d).where(d.c.id == row.id, d.c.status == "pending").values(**values))
            session.execute(t.webhook_attempts.insert().values(
                delivery_id=row.id, attempted_at=at, status_code=out.status_code, error=out.error,
                duration_ms=out.duration_ms))
            level = logging.INFO if out.ok else logging.WARNING
            log.log(level, "webhook delivery %d (%s) to %s, attempt %d: %s", row.id, row.event_type, row.url,
                    attempts, out.status_code if out.ok else out.error)
        session.commit()
