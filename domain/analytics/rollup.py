"""Reading the pipeline rollup (kept exact by triggers, migration 0009) instead of every deal."""
from __future__ import annotations

from sqlalchemy import func

from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.db import tables as t

r = t.pipeline_rollup


def measures(rates):
    """count, converted amount, converted weighted amount: summed over rollup rows."""
    return (func.coalesce(func.sum(r.c.n), 0), func.sum(q.converted(r.c.amount, r.c.currency, rates)),
            func.sum(q.converted(r.c.weighted, r.c.currency, rates)))


def months(p: Period | None) -> list:
    # Periods are whole months, quarters or years, so month keys select them exactly ("" sorts first).
    return [] if p is None else [r.c.month >= f"{p.start:%Y-%m}", r.c.month < f"{p.end:%Y-%m}"]


def rows_of(a, stages, p: Period | None) -> list:
    return q.where(r.c.stage.in_(list(stages)), a.owned(r.c.owner_id), *months(p))


def month_parts(key: str) -> tuple[int, int] | None:
    return None if not key else (int(key[:4]), int(key[5:7]))
