"""Webhook signatures: `X-LTC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`.

The timestamp is signed with the body, so a captured request cannot be replayed later than the
tolerance; receivers compare in constant time. Several v1 values may appear (secret rotation):
any one matching is enough.
"""
from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-LTC-Signature"


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The header value for this body, signed now (or at unix time `t`)."""
    t = int(time.time()) if t is None else int(t)
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(secret: str, header: str | None, body: bytes | str, tolerance: int = 300, *,
           now: float | None = None) -> bool:
    """True when `header` signs exactly `body` with `secret`, within `tolerance` seconds of now."""
    if not header:
        return False
    if isinstance(body, str):
        body = body.encode()
    t, candidates = None, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            t = int(value)
        elif name == "v1" and value:
            candidates.append(value)
    if t is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = _mac(secret, t, body)
    ok = False
    for candidate in candidates:  # no early exit: each comparison is constant-time
        ok |= hmac.compare_digest(expected, candidate)
    return ok
