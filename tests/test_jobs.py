"""The scheduled jobs on a real SQLite file: approvals past LTC_APPROVAL_TTL_HOURS expire."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.context import AppContext
from bot.jobs import Scheduler, run_jobs
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.services import approvals
from domain.settings import Settings
from tests import builders


def _app(tmp_path) -> AppContext:
    app = AppContext.from_settings(Settings(database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
                                            chroma_path=str(tmp_path / "chroma")))
    app.migrate()
    return app


def test_run_jobs_expires_requests_past_their_lifetime(tmp_path):
    app = _app(tmp_path)
    org = builders.build_org(app.uow)
    opp = builders.make_deal(app.uow, org)
    with app.uow() as uow:
        req = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow).id
        uow.commit()
    with app.engine.begin() as conn:  # the request was made long ago
        conn.execute(update(t.approval_requests).where(t.approval_requests.c.id == req)
                     .values(expires_at=utcnow() - timedelta(minutes=1)))
    done = dict(run_jobs(app))
    assert done["approvals expired"] == 1
    with app.engine.connect() as conn:
        assert conn.execute(select(t.approval_requests.c.status).where(
            t.approval_requests.c.id == req)).scalar_one() == "expired"
    assert dict(run_jobs(app))["approvals expired"] == 0  # idempotent
    app.close()


def test_the_scheduler_runs_the_jobs_on_its_thread_and_stops(tmp_path):
    app = _app(tmp_path)
    builders.build_org(app.uow)
    scheduler = Scheduler(app, interval_seconds=0.05).start()
    deadline = time.time() + 10
    while scheduler.runs < 2 and time.time() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    assert scheduler.runs >= 2
    app.close()


def test_a_failing_job_does_not_hold_back_the_others(tmp_path, monkeypatch):
    app = _app(tmp_path)
    org = builders.build_org(app.uow)
    opp = builders.make_deal(app.uow, org)
    with app.uow() as uow:
        req = approvals.request_gate(opp, "ATI", actor=org.actor("rep"), uow=uow).id
        uow.commit()
    with app.engine.begin() as conn:
        conn.execute(update(t.approval_requests).where(t.approval_requests.c.id == req)
                     .values(expires_at=utcnow() - timedelta(minutes=1)))

    def broken(**_):
        raise RuntimeError("a bad quote row")

    monkeypatch.setattr("bot.jobs.quotes.expire_quotes", broken)
    with pytest.raises(RuntimeError, match="bad quote row"):  # the failure is still reported...
        run_jobs(app)
    with app.engine.connect() as conn:  # ...after the jobs behind it ran
        assert conn.execute(select(t.approval_requests.c.status).where(
            t.approval_requests.c.id == req)).scalar_one() == "expired"
    app.close()
