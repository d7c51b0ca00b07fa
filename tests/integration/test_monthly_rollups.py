"""The monthly rollups of migration 0019 stay equal to a recomputation from the live tables.

deal_monthly_rollup: per (month, owner, currency): deals created (count, Σ amount) by month of
created_at; won (count, Σ amount) and lost (count) by month of stage_changed_at.
receivables_monthly: Σ non-void invoices by month of issued_on; Σ allocations of confirmed payments
by month of the payment's received_on. The recomputation reads owners through contracts → deals and
payments directly (not migration 0013's copies). Checked after the real services (lead to cash, a
reassignment), every watched and unwatched hand-made write, deletes, the backfill (with a writer
waiting on PostgreSQL), and opposite concurrent reassignments on PostgreSQL.
"""
from __future__ import annotations

import threading
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, insert, select, text, update

from domain.db import tables as t
from domain.services import opportunities
from tests import builders
from tests.integration.triggers import assert_triggers_at_head
from tests.integration.race import bump_amounts_together

o, c, i, p, al = t.opportunities, t.contracts, t.invoices, t.payments, t.payment_allocations
AT = datetime(2026, 11, 20, 10, 0)
CENT = Decimal("0.01")


def _month(value) -> str:
    return str(value)[:7]


def _add(out: dict, key: tuple, values: tuple) -> None:
    old = out.get(key, (0,) * len(values))
    out[key] = tuple(a + b for a, b in zip(old, values))


def _expected(conn) -> tuple[dict, dict]:
    deals: dict = {}
    for r in conn.execute(select(o)):
        amount = Decimal(str(r.amount))
        _add(deals, (_month(r.created_at), r.owner_id, r.currency), (1, amount, 0, Decimal(0), 0))
        if r.stage in ("won", "lost"):
            won = r.stage == "won"
            _add(deals, (_month(r.stage_changed_at), r.owner_id, r.currency),
                 (0, Decimal(0), int(won), amount if won else Decimal(0), int(not won)))
    owner = dict(conn.execute(select(i.c.id, o.c.owner_id).select_from(
        i.join(c, c.c.id == i.c.contract_id).join(o, o.c.id == c.c.opportunity_id))).all())
    receivables: dict = {}
    for r in conn.execute(select(i.c.id, i.c.issued_on, i.c.currency, i.c.amount).where(i.c.status != "void")):
        _add(receivables, (_month(r.issued_on), owner[r.id], r.currency), (Decimal(str(r.amount)), Decimal(0)))
    for r in conn.execute(select(al.c.invoice_id, al.c.currency, al.c.amount, p.c.received_on)
                          .select_from(al.join(p, p.c.id == al.c.payment_id)).where(p.c.status == "confirmed")):
        _add(receivables, (_month(r.received_on), owner[r.invoice_id], r.currency), (Decimal(0), Decimal(str(r.amount))))
    return _nonzero(deals), _nonzero(receivables)


def _nonzero(rows: dict) -> dict:
    return {k: tuple(Decimal(str(x)).quantize(CENT) if not isinstance(x, int) else x for x in v)
            for k, v in rows.items() if any(v)}


def _stored(conn) -> tuple[dict, dict]:
    d, r = t.deal_monthly_rollup, t.receivables_monthly
    deals = {(x.month, x.owner_id, x.currency): (x.created_n, x.created_amount, x.won_n, x.won_amount, x.lost_n)
             for x in conn.execute(select(d))}
    receivables = {(x.month, x.owner_id, x.currency): (x.invoiced, x.collected) for x in conn.execute(select(r))}
    return _nonzero(deals), _nonzero(receivables)


def _assert_exact(engine) -> tuple[dict, dict]:
    with engine.connect() as conn:
        stored, want = _stored(conn), _expected(conn)
    assert stored[0] == want[0]
    assert stored[1] == want[1]
    return stored


