"""`ltc import` and `ltc export`: CSV/XLSX in and out, as the --as user (channel cli).

    ltc import opportunities pipeline.csv --map "Opportunity Name=name" \\
        --stage-map "Closed Won=won" --stage-map "Prospecting=qualify" \\
        --missing-account create --unknown-owner assign:sales_ops@corp --mode skip-bad --report bad.csv
    ltc export opportunities --format xlsx -o pipeline.xlsx --stage negotiate

Exit code of an import: 0 when every row was good, 1 when any row was bad (the report says which;
under skip-bad the good rows are written all the same) or the file/options were refused.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from bot.cli import CliError, Out, _viewer, kv_table, new_table, short
from bot.context import AppContext
from domain.imports import (
    EXPORT_COLUMNS,
    EXPORT_KINDS,
    KINDS,
    MODES,
    ImportOptions,
    csv_chunks,
    export_rows,
    parse_mapping,
    report_csv,
    run_import,
    write_xlsx,
)
from domain.imports.fields import load_mapping_file

SHOWN_ERRORS = 30


def _read(path: str) -> bytes:
    p = Path(path).expanduser()
    if not p.is_file():
        raise CliError(f"No file {p}")
    return p.read_bytes()


def _options(args: argparse.Namespace) -> ImportOptions:
    mapping: dict[str, str] = {}
    stages: dict[str, str] = {}
    if args.map_file:
        mapping, stages = load_mapping_file(_read(args.map_file).decode("utf-8-sig"), args.map_file)
    mapping.update(parse_mapping(args.map))
    stages.update(parse_mapping(args.stage_map, option="stage-map"))
    return ImportOptions(mapping=mapping, stage_map=stages, missing_account=args.missing_account,
                         unknown_owner=args.unknown_owner, mode=args.mode, dry_run=args.dry_run,
                         day_first=args.day_first)


def cmd_import(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    data = _read(args.file)
    options = _options(args)
    progress = Progress(TextColumn(f"importing {args.kind}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=out.err, transient=True)
    task = progress.add_task("rows", total=None)
    with progress:
        report = run_import(args.kind, data, options, actor=actor, uow_factory=ctx.uow, filename=args.file,
                            progress=lambda done, total: progress.update(task, completed=done, total=total))
    verdict = ("dry run: nothing written" if report.dry_run else
               "written" if report.committed else "nothing written (all-or-nothing: fix the rows below)")
    out.print(kv_table([
        ("file", args.file), ("kind", report.kind), ("mode", report.mode), ("rows", report.rows),
        ("valid", report.valid), ("created", report.created), ("existing", report.existing),
        ("bad rows", report.skipped), ("result", verdict), ("seconds", report.seconds),
        ("columns", ", ".join(f"{h} → {f}" for f, h in report.columns.items())),
        ("ignored columns", ", ".join(report.ignored_columns) or "—"),
    ], title=f"Import of {report.kind}"))
    if report.errors:
        table = new_table(f"Problems ({len(report.errors)} in {report.skipped} rows)")
        for col in ("row", "column", "problem"):
            table.add_column(col, justify="right" if col == "row" else "left", overflow="fold")
        for p in report.errors[:SHOWN_ERRORS]:
            table.add_row(str(p.row), p.column or "—", short(p.problem, 200))
        out.print(table)
        if len(report.errors) > SHOWN_ERRORS:
            hint = f" (written to {args.report})" if args.report else "; --report FILE writes them all"
            out.print(Text(f"… and {len(report.errors) - SHOWN_ERRORS} more{hint}", style="dim"))
    if args.report:
        Path(args.report).expanduser().write_bytes(report_csv(report))
    return 1 if report.errors else 0


def cmd_export(ctx: AppContext, args: argparse.Namespace, out: Out) -> int:
    actor = _viewer(ctx, args)
    fmt = args.format or ("xlsx" if args.output.lower().endswith(".xlsx") else "csv")
    if fmt == "xlsx" and args.output == "-":
        raise CliError("XLSX is binary: give a file with -o FILE.xlsx")
    filters = {k: getattr(args, k, None) for k in ("status", "stage", "owner", "account")}
    columns = EXPORT_COLUMNS[args.kind]
    count = 0

    def counted(rows):
        nonlocal count
        for row in rows:
            count += 1
            yield row

    with ctx.uow() as uow:
        rows = counted(export_rows(args.kind, actor=actor, uow=uow, filters=filters))
        if args.output == "-":
            try:
                for chunk in csv_chunks(rows, columns):
                    sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            except BrokenPipeError:  # `ltc export … -o - | head`: the reader has all it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
        else:
            path = Path(args.output).expanduser()
            with path.open("wb") as fh:
                if fmt == "xlsx":
                    write_xlsx(rows, columns, fh, title=args.kind)
                else:
                    for chunk in csv_chunks(rows, columns):
                        fh.write(chunk)
    out.err.print(Text(f"Exported {count} {args.kind} to {args.output} ({fmt})"), soft_wrap=True)
    return 0


def add_commands(add, viewer: argparse.ArgumentParser) -> None:
    p = add("import", cmd_import, "import leads, accounts, contacts or opportunities from CSV/XLSX", viewer)
    p.add_argument("kind", choices=list(KINDS))
    p.add_argument("file", help="a .csv (UTF-8 or GBK) or .xlsx file; the first row is the header")
    p.add_argument("--map", action="append", default=[], metavar="HEADER=FIELD",
                   help="map a column of the file to one of our fields (repeatable; FIELD '-' ignores it)")
    p.add_argument("--map-file", metavar="FILE",
                   help='JSON/YAML: {"columns": {"Opportunity Name": "name"}, "stages": {"Closed Won": "won"}}')
    p.add_argument("--stage-map", action="append", default=[], metavar="THEIRS=OURS",
                   help="map a stage name of the file to ours, e.g. \"Closed Won=won\" (repeatable)")
    p.add_argument("--missing-account", choices=["reject", "create"], default="reject",
                   help="a row naming an account we do not have: reject it, or create the account (owned by the "
                        "row's owner)")
    p.add_argument("--unknown-owner", default="reject", metavar="reject|assign:EMAIL",
                   help="an owner that is no active user's email or unique name: reject the row, or give it to EMAIL")
    p.add_argument("--mode", choices=list(MODES), default="all-or-nothing",
                   help="all-or-nothing (default): any bad row → nothing written; skip-bad: write the good rows")
    p.add_argument("--dry-run", action="store_true", help="check every row and report; write nothing")
    p.add_argument("--day-first", action="store_true", help="read 03/04/2026 as 3 April (default: March 4)")
    p.add_argument("--report", metavar="FILE", help="write the problems (row, column, problem) to this CSV")
    p = add("export", cmd_export, "export a list to CSV or XLSX (the importer's headers: it imports back)", viewer)
    p.add_argument("kind", choices=list(EXPORT_KINDS))
    p.add_argument("--format", choices=["csv", "xlsx"], default=None, help="default: from -o's suffix, else csv")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write ('-': CSV to stdout)")
    p.add_argument("--status", help="leads, invoices, payments: only this status")
    p.add_argument("--stage", help="opportunities: only this stage")
    p.add_argument("--owner", metavar="EMAIL", help="leads, accounts, opportunities: only this owner's")
    p.add_argument("--account", metavar="NAME", help="contacts, opportunities: only this account's (name or ACC-ref)")
