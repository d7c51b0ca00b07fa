"""Opaque cursors for keyset pagination: the last id of a page, encoded url-safe.

Opaque so clients never compute them (we may change the key later); a tampered or foreign
cursor is a 422 naming the `cursor` field, never a 500.
"""
from __future__ import annotations

import base64
import binascii

from domain.errors import ValidationFailed

_TAG = "c1:"  # versioned, so a later cursor format can coexist with old links


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_TAG}{int(last_id)}".encode()).decode().rstrip("=")


def decode(text: str | None) -> int | None:
    """The id to continue after, or None for the first page."""
    if text is None or text == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    number = raw[len(_TAG):] if raw.startswith(_TAG) else ""
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        raise ValidationFailed("cursor: not a cursor this API returned (pass next_cursor unchanged)",
                               field="cursor")
    return int(number)


def next_cursor(items: list, limit: int, *, key=lambda item: item.id) -> str | None:
    """A cursor after the last item when the page is full (the caller fetched `limit` rows)."""
    return encode(key(items[-1])) if items and len(items) >= limit else None
