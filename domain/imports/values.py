"""Cell values as people and other CRMs write them → our types. Each parser raises ValueError
with a sentence saying what was expected; the importer turns it into (row, column, problem)."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from domain.model.vocab import CURRENCIES

_SYMBOLS = "¥￥$€£"
_GROUPED = re.compile(r"^\d{1,3}([, ]\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^\d+(\.\d+)?$")
# Names people write for the yuan; everything else must be an ISO code we accept.
CURRENCY_ALIASES = {"RMB": "CNY", "人民币": "CNY", "元": "CNY", "美元": "USD", "欧元": "EUR", "港币": "HKD",
                    "港元": "HKD", "日元": "JPY"}


def text(value: object) -> str | None:
    """Trimmed text; None for an empty cell. A leading apostrophe our CSV export adds in front of
    '=', '+', '-', '@' (so spreadsheets never run a cell as a formula) is taken off again."""
    if value is None:
        return None
    s = str(value).replace("\x00", "").strip()  # NUL: no database stores it in text
    if len(s) > 1 and s[0] == "'" and s[1] in "=+-@":
        s = s[1:]
    return s or None


def money(value: object) -> Decimal:
    """1234.5, "1,234.50", "¥1,234", "CNY 1 234.00" → Decimal('1234.50'). No negatives, ≤ 2 decimals."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not an amount")
    if isinstance(value, int | float | Decimal):
        raw = str(value)
    else:
        raw = unicodedata.normalize("NFKC", str(value)).strip()
        raw = re.sub(rf"^[A-Za-z]{{3}}\s*|\s*[A-Za-z]{{3}}$|[{_SYMBOLS}]", "", raw).strip()
        raw = raw.replace("\u00a0", " ").replace("\u202f", " ")
        if _GROUPED.match(raw):
            raw = raw.replace(",", "").replace(" ", "")
        elif not _PLAIN.match(raw):
            raise ValueError(f"'{value}' is not an amount (write it like 1250000.00)")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"'{value}' is not an amount (write it like 1250000.00)") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"'{value}' is not an amount of zero or more")
    if amount >= Decimal("1e14"):
        raise ValueError(f"'{value}' is too large (at most 14 digits before the decimal point)")
    cents = amount.quantize(Decimal("0.01"))
    if amount != cents:
        raise ValueError(f"'{value}' has more than 2 decimals")
    return cents


def currency(value: object) -> str:
    raw = unicodedata.normalize("NFKC", str(value)).strip()
    code = CURRENCY_ALIASES.get(raw, CURRENCY_ALIASES.get(raw.upper(), raw.upper()))
    if code not in CURRENCIES:
        raise ValueError(f"'{value}' is not a currency we accept ({', '.join(CURRENCIES)})")
    return code


_YMD = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_XYZ = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


def day(value: object, *, day_first: bool = False) -> date:
    """ISO 2026-03-31 (time part ignored), 2026/3/31, 2026年3月31日, and 3/31/2026 (month first, as
    Salesforce's US exports write it; `day_first` reads 31/3/2026). Spreadsheet dates as they are."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = unicodedata.normalize("NFKC", str(value)).strip()
    raw = re.split(r"[T ]", raw, maxsplit=1)[0] if re.match(r"^\d{4}-\d{2}-\d{2}[T ]", raw) else raw
    try:
        if m := _YMD.match(raw):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _XYZ.match(raw):
            first, second, year = int(m[1]), int(m[2]), int(m[3])
            return date(year, second, first) if day_first else date(year, first, second)
    except ValueError:
        raise ValueError(f"'{value}' is not a real date") from None
    order = "DD/MM/YYYY" if day_first else "MM/DD/YYYY"
    raise ValueError(f"'{value}' is not a date (write 2026-03-31, or {order})")


def whole(value: object, lo: int, hi: int) -> int:
    """A small whole number; "5", 5 and 5.0 (a spreadsheet's) are all 5."""
    m = re.match(r"^(-?\d{1,9})(\.0+)?$", str(value).strip())
    if m is None or not lo <= int(m[1]) <= hi:
        raise ValueError(f"'{value}' is not a whole number from {lo} to {hi}")
    return int(m[1])


def choice(value: object, enum: type[StrEnum]) -> str:
    """An enum value written loosely: "Trade Show" → trade_show. Errors list the allowed values."""
    raw = re.sub(r"[\s\-]+", "_", unicodedata.normalize("NFKC", str(value)).strip().casefold())
    for member in enum:
        if raw == member.value.casefold():
            return member.value
    raise ValueError(f"'{value}' is not one of: {', '.join(m.value for m in enum)}")


def items(value: object) -> list[str]:
    """"A; B、C" → ["A", "B", "C"] (our export joins lists with '; ')."""
    return [p.strip() for p in re.split(r"[;；、|\n]", str(value)) if p.strip()]
