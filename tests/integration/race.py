"""Concurrent writers for the trigger-kept tables' race tests (PostgreSQL row locks)."""
from __future__ import annotations

import threading

from sqlalchemy import update

from domain.db import tables as t

o = t.opportunities


def bump_amounts_together(engine, ids: list[int], steps: int = 5) -> list[Exception]:
    """Each deal's amount raised `steps` times (+1000 + step), one thread per deal, all started at once."""
    start = threading.Barrier(len(ids))
    errors: list[Exception] = []

    def bump(opp_id: int) -> None:
        try:
            start.wait()
            for step in range(steps):
                with engine.begin() as conn:
                    conn.execute(update(o).where(o.c.id == opp_id).values(amount=o.c.amount + 1000 + step))
        except Exception as e:  # noqa: BLE001 - the caller asserts there were none
            errors.append(e)

    threads = [threading.Thread(target=bump, args=(i,)) for i in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors
