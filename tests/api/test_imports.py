"""CSV/XLSX import (API, CLI and the domain runner) on SQLite and PostgreSQL.

The big one loads a pipeline exported from "another CRM" (Salesforce's columns, stage names and
US dates) with ~3 % deliberate errors: every planted bad row must be reported (row as in the
file, the file's column) and every good one loaded, with history the analytics can trust.
It runs 10,000 rows on SQLite and 2,000 on PostgreSQL (a network round trip per statement;
the same code paths): LTC_IMPORT_ROWS overrides both.
"""
from __future__ import annotations

import csv
import io
import os
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.cli import main
from domain.db import tables as t
from domain.imports import ImportOptions, run_import
from domain.imports.pipeline import path_to
from domain.model.vocab import Stage
from domain.services import accounts as account_svc
from domain.services import users as user_svc
from tests.api.conftest import bearer

SF_HEADERS = ["Opportunity Name", "Account Name", "Stage", "Amount", "Close Date", "Opportunity Owner",
              "Opportunity Currency", "Created Date", "Probability (%)", "Fiscal Period"]
SF_STAGES = {"Prospecting": "qualify", "Qualification": "initiated", "Needs Analysis": "solution",
             "Proposal/Price Quote": "bid", "Negotiation/Review": "negotiate", "Closed Won": "won",
             "Closed Lost": "lost"}
STAGE_MAP = [f"{k}={v}" for k, v in SF_STAGES.items() if k.lower() != v]
OWNERS = ["Rep", "rep2@example.com", "Rep W", "Manager", "DIRECTOR@example.com"]
ACCOUNTS = [f"华东电力 {k} 有限公司" for k in range(40)]
# (column the problem must name, how the row is spoiled)
PLANTS = [
    ("Stage", lambda row, i: row.__setitem__("Stage", "Perception Analysis")),
    ("Amount", lambda row, i: row.__setitem__("Amount", "12,34x")),
    ("Account Name", lambda row, i: row.__setitem__("Account Name", f"Ghost Co {i}")),
    ("Opportunity Owner", lambda row, i: row.__setitem__("Opportunity Owner", "Nobody Atall")),
    ("Close Date", lambda row, i: row.__setitem__("Close Date", "13/45/2025")),
    ("Opportunity Name", lambda row, i: row.__setitem__("Opportunity Name", "")),
]


