"""Holes found in review: stale gates, closed deals, expired and cancelled approvals, leaks."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import PermissionDenied, ValidationFailed
from domain.services import accounts, activities, approvals, catalog, opportunities, quotes
from tests import builders
from tests.unit.conftest import drive_to, new_deal


@pytest.fixture
def priced(run, org):
    admin = org.actor("admin")
    run(catalog.create_product, {"sku": "RTR-X", "name_en": "Router X", "name_zh": "路由器X",
                                 "cost": "40", "floor_price": "50"}, actor=admin)
    run(catalog.create_product, {"sku": "MES", "name_en": "MES core", "name_zh": "MES 核心",
                                 "cost": "100000", "floor_price": "150000"}, actor=admin)
    run(catalog.create_price_book, {"name": "East", "region": "east", "prices": {"RTR-X": "100", "MES": "300000"}},
        actor=admin)


def test_a_gate_whose_precondition_was_voided_cannot_be_approved(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    drive_to(uow_factory, org, opp, "negotiate")
    run(opportunities.sign_off_deliverability, opp, actor=org.actor("fr"))
    builders.contract_under_review(uow_factory, org, opp)
    req = run(approvals.request_gate, opp, "ATC", actor=org.actor("rep"))
    run(opportunities.record_delivery_plan, opp, "Three waves now", actor=org.actor("fr"))  # voids the sign-off
    with pytest.raises(ValidationFailed, match="deliverability sign-off") as err:
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    assert err.value.missing == ["FR's deliverability sign-off"]
    assert store.get("approvals", req.id).decisions == [] and store.get("opportunities", opp).stage == "negotiate"
    # once the FR signs the new plan off, the same request can pass; rejecting is always possible
    run(opportunities.sign_off_deliverability, opp, actor=org.actor("fr"))
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("director"))
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("finance"))
    assert store.get("opportunities", opp).stage == "won"


def test_an_expired_request_cannot_be_decided(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    req = run(approvals.request_gate, opp, "ATI", actor=org.actor("rep"))
    store.clock.advance(hours=73)
    view = run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    assert view.status == "expired" and "request it again" in view.message and view.decisions == []
    assert store.get("opportunities", opp).stage == "qualify"


def test_a_decided_request_is_not_shown_to_someone_who_cannot_see_the_deal(run, org, uow_factory):
    opp = new_deal(uow_factory, org)
    req = run(approvals.request_gate, opp, "ATI", actor=org.actor("rep"))
    run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager"))
    with pytest.raises(PermissionDenied, match="cannot see"):
        run(approvals.decide_approval, req.id, "approve", actor=org.actor("manager_w"))


def test_closing_a_deal_cancels_its_discount_approvals_and_expires_its_quotes(run, org, uow_factory, priced, store):
    opp = new_deal(uow_factory, org)
    q1 = run(quotes.create_quote, opp, {"lines": [{"product": "RTR-X", "quantity": "10", "discount_pct": "15"}]},
             actor=org.actor("rep"))
    pending = run(quotes.submit_quote, q1.id, actor=org.actor("rep"))
    run(opportunities.close_opportunity, opp, "lost", "went with a competitor", actor=org.actor("rep"))
    assert run(approvals.get_approval, pending.approval_id, actor=org.actor("rep")).status == "cancelled"
    assert run(quotes.get_quote, q1.id, actor=org.actor("rep")).status == "expired"
    assert run(approvals.list_my_approvals, actor=org.actor("manager")) == []
    with pytest.raises(ValidationFailed, match="can no longer change"):
        run(quotes.send_quote, q1.id, actor=org.actor("rep"))
    assert [a.kind for a in run(approvals.approvals_for, opp, actor=org.actor("rep"))] == ["discount"]


def test_a_cancelled_discount_approval_gives_the_quote_back_as_a_draft(run, org, uow_factory, priced):
    opp = new_deal(uow_factory, org)
    q1 = run(quotes.create_quote, opp, {"lines": [{"product": "RTR-X", "quantity": "10", "discount_pct": "15"}]},
             actor=org.actor("rep"))
    pending = run(quotes.submit_quote, q1.id, actor=org.actor("rep"))
    run(approvals.cancel_approval, pending.approval_id, actor=org.actor("rep"))
    assert run(quotes.get_quote, q1.id, actor=org.actor("rep")).status == "draft"
    assert run(quotes.submit_quote, q1.id, actor=org.actor("rep")).status == "pending_approval"


def test_one_deep_line_routes_the_quote_even_when_the_overall_discount_is_small(run, org, uow_factory, priced):
    opp = new_deal(uow_factory, org)
    q1 = run(quotes.create_quote, opp, {"lines": [{"product": "MES", "quantity": "1"},
                                                  {"product": "RTR-X", "quantity": "10", "discount_pct": "35"}]},
             actor=org.actor("rep"))
    assert q1.discount_pct < 1
    with pytest.raises(ValidationFailed, match="35"):
        run(quotes.submit_quote, q1.id, actor=org.actor("rep"))


def test_an_approved_quote_that_grows_into_a_stricter_band_needs_approval_again(run, org, uow_factory, priced):
    opp = new_deal(uow_factory, org)
    q1 = run(quotes.create_quote, opp, {"lines": [{"product": "MES", "quantity": "1", "discount_pct": "10"}]},
             actor=org.actor("rep"))
    assert run(quotes.submit_quote, q1.id, actor=org.actor("rep")).status == "approved"  # auto: small deal
    grown = run(quotes.update_quote, q1.id, {"lines": [{"product": "MES", "quantity": "30", "discount_pct": "10"}]},
                actor=org.actor("rep"))
    assert grown.status == "draft"  # 8.1 M is over the automatic band's 5 M


def test_an_inactive_product_cannot_be_quoted(run, org, uow_factory, priced, store):
    opp = new_deal(uow_factory, org)
    product = next(p for p in store.tables["products"].values() if p.sku == "RTR-X")
    product.active = False
    with pytest.raises(Exception, match="Unknown product"):
        run(quotes.create_quote, opp, {"lines": [{"product": "RTR-X", "quantity": "1"}]}, actor=org.actor("rep"))


def test_a_deal_team_member_cannot_take_over_the_account(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    account_id = store.get("opportunities", opp).account_id
    run(opportunities.create_opportunity, {"name": "Spare parts", "account_id": account_id, "amount": "1000",
                                           "owner_id": org["rep2"]}, actor=org.actor("manager"))
    with pytest.raises(PermissionDenied, match="AR or their managers"):  # rep2 sees it through their deal
        run(accounts.update_account, account_id, {"owner_id": org["rep2"]}, actor=org.actor("rep2"))
    assert store.get("accounts", account_id).owner_id == org["rep"]
    assert run(accounts.update_account, account_id, {"industry": "steel"}, actor=org.actor("manager")).industry == "steel"


def test_account_360_hides_activities_of_deals_the_viewer_cannot_see(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    account_id = store.get("opportunities", opp).account_id
    run(activities.log_activity, {"kind": "call", "subject": "pricing talk", "opportunity_id": opp},
        actor=org.actor("rep"))
    other = run(opportunities.create_opportunity, {"name": "Spare parts", "account_id": account_id, "amount": "1000",
                                                   "owner_id": org["rep2"]}, actor=org.actor("manager"))
    view = run(accounts.account_360, account_id, actor=org.actor("rep2"))
    assert [o.id for o in view.opportunities] == [other.id]
    assert "pricing talk" not in [a.subject for a in view.activities]


def test_activity_times_with_an_offset_are_stored_in_utc_and_the_future_is_refused(run, org, uow_factory, store):
    opp = new_deal(uow_factory, org)
    now = store.clock.current
    local = now.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=8))) - timedelta(hours=1)
    view = run(activities.log_activity, {"kind": "meeting", "subject": "site visit", "opportunity_id": opp,
                                         "occurred_at": local.isoformat()}, actor=org.actor("rep"))
    assert view.occurred_at == (now - timedelta(hours=1)).replace(microsecond=view.occurred_at.microsecond)
    with pytest.raises(ValidationFailed, match="in the future"):
        run(activities.log_activity, {"kind": "call", "subject": "later", "opportunity_id": opp,
                                      "occurred_at": (datetime(2099, 1, 1)).isoformat()}, actor=org.actor("rep"))
