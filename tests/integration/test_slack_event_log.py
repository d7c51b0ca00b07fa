"""Slack event de-duplication on both databases: the first insert of an event id wins, even racing."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from bot.slack.events import EventLog
from domain.db import tables as t


def test_an_event_id_is_taken_in_once(engine):
    log = EventLog(engine)
    assert [log.first_time("Ev1"), log.first_time("Ev1"), log.first_time("Ev2")] == [True, False, True]


def test_racing_deliveries_of_one_event_let_exactly_one_through(engine):
    log = EventLog(engine)
    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(lambda _: log.first_time("EvRace"), range(16)))
    assert wins.count(True) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.slack_events)).scalar_one() == 1
