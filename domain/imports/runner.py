"""Import a CSV/XLSX file of leads, accounts, contacts or opportunities: the modes and the report.

    report = run_import("opportunities", data, ImportOptions(mode="skip-bad", stage_map={...}),
                        actor=actor, uow_factory=ctx.uow, progress=lambda done, total: ...)

* Every row is checked in three steps: its cells (types, required values, stage names; no
  database), its owner and account (the policies in domain.imports.resolve), then the write
  through the domain services inside a SAVEPOINT, so a row the domain refuses (RBAC, duplicates,
  gates, database rules) is rolled back alone and reported; its outbox events are dropped too.
* `all-or-nothing`: one unit of work; every row is still tried (so the report lists every bad
  row), then any problem → rollback, nothing written. `skip-bad`: units of `chunk_size` rows,
  each committed with its good rows (a long import makes progress and holds the write lock
  briefly). `dry_run`: one unit of work, always rolled back — the same checks, nothing written.
* The report: (row as in the file with the header as row 1, column as headed in the file,
  problem), sorted by row; counts of rows, valid, created, existing (already there, left
  alone), skipped (bad rows); which column fed which field, and the columns nobody maps.
* The domain's rules decide, never a crash: a bad row is a problem in the report; a bad file or
  option (no header, unknown field in the mapping, bad policy) is one ValidationFailed before
  anything is written; a caller without the role to create the kind is one PermissionDenied.
"""
from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from domain.actor import Actor
from domain.db.uow import as_conflict
from domain.errors import LTCError, ValidationFailed
from domain.imports.export import plain
from domain.imports.fields import kind_named, resolve_columns
from domain.imports.reader import read_table
from domain.imports.resolve import People, missing_account_policy, owner_policy
from domain.imports.rows import Prepared, StageMap, parsers, prepare
from domain.imports.writers import (
    WRITERS,
    BatchFailed,
    Env,
    NeedsEmptyBatch,
    OpportunityBatch,
    RowErrors,
    field_of,
)
from domain.services.base import begin
from domain.services.schemas import View

ALL_OR_NOTHING, SKIP_BAD = "all-or-nothing", "skip-bad"
MODES = (ALL_OR_NOTHING, SKIP_BAD)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)  # file header → our field ("-" ignores it)
    stage_map: dict[str, str] = field(default_factory=dict)  # their stage name → our stage
    missing_account: str = "reject"  # or "create"
    unknown_owner: str = "reject"  # or "assign:<email>"
    mode: str = ALL_OR_NOTHING
    dry_run: bool = False
    day_first: bool = False  # 03/04/2026 is 3 April (else 4 March, as US exports write it)
    chunk_size: int = 500


class Problem(View):
    row: int
    column: str | None
    problem: str


class ImportReport(View):
    kind: str
    mode: str
    dry_run: bool
    committed: bool
    rows: int
    valid: int
    created: int
    existing: int
    skipped: int
    errors: list[Problem]
    columns: dict[str, str]
    ignored_columns: list[str]
    seconds: float


def run_import(kind: str, data: bytes, options: ImportOptions | None = None, *, actor: Actor,
               uow_factory: Callable, filename: str | None = None, progress: Progress | None = None) -> ImportReport:
    started = time.monotonic()
    opts = options or ImportOptions()
    spec = kind_named(kind)
    if opts.mode not in MODES:
        raise ValidationFailed(f"Unknown mode '{opts.mode}'", field="mode", allowed=list(MODES))
    table = read_table(data, filename)
    columns = resolve_columns(spec, table.headers, opts.mapping)
    parse = parsers(spec.name, StageMap(opts.stage_map), opts.day_first)
    missing = missing_account_policy(opts.missing_account)
    with uow_factory() as uow:  # the whole import is refused at once, not 10,000 times
        begin(uow, actor, spec.use_case)
        owner_policy(opts.unknown_owner, People(uow.users.all()))
    rows = [prepare(r, columns, parse) for r in table.rows if not r.blank()]
    problems: dict[int, list[tuple[str | None, str]]] = {p.number: p.problems for p in rows if p.problems}
    one_unit = opts.dry_run or opts.mode == ALL_OR_NOTHING
    size = max(1, opts.chunk_size)
    units = [rows] if one_unit else [rows[i:i + size] for i in range(0, len(rows), size)]
    tally = _Tally(len(rows), progress)
    outcomes: dict[int, str] = {}
    committed = False
    for unit in units:
        done_before = tally.done
        while True:  # a row that loses the whole transaction is recorded, then the unit runs again
            tally.done = done_before
            try:
                got, committed_unit = _unit(spec.name, unit, problems, opts, missing, actor, uow_factory, tally)
            except _Lost:
                continue
            outcomes.update(got)
            committed = committed or committed_unit
            break
    errors = sorted((Problem(row=n, column=columns.header(f) if f else None, problem=text)
                     for n, found in problems.items() for f, text in found), key=lambda p: p.row)
    created = sum(1 for o in outcomes.values() if o == "created") if committed else 0
    return ImportReport(
        kind=spec.name, mode=opts.mode, dry_run=opts.dry_run, committed=committed, rows=len(rows),
        valid=len(outcomes), created=created, existing=sum(1 for o in outcomes.values() if o == "existing"),
        skipped=len(problems), errors=errors, columns=dict(columns.header_of), ignored_columns=columns.ignored,
        seconds=round(time.monotonic() - started, 3))


