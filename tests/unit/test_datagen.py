"""The benchmark data generator (tests/benchmarks/datagen.py) on a small SQLite database.

The schema enforces every CHECK / UNIQUE / FK while the rows go in (foreign keys at the commit);
these tests check what the schema cannot: the shares, the links between rows and the totals.
"""
from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, datetime

import pytest

from domain.normalize import email_norm, identity_norm, phone_norm
from tests.benchmarks import datagen

N = 300


def generate(path) -> dict:
    return datagen.generate(f"sqlite:///{path}", datagen.Config(opportunities=N, users=40), say=lambda _m: None)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("datagen") / "gen.db"
    info = generate(path)
    # A plain reader: the product's engine would take SQLite's write lock for every transaction.
    conn = sqlite3.connect(path)
    yield conn, info, f"sqlite:///{path}"
    conn.close()


def rows(conn, sql: str) -> list:
    return conn.execute(sql).fetchall()


def one(conn, sql: str):
    (value,) = conn.execute(sql).fetchone()
    return value


def test_every_foreign_key_holds(db):
    conn, _, _ = db
    assert rows(conn, "PRAGMA foreign_key_check") == []


def test_row_counts_are_as_reported(db):
    conn, info, _ = db
    assert one(conn, "SELECT count(*) FROM opportunities") == N
    for table, n in info["rows"].items():
        seeded = 1 if table in ("users", "user_roles") else 0  # + the system user and its role
        assert one(conn, f"SELECT count(*) FROM {table}") == n + seeded, table
    assert info["rows"]["users"] == 40
    assert 0.9 * N / 5 <= info["rows"]["accounts"] <= 1.1 * N / 5 + 40


def test_stage_shares_are_realistic(db):
    conn, _, _ = db
    stages = dict(rows(conn, "SELECT stage, count(*) FROM opportunities GROUP BY stage"))
    open_ = sum(stages.get(s, 0) for s in datagen.OPEN_STAGES)
    assert all(stages.get(s, 0) > 0 for s in (*datagen.OPEN_STAGES, "won", "lost", "abandoned"))
    assert 0.27 <= open_ / N <= 0.43
    assert 0.18 <= stages["won"] / N <= 0.32
    assert 0.22 <= stages["lost"] / N <= 0.38
    assert 0.05 <= stages["abandoned"] / N <= 0.16
    currencies = dict(rows(conn, "SELECT currency, count(*) FROM opportunities GROUP BY currency"))
    assert currencies["CNY"] > 0.6 * N and {"USD", "EUR", "HKD"} <= set(currencies)


def test_deals_are_spread_over_three_years_before_today_in_id_order(db):
    conn, _, _ = db
    created = [datetime.fromisoformat(str(r[0])) for r in rows(conn, "SELECT created_at FROM opportunities ORDER BY id")]
    assert created == sorted(created)
    assert created[-1] <= datetime(2026, 11, 22, 12) and created[0] >= datetime(2023, 11, 1)
    assert (created[-1] - created[0]).days > 2 * 365


def test_probability_and_close_reason_follow_the_stage(db):
    conn, _, _ = db
    assert rows(conn, "SELECT DISTINCT stage, probability FROM opportunities WHERE stage IN ('won', 'lost', 'abandoned') "
                      "ORDER BY 1") == [("abandoned", 0), ("lost", 0), ("won", 100)]
    assert one(conn, "SELECT count(*) FROM opportunities WHERE stage IN ('lost', 'abandoned') AND close_reason IS NULL") == 0
    assert one(conn, "SELECT count(*) FROM opportunities WHERE version <> 1 OR competitors <> '[]'") == 0


def test_stage_history_walks_the_stages_in_order_to_the_current_stage(db):
    conn, _, _ = db
    hist: dict[int, list] = {}
    for opp, frm, to, at, by in rows(conn, "SELECT opportunity_id, from_stage, to_stage, changed_at, changed_by "
                                           "FROM stage_history ORDER BY opportunity_id, changed_at, id"):
        hist.setdefault(opp, []).append((frm, to, at, by))
    deals = {r[0]: r[1:] for r in rows(conn, "SELECT id, stage, created_at, stage_changed_at, owner_id FROM opportunities")}
    assert set(hist) == set(deals)
    order = list(datagen.OPEN_STAGES)
    for opp, steps in hist.items():
        stage, created, changed, owner = deals[opp]
        assert steps[0][:2] == (None, "qualify") and str(steps[0][2]) == str(created)
        assert [s[1] for s in steps][:-1] == order[:len(steps) - 1]
        assert all(a[1] == b[0] for a, b in zip(steps, steps[1:]))
        assert steps[-1][1] == stage and str(steps[-1][2]) == str(changed)
        assert all(str(a[2]) < str(b[2]) for a, b in zip(steps, steps[1:]))
        assert {s[3] for s in steps} == {owner}


