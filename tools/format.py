"""Plain-text rendering shared by tools: money, dates, and tables that line up with Chinese text."""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

SYMBOL = {"CNY": "¥", "USD": "$", "EUR": "€", "HKD": "HK$", "JPY": "¥", "GBP": "£", "SGD": "S$"}


def money(amount: Decimal | int | float | str | None, currency: str = "CNY") -> str:
    if amount is None:
        return "-"
    value = Decimal(str(amount))
    text = f"{value:,.2f}"
    if text.endswith(".00"):
        text = text[:-3]
    return f"{SYMBOL.get(currency, currency + ' ')}{text}"


def day(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def width(text: str) -> int:
    """Display width: CJK and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, cols: int, right: bool) -> str:
    gap = " " * max(0, cols - width(text))
    return gap + text if right else text + gap


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = (),
          max_rows: int = 30) -> str:
    """A monospace table; columns in `right` are right-aligned (numbers). Long lists say how many more."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows[:max_rows]]
    cols = [max(width(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, cols[i], i in right) for i, c in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in cols))
    if len(rows) > max_rows:
        lines.append(f"… +{len(rows) - max_rows}")
    return "\n".join(lines)
