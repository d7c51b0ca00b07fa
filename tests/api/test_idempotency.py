"""Idempotency-Key on POST: a repeat replays the first answer and acts once; misuse is a 409."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import update

from bot.api import idempotency
from bot.api.app import create_api
from bot.api.deps import Caller, caller, uow_dep
from bot.api.errors import ApiError
from domain.db import tables as t
from domain.services import leads as lead_svc
from tests.api.conftest import bearer, serve


class NewLead(BaseModel):
    company: str
    contact_name: str


class Probe:
    """Test-only POST routes: one that creates a lead, one that counts, one that waits, one that fails once."""

    def __init__(self) -> None:
        self.count = 0
        self.release = threading.Event()
        self.entered = threading.Event()
        self.failures_left = 1
        self.router = APIRouter(prefix="/_idem")
        r = self.router

        @r.post("/lead", status_code=201)
        def lead(body: NewLead, who: Caller = Depends(caller("leads:write")), uow=Depends(uow_dep)) -> dict:
            with uow:
                view = lead_svc.create_lead({"source": "website", **body.model_dump()}, actor=who.actor, uow=uow)
                uow.commit()
            return {"id": view.id, "company": view.company}

        @r.post("/count")
        def count(who: Caller = Depends(caller())) -> dict:
            self.count += 1
            return {"n": self.count}

        @r.post("/slow")
        def slow(who: Caller = Depends(caller())) -> dict:
            self.entered.set()
            assert self.release.wait(10)
            return {"done": True}

        @r.post("/flaky")
        def flaky(who: Caller = Depends(caller())) -> dict:
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("database went away")
            return {"ok": True}


@pytest.fixture
def probe():
    return Probe()


@pytest.fixture
def client(ctx, org, probe):
    app = create_api(ctx, rate_per_minute=1_000_000)
    app.include_router(probe.router)
    with serve(app) as c:
        yield c


@pytest.fixture
def key(make_key):
    return make_key("*")


def _post(client, path, key, idem, **kw):
    return client.post(path, headers={**bearer(key), "Idempotency-Key": idem}, **kw)


def test_repeat_returns_the_same_answer_and_creates_one_row(client, key, db):
    body = {"company": "Acme Steel", "contact_name": "Li Lei"}
    first = _post(client, "/_idem/lead", key, "order-1", json=body)
    again = _post(client, "/_idem/lead", key, "order-1", json=body)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert db.count(t.leads) == 1
    assert db.count(t.audit_log, t.audit_log.c.entity == "lead") == 1
    [row] = db.rows(t.idempotency_keys)
    assert (row.status_code, row.key) == (201, "order-1")


def test_same_key_other_body_path_or_query_is_409_reused(client, key, probe):
    assert _post(client, "/_idem/count", key, "k", json={"a": 1}).status_code == 200
    for kw in ({"json": {"a": 2}}, {"json": {"a": 1}, "params": {"x": "1"}}):
        response = _post(client, "/_idem/count", key, "k", **kw)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    other_path = _post(client, "/_idem/slow", key, "k", json={"a": 1})
    assert other_path.json()["error"]["code"] == "idempotency_key_reused"
    assert probe.count == 1


def test_keys_belong_to_one_api_key(client, make_key, probe):
    first, second = make_key("*", name="erp"), make_key("*", name="billing")
    assert _post(client, "/_idem/count", first, "same", json={}).json() == {"n": 1}
    assert _post(client, "/_idem/count", second, "same", json={}).json() == {"n": 2}  # not the other's replay


def test_a_4xx_answer_is_stored_and_replayed(client, key, db):
    first = _post(client, "/_idem/lead", key, "bad", json={"company": "No contact"})
    again = _post(client, "/_idem/lead", key, "bad", json={"company": "No contact"})
    assert first.status_code == again.status_code == 422
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"


def test_a_5xx_is_not_stored_so_a_retry_runs_again(client, key, db):
    failed = _post(client, "/_idem/flaky", key, "retry-me", json={})
    assert failed.status_code == 500
    assert db.count(t.idempotency_keys) == 0
    retried = _post(client, "/_idem/flaky", key, "retry-me", json={})
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert db.rows(t.idempotency_keys)[0].status_code == 200


def test_duplicate_while_the_first_runs_is_409_in_progress(client, key, probe):
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault(
        "first", _post(client, "/_idem/slow", key, "slow-1", json={})))
    worker.start()
    try:
        assert probe.entered.wait(10)
        duplicate = _post(client, "/_idem/slow", key, "slow-1", json={})
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
        assert duplicate.headers["Retry-After"] == "1"
    finally:
        probe.release.set()
        worker.join(10)
    assert results["first"].status_code == 200
    assert _post(client, "/_idem/slow", key, "slow-1", json={}).headers["Idempotent-Replayed"] == "true"


def test_rows_older_than_a_day_are_replaced(client, key, probe, engine, db):
    assert _post(client, "/_idem/count", key, "old", json={"v": 1}).json() == {"n": 1}
    [row] = db.rows(t.idempotency_keys)
    with engine.begin() as conn:  # a day and an hour ago
        conn.execute(update(t.idempotency_keys).values(created_at=row.created_at - timedelta(hours=25)))
    assert _post(client, "/_idem/count", key, "old", json={"v": 2}).json() == {"n": 2}  # not "reused"


def test_a_malformed_key_is_422(client, key):
    response = _post(client, "/_idem/count", key, "x" * 256, json={})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"header": "Idempotency-Key"}


def test_without_the_header_every_post_acts(client, key, probe, db):
    for _ in range(2):
        client.post("/_idem/count", headers=bearer(key), json={})
    assert probe.count == 2 and db.count(t.idempotency_keys) == 0


def test_concurrent_duplicates_reserve_once(ctx, org, make_key, db):
    """Eight threads race to reserve one key: the unique constraint lets exactly one through."""
    make_key("*")
    key_id = db.rows(t.api_keys)[0].id
    barrier, outcomes = threading.Barrier(8), []

    def race() -> None:
        barrier.wait()
        try:
            outcomes.append(("reserved", idempotency._reserve(ctx.engine, key_id, "race", "f" * 64)))
        except ApiError as e:
            outcomes.append((e.code, None))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(code for code, _ in outcomes) == ["idempotency_in_progress"] * 7 + ["reserved"]
    assert db.count(t.idempotency_keys) == 1
