"""opportunities.reached_stages (migration 0015) stays equal to the stages each deal has history for,
whatever writes the history: the domain's moves, direct inserts, updates and deletes, the backfill."""
from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import delete, insert, select, text, update

from domain.analytics.performance import REACHED_BIT
from domain.db import tables as t
from domain.services import opportunities
from tests import builders

o, sh = t.opportunities, t.stage_history


def _expected(engine) -> dict[int, int]:
    bits = {}
    with engine.connect() as conn:
        for (deal,) in conn.execute(select(o.c.id)):
            bits[deal] = 0
        for deal, stage in conn.execute(select(sh.c.opportunity_id, sh.c.to_stage)):
            bits[deal] |= REACHED_BIT[stage]
    return bits


def _actual(engine) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(o.c.id, o.c.reached_stages)).all())


def _history(deal: int, stage: str, by: int, when: datetime) -> dict:
    return {"opportunity_id": deal, "to_stage": stage, "probability": 10, "changed_at": when, "changed_by": by}


def test_the_domains_moves_set_a_bit_per_stage_reached(engine, uow_factory, org):
    won = builders.make_deal(uow_factory, org, n=1)
    builders.full_cycle(uow_factory, org, won)
    lost = builders.make_deal(uow_factory, org, n=2)
    builders.run_gate(uow_factory, org, lost, "ATI", ["manager"])
    with uow_factory() as uow:
        opportunities.close_opportunity(lost, "lost", "price", actor=org.actor("rep"), uow=uow)
        uow.commit()
    fresh = builders.make_deal(uow_factory, org, n=3)
    got = _actual(engine)
    assert got == _expected(engine)
    stages = lambda deal: {s for s, bit in REACHED_BIT.items() if got[deal] & bit}  # noqa: E731
    assert stages(won) == {"qualify", "initiated", "solution", "bid", "negotiate", "won"}
    assert stages(lost) == {"qualify", "initiated", "lost"}
    assert stages(fresh) == {"qualify"}


def test_history_inserts_updates_and_deletes_keep_the_bits_exact(engine, uow_factory, org):
    a = builders.make_deal(uow_factory, org, n=1)
    b = builders.make_deal(uow_factory, org, n=2)
    rep, when = org["rep"], datetime(2026, 11, 2, 9)
    with engine.begin() as conn:
        conn.execute(insert(sh).values(**_history(a, "initiated", rep, when)))
        conn.execute(insert(sh).values(**_history(a, "initiated", rep, when)))  # twice: still one bit
        conn.execute(insert(sh).values(**_history(a, "solution", rep, when)))
    assert _actual(engine) == _expected(engine)
    with engine.begin() as conn:
        conn.execute(delete(sh).where(sh.c.opportunity_id == a, sh.c.to_stage == "solution"))
        one = conn.execute(select(sh.c.id).where(sh.c.opportunity_id == a, sh.c.to_stage == "initiated")
                           .order_by(sh.c.id).limit(1)).scalar_one()
        conn.execute(delete(sh).where(sh.c.id == one))  # the other 'initiated' row keeps the bit
    assert _actual(engine) == _expected(engine)
    assert _actual(engine)[a] & REACHED_BIT["initiated"]
    with engine.begin() as conn:
        moved = conn.execute(select(sh.c.id).where(sh.c.opportunity_id == a, sh.c.to_stage == "initiated")
                             ).scalar_one()
        conn.execute(update(sh).where(sh.c.id == moved).values(opportunity_id=b))  # to another deal
        conn.execute(update(sh).where(sh.c.opportunity_id == b, sh.c.to_stage == "qualify").values(to_stage="bid"))
        conn.execute(update(sh).where(sh.c.opportunity_id == b).values(reason="checked"))  # not watched
    got = _actual(engine)
    assert got == _expected(engine)
    assert got[a] == REACHED_BIT["qualify"]
    assert got[b] == REACHED_BIT["initiated"] | REACHED_BIT["bid"]


def test_deleting_a_deal_with_its_history_leaves_the_others_alone(engine, uow_factory, org):
    a = builders.make_deal(uow_factory, org, n=1, triangle=False)
    b = builders.make_deal(uow_factory, org, n=2, triangle=False)
    before = _actual(engine)[b]
    with engine.begin() as conn:
        conn.execute(delete(sh).where(sh.c.opportunity_id == a))
        conn.execute(update(t.leads).where(t.leads.c.opportunity_id == a).values(opportunity_id=None,
                                                                                 status="qualified"))
        conn.execute(delete(o).where(o.c.id == a))
    assert _actual(engine) == _expected(engine) == {**_expected(engine), b: before}


def test_the_migration_fills_existing_deals_and_misses_no_concurrent_move(engine, db_url, uow_factory, org,
                                                                          dialect):
    from domain.db.migrate import downgrade, upgrade

    a = builders.make_deal(uow_factory, org, n=1)
    builders.run_gate(uow_factory, org, a, "ATI", ["manager"])
    engine.dispose()
    downgrade(db_url, "0014")
    with engine.connect() as conn:
        assert "reached_stages" not in {c for c in conn.execute(text("SELECT * FROM opportunities")).keys()}
    if dialect != "postgresql":  # SQLite migrations hold the write lock: no race to test
        upgrade(db_url)
        assert _actual(engine) == _expected(engine)
        assert _actual(engine)[a] == REACHED_BIT["qualify"] | REACHED_BIT["initiated"]
        return
    writer = engine.connect()
    tx = writer.begin()
    writer.execute(insert(sh).values(**_history(a, "solution", org["rep"], datetime(2026, 11, 3, 9))))
    migration = threading.Thread(target=upgrade, args=(db_url,))
    migration.start()
    migration.join(timeout=2)  # it waits for the writer (the table lock) instead of backfilling past it
    tx.commit()
    writer.close()
    migration.join()
    assert _actual(engine) == _expected(engine)
    assert _actual(engine)[a] == REACHED_BIT["qualify"] | REACHED_BIT["initiated"] | REACHED_BIT["solution"]


@pytest.mark.parametrize("name", ["insert", "update", "delete"])
def test_the_triggers_exist_at_head(engine, name):
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            found = conn.scalar(text("SELECT count(*) FROM pg_trigger WHERE tgname = 'trg_opportunity_reached'"))
        else:
            found = conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                {"n": f"trg_opportunity_reached_{name}"})
    assert found == 1


def test_a_generated_dataset_carries_the_bits_and_the_triggers_are_back_on(empty_db_url):
    """tests/benchmarks/datagen.py writes reached_stages with each deal and keeps the trigger off while it
    COPYs the history (PostgreSQL): the bits equal the history, and the next move is counted again."""
    from domain.db.engine import make_engine
    from tests.benchmarks import datagen

    datagen.generate(empty_db_url, datagen.Config(opportunities=200, users=40), say=lambda _m: None)
    engine = make_engine(empty_db_url)
    try:
        got = _actual(engine)
        assert got == _expected(engine)
        assert sum(1 for bits in got.values() if bits & REACHED_BIT["won"]) > 10
        deal = min(d for d, bits in got.items() if bits == REACHED_BIT["qualify"])
        with engine.begin() as conn:
            by = conn.execute(select(o.c.owner_id).where(o.c.id == deal)).scalar_one()
            conn.execute(insert(sh).values(**_history(deal, "initiated", by, datetime(2026, 11, 3, 9))))
        assert _actual(engine)[deal] == REACHED_BIT["qualify"] | REACHED_BIT["initiated"]
    finally:
        engine.dispose()
