"""Gate throughput: what waits for a decision, and how long decisions take."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from domain.actor import Actor
from domain.analytics import sql as q
from domain.analytics.periods import Period
from domain.analytics.scope import ask
from domain.analytics.views import GateKindLine, GateThroughput
from domain.db import tables as t
from domain.model.vocab import ApprovalKind

ar = t.approval_requests
DECIDED = ("approved", "rejected", "expired", "cancelled")


def gate_throughput(period: Period | str = "this_quarter", *, actor: Actor, uow, team: int | str | None = None,
                    owner: int | None = None) -> GateThroughput:
    """Approvals requested by people in scope: pending now, decided in the period, average decision time."""
    a = ask(uow, actor, team=team, owner=owner)
    p = q.as_period(period, a.today)
    dialect = uow.session.get_bind().dialect.name
    mine = q.where(a.by_person(ar.c.requested_by))
    lines = {k.value: {"pending": 0, "oldest": None, **dict.fromkeys(DECIDED, 0), "secs": Decimal(0), "n": 0}
             for k in ApprovalKind}
    for kind, n, oldest in uow.session.execute(
            select(ar.c.kind, func.count(), func.min(ar.c.created_at)).where(ar.c.status == "pending", *mine)
            .group_by(ar.c.kind)):
        lines[kind].update(pending=n, oldest=oldest)
    took = q.seconds_between(dialect, ar.c.created_at, ar.c.closed_at)
    for kind, status, n, secs in uow.session.execute(
            select(ar.c.kind, ar.c.status, func.count(), func.sum(took))
            .where(ar.c.status.in_(DECIDED), *mine, *q.in_times(ar.c.closed_at, p)).group_by(ar.c.kind, ar.c.status)):
        line = lines[kind]
        line[status] += n
        if status in ("approved", "rejected"):
            line["secs"] += Decimal(str(secs or 0))
            line["n"] += n
    out = [_line(kind, v, a.now) for kind, v in lines.items()]
    everything = {"pending": sum(v["pending"] for v in lines.values()),
                  "oldest": min((v["oldest"] for v in lines.values() if v["oldest"]), default=None),
                  **{s: sum(v[s] for v in lines.values()) for s in DECIDED},
                  "secs": sum((v["secs"] for v in lines.values()), Decimal(0)), "n": sum(v["n"] for v in lines.values())}
    return GateThroughput(period=p, kinds=out, total=_line("all", everything, a.now), **a.fields())


def _line(kind: str, v: dict, now: datetime) -> GateKindLine:
    oldest = None if v["oldest"] is None else q.tenth((now - v["oldest"]).total_seconds() / 3600)
    average = q.tenth(v["secs"] / v["n"] / 3600) if v["n"] else None
    return GateKindLine(kind=kind, pending=v["pending"], oldest_pending_hours=oldest, approved=v["approved"],
                        rejected=v["rejected"], expired=v["expired"], cancelled=v["cancelled"],
                        average_decision_hours=average)
