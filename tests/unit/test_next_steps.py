"""What next on a deal: the blocking items, by owner, most blocking first."""
from __future__ import annotations

import pytest

from domain.errors import NotFound, PermissionDenied
from domain.services import approvals, opportunities
from domain.services.next_steps import next_steps
from tests.unit.conftest import drive_to, new_deal


def kinds(view):
    return [(i.kind, i.owner_role) for i in view.items]


def test_a_fresh_deal_without_sr_and_fr_needs_its_seats_first(run, org, uow_factory):
    opp = new_deal(uow_factory, org, triangle=False)
    view = run(next_steps, opp, actor=org.actor("rep"))
    assert view.next_gate == "ATI" and view.asker_seat == "AR"
    assert kinds(view)[:2] == [("missing_seat", "AR"), ("missing_seat", "AR")]
    assert ("gate_material", "AR") in kinds(view)
    assert any("SR (solution responsible) assigned" in i.text for i in view.items)


def test_when_every_material_is_there_the_next_step_is_to_request_the_gate(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    run(opportunities.update_opportunity, opp, {"next_step": "Workshop with the plant manager"},
        actor=org.actor("rep"))
    view = run(next_steps, opp, actor=org.actor("rep"))
    assert kinds(view) == [("request_gate", "AR")]


def test_solution_review_materials_are_owned_by_sr_and_fr(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    drive_to(uow_factory, org, opp, "initiated")
    view = run(next_steps, opp, actor=org.actor("sr"))
    assert view.next_gate == "solution_review" and view.asker_seat == "SR"
    owners = {i.owner_role for i in view.items if i.kind == "gate_material"}
    assert owners == {"SR", "FR"}


def test_a_pending_request_shows_who_must_decide(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    req = run(approvals.request_gate, opp, "ATI", actor=org.actor("rep"))
    view = run(next_steps, opp, actor=org.actor("manager"))
    assert view.asker_seat is None
    assert [i for i in view.items if i.kind == "waiting_decision"][0].text.startswith(f"{req.ref} (ATI) waits")


def test_bid_to_negotiate_needs_no_decision(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    drive_to(uow_factory, org, opp, "bid")
    view = run(next_steps, opp, actor=org.actor("rep"))
    assert view.next_gate is None and ("advance", "AR") in kinds(view)


def test_a_deal_left_alone_for_weeks_is_stale_and_past_its_close_date(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    run(opportunities.update_opportunity, opp, {"expected_close_date": "2025-03-10", "next_step": "Call"},
        actor=org.actor("rep"))
    store.clock.advance(days=30)
    view = run(next_steps, opp, actor=org.actor("rep"))
    assert {"stale", "overdue"} <= {i.kind for i in view.items}


def test_next_steps_respect_visibility(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    with pytest.raises(PermissionDenied):
        run(next_steps, opp, actor=org.actor("rep_w"))
    with pytest.raises(NotFound, match="OPP-99999"):
        run(next_steps, 99999, actor=org.actor("rep"))


def test_a_closed_deal_has_nothing_left_to_do(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    drive_to(uow_factory, org, opp, "lost")
    view = run(next_steps, opp, actor=org.actor("rep"))
    assert view.items == [] and view.next_stage is None
