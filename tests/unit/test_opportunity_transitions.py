"""Opportunity stage machine: every (from, to) pair, gates, reasons, probabilities, history."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import ApprovalRequired, InvalidTransition, ValidationFailed
from domain.model.opportunities import TRANSITIONS, Opportunity
from domain.model.vocab import Stage
from domain.services import approvals, opportunities

STAGES = ["qualify", "initiated", "solution", "bid", "negotiate", "won", "lost", "abandoned"]
OPEN = ["qualify", "initiated", "solution", "bid", "negotiate"]
CLOSED = ["won", "lost", "abandoned"]

# The spec by hand: one step forward, or out with a reason; nothing after a closed stage.
EXPECTED = {
    "qualify": ["initiated", "lost", "abandoned"],
    "initiated": ["solution", "lost", "abandoned"],
    "solution": ["bid", "lost", "abandoned"],
    "bid": ["negotiate", "lost", "abandoned"],
    "negotiate": ["won", "lost", "abandoned"],
    "won": [], "lost": [], "abandoned": [],
}
GATED = {("qualify", "initiated"): "ATI", ("initiated", "solution"): "solution_review",
         ("solution", "bid"): "ATB", ("negotiate", "won"): "ATC"}
PROBABILITY = {"qualify": 10, "initiated": 20, "solution": 40, "bid": 60, "negotiate": 80,
               "won": 100, "lost": 0, "abandoned": 0}


def _attempt(run, org, opp_id: int, dst: str):
    if dst in ("lost", "abandoned"):
        return run(opportunities.close_opportunity, opp_id, dst, "budget frozen", actor=org.actor("rep"))
    return run(opportunities.advance_stage, opp_id, dst, actor=org.actor("rep"))


def test_the_stage_table_in_the_model_is_the_one_the_spec_gives():
    assert {s.value: {t.value for t in to} for s, to in TRANSITIONS.items()} == \
        {s: set(to) for s, to in EXPECTED.items()}
    assert set(STAGES) == {s.value for s in Stage}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STAGES, STAGES)))
def test_stage_transition_through_the_services(src, dst, deal, run, org, store):
    opp_id = deal(src)
    before = store.get("opportunities", opp_id)
    assert before.stage == src
    history_len, approvals_n = len(before.history), store.count("approvals")
    legal = dst in EXPECTED[src]
    assert legal == (Stage(dst) in TRANSITIONS[Stage(src)])
    if not legal:
        with pytest.raises(InvalidTransition) as err:
            _attempt(run, org, opp_id, dst)
        assert err.value.allowed == EXPECTED[src]
        assert (src in err.value.message) and (dst in err.value.message)
        if src in CLOSED:
            assert "closed" in err.value.message
    elif (src, dst) in GATED:
        with pytest.raises(ApprovalRequired) as err:
            _attempt(run, org, opp_id, dst)
        assert err.value.details["gate"] == GATED[(src, dst)]
        assert GATED[(src, dst)] in err.value.message
    else:
        view = _attempt(run, org, opp_id, dst)
        assert view.stage == dst and view.probability == PROBABILITY[dst]
        after = store.get("opportunities", opp_id)
        assert after.stage == dst and len(after.history) == history_len + 1
        assert (after.history[-1].from_stage, after.history[-1].to_stage) == (src, dst)
        assert store.count("approvals") == approvals_n  # free moves open no request
        return
    after = store.get("opportunities", opp_id)
    assert (after.stage, after.probability, len(after.history)) == (src, PROBABILITY[src], history_len)


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STAGES, STAGES)))
def test_stage_model_move_to_follows_the_table(src, dst):
    opp = Opportunity(name="d", account_id=1, owner_id=1, amount=Decimal(1), currency="CNY", stage=src, id=3)
    if dst in EXPECTED[src]:
        opp.move_to(Stage(dst), probability=PROBABILITY[dst], at=datetime(2025, 1, 1), by=1, reason="r")
        assert opp.stage == dst and opp.history[-1].to_stage == dst
    else:
        with pytest.raises(InvalidTransition):
            opp.move_to(Stage(dst), probability=0, at=datetime(2025, 1, 1), by=1, reason="r")
        assert opp.stage == src and opp.history == []


@pytest.mark.parametrize("src", OPEN)
@pytest.mark.parametrize("outcome", ["lost", "abandoned"])
def test_lost_and_abandoned_need_a_reason_from_every_open_stage(src, outcome, deal, run, org, store):
    opp_id = deal(src)
    for reason in (None, "", "   "):
        with pytest.raises(ValidationFailed) as err:
            run(opportunities.close_opportunity, opp_id, outcome, reason, actor=org.actor("rep"))
        assert err.value.field == "reason"
        assert store.get("opportunities", opp_id).stage == src
    view = run(opportunities.close_opportunity, opp_id, outcome, "  customer merged with a rival ",
               actor=org.actor("rep"))
    assert (view.stage, view.probability, view.close_reason) == (outcome, 0, "customer merged with a rival")
    assert view.history[-1].reason == "customer merged with a rival"
    assert view.allowed_next == [] and view.next_gate is None


@pytest.mark.parametrize("src", CLOSED)
def test_closed_stages_are_final(src, deal, run, org, store):
    opp_id = deal(src)
    frozen = store.get("opportunities", opp_id)
    rep, sr, fr = org.actor("rep"), org.actor("sr"), org.actor("fr")
    attempts = [
        (InvalidTransition, lambda: run(opportunities.close_opportunity, opp_id, "lost", "late", actor=rep)),
        (InvalidTransition, lambda: run(opportunities.advance_stage, opp_id, "negotiate", actor=rep)),
        (ValidationFailed, lambda: run(opportunities.advance_stage, opp_id, actor=rep)),  # no next stage
        (ValidationFailed, lambda: run(opportunities.update_opportunity, opp_id, {"amount": "1"}, actor=rep)),
        (ValidationFailed, lambda: run(opportunities.assign_iron_triangle, opp_id, sr_id=org["sr"], actor=rep)),
        (ValidationFailed, lambda: run(opportunities.record_solution, opp_id, "new idea", actor=sr)),
        (ValidationFailed, lambda: run(opportunities.record_delivery_plan, opp_id, "new plan", actor=fr)),
        (InvalidTransition, lambda: run(approvals.request_gate, opp_id, "ATC", actor=rep)),
    ]
    for error, call in attempts:
        with pytest.raises(error):
            call()
    after = store.get("opportunities", opp_id)
    assert (after.stage, after.probability, after.amount, len(after.history)) == \
        (frozen.stage, frozen.probability, frozen.amount, len(frozen.history))


def test_probability_follows_the_policy_at_every_stage(deal, store):
    opp_id = deal("qualify")
    seen = [store.get("opportunities", opp_id).probability]
    for stage in ["initiated", "solution", "bid", "negotiate", "won"]:
        opp_id_stage = deal(stage)
        opp = store.get("opportunities", opp_id_stage)
        assert opp.probability == PROBABILITY[stage]
        seen.append(opp.probability)
    assert seen == [10, 20, 40, 60, 80, 100]


def test_probability_comes_from_the_policy_rows_not_the_code(deal, uow_factory, run, org, store):
    with uow_factory() as uow:
        next(p for p in uow.tables["stage_policies"].values() if p.stage == "negotiate").probability = 75
        uow.commit()
    opp_id = deal("bid")
    view = run(opportunities.advance_stage, opp_id, actor=org.actor("rep"))
    assert view.probability == 75 and view.history[-1].probability == 75


def test_history_is_appended_per_move_and_never_goes_back_in_time(deal, store, org):
    opp_id = deal("won")
    opp = store.get("opportunities", opp_id)
    assert [h.to_stage for h in opp.history] == ["qualify", "initiated", "solution", "bid", "negotiate", "won"]
    assert [h.from_stage for h in opp.history] == [None, "qualify", "initiated", "solution", "bid", "negotiate"]
    assert [h.probability for h in opp.history] == [10, 20, 40, 60, 80, 100]
    times = [h.changed_at for h in opp.history]
    assert times == sorted(times)
    assert opp.stage_changed_at == times[-1]
    gated = {h.to_stage: h.approval_id for h in opp.history}
    assert all(gated[s] is not None for s in ("initiated", "solution", "bid", "won"))
    assert gated["negotiate"] is None
    decided_by = {h.to_stage: h.changed_by for h in opp.history}
    assert decided_by["initiated"] == org["manager"] and decided_by["won"] == org["finance"]
    assert len({h.id for h in opp.history}) == 6  # every history row has its own id


def test_history_stays_monotonic_when_the_clock_goes_backwards(deal, store, run, org):
    opp_id = deal("bid")
    last = store.get("opportunities", opp_id).history[-1].changed_at
    store.clock.current = last - timedelta(days=3)
    view = run(opportunities.advance_stage, opp_id, actor=org.actor("rep"))
    times = [h.changed_at for h in view.history]
    assert times == sorted(times) and times[-1] == last


def test_advance_on_a_gated_move_names_the_gate_and_what_is_missing(deal, run, org, store):
    opp_id = deal("qualify", triangle=False)
    with pytest.raises(ApprovalRequired) as err:
        run(opportunities.advance_stage, opp_id, actor=org.actor("rep"))
    assert err.value.details["gate"] == "ATI"
    assert err.value.missing == ["SR (solution responsible) assigned", "FR (fulfillment responsible) assigned"]
    assert err.value.details["missing_names"] == ["triangle_complete.sr", "triangle_complete.fr"]
    assert "ATI" in err.value.message and "SR (solution responsible) assigned" in err.value.message
    assert store.get("opportunities", opp_id).stage == "qualify"


def test_advance_on_a_gated_move_with_a_pending_request_points_at_it(deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    with pytest.raises(ApprovalRequired) as err:
        run(opportunities.advance_stage, opp_id, actor=org.actor("rep"))
    assert err.value.missing == [] and req.ref in err.value.message
    view = run(opportunities.get_opportunity, opp_id, actor=org.actor("rep"))
    assert view.next_gate.kind == "ATI" and view.next_gate.pending_approval_id == req.id


def test_bid_to_negotiate_is_free(deal, run, org, store):
    opp_id = deal("bid")
    approvals_n, events = store.count("approvals"), store.count("outbox")
    view = run(opportunities.advance_stage, opp_id, actor=org.actor("rep"))
    assert view.stage == "negotiate" and view.probability == 80
    assert view.history[-1].approval_id is None
    assert store.count("approvals") == approvals_n
    new = store.rows("outbox")[events:]
    assert [m.topic for m in new] == ["OpportunityStageChanged"]
    assert new[0].payload["from_stage"] == "bid" and new[0].payload["to_stage"] == "negotiate"
    assert store.rows("audit")[-1].action == "stage:negotiate"


def test_advance_refuses_lost_and_unknown_targets(deal, run, org, store):
    opp_id = deal("qualify")
    with pytest.raises(ValidationFailed, match="close_opportunity"):
        run(opportunities.advance_stage, opp_id, "lost", actor=org.actor("rep"))
    with pytest.raises(ValidationFailed) as err:
        run(opportunities.advance_stage, opp_id, "signed", actor=org.actor("rep"))
    assert "won" in err.value.allowed
    with pytest.raises(ValidationFailed):
        run(opportunities.close_opportunity, opp_id, "won", "we won", actor=org.actor("rep"))
    assert store.get("opportunities", opp_id).stage == "qualify"


def test_closing_a_deal_cancels_its_pending_gate_requests(deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    run(opportunities.close_opportunity, opp_id, "abandoned", "project frozen", actor=org.actor("rep"))
    assert store.get("approvals", req.id).status == "cancelled"
    assert "ApprovalClosed" in store.topics()
