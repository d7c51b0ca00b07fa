"""Managing leads: de-duplication, scoring, assignment, conversion, and the audit trail."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.actor import Actor
from domain.errors import Conflict, ValidationFailed
from domain.model.vocab import Authority, LeadSource, Timeline
from domain.scoring import score_lead
from domain.services import accounts, activities, leads


def _create(run, org, who="rep", **fields):
    data = {"source": "website", "company": "Acme Co., Ltd", "contact_name": "Li Lei", "region": "east"}
    data.update(fields)
    return run(leads.create_lead, data, actor=org.actor(who))


def _counts(store):
    return {t: store.count(t) for t in ("leads", "audit", "outbox", "accounts", "contacts", "opportunities")}


# --- de-duplication -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "second", "why"), [
    ({"email": "Li.Lei@Acme.com"}, {"company": "Other Corp", "contact_name": "L. Lei", "email": "li.lei@ACME.COM "},
     "same email"),
    ({"phone": "+86 138 0013 8000"}, {"company": "Other Corp", "contact_name": "X", "phone": "138-0013-8000"},
     "same phone"),
    ({"phone": "13800138000"}, {"company": "Other Corp", "contact_name": "X", "phone": "0086 13800138000"},
     "same phone"),
    ({"company": "Acme Co., Ltd"}, {"company": "ACME", "contact_name": "li lei"}, "same company and contact"),
    ({"company": "Acme Limited"}, {"company": "acme inc.", "contact_name": "Li  Lei"}, "same company and contact"),
    ({"company": "华为技术有限公司", "contact_name": "张伟"}, {"company": "华为技术", "contact_name": "张 伟"},
     "same company and contact"),
])
def test_a_duplicate_returns_the_existing_lead_and_writes_nothing(first, second, why, run, org, store):
    original = _create(run, org, **first)
    before = _counts(store)
    again = _create(run, org, who="manager", **second)  # someone who may see the original
    assert again.id == original.id and again.created is False
    assert original.ref in again.message and why in again.message and "instead of creating a duplicate" in again.message
    assert again.owner_id == org["rep"]  # still the first owner's lead
    assert _counts(store) == before


@pytest.mark.parametrize(("intl", "local"), [
    ("+86 21 5555 1234", "021-5555-1234"),
    ("0086 21 5555 1234", "021 55551234"),
    ("+86 755 8888 1234", "0755-88881234"),
    ("+86 138 0013 8000", "13800138000"),
])
def test_a_landline_in_plus86_and_local_form_is_the_same_lead(intl, local, run, org, store):
    original = _create(run, org, phone=intl)
    again = _create(run, org, company="Other Corp", contact_name="X", phone=local)
    assert again.id == original.id and again.created is False and store.count("leads") == 1


def test_different_people_at_one_company_are_different_leads(run, org, store):
    a = _create(run, org, contact_name="Li Lei")
    b = _create(run, org, company="ACME", contact_name="Han Meimei")
    assert b.created is True and b.id != a.id and store.count("leads") == 2


def test_editing_a_lead_into_a_duplicate_is_a_conflict(run, org, store):
    _create(run, org, email="li.lei@acme.com")
    b = _create(run, org, company="Beta", contact_name="Wu", email="wu@beta.example")
    try:
        with pytest.raises(Conflict):
            run(leads.update_lead, b.id, {"email": "LI.LEI@acme.com"}, actor=org.actor("rep"))
    finally:
        assert store.get("leads", b.id).email == "wu@beta.example"


def test_renaming_an_account_onto_another_is_a_conflict(run, org, store):
    run(accounts.create_account, {"name": "Acme"}, actor=org.actor("rep"))
    beta = run(accounts.create_account, {"name": "Beta"}, actor=org.actor("rep"))
    try:
        with pytest.raises(Conflict):
            run(accounts.update_account, beta.id, {"name": "ACME Ltd"}, actor=org.actor("rep"))
    finally:
        assert store.get("accounts", beta.id).name == "Beta"


def test_creating_an_account_twice_is_a_conflict_naming_the_first(run, org, store):
    acme = run(accounts.create_account, {"name": "Acme Co., Ltd"}, actor=org.actor("rep"))
    with pytest.raises(Conflict) as err:
        run(accounts.create_account, {"name": "ACME"}, actor=org.actor("rep2"))
    assert err.value.details == {"account_id": acme.id} and store.count("accounts") == 1


# --- scoring ------------------------------------------------------------------------------------------

def test_score_of_a_hot_lead_is_explained_point_by_point(run, org):
    view = _create(run, org, source="referral", authority="decision_maker", budget="500000",
                   need="Replace three legacy MES systems in 2025", timeline="within_3_months")
    points = {r.factor: r.points for r in view.score_reasons}
    assert points == {"budget": 15, "authority": 20, "need": 15, "timeline": 20, "source": 10, "engagement": 0}
    assert view.score == 80 == sum(points.values())
    assert "score 80" in view.message


def test_a_cold_lead_scores_low_and_says_why(run, org):
    view = _create(run, org, source="other")
    assert view.score == 2 and [r.why for r in view.score_reasons if r.points == 0] == [
        "no budget stated", "contact is unknown", "no need described", "timeline unknown", "0 logged activities"]


def test_engagement_raises_the_score_capped_at_fifteen(run, org, store):
    lead = _create(run, org, source="other")
    scores = []
    for i in range(7):
        run(activities.log_activity, {"kind": "call", "subject": f"call {i}", "lead_id": lead.id},
            actor=org.actor("rep"))
        scores.append(store.get("leads", lead.id).score)
    assert scores == [5, 8, 11, 14, 17, 17, 17]
    assert store.get("leads", lead.id).status == "contacted"  # reaching out moved it on


@settings(max_examples=200, deadline=None, database=None)
@given(budget=st.none() | st.decimals(min_value=0, max_value=10**9, places=2),
       authority=st.sampled_from(list(Authority)), need=st.none() | st.text(max_size=40),
       timeline=st.sampled_from(list(Timeline)), source=st.sampled_from(list(LeadSource)),
       activity_count=st.integers(min_value=0, max_value=50))
def test_score_is_0_to_100_and_the_reasons_sum_to_it(budget, authority, need, timeline, source, activity_count):
    total, reasons = score_lead(budget=budget, authority=authority.value, need=need, timeline=timeline.value,
                                source=source.value, activity_count=activity_count)
    assert 0 <= total <= 100
    assert total == sum(r.points for r in reasons)
    assert [r.factor for r in reasons] == ["budget", "authority", "need", "timeline", "source", "engagement"]
    assert all(r.points >= 0 and r.why for r in reasons)


def test_the_best_possible_lead_scores_exactly_100():
    total, _ = score_lead(budget=Decimal(2_000_000), authority="decision_maker", need="x" * 30,
                          timeline="within_3_months", source="referral", activity_count=10)
    assert total == 100


# --- assignment -----------------------------------------------------------------------------------------

def test_round_robin_within_the_regions_team_capped_by_open_leads(run, org, store):
    owners, messages = [], []
    for i in range(7):
        view = _create(run, org, who="sales_ops", company=f"Round Robin {i}", contact_name=f"P{i}")
        owners.append(view.owner_id)
        messages.append(view.message)
    rep, rep2 = org["rep"], org["rep2"]
    assert owners == [rep, rep2, rep, rep2, rep, rep2, None]  # east rule caps at 3 open leads each
    assert "round-robin" in messages[0] and "0/3 open leads" in messages[0]
    assert "left unassigned" in messages[-1] and "every rep is at the cap of 3 open leads" in messages[-1]
    assert store.rows("assignment_rules")[0].last_assigned_user_id == rep2


def test_a_closed_lead_frees_capacity(run, org):
    made = [_create(run, org, who="sales_ops", company=f"Cap {i}", contact_name=f"P{i}") for i in range(6)]
    run(leads.disqualify_lead, made[0].id, "duplicate in ERP", actor=org.actor("rep"))
    assert _create(run, org, who="sales_ops", company="Cap 6", contact_name="P6").owner_id == org["rep"]


def test_assignment_uses_the_regions_rule(run, org):
    assert _create(run, org, who="manager_w", region="west").owner_id == org["rep_w"]
    north = _create(run, org, who="sales_ops", region="north", company="Polar", contact_name="Bjorn")
    assert north.owner_id is None and "no assignment rule matches region 'north'" in north.message


def test_a_rep_owns_what_they_create_and_an_owner_can_be_named(run, org):
    assert _create(run, org, who="rep").owner_id == org["rep"]
    named = _create(run, org, who="sales_ops", company="Named", contact_name="N", owner_id=org["rep_w"])
    assert named.owner_id == org["rep_w"] and "owner given" in named.message
    with pytest.raises(ValidationFailed):
        _create(run, org, who="sales_ops", company="Bad", contact_name="B", owner_id=org["finance"])


def test_reassigning_reruns_the_rules_or_takes_a_named_owner(run, org, store):
    lead = _create(run, org, who="sales_ops", company="Move Me", contact_name="M")
    assert lead.owner_id == org["rep"]
    moved = run(leads.assign_lead, lead.id, org["rep2"], actor=org.actor("manager"))
    assert moved.owner_id == org["rep2"]
    rerun = run(leads.assign_lead, lead.id, actor=org.actor("manager"))
    assert rerun.owner_id == org["rep2"]  # the rule's rotation goes on after its last pick (rep)
    assert "round-robin" in rerun.message
    assigned = [m.payload for m in store.rows("outbox") if m.topic == "LeadAssigned"]
    assert [p["owner_id"] for p in assigned] == [org["rep"], org["rep2"], org["rep2"]]
    assert len({p["seq"] for p in assigned}) == 3  # each reassignment is its own fact


# --- conversion -----------------------------------------------------------------------------------------

def test_conversion_creates_account_contact_and_opportunity(run, org, store):
    lead = _create(run, org, company="Nova Robotics Co., Ltd", contact_name="Chen Jie", email="chen@nova.example",
                   authority="decision_maker", budget="250000", need="Vision inspection line", title="CTO")
    run(leads.qualify_lead, lead.id, actor=org.actor("rep"))
    conv = run(leads.convert_lead, lead.id, actor=org.actor("rep"))
    assert conv.account_created is True and conv.lead.status == "converted"
    account, contact = store.get("accounts", conv.account_id), store.get("contacts", conv.contact_id)
    opp = store.get("opportunities", conv.opportunity_id)
    assert (account.name, account.name_norm, account.owner_id, account.region) == \
        ("Nova Robotics Co., Ltd", "novarobotics", org["rep"], "east")
    assert (contact.account_id, contact.name, contact.email, contact.title, contact.decision_role) == \
        (account.id, "Chen Jie", "chen@nova.example", "CTO", "decision_maker")
    assert (opp.account_id, opp.owner_id, opp.amount, opp.budget, opp.customer_need, opp.lead_id) == \
        (account.id, org["rep"], Decimal("250000"), Decimal("250000"), "Vision inspection line", lead.id)
    assert (opp.stage, opp.probability, [h.to_stage for h in opp.history]) == ("qualify", 10, ["qualify"])
    stored = store.get("leads", lead.id)
    assert (stored.account_id, stored.contact_id, stored.opportunity_id) == (account.id, contact.id, opp.id)
    assert store.rows("outbox")[-1].payload == {"lead_id": lead.id, "account_id": account.id,
                                                "contact_id": contact.id, "opportunity_id": opp.id}
    assert conv.opportunity_ref in conv.message and "new account" in conv.message


def test_conversion_links_an_existing_account_by_name_and_reuses_the_contact(run, org, store):
    acc = run(accounts.create_account, {"name": "ACME Co., Ltd", "region": "east"}, actor=org.actor("rep"))
    contact = run(accounts.add_contact, acc.id, {"name": "Li Lei", "decision_role": "influencer"},
                  actor=org.actor("rep"))
    lead = _create(run, org, company="Acme", contact_name="li lei")
    run(leads.qualify_lead, lead.id, actor=org.actor("rep"))
    before = _counts(store)
    conv = run(leads.convert_lead, lead.id, {"amount": "120000", "opportunity_name": "Acme retrofit"},
               actor=org.actor("rep"))
    assert (conv.account_created, conv.account_id, conv.contact_id) == (False, acc.id, contact.id)
    assert "existing account" in conv.message
    after = _counts(store)
    assert (after["accounts"], after["contacts"], after["opportunities"]) == \
        (before["accounts"], before["contacts"], before["opportunities"] + 1)
    assert store.get("opportunities", conv.opportunity_id).name == "Acme retrofit"


def test_conversion_can_name_the_account(run, org, store):
    acc = run(accounts.create_account, {"name": "Parent Holdings", "region": "east"}, actor=org.actor("rep"))
    lead = _create(run, org, company="Subsidiary Ltd", contact_name="Gao")
    run(leads.qualify_lead, lead.id, actor=org.actor("rep"))
    conv = run(leads.convert_lead, lead.id, {"account_id": acc.id}, actor=org.actor("rep"))
    assert conv.account_id == acc.id and conv.account_created is False


def test_a_converted_lead_can_no_longer_be_edited_or_reassigned(run, org):
    lead = _create(run, org)
    run(leads.qualify_lead, lead.id, actor=org.actor("rep"))
    run(leads.convert_lead, lead.id, actor=org.actor("rep"))
    with pytest.raises(ValidationFailed):
        run(leads.update_lead, lead.id, {"need": "more"}, actor=org.actor("rep"))
    with pytest.raises(ValidationFailed):
        run(leads.assign_lead, lead.id, org["rep2"], actor=org.actor("manager"))


# --- one audit row per mutation -------------------------------------------------------------------------

def _audit_of(run, store, call):
    mark = store.count("audit")
    call()
    return [(e.entity, e.action) for e in store.rows("audit")[mark:]]


def test_each_lead_use_case_writes_one_audit_row_per_changed_record(run, org, store):
    rep, mgr = org.actor("rep"), org.actor("manager")
    holder = {}
    steps = [
        (lambda: holder.setdefault("lead", _create(run, org, email="li@acme.example")),
         [("lead", "create")]),
        (lambda: _create(run, org, email="LI@acme.example"), []),  # duplicate: nothing
        (lambda: run(leads.update_lead, holder["lead"].id, {"need": "scan station"}, actor=rep),
         [("lead", "update")]),
        (lambda: run(leads.assign_lead, holder["lead"].id, org["rep2"], actor=mgr), [("lead", "assign")]),
        (lambda: run(leads.assign_lead, holder["lead"].id, org["rep"], actor=mgr), [("lead", "assign")]),
        (lambda: run(leads.change_lead_status, holder["lead"].id, "nurturing", actor=rep),
         [("lead", "status:nurturing")]),
        (lambda: run(activities.log_activity, {"kind": "meeting", "subject": "demo", "lead_id": holder["lead"].id},
                     actor=rep), [("activity", "create"), ("lead", "engagement")]),
        (lambda: run(leads.qualify_lead, holder["lead"].id, actor=rep), [("lead", "status:qualified")]),
        (lambda: run(leads.convert_lead, holder["lead"].id, actor=rep),
         [("account", "create"), ("contact", "create"), ("opportunity", "create"), ("lead", "convert")]),
    ]
    for call, expected in steps:
        assert _audit_of(run, store, call) == expected


def test_audit_rows_say_who_acted_through_which_channel(run, org, store):
    actor = Actor(org["rep"], "slack", via_agent=True, request_id="req-42")
    view = run(leads.create_lead, {"source": "social", "company": "Chan Co", "contact_name": "Chan"}, actor=actor)
    entry = store.rows("audit")[-1]
    assert (entry.actor_id, entry.channel, entry.via_agent, entry.request_id) == (org["rep"], "slack", True, "req-42")
    assert (entry.entity, entry.entity_id, entry.before) == ("lead", view.id, None)
    assert entry.after["company"] == "Chan Co" and entry.after["owner_id"] == org["rep"]
    update = _audit_of(run, store, lambda: run(leads.update_lead, view.id, {"title": "CEO"}, actor=actor))
    assert update == [("lead", "update")]
    assert (store.rows("audit")[-1].before, store.rows("audit")[-1].after) == ({"title": None}, {"title": "CEO"})


def test_bad_input_names_the_field_and_the_allowed_values(run, org, store):
    with pytest.raises(ValidationFailed) as err:
        _create(run, org, source="carrier pigeon")
    assert err.value.field == "source" and "referral" in err.value.allowed
    with pytest.raises(ValidationFailed) as err:
        _create(run, org, email="not-an-email")
    assert err.value.field == "email"
    with pytest.raises(ValidationFailed):
        _create(run, org, currency="RMB")
    with pytest.raises(ValidationFailed):
        run(leads.update_lead, _create(run, org).id, {}, actor=org.actor("rep"))
    assert store.count("leads") == 1
