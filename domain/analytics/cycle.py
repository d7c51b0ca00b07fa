"""Sales cycle time: median days deals spent in each stage, and median days to win, from stage history.

Every stage_history row but a deal's first ends a spell: it records its length (`spell_us`,
microseconds since the deal's previous row, in `from_stage`) and when the deal's history started
(`history_started_at`), both written with the row (migration 0011). So the spells that ended in
a period are a range of changed_at (index ix_stage_history_spells) and the deals won in it are a
range of won rows (ix_stage_history_won): no window over every touched deal's history.
"""
from __future__ import annotations

import statistics
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import array

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import ask
from domain.analytics.views import CycleTime, StageCycle
from domain.db import tables as t
from domain.model.vocab import Stage

o, sh = t.opportunities, t.stage_history
SECONDS_PER_DAY = Decimal(86400)
US_PER_DAY = SECONDS_PER_DAY * 1_000_000


def cycle_time(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
               owner: int | None = None) -> CycleTime:
    """Median days deals spent in each stage (spells that ended in the period), and median days to win."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    dialect = uow.session.get_bind().dialect.name
    # Every deal has an owner: with everyone in scope there is nothing to join (and a 1M-deal semi-join saved).
    deals = [] if a.filter_ids is None else [sh.c.opportunity_id.in_(select(o.c.id).where(a.owned(o.c.owner_id)))]
    ended = [sh.c.from_stage.in_(q.OPEN), sh.c.spell_us.is_not(None), *q.in_times(sh.c.changed_at, p), *deals]
    medians = _spell_medians(uow, dialect, ended)
    stages = [StageCycle(stage=s, spells=medians[s][0] if s in medians else 0,
                         median_days=q.tenth(medians[s][1] / US_PER_DAY) if s in medians else None)
              for s in q.OPEN]
    # Deals won in the period: their won row (closed stages are terminal; it is the close time). A scope's
    # won deals come from the closed-deals index: probing each won row's deal for its owner costs more.
    won = [sh.c.to_stage == Stage.WON.value, *q.in_times(sh.c.changed_at, p)]
    if a.filter_ids is not None:
        won.append(sh.c.opportunity_id.in_(select(o.c.id).where(
            o.c.stage == Stage.WON.value, a.owned(o.c.owner_id), *q.in_times(o.c.stage_changed_at, p))))
    count, median = _won_median(uow, dialect, won)
    return CycleTime(period=p, stages=stages, won_deals=count,
                     median_days_to_win=None if median is None else q.tenth(median / SECONDS_PER_DAY), **a.fields())


def _spell_medians(uow, dialect: str, clauses) -> dict[str, tuple[int, Decimal]]:
    """{stage: (spells, median µs)}, exact. PostgreSQL sorts the integers once per stage and hands back
    the two middle ones (the same one when the count is odd: ⌈0.5·n⌉ and ⌈(0.5 + 1e-10)·n⌉);
    SQLite has no percentile, so Python does it."""
    if dialect == "postgresql":
        middle = func.percentile_disc(array([0.5, 0.5000000001])).within_group(sh.c.spell_us)
        rows = uow.session.execute(select(sh.c.from_stage, func.count(), middle).where(*clauses)
                                   .group_by(sh.c.from_stage))
        return {stage: (n, (Decimal(lo) + Decimal(hi)) / 2) for stage, n, (lo, hi) in rows}
    values: dict[str, list[int]] = {}
    for stage, us in uow.session.execute(select(sh.c.from_stage, sh.c.spell_us).where(*clauses)):
        values.setdefault(stage, []).append(us)
    return {k: (len(v), statistics.median(Decimal(x) for x in v)) for k, v in values.items()}


def _won_median(uow, dialect: str, clauses) -> tuple[int, Decimal | None]:
    """(won deals, median seconds from their history's start to the won row): a few thousand rows."""
    if dialect == "postgresql":
        seconds = func.date_part("epoch", sh.c.changed_at - sh.c.history_started_at)  # float: µs exact enough
        n, median = uow.session.execute(select(func.count(), func.percentile_cont(0.5).within_group(seconds))
                                        .where(*clauses)).one()
        return n, None if median is None else Decimal(str(median))
    seconds = q.seconds_between(dialect, sh.c.history_started_at, sh.c.changed_at)
    values = [Decimal(str(x)) for (x,) in uow.session.execute(select(seconds).where(*clauses))]
    return len(values), statistics.median(values) if values else None
