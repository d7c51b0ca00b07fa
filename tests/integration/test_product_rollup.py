"""The product pipeline tables (migration 0012) stay equal to a recomputation from deals, quotes
and lines, whatever writes them: inserts, every watched and unwatched update, new quote versions,
line edits, deletes and cascades, stage moves out of the pipeline, the quote services, concurrent
writers on PostgreSQL, and the backfill of the migration itself."""
from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, insert, select, text, update

from domain.db import tables as t
from tests import builders

o, qt, ql, pr = t.opportunities, t.quotes, t.quote_lines, t.products
D, R = t.product_pipeline_deals, t.product_pipeline_rollup
OPEN = ("qualify", "initiated", "solution", "bid", "negotiate")
STRIPES = 16
NOW = datetime(2026, 11, 2, 9)
P = {"A": 101, "B": 102, "C": 103}  # products


def _month(d) -> str:
    if d is None:
        return ""
    d = date.fromisoformat(str(d)[:10]) if isinstance(d, str) else d
    return f"{d:%Y-%m}"


def _expected(conn) -> dict:
    """(deal, product) → (owner, currency, month, amount, weighted), recomputed in plain Python."""
    quotes = defaultdict(list)
    for q in conn.execute(select(qt)):
        quotes[q.opportunity_id].append(q)
    lines = defaultdict(list)
    for ln in conn.execute(select(ql)):
        lines[ln.quote_id].append(ln)
    out: dict = {}
    for deal in conn.execute(select(o)):
        if deal.stage not in OPEN:
            continue
        live = [q for q in quotes[deal.id] if q.status != "superseded"]
        month = _month(deal.expected_close_date)
        if not live:
            amount = Decimal(str(deal.amount))
            out[(deal.id, 0)] = (deal.owner_id, deal.currency, month, amount, amount * deal.probability / 100)
            continue
        current = max(live, key=lambda q: q.version)
        for ln in lines[current.id]:
            net = (Decimal(str(ln.quantity)) * Decimal(str(ln.list_price))
                   * (1 - Decimal(str(ln.discount_pct)) / 100))
            _, _, _, amount, weighted = out.get((deal.id, ln.product_id), (0, 0, 0, Decimal(0), Decimal(0)))
            out[(deal.id, ln.product_id)] = (deal.owner_id, current.currency, month, amount + net,
                                             weighted + net * deal.probability / 100)
    return out


def _exact(conn, dialect: str) -> None:
    # SQLite keeps these numbers as REAL: compare them to a millionth; PostgreSQL to the last digit.
    a_unit, w_unit = (Decimal("1e-8"), Decimal("1e-10")) if dialect == "postgresql" else (Decimal("1e-6"),) * 2

    def norm(amount, weighted):
        return Decimal(str(amount)).quantize(a_unit), Decimal(str(weighted)).quantize(w_unit)

    want = _expected(conn)
    got = {(x.opportunity_id, x.product_id): (x.owner_id, x.currency, x.month, *norm(x.amount, x.weighted))
           for x in conn.execute(select(D))}
    assert got == {k: (*v[:3], *norm(*v[3:])) for k, v in want.items()}
    sums: dict = {}
    for (_deal, product), (owner, currency, month, amount, weighted) in want.items():
        key = (owner % STRIPES, product, currency, month)
        n, a, w = sums.get(key, (0, Decimal(0), Decimal(0)))
        sums[key] = (n + 1, a + amount, w + weighted)
    rollup = {(x.stripe, x.product_id, x.currency, x.month): (x.n, *norm(x.amount, x.weighted))
              for x in conn.execute(select(R))}
    assert rollup == {k: (n, *norm(a, w)) for k, (n, a, w) in sums.items()}  # no row left at zero either


def _assert_exact(engine, dialect: str) -> None:
    with engine.connect() as conn:
        _exact(conn, dialect)


def _base(conn, org) -> None:
    conn.execute(insert(pr), [dict(id=pid, sku=sku, name_en=f"Product {sku}", name_zh=f"产品{sku}", unit="u",
                                   currency="CNY", cost=0, floor_price=0) for sku, pid in P.items()])
    conn.execute(insert(t.accounts), [dict(id=1, name="Acme", name_norm="acme", owner_id=org["rep"],
                                           created_at=NOW, updated_at=NOW)])


