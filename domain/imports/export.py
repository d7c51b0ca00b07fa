"""Export any list to CSV or XLSX, with the importer's headers, so export → import round-trips.

* Rows are what the caller may see (the same row-level visibility as the list services), read in
  id order in batches (keyset), so a large export streams instead of loading every row.
* Money is a plain decimal ("1250000.00": no thousands separator, no symbol; XLSX: a number cell
  formatted 0.00), dates ISO (2026-03-31; XLSX: a date cell shown yyyy-mm-dd), owners by email
  (unique, so the file imports back), lists joined with "; ".
* CSV is UTF-8 with a BOM: Excel, opened by double-click, decodes a CSV in the machine's ANSI code
  page (GBK on Chinese Windows, cp1252 elsewhere) unless the file starts with the UTF-8 BOM, so
  without it 华东电力 shows as mojibake. Cells starting with = + - @ get a leading apostrophe so a
  spreadsheet never runs them as formulas (CSV injection); the importer takes it off again.
* Leads, accounts, contacts and opportunities import back; invoices and payments export only.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from sqlalchemy import exists, false, or_, select

from domain.actor import Actor
from domain.db import tables as t
from domain.db.repositories import _opp_visible
from domain.errors import NotFound, ValidationFailed
from domain.imports.resolve import AccountBook, People
from domain.model.vocab import LeadStatus, Role, Stage
from domain.rbac import Scope, UseCase
from domain.services.base import begin

BATCH = 1000
COLUMNS: dict[str, list[str]] = {
    "leads": ["ref", "company", "contact_name", "title", "email", "phone", "source", "status",
              "disqualify_reason", "region", "need", "budget", "currency", "timeline", "authority", "notes",
              "owner", "owner_name", "score", "created_at"],
    "accounts": ["ref", "name", "industry", "region", "tier", "owner", "owner_name", "created_at"],
    "contacts": ["ref", "account", "name", "title", "email", "phone", "decision_role", "relationship"],
    "opportunities": ["ref", "name", "account", "amount", "currency", "stage", "probability", "close_date",
                      "created_on", "owner", "owner_name", "next_step", "customer_need", "budget", "competitors",
                      "close_reason"],
    "invoices": ["ref", "contract", "account", "amount", "paid_amount", "currency", "status", "issued_on", "due_on",
                 "dunning_level", "void_reason"],
    "payments": ["ref", "account", "amount", "allocated", "unapplied", "currency", "received_on", "method",
                 "bank_ref", "status", "note"],
}
FILTERS: dict[str, tuple[str, ...]] = {
    "leads": ("status", "owner"), "accounts": ("owner",), "contacts": ("account",),
    "opportunities": ("stage", "owner", "account"), "invoices": ("status",), "payments": ("status",),
}
USE_CASE = {"leads": UseCase.VIEW_LEAD, "accounts": UseCase.VIEW_ACCOUNT, "contacts": UseCase.VIEW_ACCOUNT,
            "opportunities": UseCase.VIEW_OPPORTUNITY, "invoices": UseCase.VIEW_OPPORTUNITY,
            "payments": UseCase.VIEW_OPPORTUNITY}
KINDS = tuple(COLUMNS)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check(kind: str, filters: dict[str, str | None] | None = None) -> dict[str, str]:
    """The kind and its filters, validated before anything is read (an API answers 422, not a half file)."""
    if kind not in COLUMNS:
        raise ValidationFailed(f"Cannot export '{kind}'", field="kind", allowed=list(KINDS))
    given = {k: v.strip() for k, v in (filters or {}).items() if v is not None and str(v).strip()}
    for name in given:
        if name not in FILTERS[kind]:
            raise ValidationFailed(f"{kind} cannot be filtered by {name}", field=name, allowed=list(FILTERS[kind]))
    enum = {"leads": LeadStatus, "opportunities": Stage}.get(kind)
    for name in ("status", "stage"):
        if name in given and enum is not None and given[name] not in {e.value for e in enum}:
            raise ValidationFailed(f"Unknown {name} '{given[name]}'", field=name, allowed=[e.value for e in enum])
    return given


def export_rows(kind: str, *, actor: Actor, uow, filters: dict[str, str | None] | None = None
                ) -> Iterator[dict[str, Any]]:
    """The records of `kind` the actor may see, as {header: value}, in id order. Inside `with uow:`."""
    given = check(kind, filters)
    ctx = begin(uow, actor, USE_CASE[kind])
    users = {u.id: u for u in uow.users.all()}
    where = _visible(kind, ctx.scope, ctx.user.roles) + _filters(kind, given, uow)
    table, stmt, shape = _query(kind)
    return _batches(uow, table, stmt, where, shape, users)  # checked now, read while iterated


def _batches(uow, table, stmt, where: list, shape, users) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        batch = list(uow.session.execute(stmt.where(table.c.id > last, *where).order_by(table.c.id).limit(BATCH)))
        for row in batch:
            yield shape(row, users)
        if len(batch) < BATCH:
            return
        last = batch[-1].id


def _who(users, uid) -> tuple[str, str]:
    u = users.get(uid)
    return (u.email, u.display_name()) if u is not None else ("", "")


def _query(kind: str):
    ld, ac, co, op, inv, ct, pay = (t.leads, t.accounts, t.contacts, t.opportunities, t.invoices, t.contracts,
                                    t.payments)
    if kind == "leads":
        def lead(r, users):
            email, name = _who(users, r.owner_id)
            return {**{c: getattr(r, c) for c in COLUMNS["leads"] if c in ld.c},
                    "ref": f"LEAD-{r.id:05d}", "owner": email, "owner_name": name}
        return ld, select(ld), lead
    if kind == "accounts":
        def account(r, users):
            email, name = _who(users, r.owner_id)
            return {**{c: getattr(r, c) for c in COLUMNS["accounts"] if c in ac.c},
                    "ref": f"ACC-{r.id:05d}", "owner": email, "owner_name": name}
        return ac, select(ac), account
    if kind == "contacts":
        def contact(r, users):
            return {**{c: getattr(r, c) for c in COLUMNS["contacts"] if c in co.c},
                    "ref": f"CON-{r.id:05d}", "account": r.account_name}
        return co, select(co, ac.c.name.label("account_name")).join(ac, ac.c.id == co.c.account_id), contact
    if kind == "opportunities":
        def opportunity(r, users):
            email, name = _who(users, r.owner_id)
            closed = r.stage in (Stage.WON.value, Stage.LOST.value, Stage.ABANDONED.value)
            return {**{c: getattr(r, c) for c in COLUMNS["opportunities"] if c in op.c},
                    "ref": f"OPP-{r.id:05d}", "account": r.account_name, "owner": email, "owner_name": name,
                    # a closed deal's close date is the day it closed; an open one's, the day it should
                    "close_date": r.stage_changed_at.date() if closed else r.expected_close_date,
                    "created_on": r.created_at.date(), "competitors": "; ".join(r.competitors or [])}
        return op, select(op, ac.c.name.label("account_name")).join(ac, ac.c.id == op.c.account_id), opportunity
    if kind == "invoices":
        def invoice(r, users):
            return {**{c: getattr(r, c) for c in COLUMNS["invoices"] if c in inv.c},
                    "ref": r.number, "contract": r.contract_number, "account": r.account_name}
        stmt = (select(inv, ct.c.number.label("contract_number"), ac.c.name.label("account_name"))
                .join(ct, ct.c.id == inv.c.contract_id).join(op, op.c.id == ct.c.opportunity_id)
                .join(ac, ac.c.id == inv.c.account_id))
        return inv, stmt, invoice

    def payment(r, users):
        return {**{c: getattr(r, c) for c in COLUMNS["payments"] if c in pay.c},
                "ref": r.number, "account": r.account_name}
    return pay, select(pay, ac.c.name.label("account_name")).join(ac, ac.c.id == pay.c.account_id), payment


def _pool(scope: Scope) -> list[int]:
    return list(scope.subtree if scope.is_manager else {scope.user_id})


def _accounts_visible(scope: Scope) -> list:
    """As AccountRepository.list: own (or team's) accounts, or accounts of deals they are on."""
    if scope.sees_all or scope.stages:
        return []
    pool = _pool(scope)
    on_team = exists().where(t.opportunities.c.account_id == t.accounts.c.id, or_(
        t.opportunities.c.owner_id.in_(pool),
        exists().where(t.opportunity_members.c.opportunity_id == t.opportunities.c.id,
                       t.opportunity_members.c.user_id.in_(pool))))
    return [or_(t.accounts.c.owner_id.in_(pool), on_team)]


def _visible(kind: str, scope: Scope, roles: frozenset[Role]) -> list:
    if kind == "leads":
        return [] if scope.sees_all else [t.leads.c.owner_id.in_(_pool(scope)) if _pool(scope) else false()]
    if kind in ("accounts", "contacts"):
        return _accounts_visible(scope)
    if kind in ("opportunities", "invoices"):  # an invoice is seen by who sees its deal (billing.visible_contract)
        clause = _opp_visible(scope)
        return [] if clause is None else [clause]
    # Payments: finance and operations see all; anyone else exports the payments they proposed.
    if scope.sees_all or Role.FINANCE in roles:
        return []
    return [t.payments.c.created_by == scope.user_id]


def _filters(kind: str, given: dict[str, str], uow) -> list:
    table = {"leads": t.leads, "accounts": t.accounts, "contacts": t.contacts, "opportunities": t.opportunities,
             "invoices": t.invoices, "payments": t.payments}[kind]
    out = []
    if "status" in given:
        out.append(table.c.status == given["status"])
    if "stage" in given:
        out.append(table.c.stage == given["stage"])
    if "owner" in given:
        uid, why = People(uow.users.all()).find(given["owner"])
        if uid is None:
            raise ValidationFailed(f"--owner: {why}", field="owner")
        out.append(table.c.owner_id == uid)
    if "account" in given:
        aid = AccountBook(uow.session).find(given["account"])
        if aid is None:
            raise NotFound(f"No account '{given['account']}'", field="account")
        out.append(table.c.account_id == aid)
    return out


# ----------------------------------------------------------------------------------- writing


def plain(value: Any) -> Any:
    """A value as the CSV writes it: money plain, dates ISO, None empty."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_chunks(rows: Iterator[dict[str, Any]], columns: list[str], *, every: int = 500) -> Iterator[bytes]:
    """The CSV in pieces (BOM + header first), for streaming."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    w.writerow(columns)
    n = 0
    for row in rows:
        w.writerow([plain(row.get(c)) for c in columns])
        n += 1
        if n % every == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def write_xlsx(rows: Iterator[dict[str, Any]], columns: list[str], out: BinaryIO, *, title: str) -> int:
    """One sheet, header row first; returns the number of records written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for c in columns:
        cell = WriteOnlyCell(sheet, value=c)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    n = 0
    for row in rows:
        line = []
        for c in columns:
            value = row.get(c)
            cell = WriteOnlyCell(sheet, value=None)
            if isinstance(value, Decimal):
                cell.value, cell.number_format = value, "0.00"
            elif isinstance(value, datetime):
                cell.value, cell.number_format = value, "yyyy-mm-dd hh:mm:ss"
            elif isinstance(value, date):
                cell.value, cell.number_format = value, "yyyy-mm-dd"
            elif isinstance(value, str):
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # text stays text: "=1+1" is not a formula here
            else:
                cell.value = value
            line.append(cell)
        sheet.append(line)
        n += 1
    book.save(out)
    return n
