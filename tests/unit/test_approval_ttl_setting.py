"""LTC_APPROVAL_TTL_HOURS decides when a new approval request expires."""
from __future__ import annotations

import pytest

from domain.services import approvals
from domain.settings import get_settings
from tests.unit.conftest import new_deal


@pytest.fixture
def ttl(monkeypatch):
    def set_hours(hours: int) -> None:
        monkeypatch.setenv("LTC_APPROVAL_TTL_HOURS", str(hours))
        get_settings.cache_clear()

    yield set_hours
    get_settings.cache_clear()


@pytest.mark.parametrize("hours", [1, 72, 200])
def test_a_gate_request_expires_after_the_configured_hours(ttl, hours, run, org, uow_factory, store):
    ttl(hours)
    opp = new_deal(uow_factory, org)
    view = run(approvals.request_gate, opp, "ATI", actor=org.actor("rep"))
    row = store.get("approvals", view.id)
    assert (row.expires_at - row.created_at).total_seconds() == hours * 3600


def test_an_explicit_lifetime_still_wins(ttl, run, org, uow_factory, store):
    ttl(5)
    opp = new_deal(uow_factory, org)
    view = run(approvals.request_gate, opp, "ATI", actor=org.actor("rep"), ttl_hours=2)
    row = store.get("approvals", view.id)
    assert (row.expires_at - row.created_at).total_seconds() == 2 * 3600