def _deal(conn, org, oid: int, *, owner="rep", amount="1000.00", currency="CNY", stage="bid", probability=40,
          close=date(2026, 12, 1)) -> int:
    conn.execute(insert(o), [dict(
        id=oid, name=f"D{oid}", account_id=1, owner_id=org[owner], amount=Decimal(amount), currency=currency,
        region="east", expected_close_date=close, competitors=[], stage=stage, probability=probability,
        close_reason="price" if stage in ("lost", "abandoned") else None, created_at=NOW, updated_at=NOW,
        stage_changed_at=NOW, version=1)])
    return oid


def _quote(conn, qid: int, deal: int, version: int, status="approved", currency="CNY", lines=()) -> int:
    conn.execute(insert(qt), [dict(id=qid, opportunity_id=deal, version=version, status=status, total=1,
                                   currency=currency, created_at=NOW)])
    if lines:
        conn.execute(insert(ql), [_line(qid, pos, *ln) for pos, ln in enumerate(lines, start=1)])
    return qid


def _line(qid: int, pos: int, sku: str, qty: str, price: str, disc: str = "0") -> dict:
    return dict(quote_id=qid, position=pos, product_id=P[sku], sku=sku, name=sku, quantity=Decimal(qty),
                list_price=Decimal(price), discount_pct=Decimal(disc), unit_cost=0, floor_price=0)


def _drop_deal(conn, deal: int) -> None:
    conn.execute(delete(qt).where(qt.c.opportunity_id == deal))  # its lines go by cascade
    conn.execute(delete(o).where(o.c.id == deal))