class _Lost(Exception):
    """A row's failure rolled back the unit's whole transaction (not just its savepoint)."""


@dataclass
class _Tally:
    total: int
    progress: Progress | None
    done: int = 0
    shown: int = 0

    def step(self) -> None:
        self.done += 1
        if self.progress is not None and self.done > self.shown:  # never backwards on a re-run
            self.shown = self.done
            self.progress(self.done, self.total)


def _unit(kind: str, unit: list[Prepared], problems: dict, opts: ImportOptions, missing: str, actor: Actor,
          uow_factory: Callable, tally: _Tally) -> tuple[dict[int, str], bool]:
    outcomes: dict[int, str] = {}
    with uow_factory() as uow:
        env = Env(uow, actor, unknown_owner=owner_policy(opts.unknown_owner, People(uow.users.all())),
                  missing_account=missing)
        if kind == "opportunities":
            _batched(uow, actor, env, unit, problems, outcomes, tally)
        else:
            _row_by_row(uow, actor, env, WRITERS[kind], kind, unit, problems, outcomes, tally)
        if opts.dry_run or (opts.mode == ALL_OR_NOTHING and problems):
            return outcomes, False
        uow.commit()
        return outcomes, True


def _failed(uow, kind: str, number: int, exc: Exception, problems: dict, env: Env, events: set[str]) -> None:
    """A row's write failed: its savepoint is gone; forget its events and caches, keep its problems."""
    env.drop()
    for key in set(uow.outbox.pending) - events:
        del uow.outbox.pending[key]
    problems[number] = _problems(kind, exc)
    if not uow.session.in_transaction():
        raise _Lost() from exc


def _row_by_row(uow, actor: Actor, env: Env, writer, kind: str, unit: list[Prepared], problems: dict,
                outcomes: dict[int, str], tally: _Tally) -> None:
    """Each row in its own SAVEPOINT through the domain services."""
    for row in unit:
        if row.number not in problems:
            events = set(uow.outbox.pending)
            try:
                with uow.session.begin_nested():
                    outcomes[row.number] = writer(uow, actor, row.values, env)
                env.keep()
            except (RowErrors, LTCError, SQLAlchemyError) as exc:
                _failed(uow, kind, row.number, exc, problems, env, events)
        tally.step()


def _batched(uow, actor: Actor, env: Env, unit: list[Prepared], problems: dict, outcomes: dict[int, str],
             tally: _Tally) -> None:
    """Opportunities: checked row by row, written a batch at a time (domain.imports.pipeline)."""
    batch = OpportunityBatch(uow, actor, env)

    def add(number: int, values: dict) -> None:
        events = set(uow.outbox.pending)
        try:
            try:
                got = batch.add(number, values)
            except NeedsEmptyBatch:
                drain()
                got = batch.add(number, values)
            if got != "staged":
                outcomes[number] = got
            env.keep()
        except (RowErrors, LTCError, SQLAlchemyError) as exc:
            _failed(uow, "opportunities", number, exc, problems, env, events)

    def drain() -> None:
        try:
            outcomes.update({n: "created" for n in batch.drain()})
        except BatchFailed as failed:  # the database refused one of them: find it, one row at a time
            for number, values in failed.rows:
                add(number, values)
                try:
                    outcomes.update({n: "created" for n in batch.drain()})
                except BatchFailed as alone:
                    problems[number] = _problems("opportunities", alone.error)
                    if not uow.session.in_transaction():
                        raise _Lost() from alone

    for row in unit:
        if row.number not in problems:
            add(row.number, row.values)
            if batch.full():
                drain()
        tally.step()
    drain()


def _problems(kind: str, exc: Exception) -> list[tuple[str | None, str]]:
    if isinstance(exc, RowErrors):
        return exc.problems
    if isinstance(exc, SQLAlchemyError):
        exc = as_conflict(exc) or LTCError("The database refused this row")
    assert isinstance(exc, LTCError)
    text = exc.message
    if exc.allowed and "allowed" not in text:
        text += f" (allowed: {', '.join(str(a) for a in exc.allowed)})"
    return [(field_of(kind, exc.field), text)]


def report_csv(report: ImportReport) -> bytes:
    """The problems as a CSV (row, column, problem), UTF-8 with a BOM so Excel shows Chinese."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["row", "column", "problem"])
    for p in report.errors:  # the file's own headers and cells can hold formulas: neutralised like exports
        w.writerow([p.row, plain(p.column or ""), plain(p.problem)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
