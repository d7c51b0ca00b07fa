"""Which chat notices were already delivered, kept in the database (`chat_notices`) so every worker
and replica shares it.

The outbox delivers at least once, and one outbox message may fan out to several people: a retry
after a partial failure must post only what is still missing. Keys are prefixed with the surface
(`slack:…`, `wecom:…`) so Slack and WeCom each deliver a notice once. A surface records a key only
after its post succeeded: a crash between the two repeats one message, and never loses one.
"""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from domain.db import tables as t
from domain.db.upsert import insert_once

KEY_LIMIT = 200  # chat_notices.key


class NoticeLog:
    def __init__(self, engine: Engine, surface: str) -> None:
        self.engine = engine
        self.surface = surface

    def stored_key(self, key: str) -> str:
        full = f"{self.surface}:{key}"
        if len(full) <= KEY_LIMIT:
            return full
        digest = hashlib.sha256(full.encode()).hexdigest()  # long keys stay unique, and stay short
        return f"{full[:KEY_LIMIT - 65]}#{digest}"

    def sent(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.scalar(select(t.chat_notices.c.key).where(
                t.chat_notices.c.key == self.stored_key(key))) is not None

    def record(self, key: str) -> bool:
        """Record `key` as delivered; True only for the call that recorded it (insert-once)."""
        return insert_once(self.engine, t.chat_notices, ["key"],
                           {"key": self.stored_key(key), "sent_at": datetime.now(UTC).replace(tzinfo=None)})