def _raw_invoice(conn, contract_id: int, n: int, *, status: str = "issued", issued_on=date(2026, 11, 20),
                 amount="100.00") -> int:
    ct = conn.execute(select(c.c.account_id, c.c.currency, c.c.created_by).where(c.c.id == contract_id)).one()
    # A milestone of its own (one live invoice per milestone): a copy of the contract's first one.
    m = t.contract_milestones
    first = conn.execute(select(m).where(m.c.contract_id == contract_id).order_by(m.c.seq)).first()
    seq = conn.execute(select(m.c.seq).where(m.c.contract_id == contract_id).order_by(m.c.seq.desc())).scalars().first()
    milestone = conn.execute(insert(m).values(contract_id=contract_id, seq=seq + 1, label=f"extra {n}", pct=first.pct,
                                              amount=first.amount, trigger=first.trigger, due_date=first.due_date)
                             .returning(m.c.id)).scalar_one()
    return conn.execute(insert(i).values(
        number=f"INV-MR-{contract_id}-{n}", contract_id=contract_id, milestone_id=milestone, account_id=ct.account_id,
        currency=ct.currency, amount=Decimal(amount), status=status, issued_on=issued_on,
        due_on=date(2027, 1, 20), created_by=ct.created_by,
        void_reason="typo" if status == "void" else None).returning(i.c.id)).scalar_one()


def _raw_payment(conn, contract_id: int, n: int, *, status: str = "proposed", received_on=date(2026, 11, 19)) -> int:
    ct = conn.execute(select(c.c.account_id, c.c.currency, c.c.created_by).where(c.c.id == contract_id)).one()
    confirmed = status == "confirmed"
    return conn.execute(insert(p).values(
        number=f"PAY-MR-{contract_id}-{n}", account_id=ct.account_id, currency=ct.currency, amount=Decimal("100.00"),
        received_on=received_on, method="bank_transfer", bank_ref=f"MR{contract_id}X{n}", status=status,
        allocated=Decimal("100.00") if confirmed else 0, unapplied=0, created_by=ct.created_by, created_at=AT,
        confirmed_by=ct.created_by if confirmed else None, confirmed_at=AT if confirmed else None
    ).returning(p.c.id)).scalar_one()


def _raw_allocation(conn, payment_id: int, invoice_id: int, amount="100.00") -> int:
    currency = conn.execute(select(i.c.currency).where(i.c.id == invoice_id)).scalar_one()
    return conn.execute(insert(al).values(payment_id=payment_id, invoice_id=invoice_id, currency=currency,
                                          amount=Decimal(amount), allocated_at=AT, allocated_by=1)
                        .returning(al.c.id)).scalar_one()


def _won_with_receivables(uow_factory, org, n: int = 1) -> tuple[int, int]:
    builders.seed_catalog(uow_factory, org)
    deal = builders.make_deal(uow_factory, org, n=n)
    return deal, builders.lead_to_cash(uow_factory, org, deal)


