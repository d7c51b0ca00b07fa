"""The database itself refuses bad rows written with raw SQL, bypassing every service.

Each test names the constraint it expects (PostgreSQL reports constraint/index names; SQLite
reports CHECK names and, for UNIQUE, the columns), and runs the valid counterpart of the same
statement (rolled back) so a test cannot pass because the SQL was wrong for another reason.
"""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from domain.services import approvals
from tests import builders


NOW = datetime(2026, 1, 5, 9, 30)


def rejects(engine, sql: str, expect: str | dict[str, str], **params) -> str:
    """`sql` fails with an IntegrityError that names `expect` (per dialect when a dict)."""
    fragment = expect[engine.dialect.name] if isinstance(expect, dict) else expect
    with pytest.raises(IntegrityError) as info:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    message = str(info.value.orig)
    assert fragment in message, f"expected {fragment!r} in {message!r}"
    return message


def accepts(engine, sql: str, **params) -> None:
    """`sql` succeeds; rolled back so the fixture data stays as it was."""
    with engine.connect() as conn:
        conn.execute(text(sql), params)
        conn.rollback()


def unique(pg_name: str, sqlite_columns: str) -> dict[str, str]:
    return {"postgresql": pg_name, "sqlite": f"UNIQUE constraint failed: {sqlite_columns}"}


@pytest.fixture
def deal(uow_factory, org) -> int:
    return builders.make_deal(uow_factory, org)


@pytest.fixture
def ati_request(uow_factory, org, deal) -> int:
    with uow_factory() as uow:
        req = approvals.request_gate(deal, "ATI", actor=org.actor("rep"), uow=uow)
        uow.commit()
    return req.id


UPDATE_OPP = "UPDATE opportunities SET {} WHERE id = :id"


def test_db_rejects_unknown_stage(engine, deal):
    rejects(engine, UPDATE_OPP.format("stage = 'dreaming'"), "ck_opportunities_stage_valid", id=deal)
    accepts(engine, UPDATE_OPP.format("stage = 'initiated'"), id=deal)


def test_db_rejects_unknown_stage_in_history(engine, deal, org):
    sql = ("INSERT INTO stage_history (opportunity_id, from_stage, to_stage, probability, changed_at, changed_by) "
           "VALUES (:id, 'qualify', :to, 20, :at, :by)")
    rejects(engine, sql, "ck_stage_history_to_stage_valid", id=deal, to="dreaming", at=NOW, by=org["rep"])
    accepts(engine, sql, id=deal, to="initiated", at=NOW, by=org["rep"])


def test_db_rejects_probability_150(engine, deal):
    rejects(engine, UPDATE_OPP.format("probability = 150"), "ck_opportunities_probability_range", id=deal)
    rejects(engine, UPDATE_OPP.format("probability = -1"), "ck_opportunities_probability_range", id=deal)
    accepts(engine, UPDATE_OPP.format("probability = 100"), id=deal)


def test_db_rejects_lost_without_close_reason(engine, deal):
    rejects(engine, UPDATE_OPP.format("stage = 'lost', probability = 0, close_reason = NULL"),
            "ck_opportunities_close_reason", id=deal)
    rejects(engine, UPDATE_OPP.format("stage = 'abandoned', probability = 0, close_reason = NULL"),
            "ck_opportunities_close_reason", id=deal)
    accepts(engine, UPDATE_OPP.format("stage = 'lost', probability = 0, close_reason = 'price'"), id=deal)


def test_db_rejects_closed_deal_with_open_probability(engine, deal):
    rejects(engine, UPDATE_OPP.format("stage = 'won', probability = 60"), "ck_opportunities_closed_probability",
            id=deal)
    accepts(engine, UPDATE_OPP.format("stage = 'won', probability = 100"), id=deal)


def test_db_rejects_negative_amount(engine, deal):
    rejects(engine, UPDATE_OPP.format("amount = -0.01"), "ck_opportunities_amount_positive", id=deal)
    rejects(engine, UPDATE_OPP.format("budget = -5"), "ck_opportunities_budget_positive", id=deal)
    accepts(engine, UPDATE_OPP.format("amount = 0"), id=deal)


INSERT_REQUEST = (
    "INSERT INTO approval_requests (kind, subject_type, subject_id, title, requested_by, status, current_step, "
    "context, created_at, closed_at) VALUES ('ATI', 'opportunity', :opp, 'again', :by, :status, 1, '{}', :at, :closed)"
)


def test_db_rejects_two_pending_approvals_of_one_kind_for_one_deal(engine, deal, ati_request, org):
    rejects(engine, INSERT_REQUEST, unique("uq_approval_requests_one_pending",
                                           "approval_requests.subject_type, approval_requests.subject_id, "
                                           "approval_requests.kind"),
            opp=deal, by=org["rep"], status="pending", at=NOW, closed=None)
    # The index is partial: closed requests of the same kind may pile up.
    accepts(engine, INSERT_REQUEST, opp=deal, by=org["rep"], status="cancelled", at=NOW, closed=NOW)


def test_db_rejects_decided_request_without_closed_at(engine, deal, org):
    rejects(engine, INSERT_REQUEST, "ck_approval_requests_closed_when_decided",
            opp=deal, by=org["rep"], status="approved", at=NOW, closed=None)
    rejects(engine, INSERT_REQUEST, "ck_approval_requests_closed_when_decided",
            opp=deal, by=org["rep"], status="pending", at=NOW, closed=NOW)


