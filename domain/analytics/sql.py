"""SQL building blocks shared by the analytics queries: currency conversion, periods, rounding."""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Numeric, case, extract, func, literal_column, type_coerce

from domain.analytics.periods import Period, period_named
from domain.model.opportunities import OPEN_STAGES

OPEN = [s.value for s in OPEN_STAGES]
CENT, BASIS, TENTH = Decimal("0.01"), Decimal("0.0001"), Decimal("0.1")
ZERO = Decimal("0")
# Sums keep their digits until the final rounding: typed as MONEY, SQLite's floats would come back
# already rounded to cents, and a total of rounded rows is not the rounded total.
EXACT = Numeric(38, 10)


def converted(amount, currency, rates: dict[str, Decimal]):
    """amount × the book rate of its currency. Rates are settings, not input: inlined as numbers."""
    whens = [(currency == cur, literal_column(format(rate, "f"))) for cur, rate in sorted(rates.items()) if rate != 1]
    factor = case(*whens, else_=literal_column("1")) if whens else literal_column("1")
    return type_coerce(amount * factor, EXACT)


def convert(value, currency: str, rates: dict[str, Decimal]) -> Decimal:
    """A sum in one currency into the reporting currency, exactly (rounded later, once)."""
    if value is None:
        return ZERO
    # SQLite hands back floats: go through str so 0.1 stays 0.1 (PostgreSQL's are Decimals already).
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    rate = rates.get(currency, 1)
    return amount if rate == 1 else amount * rate


def weighted(amount_expr, probability):
    return type_coerce(amount_expr * probability * literal_column("0.01"), EXACT)


def money(value) -> Decimal:
    if value is None:
        return ZERO
    # SQLite hands back floats: go through str so 0.1 stays 0.1.
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def ratio(num, den, unit: Decimal = BASIS) -> Decimal | None:
    if den in (None, 0) or num is None:
        return None
    return (Decimal(str(num)) / Decimal(str(den))).quantize(unit, ROUND_HALF_UP)


def tenth(value) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(TENTH, ROUND_HALF_UP)


def as_period(period: Period | str | None, today: date) -> Period | None:
    if period is None or isinstance(period, Period):
        return period
    return period_named(period, today)


def in_dates(column, p: Period):
    return [column >= p.start, column < p.end]


def in_times(column, p: Period):
    """A timestamp is in a period when its date is."""
    return [column >= datetime.combine(p.start, time.min), column < datetime.combine(p.end, time.min)]


def year_month(column):
    return extract("year", column), extract("month", column)


def month_label(y, m) -> str:
    return f"{int(y)}-{int(m):02d}"


def quarter_label(y, m) -> str:
    return f"{int(y)}-Q{(int(m) - 1) // 3 + 1}"


def seconds_between(dialect: str, start, end):
    if dialect == "postgresql":
        return extract("epoch", end - start)
    # julianday is a float of days: 15 minutes come back as 899.99998 s; round to the millisecond.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400, 3)


def where(*clauses):
    return [c for c in clauses if c is not None]
