"""Webhooks ride on the outbox worker every process already runs (chat background, `ltc worker`):
its sinks gain the webhook sink (events → pending deliveries), and each pass of its loop also
sends the deliveries that are due. In the running loop the sending happens on a thread of its own,
one run at a time, so a slow receiver never delays chat cards; a one-off pass (`ltc worker --once`)
sends right away.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from bot.webhooks.sender import deliver_due
from bot.webhooks.sink import WebhookSink
from domain.outbox import OutboxWorker, Sink

log = logging.getLogger(__name__)


class WebhookDeliverer:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session_factory = session_factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self) -> int:
        try:
            return deliver_due(self.session_factory)
        except Exception:  # the deliveries stay pending; the next pass tries again
            log.exception("webhook delivery pass failed")
            return 0

    def kick(self) -> None:
        """Start a pass on the side unless one is still running (the next kick comes soon)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self.run, name="webhook-deliverer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


class WebhookOutboxWorker(OutboxWorker):
    """The outbox worker, plus the webhook sink and the webhook deliverer."""

    def __init__(self, session_factory: Callable[[], Session], sinks: Iterable[Sink], **kwargs) -> None:
        super().__init__(session_factory, [*sinks, WebhookSink(session_factory)], **kwargs)
        self.webhooks = WebhookDeliverer(session_factory)

    def run_once(self) -> int:
        n = super().run_once()
        if self._thread is not None:  # the loop is running (start()): send on the side
            self.webhooks.kick()
        else:
            self.webhooks.run()
        return n

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self.webhooks.close(timeout)