INSERT_DECISION = (
    "INSERT INTO approval_decisions (request_id, step_seq, decider_id, outcome, comment, channel, via_agent, "
    "decided_at) VALUES (:req, 1, :by, :outcome, :comment, 'slack', false, :at)"
)


def test_db_rejects_two_decisions_for_one_step(engine, ati_request, org):
    with engine.begin() as conn:
        conn.execute(text(INSERT_DECISION), dict(req=ati_request, by=org["manager"], outcome="approve",
                                                 comment=None, at=NOW))
    rejects(engine, INSERT_DECISION,
            unique("uq_approval_decisions_request_id_step_seq",
                   "approval_decisions.request_id, approval_decisions.step_seq"),
            req=ati_request, by=org["director"], outcome="approve", comment=None, at=NOW)


def test_db_rejects_reject_without_comment(engine, ati_request, org):
    rejects(engine, INSERT_DECISION, "ck_approval_decisions_reject_has_reason",
            req=ati_request, by=org["manager"], outcome="reject", comment=None, at=NOW)
    accepts(engine, INSERT_DECISION, req=ati_request, by=org["manager"], outcome="reject",
            comment="no budget", at=NOW)


INSERT_LEAD = (
    "INSERT INTO leads (source, company, contact_name, currency, score_reasons, email_norm, identity_norm, "
    "created_at, updated_at) VALUES ('website', 'Other Co', 'Somebody', 'CNY', '[]', :email, :identity, :at, :at)"
)


def test_db_rejects_duplicate_lead_email_norm(engine, deal, db):
    from domain.db import tables as t

    existing = db.rows(t.leads)[0]
    assert existing.email_norm
    rejects(engine, INSERT_LEAD, unique("uq_leads_email_norm", "leads.email_norm"),
            email=existing.email_norm, identity="other co|somebody", at=NOW)
    rejects(engine, INSERT_LEAD, unique("uq_leads_identity_norm", "leads.identity_norm"),
            email="fresh@other.example", identity=existing.identity_norm, at=NOW)
    accepts(engine, INSERT_LEAD, email="fresh@other.example", identity="other co|somebody", at=NOW)


def test_db_rejects_converted_lead_without_opportunity(engine, deal, db):
    from domain.db import tables as t

    lead = db.rows(t.leads)[0]
    rejects(engine, "UPDATE leads SET opportunity_id = NULL WHERE id = :id", "ck_leads_converted_has_opportunity",
            id=lead.id)
    rejects(engine, "UPDATE leads SET status = 'disqualified' WHERE id = :id", "ck_leads_disqualify_reason",
            id=lead.id)


INSERT_MEMBER = "INSERT INTO opportunity_members (opportunity_id, user_id, role) VALUES (:opp, :user, :role)"


def test_db_rejects_second_sr_seat_on_a_deal(engine, deal, org):
    rejects(engine, INSERT_MEMBER, unique("uq_opportunity_members_triangle_seat",
                                          "opportunity_members.opportunity_id, opportunity_members.role"),
            opp=deal, user=org["director"], role="SR")
    rejects(engine, INSERT_MEMBER, unique("uq_opportunity_members_triangle_seat",
                                          "opportunity_members.opportunity_id, opportunity_members.role"),
            opp=deal, user=org["director"], role="FR")
    # Extra (non-seat) roles are not limited to one per deal.
    accepts(engine, INSERT_MEMBER, opp=deal, user=org["director"], role="presales")


def test_db_rejects_duplicate_outbox_key(engine, deal, db):
    from domain.db import tables as t

    key = db.rows(t.outbox)[0].key
    rejects(engine, "INSERT INTO outbox (key, topic, payload, created_at, available_at) "
                    "VALUES (:key, 'X', '{}', :at, :at)", unique("uq_outbox_key", "outbox.key"), key=key, at=NOW)


def test_db_rejects_team_manager_that_is_not_a_user(engine, org, request, dialect):
    rejects(engine, "UPDATE teams SET manager_id = 999999 WHERE id = :id",
            {"postgresql": "fk_teams_manager_id_users", "sqlite": "FOREIGN KEY constraint failed"},
            id=org["team_east"])


def test_db_rejects_lead_pointing_at_missing_opportunity(engine, deal, db, request, dialect):
    from domain.db import tables as t

    lead = db.rows(t.leads)[0]
    rejects(engine, "UPDATE leads SET opportunity_id = 999999 WHERE id = :id",
            {"postgresql": "fk_leads_opportunity_id_opportunities", "sqlite": "FOREIGN KEY constraint failed"},
            id=lead.id)


def test_a_broken_rule_reaches_the_user_without_the_rows_data(engine, uow_factory, org):
    """PostgreSQL's error text carries the failing row (emails, budgets): it stays in the logs."""
    from sqlalchemy import text as sql

    from domain.errors import Conflict

    with pytest.raises(Conflict) as err:
        with uow_factory() as uow:
            uow.session.execute(sql("INSERT INTO contacts (account_id, name, email, decision_role, relationship, "
                                    "created_at) VALUES (999999, 'Secret Person', 'secret@x.example', 'user', 2, "
                                    "'2026-01-01')"))
            uow.commit()
    assert "secret" not in err.value.message.lower() and "nothing was saved" in err.value.message
