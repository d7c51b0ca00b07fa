"""Where each deal lives in chat: the thread it was last worked in, and its iron-triangle channel.

A chat turn that touched a deal remembers its thread, so a decision on that deal's approval is
told to the requester where they asked. One row per surface, deal and kind (thread | channel).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, select

from domain.db import tables as t
from domain.db.upsert import insert_for, insert_once
from domain.db.uow import utcnow

T = t.deal_conversations


@dataclass(frozen=True)
class Place:
    channel: str
    thread_ts: str | None = None


def opportunity_ids(result, depth: int = 0) -> set[int]:
    """The deals a tool result is about: `opportunity_id` fields, deal views, approvals of a deal."""
    found: set[int] = set()
    if depth > 3:
        return found
    if isinstance(result, dict):
        if isinstance(result.get("opportunity_id"), int):
            found.add(result["opportunity_id"])
        if str(result.get("ref", "")).startswith("OPP-") and isinstance(result.get("id"), int):
            found.add(result["id"])
        if result.get("subject_type") == "opportunity" and isinstance(result.get("subject_id"), int):
            found.add(result["subject_id"])
        for value in result.values():
            if isinstance(value, (dict, list)):
                found |= opportunity_ids(value, depth + 1)
    elif isinstance(result, list) and len(result) <= 3:  # a long listing is not "working on" each deal in it
        for item in result:
            found |= opportunity_ids(item, depth + 1)
    return found


def remember(engine: Engine, surface: str, opp_ids: Iterable[int], place: Place, kind: str = "thread") -> None:
    rows = [{"surface": surface, "opportunity_id": i, "kind": kind, "channel": place.channel,
             "thread_ts": place.thread_ts, "updated_at": utcnow()} for i in sorted(set(opp_ids))]
    if not rows:
        return
    stmt = insert_for(engine.dialect.name)(T).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=["surface", "opportunity_id", "kind"],
                                      set_={"channel": stmt.excluded.channel, "thread_ts": stmt.excluded.thread_ts,
                                            "updated_at": stmt.excluded.updated_at})
    with engine.begin() as conn:
        conn.execute(stmt)


def claim(engine: Engine, surface: str, opportunity_id: int, place: Place, kind: str = "channel") -> Place:
    """Remember `place` unless the deal has one of this kind already; returns the one that stands."""
    insert_once(engine, T, ["surface", "opportunity_id", "kind"],
                {"surface": surface, "opportunity_id": opportunity_id, "kind": kind, "channel": place.channel,
                 "thread_ts": place.thread_ts, "updated_at": utcnow()})
    return find(engine, surface, opportunity_id, kind) or place


def find(engine: Engine, surface: str, opportunity_id: int | None, kind: str) -> Place | None:
    if opportunity_id is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(T.c.channel, T.c.thread_ts).where(
            T.c.surface == surface, T.c.opportunity_id == opportunity_id, T.c.kind == kind)).first()
    return Place(row.channel, row.thread_ts) if row else None
