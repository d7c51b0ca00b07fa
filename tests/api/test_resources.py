"""Resource endpoints: create → get → list (pages across several requests, filters) for every resource,
money exact to the cent as decimal strings, and bad list parameters answered 422 in the error schema.

Helpers here (`auth`, `all_pages`, `signed_deal`) are shared with test_resources_actions/_rbac.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.api.cursor import encode
from domain.db import tables as t
from tests import builders
from tests.api.conftest import bearer


def auth(make_key, user: str, scopes="*") -> dict[str, str]:
    return bearer(make_key(scopes, user=user, name=f"{user}-{scopes}"))


def all_pages(api, path: str, headers: dict, *, limit: int, **params) -> list[list[dict]]:
    """Every page of a list, following next_cursor until it is null."""
    pages, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(body["items"]) == limit and len(pages) < 50


def ids(pages: list[list[dict]]) -> list[int]:
    return [item["id"] for page in pages for item in page]


def signed_deal(uow_factory, org, n: int) -> tuple[int, int]:
    """A deal of rep's taken through every gate: its contract signed by ATC, the advance (30 %) invoiced."""
    opp_id = builders.make_deal(uow_factory, org, n=n)
    builders.full_cycle(uow_factory, org, opp_id)
    with uow_factory() as uow:
        return opp_id, uow.contracts.for_opportunity(opp_id).id


