"""What every tool gets injected: the acting user, a unit-of-work factory, settings for confirmations."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from domain.actor import Actor
from domain.settings import Settings


@dataclass(frozen=True)
class ToolContext:
    actor: Actor  # from the chat identity, never from the model's arguments
    uow: Callable[[], Any]
    playbooks: Any = None  # knowledge.retrieval.PlaybookSearch, when the index is built
    locale: str = "en"
    # Tools that propose and wait for the user's yes (Settings.confirm_tools), and for how long. The
    # default is the settings' default, so an edge that forgets to pass it still asks before acting.
    confirm_tools: frozenset[str] = field(
        default_factory=lambda: frozenset(Settings.model_fields["confirm_tools"].default_factory()))
    confirm_ttl_minutes: int = 10
    approval_ttl_hours: int = 72

    def previewing(self) -> ToolContext:
        """The same context over units of work that never commit: a preview of a proposed write."""
        return replace(self, uow=_DryRunFactory(self.uow))


class _DryRunFactory:
    def __init__(self, inner: Callable[[], Any]) -> None:
        self.inner = inner

    def __call__(self) -> Any:
        return _DryRunUnitOfWork(self.inner())


class _DryRunUnitOfWork:
    """Runs the real service; `commit` only flushes (constraints are checked), leaving rolls it all back."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __enter__(self) -> Any:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._inner.__exit__(*exc)

    def commit(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
