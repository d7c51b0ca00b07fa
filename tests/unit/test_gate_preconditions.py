"""Decision gates (ATI, solution review, ATB, ATC): preconditions, routing, deciders, closing."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, PermissionDenied, ValidationFailed
from domain.model.quotes import Quote
from domain.rbac import UseCase
from domain.services import approvals, contracts, opportunities, quotes, users
from domain.services.base import begin
from tests import builders
from tests.unit.conftest import new_deal

SR = "SR (solution responsible) assigned"
FR = "FR (fulfillment responsible) assigned"
NEED = "customer need (customer_need) filled in"
BUDGET = "customer budget (budget) filled in"
SUMMARY = "SR's solution summary recorded"
PLAN = "FR's delivery plan note recorded"
QUOTE = "an approved quote"
SIGNOFF = "FR's deliverability sign-off"
CONTRACT = "a contract drafted from the accepted quote and submitted for review"

GATES = {"ATI": ("qualify", "initiated"), "solution_review": ("initiated", "solution"),
         "ATB": ("solution", "bid"), "ATC": ("negotiate", "won")}
DECIDERS = {"ATI": ["manager"], "solution_review": ["manager"], "ATB": ["manager", "director"],
            "ATC": ["director", "finance"]}


def _counts(store):
    return {t: store.count(t) for t in ("approvals", "audit", "outbox")}


def _request_fails_with(run, org, store, opp_id, kind, missing):
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(approvals.request_gate, opp_id, kind, actor=org.actor("rep"))
    assert err.value.missing == missing
    assert err.value.field == "preconditions"
    assert all(m in err.value.message for m in missing)
    assert _counts(store) == before  # nothing written


def _quote(uow_factory, opp_id, status, version=1):
    with uow_factory() as uow:
        uow.quotes.add(Quote(opportunity_id=opp_id, version=version, status=status, total=Decimal("9"),
                                   currency="CNY", created_at=uow.now()))
        uow.commit()


# --- ATI: SR, FR, need, budget -------------------------------------------------------------------

@pytest.mark.parametrize(("seats", "changes", "missing"), [
    ({"fr_id": "fr"}, {}, [SR]),
    ({"sr_id": "sr"}, {}, [FR]),
    ({"sr_id": "sr", "fr_id": "fr"}, {"customer_need": None}, [NEED]),
    ({"sr_id": "sr", "fr_id": "fr"}, {"customer_need": "   "}, [NEED]),
    ({"sr_id": "sr", "fr_id": "fr"}, {"budget": None}, [BUDGET]),
    ({}, {"customer_need": None, "budget": None}, [SR, FR, NEED, BUDGET]),
])
def test_ati_names_exactly_what_is_missing(seats, changes, missing, deal, run, org, store):
    opp_id = deal("qualify", triangle=False)
    if seats:
        run(opportunities.assign_iron_triangle, opp_id, actor=org.actor("rep"),
            **{k: org[v] for k, v in seats.items()})
    if changes:
        run(opportunities.update_opportunity, opp_id, changes, actor=org.actor("rep"))
    _request_fails_with(run, org, store, opp_id, "ATI", missing)
    view = run(opportunities.get_opportunity, opp_id, actor=org.actor("rep"))
    assert view.next_gate.kind == "ATI" and view.next_gate.missing == missing


def test_ati_with_everything_in_place_opens_one_request(deal, run, org, store):
    opp_id = deal("qualify")
    view = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    assert (view.kind, view.status, view.current_step, view.subject_id) == ("ATI", "pending", 1, opp_id)
    assert [(s.role, s.scope, s.status) for s in view.steps] == [("sales_manager", "chain", "pending")]
    assert view.eligible_approver_ids == [org["manager"]]
    assert store.get("approvals", view.id).requested_by == org["rep"]
    assert store.topics()[-1] == "ApprovalRequested"
    assert store.rows("audit")[-1].action == "request"


# --- solution review: SR's solution, FR's delivery plan ------------------------------------------

@pytest.mark.parametrize(("record", "missing"), [
    ([], [SUMMARY, PLAN]), (["plan"], [SUMMARY]), (["summary"], [PLAN]), (["summary", "plan"], []),
])
def test_solution_review_needs_solution_summary_and_delivery_plan(record, missing, deal, run, org, store):
    opp_id = deal("initiated")
    if "summary" in record:
        run(opportunities.record_solution, opp_id, "Edge gateways + cloud MES", actor=org.actor("sr"))
    if "plan" in record:
        run(opportunities.record_delivery_plan, opp_id, "Two waves with a local partner", actor=org.actor("fr"))
    if missing:
        _request_fails_with(run, org, store, opp_id, "solution_review", missing)
    else:
        assert run(approvals.request_gate, opp_id, "solution_review", actor=org.actor("rep")).status == "pending"


def test_blank_notes_are_refused_and_do_not_count(deal, run, org, store):
    opp_id = deal("initiated")
    with pytest.raises(ValidationFailed):
        run(opportunities.record_solution, opp_id, "   ", actor=org.actor("sr"))
    assert store.get("opportunities", opp_id).solution_summary is None


# --- ATB: an approved quote ----------------------------------------------------------------------

@pytest.mark.parametrize(("quotes", "ok"), [
    ([], False), (["draft"], False), (["rejected"], False), (["draft", "approved"], True),
    (["sent"], True), (["accepted"], True),
])
def test_atb_needs_an_approved_quote(quotes, ok, deal, run, org, store, uow_factory):
    opp_id = deal("solution")
    for version, status in enumerate(quotes, start=1):
        _quote(uow_factory, opp_id, status, version)
    if ok:
        assert run(approvals.request_gate, opp_id, "ATB", actor=org.actor("rep")).status == "pending"
    else:
        _request_fails_with(run, org, store, opp_id, "ATB", [QUOTE])


def test_a_quote_of_another_deal_does_not_count(deal, run, org, store, uow_factory):
    opp_id, other = deal("solution"), deal("qualify")
    _quote(uow_factory, other, "approved")
    _request_fails_with(run, org, store, opp_id, "ATB", [QUOTE])


# --- ATC: FR's deliverability sign-off and a contract under review ------------------------------

def test_atc_needs_the_frs_deliverability_sign_off(deal, run, org, store, uow_factory):
    opp_id = deal("negotiate")
    builders.contract_under_review(uow_factory, org, opp_id)
    _request_fails_with(run, org, store, opp_id, "ATC", [SIGNOFF])
    with pytest.raises(PermissionDenied):  # only the deal's FR signs; not even an admin
        run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("admin"))
    view = run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
    assert view.deliverability_signed_at is not None
    assert store.get("opportunities", opp_id).deliverability_signed_by == org["fr"]
    assert run(approvals.request_gate, opp_id, "ATC", actor=org.actor("rep")).status == "pending"


def test_atc_lists_both_of_its_preconditions_in_order(deal, run, org, store, uow_factory):
    opp_id = deal("negotiate")
    with uow_factory() as uow:
        gate = next(g for g in uow.policies.gates() if g.kind == "ATC")
    assert gate.preconditions == ["deliverability_signed", "contract_under_review"]
    _request_fails_with(run, org, store, opp_id, "ATC", [SIGNOFF, CONTRACT])
    view = run(opportunities.get_opportunity, opp_id, actor=org.actor("rep"))
    assert view.next_gate.kind == "ATC" and view.next_gate.missing == [SIGNOFF, CONTRACT]


def test_atc_needs_the_contract_submitted_not_just_drafted(deal, run, org, store):
    opp_id = deal("negotiate")
    run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
    _request_fails_with(run, org, store, opp_id, "ATC", [CONTRACT])
    quote_id = next(q.id for q in store.rows("quotes") if q.opportunity_id == opp_id)
    run(quotes.send_quote, quote_id, actor=org.actor("rep"))
    run(quotes.accept_quote, quote_id, actor=org.actor("rep"))
    draft = run(contracts.create_contract, {"quote_id": quote_id}, actor=org.actor("rep"))
    _request_fails_with(run, org, store, opp_id, "ATC", [f"contract {draft.number} submitted for review"])
    run(contracts.submit_contract, draft.id, actor=org.actor("rep"))
    assert run(approvals.request_gate, opp_id, "ATC", actor=org.actor("rep")).status == "pending"


def test_sign_off_needs_a_delivery_plan_first(deal, run, org, store):
    opp_id = deal("initiated")
    with pytest.raises(ValidationFailed) as err:
        run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
    assert err.value.missing == [PLAN]
    assert store.get("opportunities", opp_id).deliverability_signed_at is None


# --- requesting ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "stage"), [
    (k, s) for k in GATES for s in ("qualify", "initiated", "solution", "bid", "negotiate", "won", "lost")
    if GATES[k][0] != s])
def test_requesting_a_gate_from_the_wrong_stage_is_an_invalid_transition(kind, stage, deal, run, org, store):
    opp_id = deal(stage)
    before = _counts(store)
    with pytest.raises(InvalidTransition) as err:
        run(approvals.request_gate, opp_id, kind, actor=org.actor("rep"))
    here = [k for k, (src, _) in GATES.items() if src == stage]
    assert err.value.allowed == here
    assert GATES[kind][0] in err.value.message and stage in err.value.message
    assert _counts(store) == before


def test_unknown_gate_kind_lists_the_gates(deal, run, org):
    opp_id = deal("qualify")
    with pytest.raises(ValidationFailed) as err:
        run(approvals.request_gate, opp_id, "discount", actor=org.actor("rep"))
    assert err.value.allowed == list(GATES)


def test_a_duplicate_request_returns_the_pending_one(deal, run, org, store):
    opp_id = deal("qualify")
    first = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    before = _counts(store)
    again = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("manager"))
    assert again.id == first.id and again.requested_by == org["rep"]
    assert "already waiting" in again.message
    assert _counts(store) == before


# --- deciding --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(GATES))
def test_approval_moves_the_stage_and_emits_gate_passed(kind, deal, run, org, store, uow_factory):
    src, dst = GATES[kind]
    opp_id = deal(src)
    if kind == "ATB":
        builders.approve_quote(uow_factory, opp_id)
    if kind == "solution_review":
        run(opportunities.record_solution, opp_id, "Cloud MES", actor=org.actor("sr"))
        run(opportunities.record_delivery_plan, opp_id, "Two waves", actor=org.actor("fr"))
    if kind == "ATC":
        run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
        builders.contract_under_review(uow_factory, org, opp_id)
    req = run(approvals.request_gate, opp_id, kind, actor=org.actor("rep"))
    mark = store.count("outbox")
    for who in DECIDERS[kind]:
        assert store.get("opportunities", opp_id).stage == src  # nothing moves before the last step
        view = run(approvals.decide_approval, req.id, "approve", actor=org.actor(who))
    assert view.status == "approved" and view.closed_at is not None
    opp = store.get("opportunities", opp_id)
    assert opp.stage == dst and opp.history[-1].approval_id == req.id
    assert opp.history[-1].changed_by == org[DECIDERS[kind][-1]]
    new = store.rows("outbox")[mark:]
    by_topic = {m.topic: m.payload for m in new}
    assert by_topic["GatePassed"] == {"opportunity_id": opp_id, "approval_id": req.id, "kind": kind}
    assert by_topic["OpportunityStageChanged"]["to_stage"] == dst
    assert by_topic["OpportunityStageChanged"]["approval_id"] == req.id
    assert [m.topic for m in new].count("ApprovalDecided") == len(DECIDERS[kind])
    assert [m.topic for m in new].count("ApprovalStepOpened") == len(DECIDERS[kind]) - 1
    if kind == "ATC":  # the approval signs the contract under review
        assert "ContractSigned" in by_topic
        assert next(c for c in store.rows("contracts") if c.opportunity_id == opp_id).status == "signed"


@pytest.mark.parametrize("kind", ["ATI", "ATB"])
def test_rejection_keeps_the_stage_records_the_comment_and_emits_gate_rejected(kind, deal, run, org, store,
                                                                              uow_factory):
    src = GATES[kind][0]
    opp_id = deal(src)
    if kind == "ATB":
        builders.approve_quote(uow_factory, opp_id)
    req = run(approvals.request_gate, opp_id, kind, actor=org.actor("rep"))
    mark = store.count("outbox")
    view = run(approvals.decide_approval, req.id, "reject", comment="  margin too thin ", actor=org.actor("manager"))
    assert view.status == "rejected"
    assert [(d.outcome, d.comment, d.decider_id) for d in view.decisions] == \
        [("reject", "margin too thin", org["manager"])]
    assert [s.status for s in view.steps] == ["rejected"] + ["skipped"] * (len(view.steps) - 1)
    assert store.get("opportunities", opp_id).stage == src
    rejected = [m for m in store.rows("outbox")[mark:] if m.topic == "GateRejected"]
    assert [m.payload for m in rejected] == [
        {"opportunity_id": opp_id, "approval_id": req.id, "kind": kind, "reason": "margin too thin"}]
    assert "OpportunityStageChanged" not in [m.topic for m in store.rows("outbox")[mark:]]
    again = run(approvals.request_gate, opp_id, kind, actor=org.actor("rep"))  # may ask again
    assert again.id != req.id and again.status == "pending"


@pytest.mark.parametrize("comment", [None, "", "   "])
def test_reject_without_a_comment_fails(comment, deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    before = _counts(store)
    with pytest.raises(ValidationFailed) as err:
        run(approvals.decide_approval, req.id, "reject", comment=comment, actor=org.actor("manager"))
    assert err.value.field == "comment"
    assert store.get("approvals", req.id).decisions == [] and _counts(store) == before


def test_unknown_outcome_is_refused(deal, run, org):
    req = run(approvals.request_gate, deal("qualify"), "ATI", actor=org.actor("rep"))
    with pytest.raises(ValidationFailed) as err:
        run(approvals.decide_approval, req.id, "maybe", actor=org.actor("manager"))
    assert err.value.allowed == ["approve", "reject", "revise"]


def _custom_request(uow_factory, org, opp_id, requester, steps):
    """A non-gate request (kind discount) on a deal, opened by `requester`, via the engine."""
    with uow_factory() as uow:
        ctx = begin(uow, org.actor(requester), UseCase.VIEW_OPPORTUNITY)
        req = approvals.open_request(uow, ctx, kind="discount", subject_type="opportunity", subject_id=opp_id,
                                     title="discount 15%", steps=steps, context={})
        uow.commit()
        return req.id


def test_the_requester_cannot_decide(deal, run, org, store, uow_factory):
    opp_id = deal("qualify")
    req_id = _custom_request(uow_factory, org, opp_id, "manager", [{"role": "sales_manager", "scope": "any"}])
    with pytest.raises(PermissionDenied, match="you requested this decision"):
        run(approvals.decide_approval, req_id, "approve", actor=org.actor("manager"))
    assert store.get("approvals", req_id).decisions == []
    view = run(approvals.decide_approval, req_id, "approve", actor=org.actor("manager_w"))
    assert view.status == "approved"


def test_the_deal_owner_cannot_decide(deal, run, org, store, uow_factory):
    opp_id = deal("qualify", owner="manager")
    req_id = _custom_request(uow_factory, org, opp_id, "sales_ops", [{"role": "sales_manager", "scope": "any"}])
    with pytest.raises(PermissionDenied, match="you own"):
        run(approvals.decide_approval, req_id, "approve", actor=org.actor("manager"))
    assert store.get("approvals", req_id).decisions == []


def test_region_scoped_steps_take_deciders_from_the_deals_region(deal, run, org, store, uow_factory):
    opp_id = deal("qualify")
    req_id = _custom_request(uow_factory, org, opp_id, "rep", [{"role": "sales_manager", "scope": "region"}])
    with pytest.raises(PermissionDenied, match="cannot see|in region east"):
        run(approvals.decide_approval, req_id, "approve", actor=org.actor("manager_w"))
    assert run(approvals.decide_approval, req_id, "approve", actor=org.actor("manager")).status == "approved"
    assert store.get("opportunities", opp_id).stage == "qualify"  # not a gate: nothing moves


def test_the_rep_who_owns_and_requested_cannot_decide_the_gate(deal, run, org, store):
    req = run(approvals.request_gate, deal("qualify"), "ATI", actor=org.actor("rep"))
    with pytest.raises(PermissionDenied):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("rep"))
    assert store.get("approvals", req.id).decisions == []


def test_a_request_nobody_could_decide_is_refused(deal, run, org, store):
    # The manager asks for ATI on their rep's deal: the only sales manager in the chain is the requester.
    opp_id = deal("qualify")
    before = _counts(store)
    with pytest.raises(ValidationFailed, match="Nobody can decide step 1"):
        run(approvals.request_gate, opp_id, "ATI", actor=org.actor("manager"))
    assert _counts(store) == before


@pytest.mark.parametrize("who", ["manager_w", "director_w", "finance", "legal", "admin"])
def test_deciders_outside_the_step_cannot_decide(who, deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    with pytest.raises(PermissionDenied) as err:
        run(approvals.decide_approval, req.id, "approve", actor=org.actor(who))
    assert req.ref in err.value.message
    if who == "manager_w":  # another region's manager does not even see the deal
        assert "cannot see" in err.value.message or "management chain" in err.value.message
    assert store.get("approvals", req.id).decisions == []
    assert store.get("opportunities", opp_id).stage == "qualify"


def test_deciding_twice_returns_the_recorded_outcome(deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    before = _counts(store)
    again = run(approvals.decide_approval, req.id, "reject", comment="changed my mind", actor=org.actor("manager"))
    assert again.status == "approved" and "Already recorded" in again.message and "approve" in again.message
    late = run(approvals.decide_approval, req.id, "approve", actor=org.actor("admin"))
    assert "already approved" in late.message
    assert len(store.get("approvals", req.id).decisions) == 1
    assert _counts(store) == before
    assert store.get("opportunities", opp_id).stage == "initiated"


def test_atb_steps_go_in_order_manager_then_director(deal, run, org, store, uow_factory):
    opp_id = deal("solution")
    builders.approve_quote(uow_factory, opp_id)
    req = run(approvals.request_gate, opp_id, "ATB", actor=org.actor("rep"))
    with pytest.raises(PermissionDenied, match="step 1 needs a sales_manager"):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    view = run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    assert (view.status, view.current_step) == ("pending", 2)
    assert [s.status for s in view.steps] == ["approved", "pending"]
    assert view.eligible_approver_ids == [org["director"]]
    assert store.rows("outbox")[-1].payload == {"approval_id": req.id, "step_seq": 2, "role": "director"}
    assert store.get("opportunities", opp_id).stage == "solution"
    twice = run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    assert "Already recorded" in twice.message and twice.current_step == 2
    assert [m.id for m in run(approvals.list_my_approvals, actor=org.actor("director"))] == [req.id]
    assert run(approvals.list_my_approvals, actor=org.actor("manager")) == []
    view = run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    assert view.status == "approved" and store.get("opportunities", opp_id).stage == "bid"
    assert [d.step_seq for d in view.decisions] == [1, 2]


def test_atc_steps_go_in_order_director_then_finance(deal, run, org, store, uow_factory):
    opp_id = deal("negotiate")
    run(opportunities.sign_off_deliverability, opp_id, actor=org.actor("fr"))
    builders.contract_under_review(uow_factory, org, opp_id)
    req = run(approvals.request_gate, opp_id, "ATC", actor=org.actor("rep"))
    with pytest.raises(PermissionDenied, match="step 1 needs a director"):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("finance"))
    with pytest.raises(PermissionDenied, match="cannot see|management chain"):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("director_w"))
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    with pytest.raises(PermissionDenied, match="step 2 needs a finance"):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    view = run(approvals.decide_approval, req.id, "approve", actor=org.actor("finance"))
    assert view.status == "approved" and store.get("opportunities", opp_id).stage == "won"


def test_four_eyes_one_person_cannot_decide_two_steps(run, org, store, uow_factory):
    admin = org.actor("admin")
    boss = run(users.create_user, {"email": "boss@example.com", "name_en": "Boss", "region": "east",
                                   "roles": ["sales_manager", "director"], "manager_id": org["director"]},
               actor=admin)
    rep3 = run(users.create_user, {"email": "rep3@example.com", "name_en": "Rep Three", "region": "east",
                                   "roles": ["sales_rep"], "manager_id": boss.id}, actor=admin)
    org.ids.update(boss=boss.id, rep3=rep3.id)
    opp_id = new_deal(uow_factory, org, owner="rep3")
    for kind in ("ATI", "solution_review"):
        if kind == "solution_review":
            run(opportunities.record_solution, opp_id, "Cloud MES", actor=org.actor("sr"))
            run(opportunities.record_delivery_plan, opp_id, "Two waves", actor=org.actor("fr"))
        req = run(approvals.request_gate, opp_id, kind, actor=org.actor("rep3"))
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("boss"))
    builders.approve_quote(uow_factory, opp_id)
    req = run(approvals.request_gate, opp_id, "ATB", actor=org.actor("rep3"))
    assert run(approvals.get_approval, req.id, actor=org.actor("rep3")).eligible_approver_ids == [boss.id]
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("boss"))
    view = run(approvals.get_approval, req.id, actor=org.actor("rep3"))
    assert view.eligible_approver_ids == [org["director"]]  # boss is a director in the chain, but decided step 1
    # boss decided step 1, so for step 2 the engine answers with the recorded decision, not a second one
    again = run(approvals.decide_approval, req.id, "approve", actor=org.actor("boss"))
    assert "Already recorded" in again.message and again.current_step == 2
    assert len(store.get("approvals", req.id).decisions) == 1
    assert store.get("opportunities", opp_id).stage == "solution"
    view = run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    assert view.status == "approved" and [d.decider_id for d in view.decisions] == [boss.id, org["director"]]


def test_a_request_whose_steps_only_one_person_could_decide_is_refused_up_front(run, org, store, uow_factory):
    # A small branch: the head is both sales manager and director, with nobody above them.
    admin = org.actor("admin")
    head = run(users.create_user, {"email": "head@example.com", "name_en": "Head", "region": "north",
                                   "roles": ["sales_manager", "director"]}, actor=admin)
    rep4 = run(users.create_user, {"email": "rep4@example.com", "name_en": "Rep Four", "region": "north",
                                   "roles": ["sales_rep"], "manager_id": head.id}, actor=admin)
    org.ids.update(head=head.id, rep4=rep4.id)
    opp_id = new_deal(uow_factory, org, owner="rep4", region="north")
    run(opportunities.record_solution, opp_id, "Cloud MES", actor=org.actor("sr"))
    run(opportunities.record_delivery_plan, opp_id, "Two waves", actor=org.actor("fr"))
    for kind in ("ATI", "solution_review"):
        req = run(approvals.request_gate, opp_id, kind, actor=org.actor("rep4"))
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("head"))
    builders.approve_quote(uow_factory, opp_id)
    try:
        req = run(approvals.request_gate, opp_id, "ATB", actor=org.actor("rep4"))
    except ValidationFailed:
        return  # the fix: refused up front, naming the step nobody else can decide
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("head"))
    assert run(approvals.get_approval, req.id, actor=org.actor("rep4")).eligible_approver_ids != [], \
        "ATB step 2 is pending and nobody may decide it: the deal is stuck until the request expires"


# --- cancel and expire -------------------------------------------------------------------------------

def test_cancel_closes_the_request_and_nothing_can_be_decided_after(deal, run, org, store):
    opp_id = deal("qualify")
    req = run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep"))
    with pytest.raises(PermissionDenied):
        run(approvals.cancel_approval, req.id, actor=org.actor("rep2"))
    view = run(approvals.cancel_approval, req.id, reason="customer paused", actor=org.actor("rep"))
    assert view.status == "cancelled" and view.closed_at is not None
    assert [s.status for s in view.steps] == ["skipped"]
    entry = store.rows("audit")[-1]
    assert (entry.action, entry.after) == ("cancel", {"status": "cancelled", "reason": "customer paused"})
    assert store.rows("outbox")[-1].payload == {"approval_id": req.id, "status": "cancelled"}
    before = _counts(store)
    late = run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    assert late.status == "cancelled" and "already cancelled" in late.message
    again = run(approvals.cancel_approval, req.id, actor=org.actor("rep"))
    assert "already cancelled" in again.message
    assert _counts(store) == before and store.get("approvals", req.id).decisions == []
    assert store.get("opportunities", opp_id).stage == "qualify"
    assert run(approvals.request_gate, opp_id, "ATI", actor=org.actor("rep")).id != req.id


@pytest.mark.parametrize("who", ["manager", "director", "sales_ops", "admin"])
def test_the_requesters_managers_and_ops_may_cancel(who, deal, run, org):
    req = run(approvals.request_gate, deal("qualify"), "ATI", actor=org.actor("rep"))
    assert run(approvals.cancel_approval, req.id, actor=org.actor(who)).status == "cancelled"


def test_expire_closes_requests_past_their_expiry(deal, run, org, store):
    opp_id, other = deal("qualify"), deal("qualify")
    short = run(approvals.request_gate, opp_id, "ATI", ttl_hours=1, actor=org.actor("rep"))
    long = run(approvals.request_gate, other, "ATI", ttl_hours=48, actor=org.actor("rep"))
    assert run(approvals.expire_approvals, actor=org.actor("admin")) == 0
    store.clock.advance(hours=2)
    with pytest.raises(PermissionDenied):
        run(approvals.expire_approvals, actor=org.actor("manager"))
    assert run(approvals.expire_approvals, actor=org.actor("admin")) == 1
    expired = store.get("approvals", short.id)
    assert expired.status == "expired" and [s.status for s in expired.steps] == ["skipped"]
    assert store.get("approvals", long.id).status == "pending"
    assert store.rows("outbox")[-1].payload == {"approval_id": short.id, "status": "expired"}
    assert store.get("opportunities", opp_id).stage == "qualify"
    late = run(approvals.decide_approval, short.id, "approve", actor=org.actor("manager"))
    assert late.status == "expired" and store.get("opportunities", opp_id).stage == "qualify"
