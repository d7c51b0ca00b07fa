"""The `ltc` command line against real SQLite files: exit codes, what it prints, the demo seed."""
from __future__ import annotations

import ast
import os
import re
import shutil
from pathlib import Path

import pytest
from rich.cells import cell_len
from sqlalchemy import create_engine, func, select

from bot.cli import main
from domain.db import tables as t
from domain.model.vocab import Role, Stage

REPO = Path(__file__).resolve().parent.parent
REP = "li.na@xinglian.example"
EAST_MANAGER = "wang.haitao@xinglian.example"


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order: two equal dumps mean identical data."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {table.name: [tuple(r) for r in conn.execute(
                        select(table).order_by(*table.primary_key.columns))]
                    for table in t.metadata.sorted_tables}
    finally:
        engine.dispose()


def count(url: str, table, *where) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    finally:
        engine.dispose()


def distinct(url: str, column) -> set:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(column).distinct()).scalars())
    finally:
        engine.dispose()


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


@pytest.fixture(scope="module", autouse=True)
def chroma_dir(tmp_path_factory):
    """The playbook index of these tests lives in a temporary folder, never in the repo's var/."""
    path = tmp_path_factory.mktemp("chroma")
    old = os.environ.get("LTC_CHROMA_PATH")
    os.environ["LTC_CHROMA_PATH"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LTC_CHROMA_PATH", None)
    else:
        os.environ["LTC_CHROMA_PATH"] = old


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """One demo database for the read-only tests (tests that write use a copy)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    assert main(["--db", url_of(path), "demo"]) == 0
    return path


@pytest.fixture
def db(seeded: Path) -> str:
    return url_of(seeded)


# --- init ------------------------------------------------------------------------------------

def test_init_twice_is_idempotent(tmp_path, capsys):
    url = url_of(tmp_path / "ltc.db")
    code, out, err = run(capsys, "--db", url, "init")
    assert code == 0, err
    assert "created at revision" in out
    assert "seeded 8 stage probabilities, 4 decision gates" in out
    code, out, err = run(capsys, "init", "--db", url)  # --db is accepted after the command too
    assert code == 0, err
    assert "already at the latest revision" in out
    assert "nothing written" in out
    assert count(url, t.users) == 1  # only the system user
    assert count(url, t.gate_policies) == 4


def test_a_plain_path_is_a_sqlite_file(tmp_path, capsys):
    path = tmp_path / "sub" / "plain.db"
    code, _, err = run(capsys, "--db", str(path), "init")
    assert code == 0, err
    assert path.exists()


# --- demo ------------------------------------------------------------------------------------

def test_demo_seeds_a_realistic_company(db, capsys):
    assert count(db, t.users) - 1 >= 12
    assert distinct(db, t.user_roles.c.role) == {r.value for r in Role}
    assert count(db, t.leads) == 40
    assert distinct(db, t.leads.c.status) == {
        "new", "contacted", "nurturing", "qualified", "converted", "disqualified"}
    assert count(db, t.leads, t.leads.c.status == "disqualified", t.leads.c.disqualify_reason.is_not(None)) == 5
    assert count(db, t.accounts) == 25
    assert count(db, t.opportunities) == 30
    assert distinct(db, t.opportunities.c.stage) == {s.value for s in Stage}
    assert count(db, t.approval_requests, t.approval_requests.c.status == "pending") >= 3
    assert count(db, t.approval_requests, t.approval_requests.c.status == "rejected") >= 1
    assert count(db, t.approval_decisions, t.approval_decisions.c.outcome == "reject",
                 t.approval_decisions.c.comment.is_not(None)) >= 1
    for kind in ("call", "meeting", "email", "note"):
        assert count(db, t.activities, t.activities.c.kind == kind) > 0
    # Everything went through the services: audit rows and events exist.
    assert count(db, t.audit_log) > 500
    assert count(db, t.outbox) > 300
    # Every account has 1-4 contacts.
    engine = create_engine(db)
    with engine.connect() as conn:
        per_account = {a: n for a, n in conn.execute(
            select(t.contacts.c.account_id, func.count()).group_by(t.contacts.c.account_id))}
    engine.dispose()
    assert len(per_account) == 25 and all(1 <= n <= 4 for n in per_account.values())


def test_demo_prints_its_counts_and_twice_does_nothing(seeded, tmp_path, capsys):
    path = copy_db(seeded, tmp_path / "again.db")
    before = dump(url_of(path))
    code, out, err = run(capsys, "--db", url_of(path), "demo")
    assert code == 0, err
    assert "already in this database; nothing written" in out
    assert re.search(r"opportunities\s+30\s+qualify 4", out)
    assert re.search(r"leads\s+40", out) and re.search(r"accounts\s+25", out)
    assert dump(url_of(path)) == before


def test_demo_is_deterministic(seeded, tmp_path, capsys):
    """A second fresh database, seeded by `ltc start`, holds exactly the same rows."""
    other = tmp_path / "other.db"
    code, out, err = run(capsys, "--db", url_of(other), "start")
    assert code == 0, err
    assert "Demo seeded: 15 people, 40 leads, 25 accounts, 30 opportunities" in out
    first, second = dump(url_of(seeded)), dump(url_of(other))
    assert first.keys() == second.keys()
    for table in first:
        assert first[table] == second[table], f"table {table} differs between two seeds"


def test_demo_refuses_foreign_data_and_reset_wipes_it(tmp_path, capsys):
    url = url_of(tmp_path / "mine.db")
    assert run(capsys, "--db", url, "init")[0] == 0
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(t.users.insert().values(email="someone@else.example", name_en="Someone", locale="en",
                                             region="", active=True))
    engine.dispose()
    code, out, err = run(capsys, "--db", url, "demo")
    assert code == 1
    assert err.startswith("error: This database already holds data that is not the demo")
    assert "Traceback" not in err
    code, out, err = run(capsys, "--db", url, "demo", "--reset")
    assert code == 0, err
    assert "deleted" in out and "Demo seeded" in out
    assert count(url, t.users, t.users.c.email == "someone@else.example") == 0
    assert count(url, t.opportunities) == 30


# --- start -----------------------------------------------------------------------------------

def test_start_prints_the_summary(seeded, tmp_path, capsys):
    path = copy_db(seeded, tmp_path / "start.db")
    code, out, err = run(capsys, "--db", url_of(path), "start")
    assert code == 0, err
    assert "already present" in out
    for heading in ("People by role (15)", "Leads by status (40)", "Pipeline by stage (30 opportunities)",
                    "Pending approvals (4)", "Next: read commands"):
        assert heading in out
    assert "王海涛" in out and "陈志远" in out  # who must decide, in Chinese
    assert re.search(r"Playbooks\s+\d+ sections", out)  # the main job builds the playbook index too
    assert "open pipeline" in out
    assert "approvals --as chen.zhiyuan@xinglian.example" in out
    wide = [line for line in out.splitlines() if cell_len(line.rstrip()) > 100 and str(path) not in line]
    assert not wide  # only lines quoting the (long) temporary database path may be wider


# --- read commands ---------------------------------------------------------------------------

def opp_count(out: str) -> int:
    m = re.search(r"^Opportunities[^\n]*?: (\d+)\s*$", out, re.M)
    assert m, out
    return int(m.group(1))


def test_a_rep_sees_fewer_opportunities_than_the_admin(db, capsys):
    code, admin_out, err = run(capsys, "--db", db, "opps")
    assert code == 0, err
    code, rep_out, err = run(capsys, "--db", db, "opps", "--as", REP)
    assert code == 0, err
    assert opp_count(admin_out) == 30
    assert 0 < opp_count(rep_out) < 30
    assert "OPP-00002" in admin_out and "OPP-00002" not in rep_out  # a south deal
    code, _, err = run(capsys, "--db", db, "show", "OPP-00002", "--as", REP)
    assert code == 1
    assert err.startswith("error: OPP-00002 is not one of your deals")


def test_bad_stage_exits_1_and_lists_the_allowed_stages(db, capsys):
    code, out, err = run(capsys, "--db", db, "opps", "--stage", "bogus")
    assert code == 1
    first, *rest = err.strip().splitlines()
    assert first == "error: Unknown stage 'bogus'"
    assert rest == ["  allowed: qualify, initiated, solution, bid, negotiate, won, lost, abandoned"]
    assert "Traceback" not in err


def test_filters(db, capsys):
    code, out, _ = run(capsys, "--db", db, "opps", "--stage", "negotiate")
    assert code == 0 and opp_count(out) == 4
    code, out, _ = run(capsys, "--db", db, "opps", "--owner", REP)
    assert code == 0 and "Tom Becker" not in out and "李娜" in out
    code, out, _ = run(capsys, "--db", db, "leads", "--status", "disqualified")
    assert code == 0 and "Leads (disqualified): 5" in out and "学生课题调研" in out
    code, _, err = run(capsys, "--db", db, "leads", "--status", "hot")
    assert code == 1 and "allowed: new, contacted, nurturing, qualified, converted, disqualified" in err
    code, _, err = run(capsys, "--db", db, "opps", "--owner", "nobody@nowhere.example")
    assert code == 1 and err.startswith("error: No user with email nobody@nowhere.example")
    assert REP in err  # the known emails are listed


def test_show_unknown_ref_exits_1_with_a_clear_message(db, capsys):
    code, out, err = run(capsys, "--db", db, "show", "OPP-99999")
    assert code == 1
    assert err.strip() == "error: Opportunity OPP-99999 does not exist"
    code, out, err = run(capsys, "--db", db, "show", "LEAD-00999")
    assert code == 1 and err.strip() == "error: Lead LEAD-00999 does not exist"
    code, out, err = run(capsys, "--db", db, "show", "INV-1")
    assert code == 1 and err.startswith("error: 'INV-1' is not a reference I know")
    assert "allowed: LEAD-00001, OPP-00001, ACC-00001, APR-00001" in err


def test_show_an_opportunity(db, capsys):
    code, out, err = run(capsys, "--db", db, "show", "opp-1")  # case-insensitive, short number
    assert code == 0, err
    assert out.startswith("OPP-00001")
    for part in ("AR account responsible", "SR solution responsible", "FR fulfillment responsible",
                 "Stage history", "qualify → initiated", "negotiate → won", "Next gate", "Approvals (4)",
                 "Account 360", "Decision chain", "Recent activities"):
        assert part in out, part


def test_show_what_a_gate_is_missing_and_who_must_decide(db, capsys):
    code, out, err = run(capsys, "--db", db, "opps", "--stage", "qualify")
    refs = re.findall(r"OPP-\d{5}", out)
    shown = [run(capsys, "--db", db, "show", ref)[1] for ref in refs]
    assert any("missing:" in s and "FR (fulfillment responsible) assigned" in s for s in shown)
    assert any("is waiting for a decision" in s and "王海涛" in s for s in shown)
    assert any("was rejected by" in s for s in shown)


def test_show_lead_account_and_approval(db, capsys):
    code, out, err = run(capsys, "--db", db, "show", "LEAD-00001")
    assert code == 0, err
    assert "Score" in out and "converted to" in out and "ACC-" in out
    code, out, err = run(capsys, "--db", db, "show", "acc-1")
    assert code == 0, err
    assert "Decision chain" in out and "Opportunities" in out
    code, out, err = run(capsys, "--db", db, "show", "APR-1")
    assert code == 0, err
    assert out.startswith("APR-00001") and "Steps" in out


def test_approvals_for_the_person_who_decides(db, capsys):
    code, out, err = run(capsys, "--db", db, "approvals", "--as", EAST_MANAGER)
    assert code == 0, err
    assert "Waiting for 王海涛's decision: 2" in out
    code, out, err = run(capsys, "--db", db, "approvals", "--as", "chen.zhiyuan@xinglian.example")
    assert "before you: 王海涛 approved" in out  # the ATB waiting at its second step
    code, out, err = run(capsys, "--db", db, "approvals")
    assert code == 0 and "Nothing is waiting" in out


def test_users_accounts_and_audit(db, capsys):
    code, out, err = run(capsys, "--db", db, "users")
    assert code == 0, err
    assert "李娜" in out and "Li Na" in out and "wecom LiNa" in out and "slack U07XLDEMO01" in out
    code, out, err = run(capsys, "--db", db, "accounts", "--as", REP)
    assert code == 0 and "华东精密机械股份有限公司" in out and "深圳鹏城智能电网" not in out
    code, out, err = run(capsys, "--db", db, "audit", "OPP-00001")
    assert code == 0, err
    assert "create" in out and "stage:initiated" in out and "decide:approve" in out and "wecom" in out
    code, out, err = run(capsys, "--db", db, "audit", "OPP-00002", "--as", REP)
    assert code == 1 and err.startswith("error: OPP-00002 is not one of your deals")


def test_output_fits_100_columns(db, capsys):
    for argv in (["opps"], ["leads"], ["accounts"], ["users"], ["show", "OPP-00009"], ["show", "ACC-00001"],
                 ["show", "LEAD-00001"], ["show", "APR-00060"], ["audit", "OPP-00003"],
                 ["approvals", "--as", "chen.zhiyuan@xinglian.example"], ["contracts"], ["aging"],
                 ["reconcile", "OPP-00002"], ["jobs"]):
        code, out, err = run(capsys, "--db", db, *argv)
        assert code == 0, (argv, err)
        wide = [line for line in out.splitlines() if cell_len(line.rstrip()) > 100]
        assert not wide, (argv, wide[:3])


# --- contract to cash ------------------------------------------------------------------------

def test_demo_carries_won_deals_through_contract_delivery_and_cash(db, capsys):
    assert distinct(db, t.contracts.c.status) == {"draft", "under_review", "signed", "executing", "closed"}
    assert count(db, t.contracts, t.contracts.c.status == "closed") == 1
    assert count(db, t.invoices, t.invoices.c.status == "issued") >= 2
    assert count(db, t.payments, t.payments.c.unapplied > 0) == 1
    assert count(db, t.promises_to_pay) == 1 and count(db, t.revenue_entries) >= 4
    code, out, err = run(capsys, "--db", db, "contracts", "--as", REP)
    assert code == 0, err
    assert "CT-2026-00001" in out and "closed" in out
    rows = [line for line in out.splitlines() if line.startswith("CT-")]
    assert 0 < len(rows) < count(db, t.contracts)  # Li Na sees her deals' contracts only


def test_aging_reports_overdue_invoices_by_the_accountable_ar(db, capsys):
    code, out, err = run(capsys, "--db", db, "aging", "--as-of", "2026-12-31")
    assert code == 0, err
    assert "Receivables aging as of 2026-12-31" in out and "90+" in out
    assert "open until" in out or "broken" in out  # the promise to pay shows
    code, out, _ = run(capsys, "--db", db, "aging", "--as-of", "yesterday")
    assert code == 1


def test_reconcile_is_clean_for_the_closed_contract_and_explains_the_others(db, capsys):
    code, out, err = run(capsys, "--db", db, "reconcile", "CT-2026-00001")
    assert code == 0, err
    assert "Clean" in out
    code, out, err = run(capsys, "--db", db, "reconcile", "OPP-00002")
    assert code == 0, err
    assert "[uncollected]" in out and "mismatch" in out
    code, _, err = run(capsys, "--db", db, "reconcile", "LEAD-00001")
    assert code == 1 and "opportunity" in err


def test_next_after_the_win_is_delivery_and_cash(db, capsys):
    code, out, err = run(capsys, "--db", db, "next", "OPP-00002")
    assert code == 0, err
    assert re.search(r"\[FR\] Milestone 2 .* deliver it or re-plan", out)
    assert re.search(r"\[AR\] INV-2026-\d+: CNY [\d,.]+ is \d+ days\s+overdue", out)


def test_jobs_raise_dunning_levels_once_and_never_act_on_the_future(seeded, tmp_path, capsys):
    url = url_of(copy_db(seeded, tmp_path / "jobs.db"))
    code, out, err = run(capsys, "--db", url, "jobs")
    assert code == 0, err
    assert re.search(r"dunning reminders\s+\d", out)
    # The demo's open invoices are all overdue by any real today: each is dunned, unless a promise to
    # pay still holds it.
    assert count(url, t.invoices, t.invoices.c.status == "issued", t.invoices.c.dunning_level == 0) <= 1
    assert count(url, t.invoices, t.invoices.c.status == "issued", t.invoices.c.dunning_level >= 2) >= 2
    code, out, _ = run(capsys, "--db", url, "jobs")
    assert re.search(r"dunning reminders\s+0", out)  # levels only go up, once per level
    before = dump(url)
    code, _, err = run(capsys, "--db", url, "jobs", "--as-of", "2999-01-01")
    assert code == 1 and "future" in err
    assert dump(url) == before


# --- worker, usage and edge errors -------------------------------------------------------------

def test_worker_once_delivers_pending_events(seeded, tmp_path, capsys):
    path = copy_db(seeded, tmp_path / "worker.db")
    url = url_of(path)
    pending = count(url, t.outbox, t.outbox.c.dispatched_at.is_(None))
    assert run(capsys, "--db", url, "index")[0] == 0  # with playbooks, the worker also nudges
    code, out, err = run(capsys, "--db", url, "worker", "--once")
    assert code == 0, err
    assert f"{pending} event(s) delivered" in out
    assert "LeadCreated" in out and "GatePassed" in out
    # each iron-triangle seat got its checklist, in the person's language (the demo is mostly zh)
    assert "→ AR (user" in out and "→ SR (user" in out and "→ FR (user" in out
    assert "你的检查清单" in out or "Your checklist" in out
    assert count(url, t.outbox, t.outbox.c.dispatched_at.is_(None)) == 0
    code, out, _ = run(capsys, "--db", url, "worker", "--once")
    assert code == 0 and "0 event(s) delivered" in out


def test_usage_errors_exit_2(db, capsys):
    assert main([]) == 2
    assert main(["--db", db, "opps", "--limit", "0"]) == 2
    assert main(["--db", db, "frobnicate"]) == 2
    assert main(["--db", db, "show"]) == 2
    assert main(["--help"]) == 0


def test_reading_an_uninitialised_database_says_what_to_do(tmp_path, capsys):
    code, out, err = run(capsys, "--db", url_of(tmp_path / "none.db"), "opps")
    assert code == 1
    assert "run `ltc init`" in err
    assert not (tmp_path / "none.db").exists()


def test_domain_stays_free_of_edges():
    """domain/ must not import bot/, rich, or any chat/web library."""
    banned = ("bot", "rich", "slack_bolt", "slack_sdk", "fastapi", "langchain", "langgraph", "openai")
    for path in (REPO / "domain").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.relative_to(REPO)} imports {name}"


# --- playbooks ---------------------------------------------------------------------------------

def test_index_ask_and_next(db, capsys, chroma_dir):
    code, out, err = run(capsys, "--db", db, "index")
    assert code == 0, err
    assert re.search(r"Index\s+\d+ sections: \d+ added", out) or "unchanged" in out
    code, out, _ = run(capsys, "--db", db, "index")
    assert code == 0 and " 0 added, 0 updated, 0 removed" in out  # incremental: nothing to embed again
    code, out, _ = run(capsys, "--db", db, "ask", "客户逾期付款怎么催收？")
    assert code == 0 and "§" in out and "collections" in out
    code, out, _ = run(capsys, "--db", db, "ask", "who approves the bid decision", "--stage", "solution")
    assert code == 0 and "gate-atb" in out
    code, out, _ = run(capsys, "--db", db, "ask", "pricing", "--stage", "nowhere")
    assert code == 1 and "stage" in out + _
    code, out, _ = run(capsys, "--db", db, "next", "OPP-00028", "--as", "li.na@xinglian.example")
    assert code == 0 and "OPP-00028" in out
    code, out, _ = run(capsys, "--db", db, "next", "LEAD-00001")
    assert code == 1 and "OPP-" in out + _


def test_a_reference_number_too_large_for_any_record_is_a_clear_error(db, capsys):
    for argv in (["show", "OPP-99999999999999999999"], ["audit", "LEAD-99999999999999"], ["next", "OPP-9999999999"]):
        code, out, err = run(capsys, "--db", db, *argv)
        assert code == 1 and "no record has a number that large" in out + err and "Traceback" not in out + err


def test_link_sets_a_wecom_userid_audited_and_refuses_one_taken(seeded, tmp_path, capsys):
    db = url_of(copy_db(seeded, tmp_path / "link.db"))
    code, out, err = run(capsys, "--db", db, "link", REP, "--wecom", "LiNa-2")
    assert code == 0, err
    assert "wecom LiNa-2" in out
    code, out, err = run(capsys, "--db", db, "users")
    assert "wecom LiNa-2" in out
    code, out, err = run(capsys, "--db", db, "link", REP, "--wecom", "zhoumin")  # WeCom ids ignore case
    assert code != 0 and "already belongs to zhou.min@xinglian.example" in out + err
    code, out, err = run(capsys, "--db", db, "link", REP)
    assert code != 0 and "--wecom" in out + err
    code, out, err = run(capsys, "--db", db, "link", REP, "--wecom", "x", "--as", REP)  # only admins link
    assert code != 0
