"""Find demo records by what they are, not by id: `opp stage=negotiate owner=li.na first`.

A selector is a kind, then filters `column<op>value` (ops: = != ~ (contains) > < >= <=), then an
optional pick: `first` (lowest id, the default), `last` (highest id) or `only` (exactly one row).
Values may hold placeholders (`{deal.id}`, `{me}`), and a bare user name (`li.na`) in an email
column means that demo user. Each kind is a plain SQL query over the business tables, so the same
selectors name records in tasks' references and judge the final state.

`Scope` holds the references a task has resolved so far and fills placeholders: `{deal}` is the
record's human reference (OPP-00009, CT-2026-00003, an email for users), `{deal.col}` any column.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text

DOMAIN = "xinglian.example"


@dataclass(frozen=True)
class Kind:
    sql: str
    ref: str  # how the record's human reference is made from its row
    numeric: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()


def _user(col: str, alias: str) -> str:
    return f"(SELECT email FROM users WHERE users.id = {col}) AS {alias}"


KINDS: dict[str, Kind] = {
    "user": Kind("SELECT id, email, locale FROM users", "{email}", frozenset({"id"}), frozenset({"email"})),
    "lead": Kind(
        "SELECT l.id, l.company, l.contact_name AS contact, l.title, l.email, l.source, l.status, l.budget, "
        "l.currency, l.region, l.need, l.notes, l.timeline, l.authority, l.disqualify_reason AS reason, l.score, "
        f"{_user('l.owner_id', 'owner')}, l.opportunity_id AS opp, l.account_id AS account FROM leads l",
        "LEAD-{id:05d}", frozenset({"id", "budget", "score", "opp", "account"}), frozenset({"owner"})),
    "account": Kind(
        f"SELECT a.id, a.name, a.industry, a.region, a.tier, {_user('a.owner_id', 'owner')} FROM accounts a",
        "ACC-{id:05d}", frozenset({"id"}), frozenset({"owner"})),
    "opp": Kind(
        "SELECT o.id, o.name, o.stage, o.amount, o.currency, o.region, o.expected_close_date AS close_date, "
        "o.next_step, o.close_reason AS reason, o.competitors, o.account_id AS account, "
        "(SELECT name FROM accounts WHERE accounts.id = o.account_id) AS customer, "
        f"{_user('o.owner_id', 'owner')}, "
        "(SELECT u.email FROM opportunity_members m JOIN users u ON u.id = m.user_id "
        " WHERE m.opportunity_id = o.id AND m.role = 'SR') AS sr, "
        "(SELECT u.email FROM opportunity_members m JOIN users u ON u.id = m.user_id "
        " WHERE m.opportunity_id = o.id AND m.role = 'FR') AS fr, "
        "(SELECT count(*) FROM quotes q WHERE q.opportunity_id = o.id) AS quotes, "
        "(SELECT count(*) FROM contracts c WHERE c.opportunity_id = o.id) AS contracts "
        "FROM opportunities o",
        "OPP-{id:05d}", frozenset({"id", "amount", "account", "quotes", "contracts"}),
        frozenset({"owner", "sr", "fr"})),
    "approval": Kind(
        "SELECT r.id, r.kind, r.status, r.subject_type, r.to_stage, r.current_step AS step, "
        "CASE WHEN r.subject_type = 'opportunity' THEN r.subject_id "
        "     ELSE (SELECT q.opportunity_id FROM quotes q WHERE q.id = r.subject_id) END AS opp, "
        "CASE WHEN r.subject_type = 'quote' THEN r.subject_id END AS quote, "
        f"{_user('r.requested_by', 'requested_by')}, "
        "(SELECT s.role FROM approval_steps s WHERE s.request_id = r.id AND s.status = 'pending') AS waiting_role, "
        "(SELECT count(*) FROM approval_decisions d WHERE d.request_id = r.id) AS decisions "
        "FROM approval_requests r",
        "APR-{id:05d}", frozenset({"id", "step", "opp", "quote", "decisions"}), frozenset({"requested_by"})),
    "decision": Kind(
        f"SELECT d.id, d.request_id AS approval, d.step_seq AS step, d.outcome, d.comment, d.via_agent, "
        f"{_user('d.decider_id', 'decider')} FROM approval_decisions d",
        "{id}", frozenset({"id", "approval", "step"}), frozenset({"decider"})),
    "quote": Kind(
        "SELECT q.id, q.opportunity_id AS opp, q.version, q.status, q.total, q.list_total, q.discount_pct, "
        f"q.currency, q.approval_id AS approval, {_user('q.created_by', 'created_by')}, "
        "(SELECT count(*) FROM quote_lines l WHERE l.quote_id = q.id) AS lines FROM quotes q",
        "Q-{id:05d}", frozenset({"id", "opp", "version", "total", "list_total", "discount_pct", "approval", "lines"}),
        frozenset({"created_by"})),
    "contract": Kind(
        "SELECT c.id, c.number, c.opportunity_id AS opp, c.status, c.value, c.currency, c.invoiced_total, "
        f"c.paid_total, c.payment_terms_days AS terms, {_user('c.created_by', 'created_by')}, "
        "(SELECT owner_id FROM opportunities o WHERE o.id = c.opportunity_id) AS owner_id, "
        "(SELECT u.email FROM opportunities o JOIN users u ON u.id = o.owner_id WHERE o.id = c.opportunity_id) "
        "AS owner FROM contracts c",
        "{number}", frozenset({"id", "opp", "value", "invoiced_total", "paid_total", "terms", "owner_id"}),
        frozenset({"created_by", "owner"})),
    "milestone": Kind(  # a delivery milestone of a contract's order
        "SELECT m.id, o.contract_id AS contract, (SELECT number FROM contracts c WHERE c.id = o.contract_id) "
        "AS contract_number, o.number AS order_number, m.seq, m.name, m.kind, m.status, m.certificate_ref "
        "FROM delivery_milestones m JOIN orders o ON o.id = m.order_id",
        "{seq}", frozenset({"id", "contract", "seq"})),
    "invoice": Kind(
        "SELECT i.id, i.number, i.contract_id AS contract, "
        "(SELECT number FROM contracts c WHERE c.id = i.contract_id) AS contract_number, "
        "(SELECT seq FROM contract_milestones m WHERE m.id = i.milestone_id) AS milestone, "
        "i.status, i.amount, i.paid_amount, i.currency, i.due_on, i.dunning_level, "
        f"{_user('i.created_by', 'created_by')} FROM invoices i",
        "{number}", frozenset({"id", "contract", "milestone", "amount", "paid_amount", "dunning_level"}),
        frozenset({"created_by"})),
    "payment": Kind(
        "SELECT p.id, p.number, p.bank_ref, p.status, p.amount, p.currency, p.allocated, p.unapplied, "
        "p.account_id AS account, p.contract_id AS contract, "
        f"{_user('p.created_by', 'created_by')}, {_user('p.confirmed_by', 'confirmed_by')}, "
        "(SELECT coalesce(sum(a.amount), 0) FROM payment_allocations a WHERE a.payment_id = p.id) AS allocations "
        "FROM payments p",
        "{number}", frozenset({"id", "amount", "allocated", "unapplied", "account", "contract", "allocations"}),
        frozenset({"created_by", "confirmed_by"})),
    "promise": Kind(
        "SELECT p.id, p.invoice_id AS invoice, (SELECT number FROM invoices i WHERE i.id = p.invoice_id) "
        f"AS invoice_number, p.amount, p.promised_on, {_user('p.recorded_by', 'recorded_by')} FROM promises_to_pay p",
        "{id}", frozenset({"id", "invoice", "amount"}), frozenset({"recorded_by"})),
    "activity": Kind(
        "SELECT a.id, a.kind, a.subject, a.body, a.lead_id AS lead, a.account_id AS account, "
        f"a.opportunity_id AS opp, {_user('a.user_id', 'by')} FROM activities a",
        "{id}", frozenset({"id", "lead", "account", "opp"}), frozenset({"by"})),
    "member": Kind(
        "SELECT m.id, m.opportunity_id AS opp, m.role, (SELECT email FROM users u WHERE u.id = m.user_id) AS member "
        "FROM opportunity_members m",
        "{id}", frozenset({"id", "opp"}), frozenset({"member"})),
}

_OPS = ("!=", ">=", "<=", "=", "~", ">", "<")
_FILTER = re.compile(r"^([a-z_]+)(" + "|".join(re.escape(o) for o in _OPS) + r")(.*)$", re.S)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)(?:\.(\w+))?\}")
PICKS = ("first", "last", "only", "all")


class SelectorError(ValueError):
    pass


def email(name: str) -> str:
    """'li.na' → 'li.na@xinglian.example'; full emails stay as they are."""
    return name if "@" in name else f"{name}@{DOMAIN}"


@dataclass(frozen=True)
class Selector:
    kind: str
    filters: tuple[tuple[str, str, str], ...]
    pick: str = "first"

    @classmethod
    def parse(cls, source: str) -> Selector:
        try:
            words = shlex.split(source)
        except ValueError as e:
            raise SelectorError(f"{source!r}: {e}") from e
        if not words or words[0] not in KINDS:
            raise SelectorError(f"{source!r}: starts with one of {sorted(KINDS)}")
        kind, pick, filters = words[0], "first", []
        for w in words[1:]:
            if w in PICKS:
                pick = w
                continue
            m = _FILTER.match(w)
            if not m:
                raise SelectorError(f"{source!r}: {w!r} is not column<op>value")
            filters.append((m.group(1), m.group(2), m.group(3)))
        return cls(kind, tuple(filters), pick)


@dataclass
class Scope:
    """Resolved references of one task: name → row (dict), plus the kind that made it."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    def bind(self, name: str, kind: str, row: dict[str, Any]) -> None:
        self.rows[name], self.kinds[name] = row, kind

    def value(self, name: str, col: str | None) -> Any:
        if name not in self.rows:
            raise SelectorError(f"unknown reference {{{name}}}; known: {sorted(self.rows)}")
        row = self.rows[name]
        if col is None:
            return KINDS[self.kinds[name]].ref.format(**row)
        if col not in row:
            raise SelectorError(f"{{{name}.{col}}}: no column {col}; columns: {sorted(row)}")
        return row[col]

    def fill(self, value: Any) -> Any:
        """Placeholders filled in strings, lists and dicts; a string that is one placeholder keeps its type."""
        if isinstance(value, str):
            whole = _PLACEHOLDER.fullmatch(value)
            if whole:
                return self.value(whole.group(1), whole.group(2))
            return _PLACEHOLDER.sub(lambda m: str(self.value(m.group(1), m.group(2))), value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def sql(self, source: str) -> tuple[str, dict[str, Any]]:
        """Plain SQL with placeholders turned into bind parameters (never pasted into the text)."""
        params: dict[str, Any] = {}

        def bind(m: re.Match) -> str:
            key = f"p{len(params)}"
            params[key] = self.value(m.group(1), m.group(2))
            return f":{key}"

        return _PLACEHOLDER.sub(bind, source), params


def select_rows(conn, selector: Selector | str, scope: Scope) -> list[dict[str, Any]]:
    sel = Selector.parse(selector) if isinstance(selector, str) else selector
    kind = KINDS[sel.kind]
    columns = _columns(conn, sel.kind)
    where, params = [], {}
    for i, (col, op, raw) in enumerate(sel.filters):
        if col not in columns:
            raise SelectorError(f"{sel.kind}: no column {col!r}; columns: {', '.join(columns)}")
        value = scope.fill(raw)
        if col in kind.emails and isinstance(value, str) and value not in ("", "null"):
            value = email(value)
        key = f"f{i}"
        if isinstance(value, str) and value == "null":
            where.append(f"{col} IS NULL" if op == "=" else f"{col} IS NOT NULL")
            continue
        if op == "~":
            where.append(f"lower(CAST({col} AS TEXT)) LIKE :{key}")
            params[key] = f"%{str(value).lower()}%"
            continue
        params[key] = _number(value) if col in kind.numeric else str(value)
        where.append(f"{col} {'<>' if op == '!=' else op} :{key}")
    order = "DESC" if sel.pick == "last" else "ASC"
    query = f"SELECT * FROM ({kind.sql}) AS x" + (f" WHERE {' AND '.join(where)}" if where else "") + \
        f" ORDER BY id {order}"
    return [dict(r._mapping) for r in conn.execute(text(query), params)]


def pick_one(conn, selector: str, scope: Scope) -> dict[str, Any]:
    sel = Selector.parse(selector)
    rows = select_rows(conn, sel, scope)
    if not rows:
        raise SelectorError(f"no {sel.kind} matches {selector!r}")
    if sel.pick == "only" and len(rows) != 1:
        raise SelectorError(f"{selector!r} matches {len(rows)} rows, not exactly one")
    return rows[0]


_COLUMNS: dict[str, list[str]] = {}


def _columns(conn, kind: str) -> list[str]:
    if kind not in _COLUMNS:
        _COLUMNS[kind] = list(conn.execute(text(f"SELECT * FROM ({KINDS[kind].sql}) AS x WHERE 1 = 0")).keys())
    return _COLUMNS[kind]


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return value
    try:
        d = Decimal(str(value))
    except InvalidOperation as e:
        raise SelectorError(f"{value!r} is not a number") from e
    return int(d) if d == d.to_integral_value() else float(d)


def same(actual: Any, expected: Any) -> bool:
    """Compare a database value with a task's expectation: numbers by value, the rest as text."""
    if actual is None or expected is None:
        return actual is None and (expected is None or expected == "null")
    try:
        return Decimal(str(actual)) == Decimal(str(expected))
    except InvalidOperation:
        return str(actual) == str(expected)
