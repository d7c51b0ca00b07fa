"""The open pipeline by product: the lines of each deal's current quote."""
from __future__ import annotations

from sqlalchemy import and_, func, literal_column, select

from domain.analytics import sql as q
from domain.analytics.breakdown import NONE_LABEL, by_amount, row
from domain.analytics.scope import Asker
from domain.analytics.views import BreakdownRow
from domain.db import tables as t

o = t.opportunities


def rows(uow, a: Asker, clauses) -> list[BreakdownRow]:
    qt, ql, pr = t.quotes, t.quote_lines, t.products
    # Only the asker's deals' quotes: grouping every quote first would read them all for one rep.
    current = (select(qt.c.opportunity_id, func.max(qt.c.version).label("version"))
               .where(qt.c.status != "superseded", qt.c.opportunity_id.in_(select(o.c.id).where(*clauses)))
               .group_by(qt.c.opportunity_id).subquery())
    deals = select(o.c.id, o.c.probability).where(*clauses).subquery()
    net = q.converted(ql.c.quantity * ql.c.list_price * (1 - ql.c.discount_pct * literal_column("0.01")),
                      qt.c.currency, a.rates)
    name = pr.c.name_zh if a.locale == "zh" else pr.c.name_en
    stmt = (select(pr.c.sku, name, func.count(func.distinct(deals.c.id)), func.sum(net),
                   func.sum(q.weighted(net, deals.c.probability)))
            .select_from(deals.join(current, current.c.opportunity_id == deals.c.id)
                         .join(qt, and_(qt.c.opportunity_id == current.c.opportunity_id,
                                        qt.c.version == current.c.version))
                         .join(ql, ql.c.quote_id == qt.c.id).join(pr, pr.c.id == ql.c.product_id))
            .group_by(pr.c.sku, name))
    rows = [row(sku, name, c, am, w) for sku, name, c, am, w in uow.session.execute(stmt)]
    amount = q.converted(o.c.amount, o.c.currency, a.rates)
    unquoted = (select(func.count(), func.sum(amount), func.sum(q.weighted(amount, o.c.probability)))
                .where(*clauses, ~select(current.c.opportunity_id)
                       .where(current.c.opportunity_id == o.c.id).exists()))
    c, am, w = uow.session.execute(unquoted).one()
    if c:
        rows.append(row("", NONE_LABEL, c, am, w))
    return by_amount(rows)
