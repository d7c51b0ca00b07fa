"""Which Slack events were already taken in, kept in the database so every replica shares it.

Slack delivers at least once and retries (`X-Slack-Retry-Num`) when an ack is late; the first
insert of an `event_id` wins and every later delivery is skipped.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from domain.db import tables as t
from domain.db.upsert import insert_once


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def first_time(self, event_id: str) -> bool:
        """Record `event_id`; True only for the delivery that recorded it."""
        return insert_once(self.engine, t.slack_events, ["event_id"],
                           {"event_id": event_id, "received_at": datetime.now(UTC).replace(tzinfo=None)})
