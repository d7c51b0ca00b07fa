"""End-to-end flows on real SQL: the full gate cycle, row-level visibility, the account 360 view."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.db import tables as t
from domain.errors import PermissionDenied
from domain.rbac import build_scope
from domain.services import accounts, activities, leads, opportunities
from domain.services.leads import LeadView
from tests import builders

STAGES = ["qualify", "initiated", "solution", "bid", "negotiate", "won"]


def test_full_gate_cycle_ends_won_with_monotonic_history(db, uow_factory, org):
    opp = builders.make_deal(uow_factory, org)
    builders.full_cycle(uow_factory, org, opp)

    row = db.rows(t.opportunities, t.opportunities.c.id == opp)[0]
    assert (row.stage, row.probability, row.close_reason) == ("won", 100, None)

    history = db.rows(t.stage_history, t.stage_history.c.opportunity_id == opp)
    assert [h.to_stage for h in history] == STAGES
    assert [h.from_stage for h in history] == [None, *STAGES[:-1]]
    assert [h.probability for h in history] == [10, 20, 40, 60, 80, 100]
    times = [h.changed_at for h in history]
    assert times == sorted(times), "stage history went back in time"
    assert row.stage_changed_at == times[-1]

    requests = db.rows(t.approval_requests, t.approval_requests.c.subject_id == opp)
    assert [(r.kind, r.status) for r in requests] == [
        ("ATI", "approved"), ("solution_review", "approved"), ("ATB", "approved"), ("ATC", "approved")]
    by_kind = {r.kind: r.id for r in requests}
    # Gated moves point at their approval and were made by the last decider; bid→negotiate is free.
    assert [(h.approval_id, h.changed_by) for h in history] == [
        (None, org["rep"]), (by_kind["ATI"], org["manager"]), (by_kind["solution_review"], org["manager"]),
        (by_kind["ATB"], org["director"]), (None, org["rep"]), (by_kind["ATC"], org["finance"])]
    deciders = [(d.request_id, d.step_seq, d.decider_id) for d in
                db.rows(t.approval_decisions, order_by=t.approval_decisions.c.id)]
    assert deciders == [
        (by_kind["ATI"], 1, org["manager"]), (by_kind["solution_review"], 1, org["manager"]),
        (by_kind["ATB"], 1, org["manager"]), (by_kind["ATB"], 2, org["director"]),
        (by_kind["ATC"], 1, org["director"]), (by_kind["ATC"], 2, org["finance"])]

    topics = [r.topic for r in db.rows(t.outbox)]
    assert topics.count("GatePassed") == 4
    assert topics.count("OpportunityStageChanged") == 5
    assert topics.count("ApprovalStepOpened") == 2  # second steps of ATB and ATC

    with uow_factory() as uow:
        view = opportunities.get_opportunity(opp, actor=org.actor("rep"), uow=uow)
    assert view.stage == "won" and view.allowed_next == [] and view.next_gate is None
    assert [h.to_stage for h in view.history] == STAGES
    assert {m.role: m.user_id for m in view.members} == {"AR": org["rep"], "SR": org["sr"], "FR": org["fr"]}


# ------------------------------------------------------------------------------ visibility


def _lead(uow_factory, org, who: str, company: str, **extra) -> LeadView:
    with uow_factory() as uow:
        view = leads.create_lead({"source": "website", "company": company, "contact_name": f"Buyer of {company}",
                                  "need": "Better planning", "budget": "90000", **extra},
                                 actor=org.actor(who), uow=uow)
        uow.commit()
    return view


def _deal(uow_factory, org, who: str, company: str, **extra) -> tuple[int, int]:
    lead = _lead(uow_factory, org, who, company, **extra)
    with uow_factory() as uow:
        leads.qualify_lead(lead.id, actor=org.actor(who), uow=uow)
        conv = leads.convert_lead(lead.id, actor=org.actor(who), uow=uow)
        uow.commit()
    return lead.id, conv.opportunity_id


@pytest.fixture
def landscape(uow_factory, org) -> dict[str, int]:
    """A (rep, east, at bid, with SR/FR), B (rep2, east), W (manager_w, west); open leads of rep and rep_w."""
    ids: dict[str, int] = {}
    ids["A"] = builders.make_deal(uow_factory, org)
    with uow_factory() as uow:
        ids["lead_A"] = uow.opportunities.get(ids["A"]).lead_id
    builders.run_gate(uow_factory, org, ids["A"], "ATI", ["manager"])
    with uow_factory() as uow:
        opportunities.record_solution(ids["A"], "Cloud MES", actor=org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(ids["A"], "Two waves", actor=org.actor("fr"), uow=uow)
        uow.commit()
    builders.run_gate(uow_factory, org, ids["A"], "solution_review", ["manager"])
    builders.approve_quote(uow_factory, ids["A"])
    builders.run_gate(uow_factory, org, ids["A"], "ATB", ["manager", "director"])
    ids["lead_B"], ids["B"] = _deal(uow_factory, org, "rep2", "Beta Brewing", region="east")
    ids["lead_W"], ids["W"] = _deal(uow_factory, org, "manager_w", "Westwind Wind", region="west",
                                    owner_id=org["manager_w"])
    ids["lead_rep_open"] = _lead(uow_factory, org, "rep", "Open East Co", region="east").id
    ids["lead_w_open"] = _lead(uow_factory, org, "rep_w", "Open West Co", region="west").id
    return ids


OPPS_SEEN = {
    "rep": {"A"}, "rep2": {"B"}, "manager": {"A", "B"}, "director": {"A", "B"},
    "sr": {"A"}, "fr": {"A"},
    "rep_w": set(), "manager_w": {"W"}, "director_w": {"W"},
    "finance": {"A"},  # bid and later only
    "legal": set(),  # negotiate and later only
    "sales_ops": {"A", "B", "W"}, "admin": {"A", "B", "W"},
}

LEADS_SEEN = {
    "rep": {"lead_A", "lead_rep_open"}, "rep2": {"lead_B"},
    "manager": {"lead_A", "lead_B", "lead_rep_open"}, "director": {"lead_A", "lead_B", "lead_rep_open"},
    "rep_w": {"lead_w_open"}, "manager_w": {"lead_W", "lead_w_open"}, "director_w": {"lead_W", "lead_w_open"},
    "sales_ops": {"lead_A", "lead_B", "lead_W", "lead_rep_open", "lead_w_open"},
    "admin": {"lead_A", "lead_B", "lead_W", "lead_rep_open", "lead_w_open"},
}


def test_list_opportunities_shows_each_user_exactly_their_rows(uow_factory, org, landscape):
    names = {v: k for k, v in landscape.items() if not k.startswith("lead_")}
    for who, expected in OPPS_SEEN.items():
        with uow_factory() as uow:
            seen = {names[o.id] for o in opportunities.list_opportunities(actor=org.actor(who), uow=uow)}
        assert seen == expected, who


def test_list_opportunities_sql_agrees_with_the_scope_predicate(uow_factory, org, landscape):
    """The SQL filter and rbac.Scope.sees_opportunity must never disagree."""
    with uow_factory() as uow:
        managers = uow.users.managers()
        everyone = [(u.id, u.roles) for u in uow.users.all()]
        all_opps = uow.opportunities.all()
        for uid, roles in everyone:
            scope = build_scope(uid, roles, managers)
            listed = {o.id for o in uow.opportunities.list(scope, limit=1000)}
            predicted = {o.id for o in all_opps if scope.sees_opportunity(o.owner_id, o.member_ids(), o.stage)}
            assert listed == predicted, f"user {uid}"
            leads_listed = {lead.id for lead in uow.leads.list(scope, limit=1000)}
            leads_predicted = {lead.id for lead in uow.leads.all() if scope.sees_lead(lead.owner_id)}
            assert leads_listed == leads_predicted, f"user {uid}"


def test_list_opportunities_filters_by_stage_on_top_of_visibility(uow_factory, org, landscape):
    with uow_factory() as uow:
        at_bid = opportunities.list_opportunities(actor=org.actor("manager"), uow=uow, stage="bid")
        west_bid = opportunities.list_opportunities(actor=org.actor("manager_w"), uow=uow, stage="bid")
        qualify = opportunities.list_opportunities(actor=org.actor("admin"), uow=uow, stage="qualify")
    assert [o.id for o in at_bid] == [landscape["A"]]
    assert west_bid == []
    assert {o.id for o in qualify} == {landscape["B"], landscape["W"]}


def test_list_leads_shows_each_seller_exactly_their_rows(uow_factory, org, landscape):
    names = {v: k for k, v in landscape.items() if k.startswith("lead_")}
    for who, expected in LEADS_SEEN.items():
        with uow_factory() as uow:
            seen = {names[lead.id] for lead in leads.list_leads(actor=org.actor(who), uow=uow)}
        assert seen == expected, who
    with uow_factory() as uow:
        new_only = leads.list_leads(actor=org.actor("manager"), uow=uow, status="new")
        with pytest.raises(PermissionDenied):
            leads.list_leads(actor=org.actor("finance"), uow=uow)
    assert [lead.id for lead in new_only] == [landscape["lead_rep_open"]]


def test_other_region_cannot_open_a_deal_directly(uow_factory, org, landscape):
    with uow_factory() as uow:
        with pytest.raises(PermissionDenied):
            opportunities.get_opportunity(landscape["A"], actor=org.actor("rep_w"), uow=uow)
        with pytest.raises(PermissionDenied):
            leads.get_lead(landscape["lead_rep_open"], actor=org.actor("rep_w"), uow=uow)
        assert opportunities.get_opportunity(landscape["A"], actor=org.actor("finance"), uow=uow).stage == "bid"
        with pytest.raises(PermissionDenied):
            opportunities.get_opportunity(landscape["B"], actor=org.actor("finance"), uow=uow)


# ------------------------------------------------------------------------------ account 360


def test_account_360_shows_contacts_gaps_deals_pipeline_and_activities(db, uow_factory, org):
    opp_a = builders.make_deal(uow_factory, org)
    rep = org.actor("rep")
    with uow_factory() as uow:
        account_id = uow.opportunities.get(opp_a).account_id
        usd = opportunities.create_opportunity({"name": "Spare parts", "account_id": account_id, "amount": "120000",
                                                "currency": "USD"}, actor=rep, uow=uow)
        lost = opportunities.create_opportunity({"name": "Old idea", "account_id": account_id, "amount": "999"},
                                                actor=rep, uow=uow)
        opportunities.close_opportunity(lost.id, "lost", "Went with a competitor", actor=rep, uow=uow)
        activities.log_activity({"kind": "meeting", "subject": "Kick-off at the plant", "opportunity_id": opp_a},
                                actor=rep, uow=uow)
        uow.commit()

    with uow_factory() as uow:
        view = accounts.account_360(account_id, actor=rep, uow=uow)
    assert view.account.name == "Customer 1 Ltd" and view.account.owner_id == org["rep"]
    assert view.account.region == "east"
    assert [(c.name, c.decision_role) for c in view.contacts] == [("Contact 1", "decision_maker")]
    assert view.decision_chain_gaps == ["no technical evaluator known"]
    assert sorted(o.id for o in view.opportunities) == sorted([opp_a, usd.id, lost.id])
    assert {o.id: o.stage for o in view.opportunities}[lost.id] == "lost"
    assert {k: Decimal(v) for k, v in view.open_pipeline.items()} == {"CNY": Decimal("500000"),
                                                                       "USD": Decimal("120000")}
    assert [(a.kind, a.subject, a.opportunity_id) for a in view.activities] == [
        ("meeting", "Kick-off at the plant", opp_a)]

    with uow_factory() as uow:  # a technical evaluator closes the gap
        accounts.add_contact(account_id, {"name": "Tess Tech", "decision_role": "technical_evaluator"},
                             actor=rep, uow=uow)
        uow.commit()
    with uow_factory() as uow:
        assert accounts.account_360(account_id, actor=rep, uow=uow).decision_chain_gaps == []
        # finance sees the customer master data but none of these early-funnel deals
        fin = accounts.account_360(account_id, actor=org.actor("finance"), uow=uow)
        assert fin.account.id == account_id and fin.opportunities == [] and fin.open_pipeline == {}
        mgr = accounts.account_360(account_id, actor=org.actor("manager"), uow=uow)
        assert len(mgr.opportunities) == 3
        with pytest.raises(PermissionDenied):
            accounts.account_360(account_id, actor=org.actor("rep_w"), uow=uow)
