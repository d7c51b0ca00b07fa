"""API fixtures: the REST API over a migrated SQLite and PostgreSQL database with the builders org.

* ``ctx``: the AppContext on this test's database (``ctx.uow()`` for reads in asserts).
* ``api``: a TestClient over ``create_api(ctx)`` mounted at /api/v1 as ``ltc serve`` does. Write
  paths either way: ``api.get("/api/v1/leads")`` or ``api.get("/leads")`` (prefixed for you).
  Server errors come back as responses (500 in the error schema), never as raised exceptions.
  The rate limit is lifted (tests of it build their own app with ``rate_per_minute``).
* ``make_key(scopes, user="sales_ops") -> str``: a real key through the domain service (created
  by the admin), acting as that builders user; ``bearer(key)`` gives the header dict.
* From tests/integration: ``db_url``, ``engine``, ``uow_factory``, ``org``, ``db`` (count/rows), ``dialect``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.api.app import create_api
from bot.context import AppContext
from domain.services import api_keys as key_svc
from domain.settings import Settings
from tests.integration import conftest as _integration

# The integration fixtures, re-exported by name (pytest finds fixtures by module attribute).
pg_server, sqlite_template = _integration.pg_server, _integration.sqlite_template
db_url, engine, dialect = _integration.db_url, _integration.engine, _integration.dialect
uow_factory, org, db = _integration.uow_factory, _integration.org, _integration.db

PREFIX = "/api/v1"
UNLIMITED = 1_000_000


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)  # every API test runs on a real database


class ApiClient(TestClient):
    """A TestClient that accepts API paths with or without the /api/v1 prefix."""

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str) and url.startswith("/") and not url.startswith(PREFIX + "/") and url != PREFIX:
            url = PREFIX + url
        return super().request(method, url, *args, **kwargs)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def serve(api: FastAPI) -> ApiClient:
    outer = FastAPI()
    outer.mount(PREFIX, api)
    return ApiClient(outer, raise_server_exceptions=False)


@pytest.fixture
def ctx(db_url, engine, uow_factory) -> AppContext:
    return AppContext(settings=Settings(database_url=db_url), engine=engine,
                      session_factory=uow_factory.session_factory)


@pytest.fixture
def api(ctx, org) -> Iterator[ApiClient]:
    with serve(create_api(ctx, rate_per_minute=UNLIMITED)) as client:
        yield client


@pytest.fixture
def make_key(ctx, org):
    def make(scopes: Iterable[str] | str, user: str = "sales_ops", *, name: str = "test") -> str:
        scopes = [scopes] if isinstance(scopes, str) else list(scopes)
        with ctx.uow() as uow:
            created = key_svc.create_key({"name": name, "user_email": f"{user}@example.com", "scopes": scopes},
                                         actor=org.actor("admin"), uow=uow)
            uow.commit()
        return created.key

    return make
