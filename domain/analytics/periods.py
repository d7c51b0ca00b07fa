"""Reporting periods: half-open date ranges named the way managers say them."""
from __future__ import annotations

import re
from datetime import date

from domain.errors import ValidationFailed
from domain.model.message_keys import keyed
from domain.services.schemas import View

NAMED = ("this_month", "last_month", "next_month", "this_quarter", "last_quarter", "next_quarter",
         "this_year", "last_year", "next_year")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_YEAR = re.compile(r"^(\d{4})$")


class Period(View):
    start: date
    end: date  # exclusive
    label: str  # 2026-Q4, 2026-11, 2026
    kind: str  # month, quarter, year

    def contains(self, d: date) -> bool:
        return self.start <= d < self.end


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    i = year * 12 + (month - 1) + n
    return i // 12, i % 12 + 1


def month(year: int, m: int) -> Period:
    ny, nm = _add_months(year, m, 1)
    return Period(start=date(year, m, 1), end=date(ny, nm, 1), label=f"{year}-{m:02d}", kind="month")


def quarter(year: int, q: int) -> Period:
    first = 3 * (q - 1) + 1
    ny, nm = _add_months(year, first, 3)
    return Period(start=date(year, first, 1), end=date(ny, nm, 1), label=f"{year}-Q{q}", kind="quarter")


def year(y: int) -> Period:
    return Period(start=date(y, 1, 1), end=date(y + 1, 1, 1), label=str(y), kind="year")


def quarter_of(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def period_named(name: str, today: date) -> Period:
    """this_quarter, last_month, 2026-Q3, 2026-11, 2026 … → a Period; anything else is refused."""
    key = name.strip().lower().replace(" ", "_")
    year_part = re.match(r"^(\d{4})", key)
    if year_part and not 1900 <= int(year_part.group(1)) <= 9998:
        raise ValidationFailed(f"Period {name!r} is outside the years 1900-9998", field="period",
                               details=keyed("analytics.period_years", period=name))
    q = (today.month - 1) // 3 + 1
    if key in NAMED:
        step = {"this": 0, "last": -1, "next": 1}[key.split("_")[0]]
        unit = key.split("_")[1]
        if unit == "month":
            return month(*_add_months(today.year, today.month, step))
        if unit == "quarter":
            y, m = _add_months(today.year, 3 * (q - 1) + 1, 3 * step)
            return quarter(y, (m - 1) // 3 + 1)
        return year(today.year + step)
    if m := _QUARTER.match(key.upper()):
        return quarter(int(m.group(1)), int(m.group(2)))
    if (m := _MONTH.match(key)) and 1 <= int(m.group(2)) <= 12:
        return month(int(m.group(1)), int(m.group(2)))
    if m := _YEAR.match(key):
        return year(int(m.group(1)))
    raise ValidationFailed(f"Unknown period {name!r}", field="period",
                           allowed=[*NAMED, "2026-Q3", "2026-11", "2026"],
                           details=keyed("analytics.unknown_period", period=name))


def previous(p: Period) -> Period:
    """The period of the same kind just before `p`."""
    if p.kind == "month":
        return month(*_add_months(p.start.year, p.start.month, -1))
    if p.kind == "quarter":
        y, m = _add_months(p.start.year, p.start.month, -3)
        return quarter(y, (m - 1) // 3 + 1)
    return year(p.start.year - 1)
