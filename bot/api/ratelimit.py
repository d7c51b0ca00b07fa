"""Per-key token buckets, in process.

Each API key gets a bucket of `per_minute` tokens (the burst) refilled at `per_minute`/60 per
second. The buckets live in this process's memory: with N server processes a key may make up
to N × the limit. That is enough to stop a runaway integration; a shared limit would need a
shared store (Redis, the database) and a round trip per call.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from bot.api.errors import ApiError


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be 1 or more")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id → (tokens, at)
        self._lock = threading.Lock()  # sync routes run in a thread pool

    def take(self, key_id: int) -> None:
        """Spend one token, or raise 429 with the seconds until the next token."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens < 1:
                self._buckets[key_id] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.rate)
                raise ApiError(429, "rate_limited",
                               f"Rate limit of {int(self.capacity)} requests per minute for this key reached",
                               details={"limit_per_minute": int(self.capacity), "retry_after": wait},
                               headers={"Retry-After": str(wait)})
            self._buckets[key_id] = (tokens - 1, now)
