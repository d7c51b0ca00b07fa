"""Databases for the agent eval: the demo seeded once, a private copy per task, a fixed clock.

* SQLite (default): the demo is seeded into a template file; each task gets a byte copy (~1 MB,
  milliseconds) instead of an 8-second seed, under one long-lived engine.
* PostgreSQL (`--db-url postgresql://…`): the demo is seeded into a template database and each
  task gets `CREATE DATABASE … TEMPLATE …`, dropped afterwards.

Every unit of work reads the same fixed clock (the Monday after the demo's story ends, one second
further per call) so "today", due dates and overdue days are the same on every run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.context import AppContext
from domain.demo import demo_present, seed_demo
from domain.settings import Settings
from knowledge.documents import load_library
from knowledge.keyword import KeywordIndex
from knowledge.retrieval import PlaybookSearch

NOW = datetime(2026, 11, 16, 9, 0)  # the demo's story ends on Thursday 2026-11-12


class EvalClock:
    """Fixed 'now' that moves one second per reading: deterministic, and still strictly ordered."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class EvalApp(AppContext):
    """The real composition root, with every unit of work on the eval clock."""

    clock: Callable[[], datetime] = field(default_factory=EvalClock)

    def uow(self, *, clock=None):
        return super().uow(clock=clock or self.clock)


def settings_for(url: str, *, llm: bool) -> Settings:
    settings = Settings(database_url=url)
    if not llm:  # the offline model, whatever LLM_* the shell exports
        settings = settings.model_copy(update={"llm_base_url": None, "llm_model": None, "llm_api_key": None})
    return settings


def open_app(url: str, *, llm: bool = False, playbooks=None) -> EvalApp:
    settings = settings_for(url, llm=llm)
    base = AppContext.from_settings(settings)
    app = EvalApp(settings=settings, engine=base.engine, session_factory=base.session_factory)
    app._playbooks = playbooks
    return app


class Template:
    """The seeded demo, and a fresh copy of it per task."""

    def __init__(self, url: str | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ltc-agent-eval-")
        self.url = url or f"sqlite:///{Path(self._tmp.name) / 'template.db'}"
        self.backend = make_url(self.url).get_backend_name()
        self._n = 0
        self._work = Path(self._tmp.name) / "task.db"
        self._app: EvalApp | None = None
        self._pg_template: str | None = None
        self._admin = None
        if self.backend not in ("sqlite", "postgresql"):
            raise ValueError(f"the eval runs on SQLite or PostgreSQL, not {self.backend}")

    def seed(self) -> str:
        """Migrate and seed the template (the demo already there is kept); returns its URL."""
        url = self.url
        if self.backend == "postgresql":
            self._admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
            self._pg_template = f"ltc_eval_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            self._exec(f'CREATE DATABASE "{self._pg_template}" TEMPLATE template0')
            url = make_url(url).set(database=self._pg_template).render_as_string(hide_password=False)
        app = open_app(url)
        try:
            app.migrate()
            with app.uow() as uow:
                present = demo_present(uow)
            if not present:
                seed_demo(app.uow)
        finally:
            app.close()  # SQLite folds its WAL into the file; PostgreSQL needs no one connected
        return url

    @contextmanager
    def task_app(self, *, llm: bool, playbooks) -> Iterator[EvalApp]:
        """An app on a fresh copy of the demo, its clock reset to NOW.

        SQLite: one app (one engine) serves every task: the file is overwritten between tasks while no
        connection is open, so SQLAlchemy's compiled-statement cache stays warm across tasks."""
        if self.backend == "sqlite":
            if self._app is None:
                self._app = open_app(f"sqlite:///{self._work}", llm=llm, playbooks=playbooks)
            app = self._app
            app.engine.dispose()
            for p in (Path(f"{self._work}-wal"), Path(f"{self._work}-shm")):
                p.unlink(missing_ok=True)
            shutil.copyfile(make_url(self.url).database, self._work)
            app.clock = EvalClock()
            try:
                yield app
            finally:
                app.engine.dispose()
            return
        self._n += 1
        name = f"{self._pg_template}_{self._n}"
        self._exec(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template}"')
        app = open_app(make_url(self.url).set(database=name).render_as_string(hide_password=False), llm=llm,
                       playbooks=playbooks)
        try:
            yield app
        finally:
            app.close()
            self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        if self._admin is not None:
            if self._pg_template:
                self._exec(f'DROP DATABASE IF EXISTS "{self._pg_template}" WITH (FORCE)')
            self._admin.dispose()
        self._tmp.cleanup()

    def _exec(self, sql: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(sql))


# --- playbooks --------------------------------------------------------------------------------------

class KeywordPlaybooks(PlaybookSearch):
    """The real library and search, BM25 only: no embedding model to load and no index to build, so
    the eval starts in seconds. Retrieval quality is the retrieval eval's business
    (tests/eval/retrieval); here the agent only has to reach the tool and cite what it returns."""

    def __init__(self, settings) -> None:  # noqa: D107 - the parent's, minus the vector collection
        self.embedder = None
        self.books = load_library(settings.playbooks_dir)
        self.sections = [s for b in self.books for s in b.sections]
        self.by_id = {s.id: s for s in self.sections}
        self.keywords = KeywordIndex([s.embedding_text() for s in self.sections])
        self.collection = None

    def _vector_ids(self, query: str, stage: str | None, role: str | None) -> list[str]:
        return []


def build_playbooks(kind: str, folder: str):
    """`keyword` (BM25 over the real library) or `settings` (the configured embedder, indexed into `folder`)."""
    settings = Settings(chroma_path=folder, chroma_url=None)
    if kind == "keyword":
        return KeywordPlaybooks(settings)
    from knowledge.embeddings import embedder_from_settings
    from knowledge.index import build_index

    embedder = embedder_from_settings(Settings())
    build_index(settings, embedder)
    return PlaybookSearch(settings, embedder)
