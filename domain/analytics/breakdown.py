"""Rows of a breakdown (pipeline by some dimension): built from SQL sums, ordered by amount."""
from __future__ import annotations

from domain.analytics import sql as q
from domain.analytics.views import BreakdownRow

NONE_LABEL = "—"


def row(key, label, count, amount, weighted) -> BreakdownRow:
    return BreakdownRow(key=str(key), label=label, count=int(count or 0), amount=q.money(amount),
                        weighted=q.money(weighted))


def by_amount(rows: list[BreakdownRow]) -> list[BreakdownRow]:
    return sorted(rows, key=lambda r: (r.label == NONE_LABEL, -r.amount, r.label))