def test_lead_to_cash_and_every_write_keep_both_rollups_exact(engine, uow_factory, org):
    won, contract = _won_with_receivables(uow_factory, org)
    deals, receivables = _assert_exact(engine)
    assert sum(v[2] for v in deals.values()) == 1  # the won deal
    assert all(v[0] > 0 and v[1] > 0 for v in receivables.values())  # invoiced, and collected (confirmed payments)
    ids = [builders.make_deal(uow_factory, org, n=i, amount=str(100000 + i * 1000)) for i in range(2, 8)]
    ids.append(builders.make_deal(uow_factory, org, n=8, owner="rep_w", region="west"))
    _assert_exact(engine)

    with engine.begin() as conn:  # every watched column of a deal, and one that is not
        conn.execute(update(o).where(o.c.id == ids[0]).values(amount=Decimal("123456.78")))
        conn.execute(update(o).where(o.c.id == ids[1]).values(created_at=datetime(2026, 9, 30, 23, 59)))
        conn.execute(update(o).where(o.c.id == ids[2]).values(stage="lost", probability=0, close_reason="price",
                                                              stage_changed_at=datetime(2026, 10, 3, 9)))
        conn.execute(update(o).where(o.c.id == ids[3]).values(owner_id=org["rep2"], currency="USD"))
        conn.execute(update(o).where(o.c.id == won).values(stage_changed_at=datetime(2026, 8, 1, 12)))
    _assert_exact(engine)
    with engine.connect() as conn:
        before = _stored(conn)
    with engine.begin() as conn:  # not watched: nothing moves
        conn.execute(update(o).where(o.c.id == ids[4]).values(next_step="call back", probability=40,
                                                              expected_close_date=date(2027, 3, 1)))
        conn.execute(update(i).where(i.c.contract_id == contract).values(dunning_level=1))
        conn.execute(update(p).values(note="checked"))
    with engine.connect() as conn:
        assert _stored(conn) == before
    with engine.begin() as conn:  # a lost deal reopened by hand, won in another month
        conn.execute(update(o).where(o.c.id == ids[2]).values(stage="won", probability=100, close_reason=None,
                                                              stage_changed_at=datetime(2026, 11, 2, 9)))
    _assert_exact(engine)

    with engine.begin() as conn:  # receivables: written by hand, every watched column
        inv = _raw_invoice(conn, contract, 1, issued_on=date(2026, 10, 31))
        late = _raw_invoice(conn, contract, 2, status="void")
        pending = _raw_payment(conn, contract, 1)
        alloc = _raw_allocation(conn, pending, inv)
    _assert_exact(engine)
    with engine.begin() as conn:
        conn.execute(update(i).where(i.c.id == inv).values(issued_on=date(2026, 12, 1), amount=Decimal("250.50")))
        conn.execute(update(p).where(p.c.id == pending).values(status="confirmed", allocated=Decimal("100.00"),
                                                                 confirmed_by=org["finance"], confirmed_at=AT))
    _assert_exact(engine)
    with engine.begin() as conn:
        conn.execute(update(p).where(p.c.id == pending).values(received_on=date(2026, 9, 15)))
        conn.execute(update(al).where(al.c.id == alloc).values(amount=Decimal("60.00")))
        conn.execute(update(i).where(i.c.id == inv).values(status="void", void_reason="duplicate"))
    _assert_exact(engine)
    with engine.begin() as conn:  # direct writes to 0013's copies are put back; the rollups follow
        conn.execute(update(i).values(owner_id=org["admin"]))
        conn.execute(update(al).values(owner_id=org["admin"], collected_on=date(2000, 1, 1)))
    _assert_exact(engine)

    with engine.begin() as conn:  # deletes
        conn.execute(delete(al).where(al.c.id == alloc))
        conn.execute(delete(i).where(i.c.id.in_([inv, late])))
        doomed = ids[6]
        conn.execute(delete(t.stage_history).where(t.stage_history.c.opportunity_id == doomed))
        conn.execute(delete(t.opportunity_members).where(t.opportunity_members.c.opportunity_id == doomed))
        conn.execute(update(t.leads).where(t.leads.c.opportunity_id == doomed).values(opportunity_id=None,
                                                                                       status="qualified"))
        conn.execute(delete(o).where(o.c.id == doomed))
    _assert_exact(engine)


def test_a_reassigned_deal_moves_its_rows(engine, uow_factory, org):
    open_deal, open_contract = builders.to_contract_review(uow_factory, org, n=2)
    with engine.begin() as conn:
        invoice = _raw_invoice(conn, open_contract, 1)
        _raw_allocation(conn, _raw_payment(conn, open_contract, 1, status="confirmed"), invoice)
    _assert_exact(engine)

    with uow_factory() as uow:  # the real service
        opportunities.assign_iron_triangle(open_deal, ar_id=org["rep2"], actor=org.actor("manager"), uow=uow)
        uow.commit()
    deals, receivables = _assert_exact(engine)
    assert {k[1] for k in receivables} == {org["rep2"]}
    assert org["rep2"] in {k[1] for k in deals}

    won, _ = _won_with_receivables(uow_factory, org, n=3)  # a won deal fixed by hand
    with engine.begin() as conn:
        conn.execute(update(o).where(o.c.id == won).values(owner_id=org["rep_w"]))
    deals, receivables = _assert_exact(engine)
    assert {k[1] for k in receivables} == {org["rep2"], org["rep_w"]}
    assert [v for k, v in deals.items() if k[1] == org["rep_w"] and v[2]] != []


