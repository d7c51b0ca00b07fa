"""Each stage_history row records the spell it ends (migration 0011, domain/analytics/DEFINITIONS.md §4).

`spell_us` = microseconds since the deal's previous row in (changed_at, id) order (NULL on its
first row), `history_started_at` = its first row's changed_at. The domain writes them with the
row; the migration backfills the rows already there. Both must equal the recomputation from the
rows' order, on SQLite and PostgreSQL.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from domain.db.engine import make_engine
from domain.db.migrate import downgrade, upgrade
from domain.model.opportunities import Opportunity, StageChange
from domain.model.vocab import Stage
from domain.services import opportunities
from tests import builders

T0 = datetime(2026, 10, 1, 9, 0, 0, 250_000)
US = timedelta(microseconds=1)


# --------------------------------------------------------------------------- the model


def test_a_move_records_the_spell_it_ends_and_when_the_history_started():
    opp = Opportunity(name="Deal", account_id=1, owner_id=1, amount=Decimal("100"), currency="CNY",
                      stage_changed_at=T0)
    opp.history.append(StageChange(to_stage="qualify", changed_at=T0, changed_by=1))
    assert (opp.history[0].spell_us, opp.history[0].history_started_at) == (None, T0)

    t1 = T0 + timedelta(days=3, seconds=7, microseconds=5)
    first = opp.move_to(Stage.INITIATED, probability=20, at=t1, by=1)
    assert (first.from_stage, first.spell_us, first.history_started_at) == ("qualify", 259_207_000_005, T0)
    second = opp.move_to(Stage.SOLUTION, probability=40, at=t1 + timedelta(hours=5), by=1)
    assert (second.from_stage, second.spell_us, second.history_started_at) == ("initiated", 18_000_000_000, T0)
    # A clock behind the last move: history stays monotonic, the spell is 0 long, never negative.
    third = opp.move_to(Stage.LOST, probability=0, at=T0, by=1, reason="budget cut")
    assert (third.changed_at, third.spell_us, third.history_started_at) == (second.changed_at, 0, T0)


def test_a_deal_without_history_starts_it_with_its_first_move():
    opp = Opportunity(name="Legacy", account_id=1, owner_id=1, amount=Decimal("1"), currency="CNY")
    change = opp.move_to(Stage.INITIATED, probability=20, at=T0, by=1)
    assert (change.spell_us, change.history_started_at) == (None, T0)


# --------------------------------------------------------------------------- recomputation


def _stored_and_recomputed(conn) -> tuple[dict, dict]:
    """{id: (spell_us, history_started_at)} as stored, and from the window functions' previous and
    first rows (the difference taken in Python: exact to the microsecond on both databases)."""
    stored = {r.id: (r.spell_us, _dt(r.history_started_at)) for r in conn.execute(text(
        "SELECT id, spell_us, history_started_at FROM stage_history"))}
    window = {}
    for r in conn.execute(text(
            "SELECT id, changed_at, lag(changed_at) OVER deal AS prev, first_value(changed_at) OVER deal AS first "
            "FROM stage_history WINDOW deal AS (PARTITION BY opportunity_id ORDER BY changed_at, id)")):
        at, prev = _dt(r.changed_at), _dt(r.prev)
        window[r.id] = (None if prev is None else (at - prev) // US, _dt(r.first))
    return stored, window


def _dt(v):
    # Plain SQL on SQLite hands back the stored text, not a datetime.
    return datetime.fromisoformat(v) if isinstance(v, str) else v


def test_domain_moves_store_what_the_window_functions_compute(engine, uow_factory, org):
    """Real moves: gates, a free move, a loss, and two moves at one instant (the id breaks the tie)."""
    won = builders.make_deal(uow_factory, org, n=1)
    builders.full_cycle(uow_factory, org, won)
    lost = builders.make_deal(uow_factory, org, n=2)
    builders.run_gate(uow_factory, org, lost, "ATI", ["manager"])
    with uow_factory() as uow:
        opportunities.close_opportunity(lost, "lost", "budget cut", actor=org.actor("rep"), uow=uow)
        uow.commit()
    # Two moves at one instant (a stopped clock; behind the creation, so all three rows tie): the id decides.
    still = builders.make_deal(uow_factory, org, n=3)

    def stopped(**kw):
        return uow_factory(clock=lambda: datetime(2026, 1, 2, 10, 30), **kw)

    builders.run_gate(stopped, org, still, "ATI", ["manager"])
    with stopped() as uow:
        opportunities.close_opportunity(still, "abandoned", "no budget", actor=org.actor("rep"), uow=uow)
        uow.commit()

    with engine.connect() as conn:
        stored, window = _stored_and_recomputed(conn)
        rows = conn.execute(text("SELECT opportunity_id, from_stage, to_stage, changed_at, spell_us "
                                 "FROM stage_history ORDER BY opportunity_id, changed_at, id")).all()
    assert stored == window
    assert len(stored) == 6 + 3 + 3
    assert all(s[1] is not None for s in stored.values())
    # Every row but a deal's first ends a spell in the stage it left.
    tied = [r for r in rows if r.opportunity_id == still]
    assert len({r.changed_at for r in tied}) == 1
    assert [(r.from_stage, r.to_stage, r.spell_us) for r in tied] == [
        (None, "qualify", None), ("qualify", "initiated", 0), ("initiated", "abandoned", 0)]
    # Real clocks: microseconds, and a spell for every row but the first.
    assert any(s[0] % 1_000_000 for s in stored.values() if s[0])


def test_the_migration_backfills_from_the_rows_order(empty_db_url):
    """Rows written before 0011: shuffled ids, equal times, microseconds, deals far apart (several
    batches). After the upgrade the columns equal the recomputation; down and up again, the same."""
    upgrade(empty_db_url, "0010")
    rng = random.Random(11)
    deals = [1, 2, 3, 49_999, 50_000, 120_007]
    chains = []
    for oid in deals:
        n = rng.randint(1, 6)
        # Odd deals start on a whole second: SQLite then stores no fraction at all.
        at, times = T0 + timedelta(days=oid % 17, microseconds=-250_000 * (oid % 2)), []
        for _ in range(n):
            times.append(at)
            if rng.random() > 0.25:  # else an equal time
                at += timedelta(seconds=rng.choice([1, 10_800, 172_801]), microseconds=rng.choice([0, 17, 654_321]))
        stages = ["qualify", "initiated", "solution", "bid", "negotiate", "won"][:n]
        chains += [(oid, stages[i - 1] if i else None, s, at_) for i, (s, at_) in enumerate(zip(stages, times))]
    ids = list(range(1, len(chains) + 1))
    rng.shuffle(ids)
    eng = make_engine(empty_db_url)
    try:
        with eng.begin() as conn:
            conn.execute(text("INSERT INTO users (id, email, name_en, locale, region, active) "
                              "VALUES (1, 'a@x.example', 'A', 'en', 'east', true)"))
            conn.execute(text("INSERT INTO accounts (id, name, name_norm, region, tier, owner_id, created_at, "
                              "updated_at) VALUES (1, 'Acme', 'acme', 'east', 'standard', 1, :t, :t)"), {"t": T0})
            for oid in deals:
                conn.execute(text(
                    "INSERT INTO opportunities (id, name, account_id, owner_id, amount, currency, region, competitors, "
                    "stage, probability, created_at, updated_at, stage_changed_at, version) "
                    "VALUES (:id, 'Deal', 1, 1, 100, 'CNY', 'east', '[]', 'qualify', 10, :t, :t, :t, 1)"),
                    {"id": oid, "t": T0})
            for hid, (oid, frm, to, at_) in zip(ids, chains):
                conn.execute(text(
                    "INSERT INTO stage_history (id, opportunity_id, from_stage, to_stage, probability, changed_at, "
                    "changed_by) VALUES (:id, :oid, :frm, :to, 10, :at, 1)"),
                    {"id": hid, "oid": oid, "frm": frm, "to": to, "at": at_})
        assert any(a[3] == b[3] and a[0] == b[0] for a, b in zip(chains, chains[1:])), "no equal times"

        # Python's own reading of the rows' order, independent of any SQL window function.
        expected = {}
        for oid in deals:
            mine = sorted(((at_, hid) for hid, (o, _f, _t, at_) in zip(ids, chains) if o == oid))
            for prev, (at_, hid) in zip([None, *mine], mine):
                expected[hid] = ((at_ - prev[0]) // US if prev else None, mine[0][0])

        for _ in range(2):
            upgrade(empty_db_url, "0011")
            with eng.connect() as conn:
                stored, window = _stored_and_recomputed(conn)
            assert stored == expected
            assert window == expected
            downgrade(empty_db_url, "0010")
            eng.dispose()
    finally:
        eng.dispose()


def test_the_benchmark_generator_writes_them_as_the_domain_would(tmp_path):
    """tests/benchmarks/datagen.py writes stage_history rows itself (COPY at scale): same values."""
    from tests.benchmarks import datagen

    url = f"sqlite:///{tmp_path / 'gen.db'}"
    datagen.generate(url, datagen.Config(opportunities=120, users=30), say=lambda _m: None)
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            stored, window = _stored_and_recomputed(conn)
    finally:
        eng.dispose()
    assert len(stored) > 120 and stored == window
    assert sum(s[0] is None for s in stored.values()) == 120  # one first row per deal
