"""The open pipeline by product: the lines of each deal's current quote.

Read from the tables of migration 0012 (kept exact by triggers), never from the quotes themselves:
`product_pipeline_rollup` (a few thousand rows for the whole company) when the asker sees every
owner, else `product_pipeline_deals` (one row per open deal and product) for the owners in scope.
Both hold sums in each quote's currency; they are converted here, exactly, per currency.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select, type_coerce

from domain.analytics import sql as q
from domain.analytics.breakdown import NONE_LABEL, by_amount, row
from domain.analytics.periods import Period
from domain.analytics.scope import Asker
from domain.analytics.views import BreakdownRow
from domain.db import tables as t

NO_PRODUCT = 0  # product_id of a deal without a current quote: it counts under "—" with its own amount


def rows(uow, a: Asker, period: Period | None) -> list[BreakdownRow]:
    """Per product: distinct open deals, net amount and weighted amount, for deals expected to close
    in the period (None: every open deal); "—" last."""
    if a.filter_ids is None:
        r = t.product_pipeline_rollup
        stmt = select(r.c.product_id, r.c.currency, func.sum(r.c.n), *_sums(r))
    else:
        r = t.product_pipeline_deals
        stmt = select(r.c.product_id, r.c.currency, func.count(), *_sums(r))
    # Periods are whole months, quarters or years: month keys select them exactly ("" sorts first).
    where = [] if period is None else [r.c.month >= f"{period.start:%Y-%m}", r.c.month < f"{period.end:%Y-%m}"]
    if a.filter_ids is not None:
        where.append(a.owned(r.c.owner_id))
    stmt = stmt.where(*where).group_by(r.c.product_id, r.c.currency)
    sums: dict[int, list] = {}
    for product_id, currency, n, amount, weighted in uow.session.execute(stmt):
        acc = sums.setdefault(product_id, [0, Decimal(0), Decimal(0)])
        acc[0] += int(n or 0)
        acc[1] += q.convert(amount, currency, a.rates)
        acc[2] += q.convert(weighted, currency, a.rates)
    pr = t.products
    name = pr.c.name_zh if a.locale == "zh" else pr.c.name_en
    ids = sorted(k for k, v in sums.items() if k != NO_PRODUCT and v[0])
    names = {pid: (sku, label) for pid, sku, label in
             uow.session.execute(select(pr.c.id, pr.c.sku, name).where(pr.c.id.in_(ids)))} if ids else {}
    out = [row(names[pid][0], names[pid][1], *sums[pid]) for pid in ids]
    unquoted = sums.get(NO_PRODUCT)
    if unquoted and unquoted[0]:
        out.append(row("", NONE_LABEL, *unquoted))
    return by_amount(out)


def _sums(r) -> tuple:
    # Typed exact: SQLite's float sums would otherwise come back rounded before the conversion.
    return type_coerce(func.sum(r.c.amount), q.EXACT), type_coerce(func.sum(r.c.weighted), q.EXACT)
