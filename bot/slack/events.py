"""Which Slack events were already taken in, kept in the database so every replica shares it.

Slack delivers at least once and retries (`X-Slack-Retry-Num`) when an ack is late; the first
insert of an `event_id` wins and every later delivery is skipped.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from domain.db import tables as t


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        # RETURNING tells whether this insert won: rowcount did not report it under psycopg.
        self._insert = dialect.insert(t.slack_events).on_conflict_do_nothing(
            index_elements=["event_id"]).returning(t.slack_events.c.event_id)

    def first_time(self, event_id: str) -> bool:
        """Record `event_id`; True only for the delivery that recorded it."""
        with self.engine.begin() as conn:
            result = conn.execute(self._insert, {"event_id": event_id,
                                                 "received_at": datetime.now(UTC).replace(tzinfo=None)})
            return result.first() is not None