def test_the_backfill_counts_rows_written_before_and_during_the_migration(engine, db_url, uow_factory, org, dialect):
    from domain.db.migrate import downgrade, upgrade

    won, contract = _won_with_receivables(uow_factory, org)
    builders.make_deal(uow_factory, org, n=2, owner="rep_w", region="west")
    engine.dispose()
    downgrade(db_url, "0018")
    with engine.begin() as conn:  # at 0018 there is no rollup to keep
        conn.execute(update(o).where(o.c.id == won).values(owner_id=org["rep2"]))
        _raw_allocation(conn, _raw_payment(conn, contract, 1, status="confirmed"), _raw_invoice(conn, contract, 1))
    if dialect == "postgresql":
        # A writer still inside its transaction when the migration starts: the migration waits for it
        # (the table lock) instead of backfilling past its rows.
        writer = engine.connect()
        tx = writer.begin()
        _raw_invoice(writer, contract, 2, issued_on=date(2026, 7, 7))
        writer.execute(text("INSERT INTO opportunities (name, account_id, owner_id, amount, currency, region, "
                            "expected_close_date, competitors, stage, probability, created_at, updated_at, "
                            "stage_changed_at, version) SELECT name || ' copy', account_id, owner_id, amount, currency, "
                            "region, expected_close_date, competitors, stage, probability, created_at, updated_at, "
                            "stage_changed_at, version FROM opportunities WHERE id = :id"), {"id": won})
        migration = threading.Thread(target=upgrade, args=(db_url, "0019"))
        migration.start()
        migration.join(timeout=2)
        assert migration.is_alive()
        tx.commit()
        writer.close()
        migration.join()
    else:
        upgrade(db_url, "0019")
    engine.dispose()
    deals, receivables = _assert_exact(engine)
    assert sum(v[2] for v in deals.values()) == (2 if dialect == "postgresql" else 1)
    assert {k[1] for k in receivables} == {org["rep2"]}


def test_opposite_reassignments_never_deadlock(engine, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; lock order is PostgreSQL's concern")
    a, contract_a = _won_with_receivables(uow_factory, org, n=1)
    b, contract_b = _won_with_receivables(uow_factory, org, n=2)
    with engine.begin() as conn:
        conn.execute(update(o).where(o.c.id == b).values(owner_id=org["rep2"]))
        # Crossing months: a's invoices issued in December and its money collected in October, b's the other
        # way round. A reassignment moves the collected rows first (one statement per invoice), the issued
        # rows last: without the owner gates the two orders cross and deadlock.
        for contract, issued, received in ((contract_a, date(2026, 12, 1), date(2026, 10, 5)),
                                           (contract_b, date(2026, 10, 1), date(2026, 12, 5))):
            conn.execute(update(i).where(i.c.contract_id == contract).values(issued_on=issued,
                                                                               due_on=date(2027, 1, 31)))
            paid = select(al.c.payment_id).join(i, i.c.id == al.c.invoice_id).where(i.c.contract_id == contract)
            conn.execute(update(p).where(p.c.id.in_(paid)).values(received_on=received))
    _assert_exact(engine)
    start = threading.Barrier(2)
    errors: list[str] = []

    def flip(deal: int, first: int, second: int) -> None:
        start.wait()
        for n in range(60):
            try:
                with engine.begin() as conn:
                    conn.execute(update(o).where(o.c.id == deal).values(owner_id=second if n % 2 == 0 else first))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(type(getattr(e, "orig", e)).__name__)

    threads = [threading.Thread(target=flip, args=(a, org["rep"], org["rep2"])),
               threading.Thread(target=flip, args=(b, org["rep2"], org["rep"]))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    _assert_exact(engine)


def test_concurrent_writers_of_one_rollup_row_keep_it_exact(engine, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; the row lock race is PostgreSQL's")
    ids = [builders.make_deal(uow_factory, org, n=k, amount="100000") for k in range(1, 7)]
    errors = bump_amounts_together(engine, ids)
    assert errors == []
    _assert_exact(engine)


SQLITE_TRIGGERS = {
    table: {f"trg_monthly_rollup_{short}_{event}" for event in ("insert", "update", "delete")}
    for short, table in (("deal", "opportunities"), ("invoice", "invoices"), ("allocation", "payment_allocations"))
}
PG_TRIGGERS = {table: {f"trg_monthly_rollup_{event}" for event in ("insert", "update", "delete")}
               for table in ("opportunities", "invoices", "payment_allocations")}


def test_the_monthly_rollup_triggers_exist_at_head(db_url):
    """A later migration that rebuilds one of these tables on SQLite drops its triggers: it must make them again."""
    assert_triggers_at_head(db_url, PG_TRIGGERS, SQLITE_TRIGGERS)
