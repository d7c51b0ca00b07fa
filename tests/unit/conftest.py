"""Unit tests: the domain over in-memory fakes (tests/fakes.py), no database.

Fixtures: `store` (a FakeStore), `uow_factory` (a new FakeUnitOfWork on it per call), `org` (the
standard organisation of tests/builders.py), and small helpers as fixtures: `run` (one use case in
one committed transaction), `deal` (a deal driven to any stage through the real services).
Further along the way to cash, each built once per session through the real services and copied
per test (`cached` does that for any state): `negotiating` (a deal in negotiate, its quote approved),
`accepted` (… and accepted by the customer), `signed` (won, its contract signed by ATC, the advance
invoiced) and `delivered` (… and all delivery accepted, three invoices open).
The org is built once per session and each test starts from its own clone of that store.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from domain.model.opportunities import STAGE_ORDER
from domain.services import approvals, contracts, delivery, opportunities, quotes
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
    """Move an east deal (owned by rep, SR sr, FR fr) from its stage to `stage` the legal way.

    Reaching `won` drafts a contract from the approved quote (sent and accepted) and submits it, as
    ATC requires; the ATC decision signs it and issues the signing invoice."""
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
            builders.contract_under_review(uow_factory, org, opp_id)  # ATC signs it
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


# --- cached states: built once per session through the real services, restored per test ------------

_SNAPSHOTS: dict = {}


def _copy(store: FakeStore) -> FakeStore:
    return pickle.loads(pickle.dumps(store, pickle.HIGHEST_PROTOCOL))


@pytest.fixture
def cached(_base, store):
    """`cached(key, build)`: the store becomes the state `build(uow_factory)` makes from the bare org.

    `build` runs once per session (per key) on a fresh copy of the org; each test gets its own copy
    of the result, so it may change it freely. Call it first, before the test writes anything.
    Returns what `build` returned (ids).
    """
    def use(key, build: Callable):
        assert store.commits == _base[0].commits, "use a cached state before writing anything else"
        if key not in _SNAPSHOTS:
            scratch = _copy(_base[0])
            result = build(lambda: FakeUnitOfWork(scratch))
            _SNAPSHOTS[key] = (_copy(scratch), result)
        snapshot, result = _SNAPSHOTS[key]
        store.__dict__.update(_copy(snapshot).__dict__)
        return result
    return use


@dataclass(frozen=True)
class Signed:
    opp: int
    contract: int
    quote: int


def accept_the_quote(uow_factory, org, opp_id: int, *, owner: str = "rep") -> int:
    """Send and accept the deal's approved quote (the bare one `drive_to` made); returns its id."""
    with uow_factory() as uow:
        quote_id, status = next((x.id, x.status) for x in reversed(uow.quotes.for_opportunity(opp_id))
                                if x.status in ("approved", "sent", "accepted"))
    if status == "approved":
        run_in(uow_factory, quotes.send_quote, quote_id, actor=org.actor(owner))
    if status in ("approved", "sent"):
        run_in(uow_factory, quotes.accept_quote, quote_id, actor=org.actor(owner))
    return quote_id


def build_signed(uow_factory, org, *, milestones: list[dict] | None = None, n: int = 101, owner: str = "rep",
                 terms: int | None = None, amount: str = "500000") -> Signed:
    """A deal of `owner` won through every gate; its contract (default plan 30/60/10, or `milestones`)
    drafted from the accepted quote and signed by the ATC decision (which issues the signing invoices)."""
    opp_id = new_deal(uow_factory, org, owner=owner, n=n, amount=amount)
    drive_to(uow_factory, org, opp_id, "negotiate", requester=owner)
    run_in(uow_factory, opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
    quote_id = accept_the_quote(uow_factory, org, opp_id, owner=owner)
    data: dict = {"quote_id": quote_id}
    if milestones is not None:
        data["milestones"] = milestones
    if terms is not None:
        data["payment_terms_days"] = terms
    contract = run_in(uow_factory, contracts.create_contract, data, actor=org.actor(owner))
    run_in(uow_factory, contracts.submit_contract, contract.id, actor=org.actor(owner))
    _gate(uow_factory, org, opp_id, "ATC", ["director", "finance"], owner)
    return Signed(opp=opp_id, contract=contract.id, quote=quote_id)


@pytest.fixture
def signed(cached, org):
    """`signed(milestones=None, *, n=101, owner="rep", terms=None, amount="500000")` → Signed(opp, contract,
    quote): the store becomes (a copy of) that state, built once per session. Call it first."""
    def make(milestones: list[dict] | None = None, **kwargs) -> Signed:
        key = ("signed", json.dumps(milestones, sort_keys=True), json.dumps(kwargs, sort_keys=True))
        return cached(key, lambda f: build_signed(f, org, milestones=milestones, **kwargs))
    return make


@dataclass(frozen=True)
class Negotiating:
    opp: int
    quote: int  # approved, not yet sent


def build_negotiating(uow_factory, org, *, n: int = 201, amount: str = "500000") -> Negotiating:
    """A deal in negotiate, the FR's sign-off given, its approved quote not yet sent."""
    opp = new_deal(uow_factory, org, n=n, amount=amount)
    drive_to(uow_factory, org, opp, "negotiate")
    run_in(uow_factory, opportunities.sign_off_deliverability, opp, actor=org.actor("fr"))
    with uow_factory() as uow:
        quote = uow.quotes.for_opportunity(opp)[-1].id
    return Negotiating(opp, quote)


@pytest.fixture
def negotiating(cached, org):
    """`negotiating(n=201, amount="500000")` → Negotiating(opp, quote); the store becomes that state.

    Call it first."""
    return lambda **kw: cached(("negotiating", tuple(sorted(kw.items()))),
                               lambda f: build_negotiating(f, org, **kw))


@pytest.fixture
def accepted(negotiating, uow_factory, org):
    """A deal in negotiate whose quote the customer accepted: what a contract is drafted from."""
    def make(**kw) -> Negotiating:
        deal = negotiating(**kw)
        accept_the_quote(uow_factory, org, deal.opp)
        return deal
    return make


def deliver_all(uow_factory, org, contract_id: int) -> int:
    """The FR opens the order (install, then final acceptance, both today) and the customer accepts both."""
    today = uow_factory().store.clock.current.date().isoformat()
    fr = org.actor("fr")
    order = run_in(uow_factory, delivery.create_order, contract_id, {"milestones": [
        {"name": "Install", "planned_date": today},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}, actor=fr)
    for seq in (1, 2):
        run_in(uow_factory, delivery.mark_delivered, order.id, seq, actor=fr)
        run_in(uow_factory, delivery.accept_milestone, order.id, seq, {"certificate_ref": f"CERT-{seq}"}, actor=fr)
    return order.id


@pytest.fixture
def delivered(cached, org) -> Signed:
    """A signed 500,000 contract (30/60/10), all delivery accepted (completed), its three invoices unpaid."""
    def build(f):
        deal = build_signed(f, org)
        deliver_all(f, org, deal.contract)
        return deal
    return cached(("delivered",), build)
