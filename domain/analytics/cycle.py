"""Sales cycle time: median days deals spent in each stage, and median days to win, from stage history."""
from __future__ import annotations

import statistics
from decimal import Decimal

from sqlalchemy import func, select

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import ask
from domain.analytics.views import CycleTime, StageCycle
from domain.db import tables as t
from domain.model.vocab import Stage

o, sh = t.opportunities, t.stage_history


def cycle_time(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
               owner: int | None = None) -> CycleTime:
    """Median days deals spent in each stage (spells that ended in the period), and median days to win."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    dialect = uow.session.get_bind().dialect.name
    ended = func.lead(sh.c.changed_at).over(partition_by=sh.c.opportunity_id, order_by=(sh.c.changed_at, sh.c.id))
    deals = select(o.c.id).where(*q.where(a.owned(o.c.owner_id)))
    # Only deals with a stage change in the period can have a spell ending in it.
    touched = select(sh.c.opportunity_id).where(*q.in_times(sh.c.changed_at, p))
    spells = (select(sh.c.to_stage.label("stage"), sh.c.changed_at.label("started"), ended.label("ended"))
              .where(sh.c.opportunity_id.in_(touched), sh.c.opportunity_id.in_(deals)).subquery())
    days = q.seconds_between(dialect, spells.c.started, spells.c.ended) / 86400
    in_period = q.in_times(spells.c.ended, p)
    medians = _medians(uow, dialect, spells.c.stage, days, in_period, spells)
    stages = [StageCycle(stage=s, spells=medians.get(s, (0, None))[0], median_days=q.tenth(medians.get(s, (0, None))[1]))
              for s in q.OPEN]
    won_here = q.where(o.c.stage == Stage.WON.value, a.owned(o.c.owner_id), *q.in_times(o.c.stage_changed_at, p))
    first = (select(sh.c.opportunity_id, func.min(sh.c.changed_at).label("first"))
             .where(sh.c.opportunity_id.in_(select(o.c.id).where(*won_here)))  # not every deal's history
             .group_by(sh.c.opportunity_id).subquery())
    won = (select(o.c.id, q.seconds_between(dialect, first.c.first, o.c.stage_changed_at).label("s"))
           .select_from(o.join(first, first.c.opportunity_id == o.c.id)).where(*won_here).subquery())
    won_days = won.c.s / 86400
    med = _medians(uow, dialect, None, won_days, [], won)
    count, median = med.get(None, (0, None))
    return CycleTime(period=p, stages=stages, won_deals=count, median_days_to_win=q.tenth(median), **a.fields())


def _medians(uow, dialect: str, key, value, clauses, source) -> dict:
    """{key: (count, median)}. PostgreSQL does it in SQL; SQLite has no percentile, so Python does."""
    keys = [key] if key is not None else []
    if dialect == "postgresql":
        stmt = (select(*keys, func.count(), func.percentile_cont(0.5).within_group(value))
                .select_from(source).where(*clauses).group_by(*keys))
        return {(r[0] if keys else None): (r[-2], r[-1]) for r in uow.session.execute(stmt)}
    values: dict = {}
    for r in uow.session.execute(select(*keys, value).select_from(source).where(*clauses)):
        values.setdefault(r[0] if keys else None, []).append(Decimal(str(r[-1])))
    return {k: (len(v), statistics.median(v)) for k, v in values.items()}