def us(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def salesforce_csv(n: int, *, bad_every: int = 33) -> tuple[bytes, dict[int, str], list[dict]]:
    """(file, {row number: column of the planted problem}, the good rows)."""
    out = io.StringIO()
    w = csv.DictWriter(out, SF_HEADERS, lineterminator="\r\n")
    w.writeheader()
    planted, good = {}, []
    stages = list(SF_STAGES)
    for i in range(n):
        created = date(2025, 1, 1) + timedelta(days=i % 300)
        stage = stages[i % len(stages)]
        closes = created + timedelta(days=45 if SF_STAGES[stage] in ("won", "lost") else 400)
        row = {"Opportunity Name": f"Deal {i:05d} 扩容", "Account Name": ACCOUNTS[i % len(ACCOUNTS)],
               "Stage": stage, "Amount": f"{1000 + i:,}.50" if i % 2 else str(5000 + i),
               "Close Date": us(closes), "Opportunity Owner": OWNERS[i % len(OWNERS)],
               "Opportunity Currency": ("CNY", "USD", "RMB")[i % 3], "Created Date": us(created),
               "Probability (%)": "50", "Fiscal Period": "Q1-2025"}
        if i % bad_every == 7:
            column, spoil = PLANTS[(i // bad_every) % len(PLANTS)]
            spoil(row, i)
            planted[i + 2] = column  # the header is row 1
        else:
            good.append(row)
        w.writerow(row)
    return out.getvalue().encode("utf-8"), planted, good


def seed_accounts(ctx, org, names=ACCOUNTS) -> None:
    with ctx.uow() as uow:
        for name in names:
            account_svc.create_account({"name": name, "region": "east", "owner_id": org["rep"]},
                                       actor=org.actor("admin"), uow=uow)
        uow.commit()


def post(api, key: str, kind: str, data: bytes, name: str = "file.csv", **form) -> dict:
    files = {"file": (name, data, "text/csv")}
    response = api.post(f"/imports/{kind}", headers=bearer(key), files=files, data=form)  # lists: repeated
    assert response.status_code == 200, response.text
    return response.json()


def small_csv(rows: list[list[str]], headers=SF_HEADERS[:6]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- the 10k pipeline ---------------------------------------------------------------------------------------

def test_a_foreign_crm_pipeline_with_planted_errors_reports_every_bad_row_and_loads_the_good_ones(
        api, ctx, org, db, make_key, dialect):
    n = int(os.environ.get("LTC_IMPORT_ROWS") or (10_000 if dialect == "sqlite" else 2_000))
    data, planted, good = salesforce_csv(n)
    seed_accounts(ctx, org)
    before = db.count(t.opportunities)
    started = time.monotonic()
    report = post(api, make_key(["imports:write", "opportunities:write"], user="admin"), "opportunities", data, "sf_export.csv",
                  map=["Opportunity Name=name", "Opportunity Owner=owner"], stage_map=STAGE_MAP, mode="skip-bad")
    elapsed = time.monotonic() - started
    print(f"\nimported {n} rows ({len(planted)} bad) on {dialect} in {elapsed:.1f} s")

    assert 0.025 < len(planted) / n < 0.035
    assert {(e["row"], e["column"]) for e in report["errors"]} == set(planted.items())
    assert len(report["errors"]) == len(planted)  # one problem per planted row, nothing else
    assert (report["rows"], report["skipped"], report["created"]) == (n, len(planted), len(good))
    assert report["committed"] and report["ignored_columns"] == ["Probability (%)", "Fiscal Period"]
    problem = {e["row"]: e["problem"] for e in report["errors"]}
    stage_row = next(r for r, c in planted.items() if c == "Stage")
    assert "Perception Analysis" in problem[stage_row] and "negotiate" in problem[stage_row]
    assert db.count(t.opportunities) == before + len(good)

    # The history is the one our stage machine allows, dated from the file, and the analytics agree.
    o, sh = t.opportunities, t.stage_history
    imported = select(o.c.id).where(o.c.name.like("Deal %"))
    want_rows = sum(1 + len(path_to(Stage(SF_STAGES[g["Stage"]]))) for g in good)
    assert db.count(sh, sh.c.opportunity_id.in_(imported)) == want_rows
    assert db.count(sh, sh.c.opportunity_id.in_(imported), sh.c.spell_us.is_not(None)) == 0
    full = {"won": 0b111111, "lost": 0b1000001, "negotiate": 0b11111, "qualify": 0b1}
    for stage, bits in full.items():
        assert db.count(o, o.c.name.like("Deal %"), o.c.stage == stage, o.c.reached_stages != bits) == 0
    won = next(g for g in good if g["Stage"] == "Closed Won")
    row = db.rows(o, o.c.name == won["Opportunity Name"])[0]
    month, day_, year = map(int, won["Close Date"].split("/"))
    assert row.stage_changed_at == datetime(year, month, day_) and row.probability == 100
    month, day_, year = map(int, won["Created Date"].split("/"))
    assert row.created_at == datetime(year, month, day_)

    # Written through the domain: audit with the API channel, one creation event per deal, no stage news.
    assert db.count(t.audit_log, t.audit_log.c.action == "import", t.audit_log.c.channel == "api") == len(good)
    assert db.count(t.outbox, t.outbox.c.topic == "OpportunityCreated") == len(good)
    assert db.count(t.outbox, t.outbox.c.topic == "OpportunityStageChanged") == 0


# --- modes --------------------------------------------------------------------------------------------------

def test_all_or_nothing_writes_nothing_when_one_row_is_bad_and_still_lists_every_problem(ctx, org, db):
    seed_accounts(ctx, org)
    data, planted, _ = salesforce_csv(60, bad_every=25)  # a bad stage, a bad amount, an unknown account
    expected = sorted((r, c) for r, c in planted.items() if c != "Account Name")  # create: not a problem
    counts = db.snapshot_counts()
    report = run_import("opportunities", data, ImportOptions(stage_map=dict(p.split("=") for p in STAGE_MAP),
                                                             missing_account="create"),
                        actor=org.actor("admin"), uow_factory=ctx.uow)
    assert not report.committed and report.created == 0
    assert [(e.row, e.column) for e in report.errors] == expected
    assert report.valid == 60 - len(expected)
    assert db.snapshot_counts() == counts  # not even the account "create" would have made


def test_all_or_nothing_with_good_rows_writes_them_all(ctx, org, db):
    seed_accounts(ctx, org, ACCOUNTS[:3])
    data = small_csv([[f"Deal {i}", ACCOUNTS[i % 3], "Prospecting", "100", "1/31/2027", "Rep"] for i in range(5)])
    report = run_import("opportunities", data, ImportOptions(stage_map={"Prospecting": "qualify"}),
                        actor=org.actor("manager"), uow_factory=ctx.uow)
    assert report.committed and report.created == 5 and report.errors == []
    assert db.count(t.opportunities, t.opportunities.c.owner_id == org["rep"]) == 5


def test_a_dry_run_reports_the_same_problems_and_writes_nothing(api, ctx, org, db, make_key):
    seed_accounts(ctx, org)
    data, planted, good = salesforce_csv(70, bad_every=20)
    key = make_key(["imports:write", "opportunities:write"], user="admin")
    counts = db.snapshot_counts()
    report = post(api, key, "opportunities", data, stage_map=STAGE_MAP, mode="skip-bad", dry_run="true",
                  missing_account="create")
    assert report["dry_run"] and not report["committed"] and report["created"] == 0
    expected = {(r, c) for r, c in planted.items() if c != "Account Name"}  # create: a missing account is fine
    assert {(e["row"], e["column"]) for e in report["errors"]} == expected
    assert report["valid"] == 70 - len(expected)
    assert db.snapshot_counts() == {**counts, "audit_log": counts["audit_log"] + 1}  # the call's own row


def test_skip_bad_commits_in_chunks_and_a_rerun_finds_the_deals_already_there(ctx, org, db):
    seed_accounts(ctx, org)
    data, planted, good = salesforce_csv(45, bad_every=20)
    opts = ImportOptions(stage_map=dict(p.split("=") for p in STAGE_MAP), mode="skip-bad", chunk_size=7,
                         missing_account="create")
    seen = []
    first = run_import("opportunities", data, opts, actor=org.actor("admin"), uow_factory=ctx.uow,
                       progress=lambda done, total: seen.append((done, total)))
    assert first.created == len(good) and seen[-1] == (45, 45) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    again = run_import("opportunities", data, opts, actor=org.actor("admin"), uow_factory=ctx.uow)
    assert (again.created, again.existing) == (0, len(good))
    assert db.count(t.opportunities) == len(good)


# --- policies: accounts and owners ----------------------------------------------------------------------------

def test_missing_account_create_makes_one_account_owned_by_the_rows_owner(api, ctx, org, db, make_key):
    data = small_csv([["New A", "星河科技有限公司", "qualify", "10", "2027-01-01", "Rep W"],
                      ["New B", "星河科技", "qualify", "20", "2027-01-01", "Rep W"]])
    report = post(api, make_key(["imports:write", "opportunities:write"], user="admin"), "opportunities", data, missing_account="create")
    assert report["created"] == 2 and report["errors"] == []
    accounts = db.rows(t.accounts, t.accounts.c.name == "星河科技有限公司")
    assert len(accounts) == 1 and accounts[0].owner_id == org["rep_w"]
    assert db.count(t.opportunities, t.opportunities.c.account_id == accounts[0].id) == 2
    assert db.count(t.audit_log, t.audit_log.c.entity == "account", t.audit_log.c.channel == "api") == 1


def test_missing_account_reject_reports_the_row_and_names_the_option(ctx, org, db):
    data = small_csv([["New A", "星河科技有限公司", "qualify", "10", "2027-01-01", "Rep W"]])
    report = run_import("opportunities", data, ImportOptions(mode="skip-bad"), actor=org.actor("admin"),
                        uow_factory=ctx.uow)
    assert [(e.row, e.column) for e in report.errors] == [(2, "Account Name")]
    assert "星河科技有限公司" in report.errors[0].problem and "--missing-account create" in report.errors[0].problem
    assert db.count(t.accounts) == 0 and db.count(t.opportunities) == 0


def test_owners_by_email_or_unique_name_in_english_or_chinese_and_the_unknown_owner_policy(ctx, org, db):
    admin = org.actor("admin")
    with ctx.uow() as uow:
        for email, en, zh in (("li.wei1@example.com", "Li Wei", None), ("li.wei2@example.com", "Li  wei", None),
                              ("wang.fang@example.com", "Fang Wang", "王芳")):
            user_svc.create_user({"email": email, "name_en": en, "name_zh": zh, "roles": ["sales_rep"]},
                                 actor=admin, uow=uow)
        uow.commit()
    seed_accounts(ctx, org, ACCOUNTS[:1])
    rows = [["By zh", ACCOUNTS[0], "qualify", "1", "2027-01-01", "王芳"],
            ["By email", ACCOUNTS[0], "qualify", "1", "2027-01-01", "REP2@EXAMPLE.COM"],
            ["Ambiguous", ACCOUNTS[0], "qualify", "1", "2027-01-01", "li wei"],
            ["Unknown", ACCOUNTS[0], "qualify", "1", "2027-01-01", "Zhang San"]]
    rejected = run_import("opportunities", small_csv(rows), ImportOptions(mode="skip-bad"), actor=admin,
                          uow_factory=ctx.uow)
    assert [(e.row, e.column) for e in rejected.errors] == [(4, "Opportunity Owner"), (5, "Opportunity Owner")]
    assert "li.wei1@example.com, li.wei2@example.com" in rejected.errors[0].problem
    owner = {r.name: r.owner_id for r in db.rows(t.opportunities)}
    wang = db.rows(t.users, t.users.c.email == "wang.fang@example.com")[0].id
    assert owner == {"By zh": wang, "By email": org["rep2"]}

    assigned = run_import("opportunities", small_csv(rows), ImportOptions(unknown_owner="assign:rep@example.com"),
                          actor=admin, uow_factory=ctx.uow)
    assert assigned.errors == [] and (assigned.created, assigned.existing) == (2, 2)
    owner = {r.name: r.owner_id for r in db.rows(t.opportunities)}
    assert owner["Ambiguous"] == owner["Unknown"] == org["rep"]


def test_a_bad_policy_or_mapping_is_refused_before_anything_is_read(api, ctx, org, make_key):
    key = make_key(["imports:write", "opportunities:write"], user="admin")
    data = small_csv([["A", ACCOUNTS[0], "qualify", "1", "2027-01-01", "Rep"]])
    r = api.post("/imports/opportunities", headers=bearer(key), files={"file": ("a.csv", data)},
                 data={"unknown_owner": "assign:nobody@example.com"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "unknown_owner"
    r = api.post("/imports/opportunities", headers=bearer(key), files={"file": ("a.csv", data)},
                 data={"map": "Amount=price"})
    assert r.status_code == 422 and "amount" in r.json()["error"]["allowed"]
    no_stage = small_csv([["A", ACCOUNTS[0], "1"]], headers=["Opportunity Name", "Account Name", "Amount"])
    r = api.post("/imports/opportunities", headers=bearer(key), files={"file": ("a.csv", no_stage)})
    assert r.status_code == 422 and r.json()["error"]["details"]["missing"] == ["stage"]
    r = api.post("/imports/opportunities", headers=bearer(key), files={"file": ("a.csv", b"\xff\xfe\x00garbage")})
    assert r.status_code == 422


def test_the_key_needs_the_imports_scope_and_its_user_the_role_to_create_the_kind(api, org, make_key):
    data = small_csv([["A", ACCOUNTS[0], "qualify", "1", "2027-01-01", "Rep"]])
    r = api.post("/imports/opportunities", headers=bearer(make_key("opportunities:write", user="admin")),
                 files={"file": ("a.csv", data)})
    assert r.status_code == 403 and r.json()["error"]["code"] == "scope_missing"
    # imports:write alone does not write deals: the kind's own scope is needed too
    r = api.post("/imports/opportunities", headers=bearer(make_key("imports:write", user="admin")),
                 files={"file": ("a.csv", data)})
    assert r.status_code == 403 and r.json()["error"]["details"]["scope"] == "opportunities:write"
    # sales operations may not create deals (rbac): the whole import is refused once, not row by row
    r = api.post("/imports/opportunities",
                 headers=bearer(make_key(["imports:write", "opportunities:write"], user="sales_ops")),
                 files={"file": ("a.csv", data)})
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"


# --- other kinds ----------------------------------------------------------------------------------------------

def test_leads_from_a_chinese_excel_csv_in_gbk_with_status_owner_by_chinese_name_and_duplicates(ctx, org, db):
    with ctx.uow() as uow:
        user_svc.create_user({"email": "wang.fang@example.com", "name_en": "Fang Wang", "name_zh": "王芳",
                              "roles": ["sales_rep"]}, actor=org.actor("admin"), uow=uow)
        uow.commit()
    text = ("公司,联系人,邮箱,来源,状态,负责人,需求\r\n"
            "华东电力,张伟,zw@hd.example,Trade Show,qualified,王芳,产线 MES 升级\r\n"
            "华东电力有限公司,张伟,zw@hd.example,website,,王芳,重复\r\n"
            "西部矿业,李娜,ln@xb.example,广告,,王芳,\r\n")
    report = run_import("leads", text.encode("gbk"), ImportOptions(mode="skip-bad"), actor=org.actor("admin"),
                        uow_factory=ctx.uow)
    assert (report.created, report.existing) == (1, 1)
    assert [(e.row, e.column) for e in report.errors] == [(4, "来源")]
    assert "trade_show" in report.errors[0].problem
    lead = db.rows(t.leads)[0]
    assert (lead.company, lead.status, lead.source, lead.need) == ("华东电力", "qualified", "trade_show", "产线 MES 升级")
    assert lead.owner_id == db.rows(t.users, t.users.c.email == "wang.fang@example.com")[0].id


def test_contacts_land_on_their_accounts_with_their_place_in_the_decision_chain(ctx, org, db):
    seed_accounts(ctx, org, ACCOUNTS[:1])
    data = small_csv([[ACCOUNTS[0], "赵敏", "CIO", "Decision Maker", "5"],
                      [ACCOUNTS[0], "赵敏", "CIO", "decision_maker", "5"],
                      [ACCOUNTS[0], "钱多", "", "boss", "9"]],
                     headers=["Account Name", "Full Name", "Title", "Role", "Relationship"])
    report = run_import("contacts", data, ImportOptions(mode="skip-bad"), actor=org.actor("rep"),
                        uow_factory=ctx.uow)
    assert (report.created, report.existing) == (1, 1)
    assert sorted((e.row, e.column) for e in report.errors) == [(4, "Relationship"), (4, "Role")]
    contact = db.rows(t.contacts)[0]
    assert (contact.name, contact.decision_role, contact.relationship) == ("赵敏", "decision_maker", 5)


# --- CLI ------------------------------------------------------------------------------------------------------

def test_the_cli_imports_as_the_as_user_writes_the_report_and_exits_1_on_bad_rows(ctx, org, db, db_url, tmp_path,
                                                                                   capsys):
    seed_accounts(ctx, org, ACCOUNTS)
    data, planted, good = salesforce_csv(80)
    source, report, mapping = tmp_path / "sf.csv", tmp_path / "bad.csv", tmp_path / "map.yaml"
    source.write_bytes(data)
    mapping.write_text("columns:\n  Opportunity Name: name\nstages:\n"
                       + "".join(f"  {k}: {v}\n" for k, v in SF_STAGES.items()), encoding="utf-8")
    code = main(["--db", db_url, "import", "opportunities", str(source), "--map-file", str(mapping),
                 "--mode", "skip-bad", "--report", str(report), "--as", "manager@example.com"])
    out, _ = capsys.readouterr()
    assert code == 1 and "bad rows" in out
    assert report.read_bytes().startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(report.read_text("utf-8-sig"))))
    assert lines[0] == ["row", "column", "problem"] and len(lines) == 1 + len(planted)
    assert db.count(t.opportunities) == len(good)
    assert db.count(t.audit_log, t.audit_log.c.action == "import", t.audit_log.c.channel == "cli") == len(good)
    assert db.count(t.audit_log, t.audit_log.c.action == "import",
                    t.audit_log.c.actor_id == org["manager"]) == len(good)


def test_the_cli_dry_run_of_a_clean_file_exits_0_and_writes_nothing(ctx, org, db, db_url, tmp_path, capsys):
    seed_accounts(ctx, org, ACCOUNTS[:1])
    source = tmp_path / "ok.csv"
    source.write_bytes(small_csv([["A", ACCOUNTS[0], "won", "1", "2025-06-30", "Rep"]]))
    code = main(["--db", db_url, "import", "opportunities", str(source), "--dry-run"])
    out, _ = capsys.readouterr()
    assert code == 0 and "dry run" in out
    with ctx.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(t.opportunities)) == 0


@pytest.mark.parametrize("bad", ["2099-01-01", ""])
def test_a_closed_deal_needs_a_close_date_in_the_past(ctx, org, bad):
    seed_accounts(ctx, org, ACCOUNTS[:1])
    report = run_import("opportunities", small_csv([["A", ACCOUNTS[0], "won", "1", bad, "Rep"]]),
                        actor=org.actor("admin"), uow_factory=ctx.uow)
    assert [(e.row, e.column) for e in report.errors] == [(2, "Close Date")]


def test_a_deal_the_database_refuses_is_reported_alone_and_the_rest_of_its_batch_is_written(ctx, org, db,
                                                                                               monkeypatch):
    from domain.imports import writers

    seed_accounts(ctx, org)
    data, planted, good = salesforce_csv(40)  # one batch; row 9 has a bad stage
    real = writers.build

    def spoiled(*args, **kwargs):  # stands for any rule only the database checks
        opp = real(*args, **kwargs)
        if opp.name == "Deal 00012 扩容":
            opp.currency = None  # NOT NULL
        return opp

    monkeypatch.setattr(writers, "build", spoiled)
    report = run_import("opportunities", data, ImportOptions(stage_map=dict(p.split("=") for p in STAGE_MAP),
                                                             mode="skip-bad"),
                        actor=org.actor("admin"), uow_factory=ctx.uow)
    assert [(e.row, e.column) for e in report.errors] == sorted([*planted.items(), (14, None)])
    assert report.created == len(good) - 1
    assert db.count(t.opportunities) == len(good) - 1
    assert db.count(t.audit_log, t.audit_log.c.action == "import") == len(good) - 1
    assert db.count(t.outbox, t.outbox.c.topic == "OpportunityCreated") == len(good) - 1


def test_the_problem_report_csv_neutralises_formulas_from_the_uploaded_file():
    from domain.imports.runner import ImportReport, Problem, report_csv

    report = ImportReport(kind="leads", mode="skip-bad", dry_run=True, committed=False, rows=1, valid=0, created=0,
                          existing=0, skipped=1, columns={}, ignored_columns=[], seconds=0.1,
                          errors=[Problem(row=2, column='=HYPERLINK("http://x.example","y")', problem="unknown column")])
    text = report_csv(report).decode("utf-8-sig")
    assert text.splitlines()[1] == '2,"\'=HYPERLINK(""http://x.example"",""y"")",unknown column'
