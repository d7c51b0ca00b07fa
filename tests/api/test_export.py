"""Export (API and CLI) and the export → import round trip, on SQLite and PostgreSQL.

The round trip exports accounts, contacts, leads and opportunities from one company's database
(Chinese text, commas, quotes, newlines, a formula-looking note, won and lost deals with their
dates) as CSV or XLSX, imports the files into a second, fresh database with the same people, and
exports that one: the records must be equal but for refs and creation times.
"""
from __future__ import annotations

import csv
import io
import shutil
from datetime import date

import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.context import AppContext
from domain.db.engine import make_engine
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory
from domain.imports import EXPORT_COLUMNS, ImportOptions, csv_chunks, export_rows, run_import
from domain.services import accounts as account_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.settings import Settings
from tests import builders
from tests.api.conftest import bearer

ROUND_TRIP = ("accounts", "contacts", "leads", "opportunities")  # in the order they import
VOLATILE = {"ref", "created_at"}  # new ids; a record's creation time is when it was imported
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PIPELINE = (
    "name,account,amount,currency,stage,close_date,created_on,owner,next_step,competitors,close_reason\r\n"
    "二期 MES,华东电力有限公司,1250000.50,CNY,won,2025-06-30,2025-01-15,rep@example.com,验收,华为; 用友,\r\n"
    '"Plant, phase 2","Acme, ""Big"" Ltd",98000,USD,lost,2025-09-01,2025-03-01,rep_w@example.com,,,价格太高\r\n'
    "Retrofit,华东电力有限公司,500,CNY,negotiate,2027-03-31,2025-11-01,rep@example.com,\"报价\n评审\",SAP,\r\n"
)


@pytest.fixture
def company(ctx, org):
    """Accounts, contacts, leads and deals as people and an earlier import made them."""
    rep, rep_w, admin = org.actor("rep"), org.actor("rep_w"), org.actor("admin")
    with ctx.uow() as uow:
        hd = account_svc.create_account({"name": "华东电力有限公司", "industry": "电力", "region": "east",
                                         "tier": "key"}, actor=rep, uow=uow)
        acme = account_svc.create_account({"name": 'Acme, "Big" Ltd', "industry": "=SUM(A1:A9)",
                                           "region": "west"}, actor=rep_w, uow=uow)
        account_svc.add_contact(hd.id, {"name": "张伟", "title": "总经理\n兼 CIO", "email": "zw@hd.example",
                                        "decision_role": "decision_maker", "relationship": 5}, actor=rep, uow=uow)
        account_svc.add_contact(acme.id, {"name": "O'Brien, Pat", "decision_role": "technical_evaluator",
                                          "phone": "+1 415 555 0100"}, actor=rep_w, uow=uow)
        lead = lead_svc.create_lead({"source": "trade_show", "company": "西部矿业", "contact_name": "李娜",
                                     "need": "产线 MES 升级，分两期\n第二期明年", "phone": "+86 21 5555 0000",
                                     "budget": "1250000.50", "region": "east", "timeline": "within_6_months",
                                     "notes": "=1+1", "owner_id": org["rep"]}, actor=admin, uow=uow)
        lead_svc.qualify_lead(lead.id, actor=admin, uow=uow)
        other = lead_svc.create_lead({"source": "website", "company": "Globex", "contact_name": "Hank",
                                      "email": "hank@globex.example", "owner_id": org["rep_w"]}, actor=admin, uow=uow)
        lead_svc.disqualify_lead(other.id, "no budget this year", actor=admin, uow=uow)
        opp_svc.create_opportunity({"name": "Spare parts", "account_id": acme.id, "amount": "7300.00",
                                    "currency": "USD", "expected_close_date": "2027-01-31"}, actor=rep_w, uow=uow)
        uow.commit()
    report = run_import("opportunities", PIPELINE.encode(), actor=admin, uow_factory=ctx.uow)
    assert report.created == 3, report.errors
    return org


@pytest.fixture
def other(request, db_url, tmp_path, sqlite_template):
    """A second fresh database with the same people (builders org): where the files are imported."""
    server = name = None
    if db_url.startswith("sqlite"):
        path = tmp_path / "other.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        server = request.getfixturevalue("pg_server")
        name = server.new_name("db")
        url = server.create(name, template=server.migrated_template())
    engine = make_engine(url)
    sf = session_factory(engine)
    ctx2 = AppContext(settings=Settings(database_url=url), engine=engine, session_factory=sf)
    org2 = builders.build_org(lambda **kw: SqlAlchemyUnitOfWork(sf, **kw))
    yield ctx2, org2
    engine.dispose()
    if server is not None:
        server.drop(name)


