"""Lead status machine: every (from, to) pair through the services, against a hand-written table."""
from __future__ import annotations

import itertools

import pytest

from domain.errors import InvalidTransition, ValidationFailed
from domain.model.leads import TRANSITIONS, Lead
from domain.model.vocab import LeadStatus
from domain.services import leads

STATUSES = ["new", "contacted", "nurturing", "qualified", "converted", "disqualified"]

# The spec, written out by hand (not read from the code): where a lead may go next.
EXPECTED = {
    "new": {"contacted", "nurturing", "qualified", "disqualified"},
    "contacted": {"nurturing", "qualified", "disqualified"},
    "nurturing": {"contacted", "qualified", "disqualified"},
    "qualified": {"converted", "nurturing", "disqualified"},
    "converted": set(),
    "disqualified": {"nurturing"},  # revived into nurturing only
}
# How the tests bring a fresh (new) lead into each status.
PATH = {
    "new": [], "contacted": ["contacted"], "nurturing": ["nurturing"], "qualified": ["qualified"],
    "converted": ["qualified", "converted"], "disqualified": ["disqualified"],
}
REASON = "no budget this year"


def _move(run, org, lead_id: int, status: str):
    if status == "converted":
        return run(leads.convert_lead, lead_id, actor=org.actor("rep"))
    return run(leads.change_lead_status, lead_id, status,
               reason=REASON if status == "disqualified" else None, actor=org.actor("rep"))


@pytest.fixture
def lead_in(run, org):
    def make(status: str) -> int:
        view = run(leads.create_lead, {"source": "website", "company": "Tianhe Tools", "contact_name": "Wang Fang",
                                       "email": "wang.fang@tianhe.example", "region": "east",
                                       "need": "cut tooling changeover time", "budget": "80000"},
                   actor=org.actor("rep"))
        for step in PATH[status]:
            _move(run, org, view.id, step)
        return view.id

    return make


def test_the_transition_table_in_the_model_is_the_one_the_spec_gives():
    assert {s.value: {t.value for t in to} for s, to in TRANSITIONS.items()} == EXPECTED
    assert set(STATUSES) == {s.value for s in LeadStatus}


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STATUSES, STATUSES)))
def test_lead_status_transition_is_allowed_exactly_when_the_table_says(src, dst, lead_in, run, org, store):
    lead_id = lead_in(src)
    assert store.get("leads", lead_id).status == src
    legal = dst in EXPECTED[src]
    assert legal == (LeadStatus(dst) in TRANSITIONS[LeadStatus(src)])
    audits, events = store.count("audit"), store.count("outbox")
    if legal:
        _move(run, org, lead_id, dst)
        assert store.get("leads", lead_id).status == dst
        last = store.rows("audit")[-1]
        assert (last.entity, last.entity_id) == ("lead", lead_id)
        assert last.action == ("convert" if dst == "converted" else f"status:{dst}")
        assert last.before["status"] == src and last.after["status"] == dst
        topic = "LeadConverted" if dst == "converted" else "LeadStatusChanged"
        assert topic in store.topics()[events:]
    else:
        with pytest.raises(InvalidTransition) as err:
            _move(run, org, lead_id, dst)
        assert sorted(err.value.allowed) == sorted(EXPECTED[src])
        assert src in err.value.message and dst in err.value.message
        assert store.get("leads", lead_id).status == src
        assert (store.count("audit"), store.count("outbox")) == (audits, events)


@pytest.mark.parametrize("src", sorted(s for s in STATUSES if "disqualified" in EXPECTED[s]))
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_disqualify_needs_a_reason(src, reason, lead_in, run, org, store):
    lead_id = lead_in(src)
    audits = store.count("audit")
    with pytest.raises(ValidationFailed) as err:
        run(leads.change_lead_status, lead_id, "disqualified", reason=reason, actor=org.actor("rep"))
    assert err.value.field == "reason"
    assert store.get("leads", lead_id).status == src
    assert store.count("audit") == audits


def test_disqualify_records_the_reason_and_reviving_clears_it(lead_in, run, org, store):
    lead_id = lead_in("contacted")
    view = run(leads.disqualify_lead, lead_id, "  went with a competitor ", actor=org.actor("rep"))
    assert view.status == "disqualified" and view.disqualify_reason == "went with a competitor"
    assert view.allowed_next == ["nurturing"]
    view = run(leads.change_lead_status, lead_id, "nurturing", actor=org.actor("rep"))
    assert view.status == "nurturing" and view.disqualify_reason is None
    assert store.get("leads", lead_id).disqualify_reason is None


@pytest.mark.parametrize("src", [s for s in STATUSES if s != "qualified"])
def test_convert_only_from_qualified(src, lead_in, run, org, store):
    lead_id = lead_in(src)
    counts = {t: store.count(t) for t in ("accounts", "contacts", "opportunities", "audit", "outbox")}
    with pytest.raises(InvalidTransition):
        run(leads.convert_lead, lead_id, actor=org.actor("rep"))
    assert store.get("leads", lead_id).status == src
    assert {t: store.count(t) for t in counts} == counts


def test_change_status_refuses_converted_and_unknown_statuses(lead_in, run, org, store):
    lead_id = lead_in("qualified")
    with pytest.raises(ValidationFailed, match="convert_lead"):
        run(leads.change_lead_status, lead_id, "converted", actor=org.actor("rep"))
    with pytest.raises(ValidationFailed) as err:
        run(leads.change_lead_status, lead_id, "won", actor=org.actor("rep"))
    assert "converted" not in err.value.allowed and "qualified" in err.value.allowed
    assert store.get("leads", lead_id).status == "qualified"


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(STATUSES, STATUSES)))
def test_lead_model_move_to_follows_the_table(src, dst):
    lead = Lead(source="website", company="X", contact_name="Y", status=src, id=7)
    if dst in EXPECTED[src]:
        lead.move_to(LeadStatus(dst), reason="r")
        assert lead.status == dst
    else:
        with pytest.raises(InvalidTransition):
            lead.move_to(LeadStatus(dst), reason="r")
        assert lead.status == src
