"""The composition root: settings → engine → sessions → units of work, actors and workers.

Every edge (CLI, console chat, Slack, WeCom, API) builds one `AppContext` and gets its units of
work and actors from it. No business rules live here: only wiring.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from domain.actor import Actor, Channel
from domain.db import migrate
from domain.db.engine import make_engine
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory, utcnow
from domain.errors import NotFound
from domain.outbox import OutboxWorker, Sink
from domain.policy_defaults import SYSTEM_EMAIL
from domain.settings import Settings, get_settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    # Hooks every unit of work runs after a successful commit (e.g. kick the outbox worker).
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    _embedder: object | None = field(default=None, repr=False)
    _playbooks: object | None = field(default=None, repr=False)
    _playbooks_checked_at: float = field(default=0.0, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AppContext:
        settings = settings or get_settings()
        engine = make_engine(settings.database_url, echo=settings.sql_echo)
        return cls(settings=settings, engine=engine, session_factory=session_factory(engine))

    # -- units of work -----------------------------------------------------------------------

    def uow(self, *, clock: Callable[[], datetime] | None = None) -> SqlAlchemyUnitOfWork:
        """A fresh unit of work (`with ctx.uow() as uow: ...; uow.commit()`)."""
        return SqlAlchemyUnitOfWork(self.session_factory, clock=clock or utcnow, after_commit=self.after_commit)

    # -- actors ------------------------------------------------------------------------------

    def system_actor(self, channel: Channel | str = Channel.SYSTEM) -> Actor:
        """The built-in system user (an admin), created by `ltc init`."""
        return self.actor_for_email(SYSTEM_EMAIL, channel)

    def actor_for_email(self, email: str, channel: Channel | str = Channel.CLI) -> Actor:
        with self.uow() as uow:
            user = uow.users.by_email(email.strip())
            if user is None:
                known = sorted(u.email for u in uow.users.all())
                if email.strip().lower() == SYSTEM_EMAIL:
                    raise NotFound("The system user does not exist yet: initialise the database first (ltc init)",
                                   field="email")
                raise NotFound(f"No user with email {email}", field="email", allowed=known)
            return Actor(user.id, channel)

    # -- schema ------------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def display_url(self) -> str:
        return make_url(self.database_url).render_as_string(hide_password=True)

    def sqlite_path(self) -> Path | None:
        """The database file when the database is a SQLite file, else None."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(migrate.alembic_config(self.database_url)).get_current_head()

    def schema_ready(self) -> bool:
        return self.current_revision() == self.head_revision()

    def migrate(self) -> tuple[str | None, str | None]:
        """Upgrade to head; returns (revision before, revision after)."""
        before = self.current_revision()
        migrate.upgrade(self.database_url)
        return before, self.current_revision()

    def wipe(self) -> str:
        """Drop everything: delete a SQLite file, or migrate any other database down to nothing."""
        path = self.sqlite_path()
        self.engine.dispose()
        if path is not None:
            removed = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal"))
                       if p.exists()]
            for p in removed:
                p.unlink()
            return f"deleted {path}" if removed else f"{path} did not exist"
        if self.current_revision() is not None:
            migrate.downgrade(self.database_url, "base")
            return "migrated the database down to an empty schema"
        return "the database was already empty"

    # -- background work ---------------------------------------------------------------------

    def outbox_worker(self, sinks: Iterable[Sink]) -> OutboxWorker:
        from bot.webhooks.worker import WebhookOutboxWorker  # every worker also queues and sends webhooks

        return WebhookOutboxWorker(self.session_factory, sinks, poll_seconds=self.settings.outbox_poll_seconds,
                                   max_attempts=self.settings.outbox_max_attempts)

    # -- knowledge ---------------------------------------------------------------------------

    def embedder(self):
        if self._embedder is None:
            from knowledge.embeddings import embedder_from_settings

            self._embedder = embedder_from_settings(self.settings)
        return self._embedder

    def build_index(self, *, rebuild: bool = False, progress=None):
        from knowledge.index import build_index

        self._playbooks, self._playbooks_checked_at = None, 0.0  # the next search reloads the library
        return build_index(self.settings, self.embedder(), rebuild=rebuild, progress=progress)

    def playbooks(self):
        """The playbook search, or None while the index has not been built (`ltc index`)."""
        if self._playbooks is None:
            import time

            from knowledge.retrieval import PlaybookSearch

            # Loading reads the whole library; when the index is missing, look again a minute later,
            # not on every chat turn.
            if time.monotonic() - self._playbooks_checked_at < 60:
                return None
            self._playbooks_checked_at = time.monotonic()
            try:
                self._playbooks = PlaybookSearch(self.settings, self.embedder())
            except LookupError:
                return None
        return self._playbooks

    def close(self) -> None:
        self.engine.dispose()