def test_the_tables_follow_inserts_updates_and_deletes(engine, org, dialect):
    with engine.begin() as conn:
        _base(conn, org)
        _deal(conn, org, 1)  # no quote: "—" at its own amount
        _deal(conn, org, 2, owner="rep2", currency="USD", probability=60)
        _quote(conn, 21, 2, 1, "superseded", "USD", [("C", "5", "100")])
        _quote(conn, 22, 2, 2, "approved", "USD", [("A", "2", "100.00", "10"), ("B", "1.5", "33.33", "12.5"),
                                                    ("A", "1", "0.01")])  # A twice: one deal
        _deal(conn, org, 3, owner="rep_w", close=None)
        _quote(conn, 31, 3, 1, "draft", "CNY", [("B", "3", "250")])
        _deal(conn, org, 4, stage="won", probability=100)  # closed: nowhere
        _quote(conn, 41, 4, 1, "accepted", "CNY", [("A", "1", "999")])
        _deal(conn, org, 5, currency="EUR", amount="777.77", probability=20)
        _quote(conn, 51, 5, 1, "superseded", "EUR", [("B", "9", "100")])  # all superseded: "—"
        _deal(conn, org, 6)
        _quote(conn, 61, 6, 1, "draft", "CNY")  # a current quote without lines: counts nowhere
        _exact(conn, dialect)  # inside the writing transaction, too
    _assert_exact(engine, dialect)

    steps = [
        # every watched column of a deal, and one that is not watched
        lambda c: c.execute(update(o).where(o.c.id == 1).values(amount=Decimal("1234.56"), currency="HKD")),
        lambda c: c.execute(update(o).where(o.c.id == 2).values(probability=75)),
        lambda c: c.execute(update(o).where(o.c.id == 2).values(expected_close_date=date(2027, 2, 14))),
        lambda c: c.execute(update(o).where(o.c.id == 3).values(expected_close_date=date(2026, 11, 30))),
        lambda c: c.execute(update(o).where(o.c.id == 2).values(expected_close_date=None)),
        lambda c: c.execute(update(o).where(o.c.id == 3).values(owner_id=org["rep"], stage="negotiate")),
        lambda c: c.execute(update(o).where(o.c.id == 2).values(amount=Decimal("1.00"))),  # quoted: no change
        lambda c: c.execute(update(o).where(o.c.id == 3).values(next_step="call back")),
        # a new quote version supersedes the old one (in either statement order)
        lambda c: (c.execute(update(qt).where(qt.c.id == 22).values(status="superseded")),
                   _quote(c, 23, 2, 3, "draft", "USD", [("C", "4", "10.05", "2.5")])),
        lambda c: (_quote(c, 32, 3, 2, "draft", "CNY"),
                   c.execute(update(qt).where(qt.c.id == 31).values(status="superseded")),
                   c.execute(insert(ql), [_line(32, 1, "A", "1", "10"), _line(32, 2, "C", "2", "20", "50")])),
        # superseding the current version brings back an earlier live one; back again
        lambda c: c.execute(update(qt).where(qt.c.id == 23).values(status="superseded")),
        lambda c: c.execute(update(qt).where(qt.c.id == 22).values(status="superseded")),
        lambda c: c.execute(update(qt).where(qt.c.id == 23).values(status="approved")),
        # quote currency and version; a status change that supersedes nothing
        lambda c: c.execute(update(qt).where(qt.c.id == 23).values(currency="EUR")),
        lambda c: c.execute(update(qt).where(qt.c.id == 21).values(status="draft", version=9)),
        lambda c: c.execute(update(qt).where(qt.c.id == 21).values(status="pending_approval")),
        # lines: one edited, all of a quote in one statement, moved to another deal's quote, deleted, added
        lambda c: c.execute(update(ql).where(ql.c.quote_id == 21, ql.c.position == 1)
                            .values(quantity=Decimal("6"), discount_pct=Decimal("33.33"))),
        lambda c: c.execute(update(ql).where(ql.c.quote_id == 32).values(discount_pct=ql.c.discount_pct + 1)),
        lambda c: c.execute(update(ql).where(ql.c.quote_id == 32, ql.c.position == 1).values(product_id=P["B"])),
        lambda c: c.execute(update(ql).where(ql.c.quote_id == 32, ql.c.position == 2)
                            .values(quote_id=61, position=1)),
        lambda c: c.execute(delete(ql).where(ql.c.quote_id == 21)),
        lambda c: c.execute(insert(ql), [_line(21, 5, "A", "3", "3.33", "3.3"), _line(21, 6, "A", "1", "1")]),
        # a quote moved to another deal, a quote deleted (its lines by cascade)
        lambda c: c.execute(update(qt).where(qt.c.id == 51).values(opportunity_id=1, version=1, status="draft")),
        lambda c: c.execute(delete(qt).where(qt.c.id == 61)),
        # out of the pipeline and back; a deal deleted
        lambda c: c.execute(update(o).where(o.c.id == 2).values(stage="won", probability=100)),
        lambda c: c.execute(update(o).where(o.c.id == 3).values(stage="lost", probability=0, close_reason="price")),
        lambda c: c.execute(update(o).where(o.c.id == 4).values(stage="negotiate", probability=80)),
        lambda c: _drop_deal(c, 5),
        lambda c: _drop_deal(c, 1),
    ]
    for i, step in enumerate(steps):
        with engine.begin() as conn:
            step(conn)
            _exact(conn, dialect)
        _assert_exact(engine, dialect)
    with engine.connect() as conn:
        assert conn.execute(select(R.c.stripe)).first() is not None  # something is still being checked


def test_the_quote_services_keep_the_tables_exact(engine, uow_factory, org, dialect):
    from domain.services import catalog, opportunities, quotes

    admin, rep = org.actor("admin"), org.actor("rep")
    with uow_factory() as uow:
        for sku in ("LIC", "EDGE"):
            catalog.create_product({"sku": sku, "name_en": sku, "name_zh": sku, "unit": "u", "cost": "3",
                                    "floor_price": "5"}, actor=admin, uow=uow)
        catalog.create_price_book({"name": "East CNY", "region": "east", "currency": "CNY",
                                   "prices": {"LIC": "1000", "EDGE": "250.50"}}, actor=admin, uow=uow)
        uow.commit()
    deals = [builders.make_deal(uow_factory, org, n=i, triangle=False) for i in (1, 2)]
    _assert_exact(engine, dialect)

    def call(fn, *args, **kwargs):
        with uow_factory() as uow:
            out = fn(*args, actor=rep, uow=uow, **kwargs)
            uow.commit()
        _assert_exact(engine, dialect)
        return out

    v1 = call(quotes.create_quote, deals[0], {"lines": [{"product": "LIC", "quantity": "3", "discount_pct": "5"},
                                                        {"product": "EDGE", "quantity": "2"}]})
    call(quotes.update_quote, v1.id, {"lines": [{"product": "EDGE", "quantity": "7.5", "discount_pct": "2.5"}]})
    call(quotes.create_quote, deals[0], {"lines": [{"product": "LIC", "quantity": "1"}]})  # v2 supersedes v1
    call(quotes.create_quote, deals[1], {"lines": [{"product": "LIC", "quantity": "2"},
                                                   {"product": "LIC", "quantity": "1", "discount_pct": "10"}]})
    call(opportunities.update_opportunity, deals[1], {"expected_close_date": "2027-01-15"})
    call(opportunities.close_opportunity, deals[0], "lost", "price")


