"""The one guard every status machine uses: a move is allowed only if its transition table says so."""
from __future__ import annotations

from collections.abc import Mapping

from domain.errors import InvalidTransition
from domain.model.message_keys import keyed


def check_move(table: Mapping[str, frozenset[str]], subject: str, current: str, target: str) -> None:
    """Raise InvalidTransition naming what is allowed next (or that the status is final)."""
    if target in table[current]:
        return
    allowed = sorted(table[current])
    raise InvalidTransition(
        f"{subject} is {current}; it cannot become {target}"
        + (f" (allowed next: {', '.join(allowed)})" if allowed else " (it is final)"),
        field="status", allowed=allowed,
        details=keyed("status.cannot_become" if allowed else "status.cannot_become_final", subject=subject,
                      status=current, target=target, allowed=", ".join(allowed)))
