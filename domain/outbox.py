"""Dispatch outbox messages after commit: at least once, each key handled once by a sink."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.db import tables as t
from domain.db.uow import utcnow

log = logging.getLogger(__name__)


class Sink(Protocol):
    def handle(self, key: str, topic: str, payload: dict) -> None: ...


class RecordingSink:
    """A sink for tests and the console: keeps what it got, ignoring keys it has seen (de-dup)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, key: str, topic: str, payload: dict) -> None:
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            self.received.append((key, topic, payload))

    def topics(self) -> list[str]:
        return [topic for _, topic, _ in self.received]


def dispatch_pending(session_factory: Callable[[], Session], sinks: Iterable[Sink], *, batch: int = 100,
                     max_attempts: int = 10, lease_seconds: int = 120) -> int:
    """Deliver one batch of due messages to every sink; returns how many were marked dispatched.

    A short transaction claims the batch by pushing its `available_at` one lease ahead (with
    FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers), so concurrent workers never
    take the same rows and no lock is held while sinks work (they open units of work of their own).
    A worker that dies mid-batch loses its lease and the rows come back: at least once. A message
    whose sink fails is retried with backoff, up to `max_attempts`.
    """
    sinks = list(sinks)
    with session_factory() as session:
        now = utcnow()
        q = (select(t.outbox.c.id, t.outbox.c.key, t.outbox.c.topic, t.outbox.c.payload, t.outbox.c.attempts)
             .where(t.outbox.c.dispatched_at.is_(None), t.outbox.c.available_at <= now,
                    t.outbox.c.attempts < max_attempts)
             .order_by(t.outbox.c.id).limit(batch))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = session.execute(q).all()
        if not rows:
            return 0
        session.execute(update(t.outbox).where(t.outbox.c.id.in_([r.id for r in rows]))
                        .values(available_at=now + timedelta(seconds=lease_seconds)))
        session.commit()
        outcomes = [(row, _deliver(sinks, row)) for row in rows]
        done_at = utcnow()
        for row, error in outcomes:
            if error is None:
                values = {"dispatched_at": done_at, "attempts": row.attempts + 1, "last_error": None}
            else:
                values = {"attempts": row.attempts + 1, "last_error": error[:2000],
                          "available_at": done_at + timedelta(seconds=min(2 ** row.attempts, 300))}
            session.execute(update(t.outbox).where(t.outbox.c.id == row.id).values(**values))
        session.commit()
        return sum(1 for _, error in outcomes if error is None)


def _deliver(sinks: list[Sink], row) -> str | None:
    """Every sink gets the message, even after another failed (one chat surface being down must not
    hold back the others); any failure makes the whole message retried later, and the sinks are
    idempotent, so the ones that succeeded do nothing the second time."""
    errors = []
    for sink in sinks:
        try:
            sink.handle(row.key, row.topic, row.payload)
        except Exception as exc:  # a sink failure must not lose the message: retry later
            log.warning("outbox %s failed in %s (attempt %d): %s", row.key, type(sink).__name__,
                        row.attempts + 1, exc)
            errors.append(str(exc) or type(exc).__name__)
    return "; ".join(errors) if errors else None


class OutboxWorker:
    """The in-process worker loop: wakes on commit (kick) or every `poll_seconds`."""

    def __init__(self, session_factory: Callable[[], Session], sinks: Iterable[Sink], *,
                 poll_seconds: float = 1.0, max_attempts: int = 10) -> None:
        self.session_factory = session_factory
        self.sinks = list(sinks)
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Register as a unit of work's after-commit hook so events go out right away."""
        self._wake.set()

    def run_once(self) -> int:
        total = 0
        while (n := dispatch_pending(self.session_factory, self.sinks, max_attempts=self.max_attempts)):
            total += n
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep the loop alive; the rows stay pending
                log.exception("outbox dispatch failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