def test_org_is_a_hierarchy_of_director_managers_and_reps(db):
    conn, _, _ = db
    roles = Counter(r for (r,) in rows(conn, "SELECT role FROM user_roles"))
    assert roles["sales_rep"] > roles["sales_manager"] >= 5 and roles["director"] == 6
    assert roles["finance"] and roles["sales_ops"] and roles["admin"] >= 2  # + the system user
    # every rep reports to a manager who leads their team and reports to a director
    bad = one(conn, """
        SELECT count(*) FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'sales_rep'
        JOIN users m ON m.id = u.manager_id JOIN teams tm ON tm.id = u.team_id
        JOIN user_roles mr ON mr.user_id = m.id AND mr.role = 'sales_manager'
        WHERE tm.manager_id <> m.id OR m.manager_id NOT IN
              (SELECT user_id FROM user_roles WHERE role = 'director')""")
    assert bad == 0
    assert one(conn, "SELECT count(*) FROM user_roles WHERE role = 'sales_rep'") == one(conn, """
        SELECT count(*) FROM users u JOIN user_roles r ON r.user_id = u.id AND r.role = 'sales_rep'
        JOIN users m ON m.id = u.manager_id""")
    assert len({r for (r,) in rows(conn, "SELECT region FROM teams")}) == 5


def test_leads_half_the_deals_come_from_converted_leads(db):
    conn, _, _ = db
    leads = one(conn, "SELECT count(*) FROM leads")
    converted = one(conn, "SELECT count(*) FROM leads WHERE status = 'converted'")
    assert 1.3 * N <= leads <= 1.7 * N
    assert 0.4 * N <= converted <= 0.6 * N
    assert one(conn, "SELECT count(*) FROM opportunities WHERE lead_id IS NOT NULL") == converted
    assert one(conn, """SELECT count(*) FROM leads l JOIN opportunities o ON o.id = l.opportunity_id
                        WHERE o.lead_id <> l.id OR l.owner_id <> o.owner_id OR l.account_id <> o.account_id
                           OR l.created_at > o.created_at""") == 0
    for company, contact, email, phone, e_n, p_n, i_n in rows(
            conn, "SELECT company, contact_name, email, phone, email_norm, phone_norm, identity_norm FROM leads"):
        assert (e_n, p_n, i_n) == (email_norm(email), phone_norm(phone), identity_norm(company, contact))


def test_quotes_lines_and_amounts_agree(db):
    conn, _, _ = db
    # every deal that reached bid has a current quote whose total is the deal amount
    reached_bid = {r[0] for r in rows(conn, "SELECT DISTINCT opportunity_id FROM stage_history WHERE to_stage = 'bid'")}
    current = dict(rows(conn, """
        SELECT q.opportunity_id, q.total FROM quotes q WHERE q.status <> 'superseded'"""))
    amounts = dict(rows(conn, "SELECT id, amount FROM opportunities"))
    assert reached_bid <= set(current)
    assert all(float(current[o]) == float(amounts[o]) for o in current)
    assert one(conn, """SELECT count(*) FROM (SELECT opportunity_id FROM quotes WHERE status <> 'superseded'
                        GROUP BY opportunity_id HAVING count(*) > 1)""") == 0
    assert one(conn, """SELECT count(*) FROM quotes q WHERE q.status = 'superseded' AND q.version >=
                        (SELECT max(version) FROM quotes q2 WHERE q2.opportunity_id = q.opportunity_id)""") == 0
    off = rows(conn, """SELECT q.id FROM quotes q JOIN quote_lines l ON l.quote_id = q.id GROUP BY q.id, q.total
                        HAVING abs(sum(l.quantity * l.list_price * (100.0 - l.discount_pct) / 100.0) - q.total) > 0.05 * count(*)""")
    assert off == []
    assert one(conn, "SELECT min(c) FROM (SELECT count(*) c FROM quote_lines GROUP BY quote_id)") >= 1


