"""The pipeline rollup stays equal to a recomputation from the deals, whatever writes them:
inserts, every kind of update, deletes, and concurrent writers on PostgreSQL."""
from __future__ import annotations

import threading
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, text, update

from domain.db import tables as t
from tests import builders
from tests.integration.race import bump_amounts_together

o = t.opportunities
OPEN = ("qualify", "initiated", "solution", "bid", "negotiate")


def _month(row) -> str:
    when = row.expected_close_date if row.stage in OPEN else row.stage_changed_at
    if when is None:
        return ""
    when = date.fromisoformat(str(when)[:10]) if isinstance(when, str) else when
    return f"{when:%Y-%m}"


def _expected(engine) -> dict:
    out: dict = {}
    with engine.connect() as conn:
        for row in conn.execute(select(o)):
            key = (row.owner_id, row.stage, row.currency, row.region, _month(row))
            n, amount, weighted = out.get(key, (0, Decimal(0), Decimal(0)))
            amt = Decimal(str(row.amount))
            out[key] = (n + 1, amount + amt, weighted + amt * row.probability / 100)
    return out


def _rollup(engine) -> dict:
    with engine.connect() as conn:
        r = t.pipeline_rollup
        return {(x.owner_id, x.stage, x.currency, x.region, x.month):
                (x.n, Decimal(str(x.amount)).quantize(Decimal("0.01")), Decimal(str(x.weighted)).quantize(Decimal("0.0001")))
                for x in conn.execute(select(r).where(r.c.n != 0))}


def _assert_exact(engine) -> None:
    want = {k: (n, a.quantize(Decimal("0.01")), w.quantize(Decimal("0.0001"))) for k, (n, a, w) in _expected(engine).items()}
    assert _rollup(engine) == want
    with engine.connect() as conn:  # rows left at zero carry no money
        assert conn.execute(text("SELECT count(*) FROM pipeline_rollup WHERE n = 0 AND (amount <> 0 OR weighted <> 0)")
                            ).scalar_one() == 0


def test_the_rollup_follows_inserts_updates_and_deletes(engine, uow_factory, org):
    ids = [builders.make_deal(uow_factory, org, n=i, amount=str(100000 + i * 1000)) for i in range(1, 7)]
    ids.append(builders.make_deal(uow_factory, org, n=7, owner="rep_w", region="west"))
    _assert_exact(engine)
    with engine.begin() as conn:
        conn.execute(update(o).where(o.c.id == ids[0]).values(amount=Decimal("123456.78")))
        conn.execute(update(o).where(o.c.id == ids[1]).values(expected_close_date=date(2027, 2, 14), probability=35))
        conn.execute(update(o).where(o.c.id == ids[2]).values(stage="lost", probability=0, close_reason="price",
                                                              stage_changed_at=datetime(2026, 11, 3, 9)))
        conn.execute(update(o).where(o.c.id == ids[3]).values(owner_id=org["rep2"], currency="USD"))
        conn.execute(update(o).where(o.c.id == ids[4]).values(next_step="call back"))  # not watched: no change
        conn.execute(update(o).where(o.c.id == ids[5]).values(region="north"))
        conn.execute(delete(t.stage_history).where(t.stage_history.c.opportunity_id == ids[6]))
        conn.execute(delete(t.opportunity_members).where(t.opportunity_members.c.opportunity_id == ids[6]))
        conn.execute(update(t.leads).where(t.leads.c.opportunity_id == ids[6]).values(opportunity_id=None,
                                                                                       status="qualified"))
        conn.execute(delete(o).where(o.c.id == ids[6]))
    _assert_exact(engine)


def test_concurrent_writers_on_the_same_rollup_row_keep_it_exact(engine, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; the row lock race is PostgreSQL's")
    ids = [builders.make_deal(uow_factory, org, n=i, amount="100000") for i in range(1, 9)]
    errors = bump_amounts_together(engine, ids)
    assert errors == []
    _assert_exact(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(amount) FROM pipeline_rollup")).scalar_one() == Decimal(8 * (100000 + 5010))


def test_opposite_moves_between_two_rollup_rows_never_deadlock(engine, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; lock order is PostgreSQL's concern")
    nov, dec = date(2026, 11, 20), date(2026, 12, 20)
    a = builders.make_deal(uow_factory, org, n=1)
    b = builders.make_deal(uow_factory, org, n=2)
    with engine.begin() as conn:
        conn.execute(update(o).where(o.c.id == a).values(expected_close_date=nov))
        conn.execute(update(o).where(o.c.id == b).values(expected_close_date=dec))
    start = threading.Barrier(2)
    errors: list[str] = []

    def flip(opp_id: int, first: date, second: date) -> None:
        start.wait()
        for i in range(300):
            try:
                with engine.begin() as conn:
                    conn.execute(update(o).where(o.c.id == opp_id).values(expected_close_date=second if i % 2 == 0
                                                                          else first))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(type(getattr(e, "orig", e)).__name__)

    threads = [threading.Thread(target=flip, args=(a, nov, dec)), threading.Thread(target=flip, args=(b, dec, nov))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []  # before the ordered row locks: DeadlockDetected a few times per run
    _assert_exact(engine)


def test_a_deal_written_while_the_rollup_migration_runs_is_counted(engine, db_url, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite migrations hold the write lock; the race is PostgreSQL's")
    from domain.db.migrate import downgrade, upgrade

    a = builders.make_deal(uow_factory, org, n=1)
    engine.dispose()
    downgrade(db_url, "0008")
    writer = engine.connect()
    tx = writer.begin()
    writer.execute(text("INSERT INTO opportunities (name, account_id, owner_id, amount, currency, region, "
                        "expected_close_date, competitors, stage, probability, created_at, updated_at, "
                        "stage_changed_at, version) SELECT name || ' copy', account_id, owner_id, amount, currency, "
                        "region, expected_close_date, competitors, stage, probability, created_at, updated_at, "
                        "stage_changed_at, version FROM opportunities WHERE id = :id"), {"id": a})
    migration = threading.Thread(target=upgrade, args=(db_url,))
    migration.start()
    migration.join(timeout=2)  # it waits for the writer (the table lock) instead of backfilling past it
    tx.commit()
    writer.close()
    migration.join()
    _assert_exact(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM pipeline_rollup")).scalar_one() == 2