def _error(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error


# --- leads ------------------------------------------------------------------------------------------------

def test_leads_create_get_list_across_pages_with_filters(api, make_key, org):
    rep = auth(make_key, "rep")
    made = []
    for n in range(5):
        response = api.post("/leads", headers=rep, json={
            "source": "website", "company": f"Lead Co {n}", "contact_name": f"Person {n}",
            "email": f"p{n}@leadco{n}.example", "budget": "1234567.89", "region": "east"})
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert made[0]["budget"] == "1234567.89" and made[0]["owner_id"] == org["rep"]  # a rep's lead is theirs

    got = api.get(f"/leads/{made[2]['id']}", headers=rep)
    assert got.status_code == 200 and got.json()["company"] == "Lead Co 2" and got.json()["budget"] == "1234567.89"

    pages = all_pages(api, "/leads", rep, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert ids(pages) == sorted(x["id"] for x in made)  # oldest first, nothing repeated or skipped

    patched = api.patch(f"/leads/{made[3]['id']}", headers=rep, json={"budget": "2000000.10", "need": "MES"})
    assert patched.status_code == 200 and (patched.json()["budget"], patched.json()["need"]) == ("2000000.10", "MES")
    _error(api.patch(f"/leads/{made[3]['id']}", headers=rep, json={}), 422, "validation_failed")
    assert api.post(f"/leads/{made[1]['id']}/qualify", headers=rep).status_code == 200
    assert ids(all_pages(api, "/leads", rep, limit=50, status="qualified")) == [made[1]["id"]]
    assert len(ids(all_pages(api, "/leads", rep, limit=50, status="new"))) == 4
    assert ids(all_pages(api, "/leads", rep, limit=50, owner_id=org["rep2"])) == []
    assert len(ids(all_pages(api, "/leads", rep, limit=50, source="website"))) == 5
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(all_pages(api, "/leads", rep, limit=50, updated_since=later)) == []
    assert len(ids(all_pages(api, "/leads", rep, limit=50, updated_since="2000-01-01T00:00:00Z"))) == 5


def test_a_duplicate_lead_answers_200_with_the_existing_one(api, make_key, db):
    rep = auth(make_key, "rep")
    lead = {"source": "referral", "company": "Dup Ltd", "contact_name": "Ann", "email": "ann@dup.example"}
    first = api.post("/leads", headers=rep, json=lead)
    again = api.post("/leads", headers=rep, json={**lead, "company": "Dup Limited"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert db.count(t.leads) == 1


def test_bad_list_parameters_are_422_in_the_error_schema(api, make_key):
    rep = auth(make_key, "rep")
    _error(api.get("/leads", headers=rep, params={"limit": 0}), 422, "validation_failed", "limit")
    _error(api.get("/leads", headers=rep, params={"limit": 201}), 422, "validation_failed", "limit")
    _error(api.get("/leads", headers=rep, params={"cursor": "not-a-cursor"}), 422, "validation_failed", "cursor")
    _error(api.get("/leads", headers=rep, params={"status": "hot"}), 422, "validation_failed", "status")
    _error(api.get("/opportunities", headers=rep, params={"stage": "done"}), 422, "validation_failed", "stage")
    _error(api.get("/leads/0", headers=rep), 422, "validation_failed", "lead_id")
    _error(api.get(f"/leads/{2**31}", headers=rep), 422, "validation_failed", "lead_id")
    assert api.get("/leads", headers=rep, params={"cursor": encode(10**9)}).json() == {"items": [],
                                                                                       "next_cursor": None}


def test_money_must_be_a_decimal_string(api, make_key):
    rep = auth(make_key, "rep")
    lead = {"source": "website", "company": "Float Ltd", "contact_name": "Bo"}
    for bad in (1500000.5, 1500000, "1,500,000", "1.234", "-5"):
        _error(api.post("/leads", headers=rep, json={**lead, "budget": bad}), 422, "validation_failed", "budget")


# --- accounts and contacts ------------------------------------------------------------------------------

def test_accounts_and_contacts_create_get_list(api, make_key, org):
    rep = auth(make_key, "rep")
    accounts = []
    for n in range(3):
        response = api.post("/accounts", headers=rep, json={"name": f"Account {n} Ltd", "region": "east",
                                                             "industry": "utilities"})
        assert response.status_code == 201, response.text
        accounts.append(response.json())
    assert accounts[0]["owner_id"] == org["rep"]
    _error(api.post("/accounts", headers=rep, json={"name": "ACCOUNT 0 LTD"}), 409, "conflict", "name")
    assert api.get(f"/accounts/{accounts[1]['id']}", headers=rep).json()["name"] == "Account 1 Ltd"
    patched = api.patch(f"/accounts/{accounts[2]['id']}", headers=rep, json={"industry": "chemicals", "tier": "key"})
    assert patched.status_code == 200 and (patched.json()["industry"], patched.json()["tier"]) == ("chemicals", "key")
    pages = all_pages(api, "/accounts", rep, limit=2)
    assert [len(p) for p in pages] == [2, 1] and ids(pages) == [a["id"] for a in accounts]
    assert len(ids(all_pages(api, "/accounts", rep, limit=5, region="east"))) == 3
    assert ids(all_pages(api, "/accounts", rep, limit=5, region="west")) == []
    assert len(ids(all_pages(api, "/accounts", rep, limit=5, owner_id=org["rep"]))) == 3

    contacts = []
    for n, account in enumerate(accounts + accounts[:1]):
        response = api.post("/contacts", headers=rep, json={
            "account_id": account["id"], "name": f"Contact {n}", "email": f"c{n}@example.com",
            "decision_role": "decision_maker", "relationship": 4})
        assert response.status_code == 201, response.text
        contacts.append(response.json())
    _error(api.post("/contacts", headers=rep, json={"account_id": accounts[0]["id"], "name": "Contact 0"}),
           409, "conflict")
    _error(api.post("/contacts", headers=rep, json={"account_id": 99999, "name": "X"}), 404, "not_found")
    assert api.get(f"/contacts/{contacts[3]['id']}", headers=rep).json()["account_id"] == accounts[0]["id"]
    assert [len(p) for p in all_pages(api, "/contacts", rep, limit=3)] == [3, 1]
    assert ids(all_pages(api, "/contacts", rep, limit=3, account_id=accounts[0]["id"])) == [
        contacts[0]["id"], contacts[3]["id"]]


# --- opportunities ----------------------------------------------------------------------------------------

def test_opportunities_create_get_list_with_exact_money(api, make_key, org):
    rep = auth(make_key, "rep")
    account = api.post("/accounts", headers=rep, json={"name": "Deal Customer", "region": "east"}).json()
    other = api.post("/accounts", headers=rep, json={"name": "Other Customer", "region": "east"}).json()
    deals = []
    for n, (acc, amount) in enumerate([(account, "98765432.10"), (account, "0.01"), (other, "1000000.00")]):
        response = api.post("/opportunities", headers=rep, json={
            "name": f"Deal {n}", "account_id": acc["id"], "amount": amount, "budget": "1200000.50",
            "expected_close_date": "2027-03-31", "competitors": ["Siemens"]})
        assert response.status_code == 201, response.text
        deals.append(response.json())
    assert [d["amount"] for d in deals] == ["98765432.10", "0.01", "1000000.00"]
    got = api.get(f"/opportunities/{deals[0]['id']}", headers=rep).json()
    assert (got["amount"], got["budget"], got["stage"], got["owner_id"]) == ("98765432.10", "1200000.50", "qualify",
                                                                             org["rep"])
    patched = api.patch(f"/opportunities/{deals[2]['id']}", headers=rep, json={"amount": "1000000.01"})
    assert patched.status_code == 200 and patched.json()["amount"] == "1000000.01"
    deals[2] = patched.json()
    pages = all_pages(api, "/opportunities", rep, limit=2)
    assert [len(p) for p in pages] == [2, 1] and ids(pages) == [d["id"] for d in deals]
    assert [d["amount"] for p in pages for d in p] == ["98765432.10", "0.01", "1000000.01"]
    assert ids(all_pages(api, "/opportunities", rep, limit=5, account_id=account["id"])) == [deals[0]["id"],
                                                                                             deals[1]["id"]]
    assert len(ids(all_pages(api, "/opportunities", rep, limit=5, stage="qualify", owner_id=org["rep"]))) == 3
    assert ids(all_pages(api, "/opportunities", rep, limit=5, stage="won")) == []


# --- quotes, contracts, orders, invoices, payments ------------------------------------------------------

def test_quotes_create_get_list(api, make_key, uow_factory, org):
    builders.seed_catalog(uow_factory, org)
    opp_a = builders.make_deal(uow_factory, org, n=1)
    opp_b = builders.make_deal(uow_factory, org, n=2)
    rep = auth(make_key, "rep")
    made = []
    for opp, qty in ((opp_a, "10"), (opp_a, "12.50"), (opp_b, "3")):
        response = api.post("/quotes", headers=rep, json={
            "opportunity_id": opp, "lines": [{"product": "MES-LIC", "quantity": qty, "discount_pct": "5.25"}]})
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert made[1]["total"] == "11843.75" and made[1]["lines"][0]["quantity"] == "12.50"  # 12.5 × 1000 × 0.9475
    assert made[1]["version"] == 2
    assert api.get(f"/quotes/{made[0]['id']}", headers=rep).json()["status"] == "superseded"
    pages = all_pages(api, "/quotes", rep, limit=2)
    assert [len(p) for p in pages] == [2, 1] and ids(pages) == [q["id"] for q in made]
    assert ids(all_pages(api, "/quotes", rep, limit=5, opportunity_id=opp_a)) == [made[0]["id"], made[1]["id"]]
    assert ids(all_pages(api, "/quotes", rep, limit=5, status="draft")) == [made[1]["id"], made[2]["id"]]
    _error(api.post("/quotes", headers=rep, json={"opportunity_id": opp_a, "lines": [
        {"product": "NOPE", "quantity": "1"}]}), 404, "not_found")


def test_contracts_orders_invoices_payments_read_and_list(api, make_key, uow_factory, org):
    builders.seed_catalog(uow_factory, org)
    closed = builders.lead_to_cash(uow_factory, org, builders.make_deal(uow_factory, org, n=1), seats=7)
    opp_b, signed = signed_deal(uow_factory, org, n=2)
    finance = auth(make_key, "finance")

    contracts = all_pages(api, "/contracts", finance, limit=1)
    assert ids(contracts) == [closed, signed]
    assert [c["status"] for p in contracts for c in p] == ["closed", "signed"]
    assert ids(all_pages(api, "/contracts", finance, limit=5, status="signed")) == [signed]
    assert ids(all_pages(api, "/contracts", finance, limit=5, opportunity_id=opp_b)) == [signed]
    one = api.get(f"/contracts/{closed}", headers=finance).json()
    assert one["value"] == one["paid_total"] == "5250.00" and len(one["milestones"]) == 3  # 7 seats at 25 % off

    orders = all_pages(api, "/orders", finance, limit=1)
    assert len(ids(orders)) == 1 and orders[0][0]["contract_id"] == closed
    assert api.get(f"/orders/{orders[0][0]['id']}", headers=finance).json()["status"] == "delivered"
    assert ids(all_pages(api, "/orders", finance, limit=5, contract_id=signed)) == []

    invoices = all_pages(api, "/invoices", finance, limit=2)
    assert [len(p) for p in invoices] == [2, 2]
    assert [i["amount"] for p in invoices for i in p][:3] == ["1575.00", "3150.00", "525.00"]
    assert ids(all_pages(api, "/invoices", finance, limit=5, contract_id=signed)) == [ids(invoices)[-1]]
    assert len(ids(all_pages(api, "/invoices", finance, limit=5, status="paid"))) == 3
    issued = all_pages(api, "/invoices", finance, limit=5, status="issued")
    assert [i["contract_id"] for i in issued[0]] == [signed]
    assert api.get(f"/invoices/{ids(issued)[0]}", headers=finance).json()["balance"] == issued[0][0]["amount"]

    payments = all_pages(api, "/payments", finance, limit=2)
    assert [len(p) for p in payments] == [2, 1]
    assert [p["amount"] for page in payments for p in page] == ["1575.00", "3150.00", "625.00"]
    last = api.get(f"/payments/{ids(payments)[-1]}", headers=finance).json()
    assert (last["allocated"], last["unapplied"]) == ("525.00", "100.00")
    assert len(ids(all_pages(api, "/payments", finance, limit=5, status="confirmed"))) == 3
    assert ids(all_pages(api, "/payments", finance, limit=5, account_id=999)) == []
