"""What every tool gets injected: the acting user, a unit-of-work factory, the playbook search."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.actor import Actor


@dataclass(frozen=True)
class ToolContext:
    actor: Actor  # from the chat identity, never from the model's arguments
    uow: Callable[[], Any]
    playbooks: Any = None  # knowledge.retrieval.PlaybookSearch, when the index is built
    locale: str = "en"
