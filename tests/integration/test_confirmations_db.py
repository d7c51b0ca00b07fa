"""Proposals on a real database: single use under racing clicks, and the table's own rules."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.db import tables as t
from domain.db.uow import utcnow
from domain.errors import Conflict
from domain.services import confirmations
from tests.integration.test_concurrency import race, unexpected

PROPOSAL = {"tool": "decide_approval", "args": {"approval": "APR-00001", "decision": "approve"},
            "summary": "Approve APR-00001"}


def _propose(uow_factory, actor):
    with uow_factory() as uow:
        made = confirmations.propose_action(PROPOSAL, actor=actor, uow=uow)
        uow.commit()
    return made


def test_racing_confirmations_of_one_token_run_it_once(uow_factory, org, engine):
    for _ in range(5):
        made = _propose(uow_factory, org.actor("manager"))

        def click(_: int):
            with uow_factory() as uow:
                action = confirmations.confirm_action(made.token, actor=org.actor("manager"), uow=uow)
                uow.commit()
            return action

        results = race(4, click)
        unexpected(results, Conflict)
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 1
        with engine.connect() as conn:
            assert conn.execute(select(t.pending_actions.c.status).where(
                t.pending_actions.c.id == made.id)).scalar_one() == "confirmed"


def test_the_table_refuses_a_decided_time_on_a_pending_proposal(uow_factory, org, engine):
    made = _propose(uow_factory, org.actor("manager"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(update(t.pending_actions).where(t.pending_actions.c.id == made.id).values(decided_at=utcnow()))


@pytest.mark.parametrize("bad", [{"status": "done"}, {"expires_at_delta": -1}])
def test_the_table_refuses_unknown_statuses_and_lifetimes_that_end_before_they_start(engine, org, bad):
    now = utcnow()
    row = {"token_hash": "x" * 64, "user_id": org["rep"], "tool": "t", "args": {}, "summary": "s",
           "created_at": now, "expires_at": now + timedelta(minutes=bad.get("expires_at_delta", 10)),
           "status": bad.get("status", "pending")}
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(t.pending_actions).values(**row))