def test_concurrent_writers_on_the_same_rows_keep_them_exact(engine, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; the row lock race is PostgreSQL's")
    with engine.begin() as conn:
        _base(conn, org)
        for i in range(1, 9):  # one owner, currency and month: the same rollup rows
            _deal(conn, org, i, amount="100000")
            if i % 2:
                _quote(conn, 10 * i, i, 1, "draft", "CNY", [("A", "1", "100"), ("B", "2", "50")])
    start = threading.Barrier(8)
    errors: list[Exception] = []

    def bump(deal: int) -> None:
        try:
            start.wait()
            for step in range(5):
                with engine.begin() as conn:
                    conn.execute(update(o).where(o.c.id == deal).values(amount=o.c.amount + 1000 + step,
                                                                        probability=o.c.probability + 1))
                    conn.execute(update(ql).where(ql.c.quote_id == 10 * deal)
                                 .values(quantity=ql.c.quantity + 1))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=bump, args=(i,)) for i in range(1, 9)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    _assert_exact(engine, dialect)
    with engine.connect() as conn:
        assert conn.execute(select(R.c.n).where(R.c.product_id == 0)).scalar_one() == 4
        assert conn.execute(select(R.c.amount).where(R.c.product_id == 0)).scalar_one() == 4 * (100000 + 5010)


