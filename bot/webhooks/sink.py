"""The outbox sink of webhooks: a published domain event becomes one pending delivery per active
endpoint subscribed to its type. Idempotent: the outbox delivers at least once, and a delivery is
unique per (endpoint, event id). Sending is the deliverer's job (sender.py), never done here."""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from bot.webhooks import events
from domain.db.uow import SqlAlchemyUnitOfWork
from domain.services import webhooks

log = logging.getLogger(__name__)


class WebhookSink:
    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self.session_factory = session_factory

    def handle(self, key: str, topic: str, payload: dict) -> None:
        kind = events.event_type(topic, payload)
        if kind is None:
            return
        with SqlAlchemyUnitOfWork(self.session_factory) as uow:
            endpoint_ids = webhooks.subscribers(uow, kind)
            if not endpoint_ids:
                return
            body = events.envelope(uow, key, topic, payload)
            if body is None:
                log.warning("webhook %s for %s: its record is gone, nothing to send", kind, key)
                return
            new = webhooks.enqueue(uow, endpoint_ids, body)
            uow.commit()
        if new:
            log.info("webhook %s %s queued for %d endpoint(s)", kind, body["id"], new)