def records(ctx, actor, kind: str) -> list[dict]:
    """The kind's export as CSV, parsed, without the columns that may differ."""
    with ctx.uow() as uow:
        data = b"".join(csv_chunks(export_rows(kind, actor=actor, uow=uow), EXPORT_COLUMNS[kind]))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in rows),
                  key=lambda r: sorted(r.items()))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_then_import_into_a_fresh_database_gives_equal_records(api, ctx, company, other, make_key, fmt):
    key = make_key("*", user="admin")
    ctx2, org2 = other
    for kind in ROUND_TRIP:
        response = api.get(f"/exports/{kind}", params={"format": fmt}, headers=bearer(key))
        assert response.status_code == 200, response.text
        report = run_import(kind, response.content, ImportOptions(), actor=org2.actor("admin"),
                            uow_factory=ctx2.uow, filename=f"{kind}.{fmt}")
        assert report.errors == [] and report.committed, (kind, report.errors)
    for kind in ROUND_TRIP:
        before, after = records(ctx, company.actor("admin"), kind), records(ctx2, org2.actor("admin"), kind)
        assert after == before and before, kind
    won = next(r for r in records(ctx2, org2.actor("admin"), "opportunities") if r["stage"] == "won")
    assert (won["close_date"], won["created_on"], won["amount"], won["competitors"]) == (
        "2025-06-30", "2025-01-15", "1250000.50", "华为; 用友")


def test_csv_is_utf8_with_a_bom_money_plain_dates_iso_and_formulas_defused(api, company, make_key):
    response = api.get("/exports/leads", params={"format": "csv"}, headers=bearer(make_key("leads:read", user="admin")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="leads-{date.today()}.csv"'
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = {r["company"]: r for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))}
    lead = rows["西部矿业"]
    assert (lead["contact_name"], lead["need"]) == ("李娜", "产线 MES 升级，分两期\n第二期明年")
    assert (lead["budget"], lead["notes"], lead["phone"]) == ("1250000.50", "'=1+1", "'+86 21 5555 0000")
    assert lead["owner"] == "rep@example.com" and lead["status"] == "qualified"
    assert date.fromisoformat(lead["created_at"][:10])


def test_xlsx_has_typed_cells_and_chinese_text(api, company, make_key):
    response = api.get("/exports/opportunities", params={"format": "xlsx"},
                       headers=bearer(make_key("opportunities:read", user="admin")))
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == EXPORT_COLUMNS["opportunities"]
    won = dict(zip(header, next(r for r in rows if r[header.index("stage")] == "won")))
    assert won["name"] == "二期 MES" and won["account"] == "华东电力有限公司"
    assert won["amount"] == 1250000.5 and won["close_date"].date() == date(2025, 6, 30)


def test_an_export_holds_only_what_the_keys_user_may_see_and_needs_the_kinds_read_scope(api, company, make_key):
    rep = bearer(make_key(["leads:read", "opportunities:read"], user="rep"))
    leads = api.get("/exports/leads", headers=rep)
    companies = {r["company"] for r in csv.DictReader(io.StringIO(leads.content.decode("utf-8-sig")))}
    assert companies == {"西部矿业"}  # Globex belongs to rep_w
    deals = api.get("/exports/opportunities", params={"stage": "won"}, headers=rep)
    assert [r["name"] for r in csv.DictReader(io.StringIO(deals.content.decode("utf-8-sig")))] == ["二期 MES"]
    r = api.get("/exports/accounts", headers=rep)
    assert r.status_code == 403 and r.json()["error"]["code"] == "scope_missing"
    r = api.get("/exports/opportunities", params={"stage": "closed"}, headers=rep)
    assert r.status_code == 422 and "negotiate" in r.json()["error"]["allowed"]
    r = api.get("/exports/leads", params={"stage": "won"}, headers=rep)
    assert r.status_code == 422 and r.json()["error"]["field"] == "stage"


def test_the_cli_exports_csv_and_xlsx_files(company, db_url, tmp_path, capsys):
    csv_path, xlsx_path = tmp_path / "accounts.csv", tmp_path / "deals.xlsx"
    assert main(["--db", db_url, "export", "accounts", "--format", "csv", "-o", str(csv_path)]) == 0
    assert main(["--db", db_url, "export", "opportunities", "-o", str(xlsx_path), "--owner", "rep@example.com",
                 "--as", "manager@example.com"]) == 0
    _, err = capsys.readouterr()
    assert "Exported 2 accounts" in err and "Exported 2 opportunities" in err
    names = {r["name"] for r in csv.DictReader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig")))}
    assert names == {"华东电力有限公司", 'Acme, "Big" Ltd'}
    sheet = load_workbook(xlsx_path, read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 3  # the header and rep's two deals
