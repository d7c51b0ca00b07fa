"""Who sees what through the API: a key acts as its user, so every list holds exactly the records the
services let that user read one by one, and a record the user may not see is answered exactly as one that
does not exist (no probing for ids), for reads and for actions alike."""
from __future__ import annotations

import pytest

from domain.db import tables as t
from domain.errors import NotFound, PermissionDenied
from domain.services import accounts as account_svc
from domain.services import billing as billing_svc
from domain.services import contracts as contract_svc
from domain.services import delivery as delivery_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.services import payments as payment_svc
from domain.services import quotes as quote_svc
from tests import builders
from tests.api.test_resources import _error, all_pages, auth, ids, signed_deal


def _contact(contact_id: int, *, actor, uow):
    return account_svc.account_360(uow.contacts.get(contact_id).account_id, actor=actor, uow=uow)


# path → (table, the service read deciding whether one record is the user's to see)
READS = {
    "leads": (t.leads, lead_svc.get_lead),
    "accounts": (t.accounts, account_svc.account_360),
    "contacts": (t.contacts, _contact),
    "opportunities": (t.opportunities, opp_svc.get_opportunity),
    "quotes": (t.quotes, quote_svc.get_quote),
    "contracts": (t.contracts, contract_svc.get_contract),
    "orders": (t.orders, delivery_svc.get_order),
    "invoices": (t.invoices, billing_svc.get_invoice),
    "payments": (t.payments, payment_svc.get_payment),
}
USERS = ["rep", "rep2", "manager", "director_w", "rep_w", "sr", "fr", "finance", "legal", "sales_ops"]


@pytest.fixture
def world(uow_factory, org) -> dict[str, int]:
    """Two of rep's deals (one closed after lead-to-cash, one signed), one of rep2's, one in the west team,
    a lead nobody owns, and a payment finance recorded against no contract."""
    builders.seed_catalog(uow_factory, org)
    closed_opp = builders.make_deal(uow_factory, org, n=1)
    builders.lead_to_cash(uow_factory, org, closed_opp, seats=7)
    signed_opp, _ = signed_deal(uow_factory, org, n=2)
    rep2_opp = builders.make_deal(uow_factory, org, n=3, owner="rep2", triangle=False)
    west_opp = builders.make_deal(uow_factory, org, n=4, owner="rep_w", region="west")
    with uow_factory() as uow:
        lead_svc.create_lead({"source": "website", "company": "Nobody's Ltd", "contact_name": "Orphan",
                              "region": "north"}, actor=org.actor("sales_ops"), uow=uow)
        west_account = uow.opportunities.get(west_opp).account_id
        payment_svc.record_payment({"account_id": west_account, "amount": "88.80", "currency": "CNY",
                                    "received_on": uow.now().date().isoformat(), "bank_ref": "LOOSE 1",
                                    "allocations": []}, actor=org.actor("finance"), uow=uow)
        uow.commit()
    return {"closed": closed_opp, "signed": signed_opp, "rep2": rep2_opp, "west": west_opp,
            "west_account": west_account}


def _visible(uow_factory, org, user: str, resource: str) -> set[int] | None:
    """The ids the services let `user` read one by one; None when the user's role may not read them at all."""
    table, read = READS[resource]
    with uow_factory() as uow:
        every = [row.id for row in uow.session.execute(table.select())]
    seen = set()
    for id_ in every:
        with uow_factory() as uow:
            try:
                read(id_, actor=org.actor(user), uow=uow)
            except PermissionDenied as e:
                if e.details.get("message_key") == "rbac.needs_role":
                    return None
                continue
            except NotFound:
                continue
        seen.add(id_)
    return seen


def test_every_list_shows_exactly_what_the_services_let_its_user_read(api, make_key, uow_factory, org, world):
    seen: dict[tuple[str, str], set[int]] = {}
    for user in USERS:
        headers = auth(make_key, user)
        for resource in READS:
            expected = _visible(uow_factory, org, user, resource)
            if expected is None:
                _error(api.get(f"/{resource}", headers=headers), 403, "permission_denied")
                continue
            got = ids(all_pages(api, f"/{resource}", headers, limit=3))
            assert got == sorted(got) and set(got) == expected, (user, resource, got, sorted(expected))
            seen[user, resource] = expected
    # The picture is not trivially everything or nothing.
    assert world["west"] not in seen["rep", "opportunities"] and world["closed"] in seen["rep", "opportunities"]
    assert world["rep2"] in seen["manager", "opportunities"] and world["rep2"] not in seen["rep", "opportunities"]
    assert seen["rep2", "invoices"] == set() < seen["rep", "invoices"] == seen["finance", "invoices"]
    assert world["west"] in seen["director_w", "opportunities"] and not seen["director_w", "contracts"]
    assert len(seen["sales_ops", "payments"]) == len(seen["finance", "payments"]) == len(seen["rep", "payments"]) + 1
    assert ("legal", "leads") not in seen and ("finance", "leads") not in seen


def test_a_rep_cannot_see_or_touch_another_teams_deal(api, make_key, uow_factory, org, world, db):
    rep = auth(make_key, "rep")
    west, missing = world["west"], 999_999

    def same_as_missing(path: str, method: str = "get", **kwargs) -> None:
        hidden = api.request(method.upper(), path.format(west), headers=rep, **kwargs)
        absent = api.request(method.upper(), path.format(missing), headers=rep, **kwargs)
        h, a = _error(hidden, 404, "not_found"), _error(absent, 404, "not_found")
        assert h["message"].replace(str(west), "N") == a["message"].replace(str(missing), "N")
        assert (h["field"], h["details"]["message_key"]) == (a["field"], a["details"]["message_key"])

    domain_rows = t.audit_log.c.entity != "api_call"  # each call's own audit row aside
    audit_rows = db.count(t.audit_log, domain_rows)
    same_as_missing("/opportunities/{}")
    same_as_missing("/opportunities/{}/advance", method="post")
    same_as_missing("/opportunities/{}/close", method="post", json={"outcome": "lost", "reason": "probing"})
    same_as_missing("/opportunities/{}/request-gate", method="post", json={"kind": "ATI"})
    quote = {"lines": [{"product": "MES-LIC", "quantity": "1"}]}
    hidden = _error(api.post("/quotes", headers=rep, json={**quote, "opportunity_id": west}), 404, "not_found")
    assert hidden["field"] == "opportunity_id"
    account = world["west_account"]
    _error(api.get(f"/accounts/{account}", headers=rep), 404, "not_found")
    _error(api.post("/opportunities", headers=rep, json={"name": "Poach", "account_id": account, "amount": "1.00"}),
           404, "not_found", "account_id")
    _error(api.post("/contacts", headers=rep, json={"account_id": account, "name": "Spy"}), 404, "not_found",
           "account_id")
    assert db.count(t.audit_log, domain_rows) == audit_rows  # nothing was done, nothing was written
    assert db.count(t.approval_requests, t.approval_requests.c.subject_id == west) == 0

    director_w = auth(make_key, "director_w")
    assert api.get(f"/opportunities/{west}", headers=director_w).status_code == 200  # their own team's deal