def test_new_quote_versions_crossing_products_never_deadlock(engine, org, dialect):
    """Two writers re-quote their own deals, each moving from the product the other moves to: every
    transaction refreshes its deal several times (the new version or the lines removed, then the new
    lines), on the same rollup rows as the other writer, in the other order."""
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; lock order is PostgreSQL's concern")
    with engine.begin() as conn:
        _base(conn, org)
        for deal, sku in ((1, "A"), (2, "B")):
            _deal(conn, org, deal)
            _quote(conn, 1000 + deal, deal, 1, "draft", "CNY", [(sku, "1", "100")])
    start = threading.Barrier(2)
    errors: list[str] = []

    def requote(deal: int) -> None:
        start.wait()
        for i in range(40):
            sku = "B" if (deal + i) % 2 else "A"  # deal 1: A → B → A …, deal 2: B → A → B …
            try:
                with engine.begin() as conn:
                    cur = conn.execute(select(qt.c.id, qt.c.version).where(qt.c.opportunity_id == deal)
                                       .order_by(qt.c.version.desc())).first()
                    if i % 2:  # the lines of the current version replaced
                        conn.execute(delete(ql).where(ql.c.quote_id == cur.id))
                        conn.execute(text("SELECT pg_sleep(0.01)"))
                        conn.execute(insert(ql).values(_line(cur.id, 1, sku, "1", "100")))
                        continue
                    new = conn.execute(insert(qt).values(opportunity_id=deal, version=cur.version + 1, status="draft",
                                                         total=1, currency="CNY", created_at=NOW)
                                       .returning(qt.c.id)).scalar_one()
                    conn.execute(text("SELECT pg_sleep(0.01)"))
                    conn.execute(insert(ql).values(_line(new, 1, sku, "1", str(100 + i))))
                    conn.execute(update(qt).where(qt.c.id == cur.id).values(status="superseded"))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(type(getattr(e, "orig", e)).__name__)

    threads = [threading.Thread(target=requote, args=(d,)) for d in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []  # without the gates: DeadlockDetected in most runs
    _assert_exact(engine, dialect)


def test_opposite_moves_between_two_months_never_deadlock(engine, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; lock order is PostgreSQL's concern")
    nov, dec = date(2026, 11, 20), date(2026, 12, 20)
    with engine.begin() as conn:
        _base(conn, org)
        _deal(conn, org, 1, close=nov)
        _deal(conn, org, 2, close=dec)
        _quote(conn, 2, 2, 1, "draft", "CNY", [("A", "1", "100")])
    start = threading.Barrier(2)
    errors: list[str] = []

    def flip(deal: int, first: date, second: date) -> None:
        start.wait()
        for i in range(150):
            try:
                with engine.begin() as conn:
                    conn.execute(update(o).where(o.c.id == deal)
                                 .values(expected_close_date=second if i % 2 == 0 else first))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(type(getattr(e, "orig", e)).__name__)

    threads = [threading.Thread(target=flip, args=(1, nov, dec)), threading.Thread(target=flip, args=(2, dec, nov))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    _assert_exact(engine, dialect)


def test_the_migration_fills_the_tables_from_the_rows_there(engine, db_url, org, dialect):
    from domain.db.migrate import downgrade, upgrade

    with engine.begin() as conn:
        _base(conn, org)
        _deal(conn, org, 1, currency="USD", close=None)
        _deal(conn, org, 2, owner="rep_w")
        _quote(conn, 21, 2, 1, "superseded", "CNY", [("A", "1", "1")])
        _quote(conn, 22, 2, 2, "accepted", "CNY", [("B", "3", "33.33", "7.5"), ("C", "1", "10"), ("B", "1", "1")])
        _deal(conn, org, 3, stage="lost", probability=0)
    engine.dispose()
    downgrade(db_url, "0011")
    with engine.begin() as conn:  # written while there were no triggers
        conn.execute(update(o).where(o.c.id == 1).values(amount=Decimal("42.42")))
        _quote(conn, 11, 1, 1, "draft", "USD", [("C", "2", "2.22")])
        _deal(conn, org, 4, probability=90)
    engine.dispose()
    upgrade(db_url)
    _assert_exact(engine, dialect)
    with engine.connect() as conn:
        assert conn.execute(select(D.c.opportunity_id).distinct().order_by(D.c.opportunity_id)).scalars().all() == [
            1, 2, 4]


def test_a_line_written_while_the_migration_runs_is_counted(engine, db_url, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite migrations hold the write lock; the race is PostgreSQL's")
    from domain.db.migrate import downgrade, upgrade

    with engine.begin() as conn:
        _base(conn, org)
        _deal(conn, org, 1)
        _quote(conn, 11, 1, 1, "draft", "CNY", [("A", "1", "100")])
    engine.dispose()
    downgrade(db_url, "0011")
    writer = engine.connect()
    tx = writer.begin()
    writer.execute(insert(ql).values(_line(11, 2, "B", "2", "20")))
    migration = threading.Thread(target=upgrade, args=(db_url,))
    migration.start()
    migration.join(timeout=2)  # it waits for the writer (the table lock) instead of backfilling past it
    assert migration.is_alive()
    tx.commit()
    writer.close()
    migration.join()
    _assert_exact(engine, dialect)
    with engine.connect() as conn:
        assert conn.execute(select(D.c.product_id).order_by(D.c.product_id)).scalars().all() == [P["A"], P["B"]]


def test_the_triggers_exist_at_head(db_url, engine, dialect):
    with engine.connect() as conn:
        if dialect == "postgresql":
            found = set(conn.execute(text("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                                          "WHERE NOT tgisinternal AND tgname = 'trg_product_pipeline'")).all())
            assert found == {(table, "trg_product_pipeline") for table in ("opportunities", "quotes", "quote_lines")}
        else:
            found = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                          "AND name LIKE 'trg_product_pipeline_%'")))
            assert found == {f"trg_product_pipeline_{table}_{op}" for table in ("opportunities", "quotes", "quote_lines")
                             for op in ("insert", "update", "delete")}


def test_a_generated_dataset_is_counted_exactly(empty_db_url):
    """tests/benchmarks/datagen.py writes deals, quotes and lines in bulk (PostgreSQL: COPY)."""
    from domain.db.engine import make_engine
    from tests.benchmarks import datagen

    datagen.generate(empty_db_url, datagen.Config(opportunities=200, users=40), say=lambda _m: None)
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(D.c.product_id).where(D.c.product_id != 0).limit(1)).first() is not None
            _exact(conn, engine.dialect.name)
    finally:
        engine.dispose()
