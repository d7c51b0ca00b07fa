"""Integration fixtures: every test runs on SQLite and on a real PostgreSQL.

Databases
---------
* ``sqlite``: a fresh file in ``tmp_path`` per test. It is a copy of a file migrated once per
  session (copying 200 kB beats running Alembic per test; the schema is the same bytes).
* ``postgresql``: from ``LTC_TEST_PG_URL`` (``scripts/pg.sh`` prints one). Once per session a
  template database is migrated to head; each test then gets its own database created with
  ``CREATE DATABASE … TEMPLATE …`` (~40 ms, measured against ~200 ms for DROP/CREATE SCHEMA
  public + a full Alembic upgrade) and dropped afterwards. Names carry the pid and a random
  suffix, so two test sessions on one server (a colleague's, CI's) never collide.

Without ``LTC_TEST_PG_URL`` the postgresql params are skipped with a reason, except when ``CI``
is set: then they FAIL, because CI must never silently skip PostgreSQL. A URL that is set but
unreachable always fails (someone meant it to be used).

Fixtures: ``db_url`` (migrated, empty), ``empty_db_url`` (nothing at all, for migration tests),
``engine``, ``uow_factory``, ``org`` (tests/builders.build_org), ``dialect``, and helpers
``count``/``rows`` for asserting on tables with plain SQL.
"""
from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from domain.db import tables as t
from domain.db.engine import make_engine
from domain.db.migrate import upgrade
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory
from tests import builders

BACKENDS = ["sqlite", "postgresql"]
PG_ENV = "LTC_TEST_PG_URL"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------- PostgreSQL server


class _PgServer:
    """The server behind LTC_TEST_PG_URL: an admin engine plus per-test databases."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise ValueError(f"{PG_ENV} must be a postgresql URL, got {self.url.render_as_string()}")
        self.admin = create_engine(self.url.set(database="postgres"), isolation_level="AUTOCOMMIT",
                                   pool_pre_ping=True)
        self.tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template: str | None = None
        self._n = 0
        self._lock = threading.Lock()

    def url_for(self, database: str) -> str:
        return self.url.set(database=database).render_as_string(hide_password=False)

    def _exec(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def new_name(self, kind: str) -> str:
        with self._lock:
            self._n += 1
            return f"ltc_it_{kind}_{self.tag}_{self._n}"

    def create(self, name: str, template: str = "template0") -> str:
        self._exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url_for(name)

    def drop(self, name: str) -> None:
        # FORCE (PostgreSQL 13+): a connection a test leaked must not keep the database alive.
        self._exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def migrated_template(self) -> str:
        if self.template is None:
            name = self.new_name("tpl")
            self.create(name)
            upgrade(self.url_for(name))  # env.py disposes its engine: nobody stays connected
            self.template = name
        return self.template

    def close(self) -> None:
        if self.template is not None:
            self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[_PgServer | None]:
    raw = os.environ.get(PG_ENV, "").strip()
    if not raw:
        yield None
        return
    server = _PgServer(raw)
    try:
        with server.admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # set but unreachable: never a silent skip
        server.admin.dispose()
        pytest.fail(f"{PG_ENV}={raw} is set but PostgreSQL is not reachable: {exc}", pytrace=False)
    yield server
    server.close()


def _require_pg(request) -> _PgServer:
    """The server, asked for lazily so that SQLite params never depend on PostgreSQL."""
    pg_server = request.getfixturevalue("pg_server")
    if pg_server is not None:
        return pg_server
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {PG_ENV} is not: integration tests must run on PostgreSQL in CI "
                    "(start one with scripts/pg.sh and export its URL)", pytrace=False)
    pytest.skip(f"PostgreSQL not configured: set {PG_ENV} (e.g. export {PG_ENV}=$(scripts/pg.sh))")


# --------------------------------------------------------------------------- SQLite template


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite_template") / "template.db"
    upgrade(f"sqlite:///{path}")
    # WAL is checkpointed into the main file when the last connection closes (env.py disposes).
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{path}{suffix}").exists() or Path(f"{path}{suffix}").stat().st_size == 0
    return path


# --------------------------------------------------------------------------- databases per test


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, sqlite_template) -> Iterator[str]:
    """A migrated, empty database of its own for this test."""
    if request.param == "sqlite":
        path = tmp_path / "ltc.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    server = _require_pg(request)
    name = server.new_name("db")
    url = server.create(name, template=server.migrated_template())
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request, tmp_path) -> Iterator[str]:
    """A database with no tables at all (migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = _require_pg(request)
    name = server.new_name("empty")
    url = server.create(name)
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def dialect(engine) -> str:
    return engine.dialect.name


@pytest.fixture
def uow_factory(engine) -> Callable[..., SqlAlchemyUnitOfWork]:
    """`uow_factory()` → a fresh SqlAlchemyUnitOfWork; keyword args go to its constructor."""
    sf = session_factory(engine)

    def make(**kwargs) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sf, **kwargs)

    make.session_factory = sf  # for dispatch_pending / OutboxWorker
    return make


@pytest.fixture
def org(uow_factory) -> builders.Org:
    return builders.build_org(uow_factory)


# --------------------------------------------------------------------------- assertion helpers


class Db:
    """Plain-SQL reads for assertions, each in its own short transaction (never the uow's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def rows(self, table, *where, order_by=None) -> list:
        q = select(table).where(*where).order_by(order_by if order_by is not None else table.c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(q))

    def count(self, table, *where) -> int:
        return len(self.rows(table, *where))

    def snapshot_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                    for name in t.metadata.tables}


@pytest.fixture
def db(engine) -> Db:
    return Db(engine)
