"""CSV/XLSX import and export of leads, accounts, contacts and opportunities (issue 9).

Pure domain: the standard library's csv, openpyxl for XLSX, and the domain services for every
write (RBAC, audit with the caller's channel, outbox events). Edges: bot/cli_imports.py (`ltc
import`, `ltc export`) and bot/api/routes/imports.py (POST /imports/{kind}, GET /exports/{kind}).

    fields    the kinds, their fields, header matching and --map
    values    cell parsers (money, dates, enums, currencies)
    reader    a CSV/XLSX file → header + numbered rows
    rows      one row → typed values + problems (stage mapping)
    resolve   owners and accounts, and the --unknown-owner / --missing-account policies
    writers   one row through the domain services
    pipeline  an imported opportunity's stage and history (read its docstring)
    runner    modes (all-or-nothing, skip-bad, dry run), savepoints, the report
    export    visible rows → CSV (UTF-8 BOM) or XLSX, with the importer's headers
"""
from domain.imports.export import COLUMNS as EXPORT_COLUMNS
from domain.imports.export import KINDS as EXPORT_KINDS
from domain.imports.export import MEDIA_TYPES, csv_chunks, export_rows, write_xlsx
from domain.imports.fields import KINDS, parse_mapping
from domain.imports.runner import MODES, ImportOptions, ImportReport, Problem, report_csv, run_import

__all__ = ["EXPORT_COLUMNS", "EXPORT_KINDS", "KINDS", "MEDIA_TYPES", "MODES", "ImportOptions", "ImportReport",
           "Problem", "csv_chunks", "export_rows", "parse_mapping", "report_csv", "run_import", "write_xlsx"]