def test_won_deals_have_contract_plan_order_and_consistent_cash(db):
    conn, _, _ = db
    won = one(conn, "SELECT count(*) FROM opportunities WHERE stage = 'won'")
    assert one(conn, "SELECT count(*) FROM contracts") == won == one(conn, "SELECT count(*) FROM orders")
    assert one(conn, "SELECT count(*) FROM contracts c JOIN opportunities o ON o.id = c.opportunity_id "
                     "WHERE o.stage <> 'won' OR c.value <> o.amount OR c.currency <> o.currency") == 0
    statuses = {r for (r,) in rows(conn, "SELECT DISTINCT status FROM contracts")}
    assert statuses <= {"signed", "executing", "completed"} and "completed" in statuses
    assert one(conn, """SELECT count(*) FROM contracts c WHERE abs(c.value -
                        (SELECT sum(amount) FROM contract_milestones m WHERE m.contract_id = c.id)) > 0.001""") == 0
    assert one(conn, """SELECT count(*) FROM contracts c WHERE
          abs(c.invoiced_total - coalesce((SELECT sum(amount) FROM invoices i WHERE i.contract_id = c.id
                                           AND i.status <> 'void'), 0)) > 0.001
       OR abs(c.paid_total - coalesce((SELECT sum(paid_amount) FROM invoices i WHERE i.contract_id = c.id), 0)) > 0.001
       OR abs(c.recognised_total - coalesce((SELECT sum(amount) FROM revenue_entries r
                                             WHERE r.contract_id = c.id), 0)) > 0.001""") == 0
    # a payment per paid invoice, fully allocated to it
    assert one(conn, """SELECT count(*) FROM invoices i WHERE i.paid_amount > 0 AND i.paid_amount <>
                        (SELECT sum(a.amount) FROM payment_allocations a WHERE a.invoice_id = i.id)""") == 0
    assert one(conn, "SELECT count(*) FROM payments WHERE status <> 'confirmed' OR unapplied <> 0") == 0
    inv = dict(rows(conn, "SELECT status, count(*) FROM invoices GROUP BY status"))
    assert inv.get("paid") and inv.get("issued")  # some still open: aging has something to age
    assert one(conn, "SELECT count(*) FROM invoices WHERE issued_on > '2026-11-22'") == 0


def test_approvals_cover_gates_and_some_are_pending(db):
    conn, _, _ = db
    kinds = {r for (r,) in rows(conn, "SELECT DISTINCT kind FROM approval_requests")}
    assert {"ATI", "solution_review", "ATB", "ATC"} <= kinds
    statuses = Counter(dict(rows(conn, "SELECT status, count(*) FROM approval_requests GROUP BY status")))
    assert statuses["approved"] > statuses["rejected"] > 0
    # every step of an approved request approved, with one decision each
    assert one(conn, """SELECT count(*) FROM approval_requests r JOIN approval_steps s ON s.request_id = r.id
                        WHERE r.status = 'approved' AND s.status <> 'approved'""") == 0
    assert one(conn, """SELECT count(*) FROM approval_requests r WHERE r.status IN ('approved', 'rejected') AND
                        (SELECT max(d.decided_at) FROM approval_decisions d WHERE d.request_id = r.id) <> r.closed_at""") == 0
    # a gate's approval is linked from the stage change it allowed
    assert one(conn, """SELECT count(*) FROM stage_history h JOIN approval_requests r ON r.id = h.approval_id
                        WHERE r.subject_id <> h.opportunity_id OR r.to_stage <> h.to_stage OR r.status <> 'approved'
                           OR r.closed_at <> h.changed_at""") == 0


def test_number_sequences_match_the_numbers_used(db):
    conn, _, _ = db
    seqs = dict(rows(conn, "SELECT name, value FROM number_sequences"))
    used: Counter[str] = Counter()
    for table, prefix in (("contracts", "CT"), ("invoices", "INV"), ("payments", "PAY"), ("orders", "SO")):
        for (number,) in rows(conn, f"SELECT number FROM {table}"):
            p, year, n = number.split("-")
            assert p == prefix
            used[f"{p}:{year}"] = max(used[f"{p}:{year}"], int(n))
    assert seqs == dict(used)


def test_same_seed_same_data(db, tmp_path):
    conn, _, _ = db
    generate(tmp_path / "again.db")
    again = sqlite3.connect(tmp_path / "again.db")
    try:
        for table in ("opportunities", "stage_history", "leads", "invoices", "approval_requests"):
            q = f"SELECT * FROM {table} ORDER BY id"
            assert rows(again, q) == rows(conn, q), table
    finally:
        again.close()


def test_a_second_run_on_the_same_database_is_refused(db):
    _, _, url = db
    with pytest.raises(SystemExit, match="fresh database"):
        datagen.generate(url, datagen.Config(opportunities=10, users=40), say=lambda _m: None)


def test_marker_records_what_was_generated(db):
    _, info, url = db
    marker = datagen.read_marker(url)
    assert marker["opportunities"] == N and marker["seed"] == 7 and marker["today"] == date(2026, 11, 22).isoformat()
    assert marker["rows"] == info["rows"]
