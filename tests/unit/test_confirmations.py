"""Proposals wait for their proposer's yes: once, within their lifetime, by that person only."""
from __future__ import annotations

import pytest

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.services import confirmations
from domain.services.confirmations import token_hash

PROPOSAL = {"tool": "record_payment", "args": {"amount": "1000", "bank_ref": "BOC-1"},
            "summary": "Record ¥1,000 received (bank ref BOC-1)"}


def propose(run, org, who="finance", **kw):
    return run(confirmations.propose_action, PROPOSAL, actor=org.actor(who), **kw)


def test_a_proposal_stores_only_the_hash_of_its_token(run, org, store):
    made = propose(run, org)
    row = store.get("pending_actions", made.id)
    assert row.token_hash == token_hash(made.token) and made.token not in repr(row.__dict__)
    assert row.status == "pending" and row.decided_at is None
    assert (row.expires_at - row.created_at).total_seconds() == 600
    assert [e.action for e in store.tables["audit"].values() if e.entity == "pending_action"] == ["proposed"]


def test_confirming_returns_the_stored_call_once(run, org, store):
    made = propose(run, org)
    action = run(confirmations.confirm_action, made.token, actor=org.actor("finance"))
    assert (action.tool, action.args, action.status) == ("record_payment", PROPOSAL["args"], "confirmed")
    with pytest.raises(Conflict, match="already confirmed"):
        run(confirmations.confirm_action, made.token, actor=org.actor("finance"))
    assert store.get("pending_actions", made.id).decided_at is not None


def test_only_the_proposer_may_confirm_or_cancel(run, org, store):
    made = propose(run, org)
    for verb in (confirmations.confirm_action, confirmations.cancel_action):
        with pytest.raises(PermissionDenied, match="Only the person who asked"):
            run(verb, made.token, actor=org.actor("admin"))
    assert store.get("pending_actions", made.id).status == "pending"


def test_an_expired_proposal_cannot_be_confirmed(run, org, store):
    made = propose(run, org)
    store.clock.advance(minutes=10, seconds=1)
    with pytest.raises(ValidationFailed, match="expired"):
        run(confirmations.confirm_action, made.token, actor=org.actor("finance"))
    assert store.get("pending_actions", made.id).status == "pending"


def test_a_cancelled_proposal_cannot_be_confirmed(run, org):
    made = propose(run, org)
    assert run(confirmations.cancel_action, made.token, actor=org.actor("finance")).status == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        run(confirmations.confirm_action, made.token, actor=org.actor("finance"))


def test_an_unknown_or_tampered_token_is_not_found(run, org):
    made = propose(run, org)
    for token in ("", "nope", made.token[:-1] + ("A" if made.token[-1] != "A" else "B")):
        with pytest.raises(NotFound):
            run(confirmations.confirm_action, token, actor=org.actor("finance"))


def test_the_lifetime_is_configurable_but_at_least_a_minute(run, org, store):
    made = propose(run, org, ttl_minutes=3)
    row = store.get("pending_actions", made.id)
    assert (row.expires_at - row.created_at).total_seconds() == 180
    with pytest.raises(ValidationFailed):
        propose(run, org, ttl_minutes=0)
