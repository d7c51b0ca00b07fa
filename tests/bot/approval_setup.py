"""What the approval-card tests of every chat surface set up: a deal past solution review with a
draft quote, use cases run in their own unit of work, and waiting for background work."""
from __future__ import annotations

import time

from domain.services import opportunities, quotes
from tests import builders


def call(rig, fn, *args, **kwargs):
    """Run one use case in its own unit of work and commit it."""
    with rig.app.uow() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


def quote_for_approval(rig, discount: str) -> tuple[int, object]:
    """(deal, quote): a deal past solution review with a draft quote at `discount` %."""
    org = rig.org
    builders.seed_catalog(rig.app.uow, org)
    opp = builders.make_deal(rig.app.uow, org)
    builders.run_gate(rig.app.uow, org, opp, "ATI", ["manager"])
    call(rig, opportunities.record_solution, opp, "Cloud MES", actor=org.actor("sr"))
    call(rig, opportunities.record_delivery_plan, opp, "Two waves", actor=org.actor("fr"))
    builders.run_gate(rig.app.uow, org, opp, "solution_review", ["manager"])
    quote = call(rig, quotes.create_quote, opp, {"lines": [
        {"product": "MES-LIC", "quantity": "500", "discount_pct": discount}]}, actor=org.actor("rep"))
    return opp, quote


def wait(fn, timeout: float = 20.0):
    """`fn()` once it is truthy (lazy listeners and outbox workers run in threads)."""
    deadline = time.monotonic() + timeout
    while not (found := fn()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)
    return found
