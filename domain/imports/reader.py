"""A CSV or XLSX file → its header and its rows, each with the row number a spreadsheet shows.

Row numbers count records as spreadsheets do: the header is row 1, the first record row 2, and
blank lines keep their number (so "row 57" is where a person finds it in Excel). Encoding: UTF-8
with or without a BOM; failing that GB18030 (a superset of GBK, which Excel on Chinese Windows
writes when it saves "CSV"). The delimiter is sniffed from the header line (, ; tab |).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from domain.errors import ValidationFailed

MAX_BYTES = 50 * 1024 * 1024  # a 10k-row pipeline is ~2 MB; this is a guard, not a plan
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Row:
    number: int  # as in the file: header = 1
    cells: tuple

    def blank(self) -> bool:
        return all(c is None or str(c).strip() == "" for c in self.cells)

    def get(self, index: int):
        return self.cells[index] if index < len(self.cells) else None


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[Row]
    format: str  # "csv" or "xlsx"


def read_table(data: bytes, filename: str | None = None) -> Table:
    if len(data) > MAX_BYTES:
        raise ValidationFailed(f"The file is {len(data) // 1_048_576} MB; split it into files under "
                               f"{MAX_BYTES // 1_048_576} MB", field="file")
    if data.startswith(XLSX_MAGIC) or (filename or "").lower().endswith(".xlsx"):
        return _xlsx(data)
    return _csv(data)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is neither UTF-8 nor GBK/GB18030 text: save it as CSV UTF-8",
                               field="file") from None


def _csv(data: bytes) -> Table:
    text = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t|", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ValidationFailed(f"The CSV cannot be read near row {reader.line_num}: {exc}", field="file") from None
    return _table(records, "csv")


def _xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook  # the only non-stdlib reader, loaded when an XLSX comes in

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise ValidationFailed(f"The file is not a readable XLSX workbook ({type(exc).__name__})",
                               field="file") from None
    try:
        sheet = book.worksheets[0]
        records = [list(r) for r in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    return _table(records, "xlsx")


def _table(records: list[list], fmt: str) -> Table:
    if not records or all(c is None or str(c).strip() == "" for c in records[0]):
        raise ValidationFailed("The file is empty or its first row (the header) is blank", field="file")
    headers = ["" if h is None else str(h).strip() for h in records[0]]
    rows = [Row(number=i, cells=tuple(r)) for i, r in enumerate(records[1:], start=2)]
    while rows and rows[-1].blank():  # trailing empty rows spreadsheets keep
        rows.pop()
    return Table(headers=headers, rows=rows, format=fmt)
