"""Errors that name their message, so an edge can say it in the user's language.

The domain writes English and imports no prompts: next to the English message it puts a key and
the plain values in it (`details["message_key"]`, `details["params"]`); tools render
`domain.<key>` from prompts/domain.<lang>.yaml. Params are named for what they hold: a name
ending in `stage` or `stages` holds stage codes, `gate` a gate kind, `role` / `roles` role codes,
`quote_status` / `contract_status` a status, so an edge can word those too (tools/approvals.py).
"""
from __future__ import annotations

import re
from typing import Any


def keyed(key: str, details: dict[str, Any] | None = None, /, **params: Any) -> dict[str, Any]:
    """`details` (kept as is) plus the message key and its params, each as the English message prints it."""
    return {**(details or {}), "message_key": key, "params": {k: f"{v}" for k, v in params.items()}}


def slug(words: str) -> str:
    """A key part from an English phrase: "move its stage" → "move_its_stage"."""
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")
