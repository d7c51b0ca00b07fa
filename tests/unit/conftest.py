"""Unit tests: the domain over in-memory fakes (tests/fakes.py), no database.

Fixtures: `store` (a FakeStore), `uow_factory` (a new FakeUnitOfWork on it per call), `org` (the
standard organisation of tests/builders.py), and small helpers as fixtures: `run` (one use case in
one committed transaction), `deal` (a deal driven to any stage through the real services).
The org is built once per session and each test starts from its own clone of that store.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from domain.model.opportunities import STAGE_ORDER
from domain.services import approvals, opportunities
from tests import builders
from tests.fakes import FakeStore, FakeUnitOfWork


@pytest.fixture(scope="session")
def _base() -> tuple[FakeStore, builders.Org]:
    store = FakeStore()
    org = builders.build_org(lambda: FakeUnitOfWork(store))
    return store, org


@pytest.fixture
def store(_base) -> FakeStore:
    return _base[0].clone()


@pytest.fixture
def uow_factory(store) -> Callable[[], FakeUnitOfWork]:
    return lambda: FakeUnitOfWork(store)


@pytest.fixture
def org(_base) -> builders.Org:
    return builders.Org(dict(_base[1].ids))


def run_in(uow_factory, fn, *args, **kwargs):
    """Call one service in one transaction and commit; an error leaves the block uncommitted."""
    with uow_factory() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


@pytest.fixture
def run(uow_factory):
    return lambda fn, *args, **kwargs: run_in(uow_factory, fn, *args, **kwargs)


def new_deal(uow_factory, org, *, owner: str = "rep", n: int = 1, triangle: bool = True,
             amount: str = "500000", region: str = "east") -> int:
    """A qualified lead of `owner` converted into a deal in stage qualify (need and budget set)."""
    return builders.make_deal(uow_factory, org, n=n, amount=amount, triangle=triangle, owner=owner, region=region)


def drive_to(uow_factory, org, opp_id: int, stage: str, *, requester: str = "rep") -> None:
    """Move an east deal (owned by rep, SR sr, FR fr) from its stage to `stage` the legal way."""
    if stage in ("lost", "abandoned"):
        run_in(uow_factory, opportunities.close_opportunity, opp_id, stage, "customer chose a competitor",
               actor=org.actor(requester))
        return
    with uow_factory() as uow:
        current = uow.opportunities.get(opp_id).stage
    for target in STAGE_ORDER[STAGE_ORDER.index(current) + 1: STAGE_ORDER.index(stage) + 1]:
        if target == "initiated":
            _gate(uow_factory, org, opp_id, "ATI", ["manager"], requester)
        elif target == "solution":
            run_in(uow_factory, opportunities.record_solution, opp_id, "Cloud MES with edge gateways",
                   actor=org.actor("sr"))
            run_in(uow_factory, opportunities.record_delivery_plan, opp_id, "Two waves, 6 months",
                   actor=org.actor("fr"))
            _gate(uow_factory, org, opp_id, "solution_review", ["manager"], requester)
        elif target == "bid":
            builders.approve_quote(uow_factory, opp_id)
            _gate(uow_factory, org, opp_id, "ATB", ["manager", "director"], requester)
        elif target == "negotiate":
            run_in(uow_factory, opportunities.advance_stage, opp_id, actor=org.actor(requester))
        elif target == "won":
            run_in(uow_factory, opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
            _gate(uow_factory, org, opp_id, "ATC", ["director", "finance"], requester)


def _gate(uow_factory, org, opp_id, kind, deciders, requester):
    req = run_in(uow_factory, approvals.request_gate, opp_id, kind, actor=org.actor(requester))
    for who in deciders:
        run_in(uow_factory, approvals.decide_approval, req.id, "approve", actor=org.actor(who))


@pytest.fixture
def deal(uow_factory, org):
    """`deal(stage="bid", owner="rep", n=1, triangle=True)` → id of a deal in that stage."""
    counter = iter(range(1, 10_000))

    def make(stage: str = "qualify", *, owner: str = "rep", n: int | None = None, triangle: bool = True,
             region: str = "east") -> int:
        opp_id = new_deal(uow_factory, org, owner=owner, n=n or next(counter), triangle=triangle, region=region)
        if stage != "qualify":
            drive_to(uow_factory, org, opp_id, stage)
        return opp_id

    return make
