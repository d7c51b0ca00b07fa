"""convert_lead is all or nothing: account, contact, opportunity, audit and outbox commit together."""
from __future__ import annotations

import pytest

from domain.actor import Actor
from domain.db import repositories
from domain.db import tables as t
from domain.errors import Conflict
from domain.services import accounts as account_svc
from domain.services import leads
from domain.services import opportunities as opp_svc

LEAD = {"source": "referral", "company": "Atomic Metals Ltd", "contact_name": "Mia Molar",
        "email": "mia@atomic.example", "need": "MES for the rolling mill", "budget": "800000",
        "region": "east", "timeline": "within_3_months", "authority": "decision_maker"}


class Injected(RuntimeError):
    pass


@pytest.fixture
def qualified_lead(uow_factory, org) -> int:
    with uow_factory() as uow:
        lead = leads.create_lead(LEAD, actor=org.actor("rep"), uow=uow)
        leads.qualify_lead(lead.id, actor=org.actor("rep"), uow=uow)
        uow.commit()
    return lead.id


def _assert_nothing_converted(db, lead_id: int, counts_before: dict, request_id: str) -> None:
    assert db.snapshot_counts() == counts_before
    for table in (t.accounts, t.contacts, t.opportunities, t.stage_history, t.opportunity_members):
        assert db.rows(table) == [], table.name
    assert db.rows(t.audit_log, t.audit_log.c.request_id == request_id) == []
    assert [r.topic for r in db.rows(t.outbox)] == ["LeadCreated", "LeadAssigned", "LeadStatusChanged"]
    lead = db.rows(t.leads, t.leads.c.id == lead_id)[0]
    assert lead.status == "qualified"
    assert (lead.account_id, lead.contact_id, lead.opportunity_id) == (None, None, None)


def _convert_then_retry(db, uow_factory, org, lead_id, expected_error) -> None:
    """The failed conversion leaves nothing; a clean retry then converts exactly once."""
    counts = db.snapshot_counts()
    actor = Actor(org["rep"], "slack", True, "convert-attempt")
    with pytest.raises(expected_error):
        with uow_factory() as uow:
            leads.convert_lead(lead_id, {"amount": "750000"}, actor=actor, uow=uow)
            uow.commit()
    _assert_nothing_converted(db, lead_id, counts, actor.request_id)


def _retry_succeeds(db, uow_factory, org, lead_id) -> None:
    with uow_factory() as uow:
        conv = leads.convert_lead(lead_id, {"amount": "750000"}, actor=org.actor("rep"), uow=uow)
        uow.commit()
    assert len(db.rows(t.accounts)) == len(db.rows(t.contacts)) == len(db.rows(t.opportunities)) == 1
    lead = db.rows(t.leads, t.leads.c.id == lead_id)[0]
    assert (lead.status, lead.opportunity_id) == ("converted", conv.opportunity_id)


@pytest.mark.parametrize("where", ["after_contact", "after_opportunity", "at_last_event"])
def test_conversion_failing_midway_leaves_no_rows(db, uow_factory, org, qualified_lead, monkeypatch, where):
    flushed: list[int] = []

    if where == "after_contact":
        real = account_svc.find_or_create_contact

        def failing(uow, ctx, **kw):
            contact = real(uow, ctx, **kw)
            flushed.extend([kw["account"].id, contact.id])  # both already INSERTed
            raise Injected("contact system exploded")

        monkeypatch.setattr(account_svc, "find_or_create_contact", failing)
    elif where == "after_opportunity":
        real = opp_svc.new_opportunity

        def failing(uow, ctx, **kw):
            opp = real(uow, ctx, **kw)
            flushed.extend([kw["account"].id, opp.id])
            raise Injected("opportunity creation failed")

        monkeypatch.setattr(opp_svc, "new_opportunity", failing)
    else:
        real = leads.emit

        def failing(uow, event):
            real(uow, event)
            if event.topic == "LeadConverted":
                uow.flush()
                flushed.append(event.opportunity_id)
                raise Injected("event store unavailable")

        monkeypatch.setattr(leads, "emit", failing)

    _convert_then_retry(db, uow_factory, org, qualified_lead, Injected)
    assert flushed and all(isinstance(i, int) for i in flushed), "the failure must come after real writes"
    monkeypatch.undo()
    _retry_succeeds(db, uow_factory, org, qualified_lead)


def test_constraint_violation_at_commit_of_conversion_becomes_conflict_and_rolls_back(
        db, uow_factory, org, qualified_lead, monkeypatch):
    real_new, real_emit = opp_svc.new_opportunity, leads.emit
    created: list = []

    def remembering(uow, ctx, **kw):
        created.append(real_new(uow, ctx, **kw))
        return created[-1]

    def corrupting(uow, event):
        real_emit(uow, event)
        if event.topic == "LeadConverted":  # the use case's last write; the commit flushes this
            created[0].probability = 150  # ck_opportunities_probability_range

    monkeypatch.setattr(opp_svc, "new_opportunity", remembering)
    monkeypatch.setattr(leads, "emit", corrupting)
    counts = db.snapshot_counts()
    with pytest.raises(Conflict) as info:
        with uow_factory() as uow:
            leads.convert_lead(qualified_lead, actor=Actor(org["rep"], request_id="bad-convert"), uow=uow)
            uow.commit()
    assert "database rule" in info.value.message
    assert "probability_range" in info.value.details["constraint"]  # named in details, not in the text
    _assert_nothing_converted(db, qualified_lead, counts, "bad-convert")
    monkeypatch.undo()
    _retry_succeeds(db, uow_factory, org, qualified_lead)


def test_constraint_violation_midway_through_conversion_becomes_conflict(
        db, uow_factory, org, qualified_lead, monkeypatch):
    """Regression: this violation is flushed by a query's autoflush (convert_lead's activity
    lookup right after new_opportunity), not by uow.flush(); it must still become a Conflict."""
    real = opp_svc.new_opportunity

    def corrupting(uow, ctx, **kw):
        opp = real(uow, ctx, **kw)
        opp.probability = 150  # ck_opportunities_probability_range fires at the next flush
        return opp

    monkeypatch.setattr(opp_svc, "new_opportunity", corrupting)
    counts = db.snapshot_counts()
    try:
        with pytest.raises(Conflict):
            with uow_factory() as uow:
                leads.convert_lead(qualified_lead, actor=Actor(org["rep"], request_id="bad-convert"), uow=uow)
                uow.commit()
    finally:
        _assert_nothing_converted(db, qualified_lead, counts, "bad-convert")  # rolled back either way


def test_account_created_concurrently_during_conversion_becomes_conflict(
        db, uow_factory, org, qualified_lead, monkeypatch):
    """Regression: SqlRepository.add flushes by itself, so the account name_norm UNIQUE fires
    there (a concurrent conversion created the account after our lookup); callers get Conflict."""
    with uow_factory() as uow:  # "the other conversion", committed after our lookup
        account_svc.create_account({"name": "Atomic Metals Ltd", "region": "east"}, actor=org.actor("rep2"),
                                   uow=uow)
        uow.commit()
    # Our lookup ran before that commit: it found nothing.
    monkeypatch.setattr(repositories.AccountRepository, "by_name_norm", lambda self, name_norm: None)
    counts = db.snapshot_counts()
    try:
        with pytest.raises(Conflict):
            with uow_factory() as uow:
                leads.convert_lead(qualified_lead, actor=Actor(org["rep"], request_id="racing-convert"), uow=uow)
                uow.commit()
    finally:
        assert db.snapshot_counts() == counts  # rolled back either way
