"""The receivables copies of migration 0013 stay equal to what they copy, whatever writes the rows.

invoices.owner_id = the owner of the deal behind the invoice's contract; payment_allocations.owner_id
= its invoice's; payment_allocations.collected_on = its payment's received_on while the payment is
confirmed, else NULL. Checked after the real services (issue, pay, propose and confirm, reassign),
after hand-made writes of every column they depend on, across the migration's backfill, and with
concurrent writers on PostgreSQL.
"""
from __future__ import annotations

import threading
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from domain.db import tables as t
from domain.services import opportunities
from tests import builders
from tests.integration.triggers import assert_triggers_at_head

i, c, o, p, al = t.invoices, t.contracts, t.opportunities, t.payments, t.payment_allocations
AT = datetime(2026, 11, 20, 10, 0)


def _truth(conn) -> tuple[dict, dict]:
    """What the copies must hold, recomputed by joins."""
    owners = dict(conn.execute(select(i.c.id, o.c.owner_id).select_from(
        i.join(c, c.c.id == i.c.contract_id).join(o, o.c.id == c.c.opportunity_id))).all())
    allocations = {r.id: (owners[r.invoice_id], r.received_on if r.status == "confirmed" else None)
                   for r in conn.execute(select(al.c.id, al.c.invoice_id, p.c.status, p.c.received_on)
                                         .select_from(al.join(p, p.c.id == al.c.payment_id)))}
    return owners, allocations


def _stored(conn) -> tuple[dict, dict]:
    return (dict(conn.execute(select(i.c.id, i.c.owner_id)).all()),
            {r.id: (r.owner_id, r.collected_on) for r in conn.execute(select(al.c.id, al.c.owner_id, al.c.collected_on))})


def _assert_exact(engine) -> tuple[dict, dict]:
    with engine.connect() as conn:
        stored, truth = _stored(conn), _truth(conn)
    assert stored == truth
    assert None not in stored[0].values()
    return stored


def _won_with_receivables(uow_factory, org) -> tuple[int, int]:
    """A deal taken from lead to cash by the real services: invoices issued on their triggers, a payment
    recorded, one proposed by the AR then confirmed, one overpaid. Returns (deal, contract)."""
    builders.seed_catalog(uow_factory, org)
    deal = builders.make_deal(uow_factory, org, n=1)
    return deal, builders.lead_to_cash(uow_factory, org, deal)


def _raw_invoice(conn, contract_id: int, n: int, *, status: str = "void") -> int:
    """An invoice written by hand (void by default: any number of them may share a milestone)."""
    ct = conn.execute(select(c.c.account_id, c.c.currency, c.c.created_by).where(c.c.id == contract_id)).one()
    milestone = conn.execute(select(t.contract_milestones.c.id).where(
        t.contract_milestones.c.contract_id == contract_id).order_by(t.contract_milestones.c.seq)).scalars().first()
    return conn.execute(insert(i).values(
        number=f"INV-RAW-{contract_id}-{n}", contract_id=contract_id, milestone_id=milestone, account_id=ct.account_id,
        currency=ct.currency, amount=Decimal("100.00"), status=status, issued_on=date(2026, 11, 20),
        due_on=date(2026, 12, 20), created_by=ct.created_by,
        void_reason="typo" if status == "void" else None).returning(i.c.id)).scalar_one()


def _raw_payment(conn, contract_id: int, n: int, *, status: str = "proposed") -> int:
    ct = conn.execute(select(c.c.account_id, c.c.currency, c.c.created_by).where(c.c.id == contract_id)).one()
    confirmed = status == "confirmed"
    return conn.execute(insert(p).values(
        number=f"PAY-RAW-{contract_id}-{n}", account_id=ct.account_id, currency=ct.currency, amount=Decimal("100.00"),
        received_on=date(2026, 11, 19), method="bank_transfer", bank_ref=f"RAW{contract_id}X{n}", status=status,
        allocated=Decimal("100.00") if confirmed else 0, unapplied=0, created_by=ct.created_by, created_at=AT,
        confirmed_by=ct.created_by if confirmed else None, confirmed_at=AT if confirmed else None
    ).returning(p.c.id)).scalar_one()


def _raw_allocation(conn, payment_id: int, invoice_id: int) -> int:
    currency = conn.execute(select(i.c.currency).where(i.c.id == invoice_id)).scalar_one()
    return conn.execute(insert(al).values(payment_id=payment_id, invoice_id=invoice_id, currency=currency,
                                          amount=Decimal("100.00"), allocated_at=AT, allocated_by=1)
                        .returning(al.c.id)).scalar_one()


def test_invoices_and_allocations_carry_the_deal_owner_through_lead_to_cash(engine, uow_factory, org):
    deal, contract = _won_with_receivables(uow_factory, org)
    owners, allocations = _assert_exact(engine)
    with engine.connect() as conn:
        mine = conn.execute(select(i.c.id).where(i.c.contract_id == contract)).scalars().all()
        received = set(conn.execute(select(p.c.received_on).where(p.c.status == "confirmed")).scalars())
    assert len(mine) == 3 and {owners[x] for x in mine} == {org["rep"]}
    assert len(allocations) >= 3  # the recorded, the proposed then confirmed, the overpaying payment
    assert {a for a, _ in allocations.values()} == {org["rep"]}
    assert {d for _, d in allocations.values()} == received


def test_a_reassigned_deal_takes_its_receivables_along(engine, uow_factory, org):
    # The real service reassigns open deals only: a deal in negotiate with its contract under review,
    # given (by hand: the domain invoices signed contracts only) an invoice and an allocation.
    open_deal, open_contract = builders.to_contract_review(uow_factory, org, n=2)
    with engine.begin() as conn:
        invoice = _raw_invoice(conn, open_contract, 1, status="issued")
        allocation = _raw_allocation(conn, _raw_payment(conn, open_contract, 1), invoice)
    assert _assert_exact(engine)[1][allocation] == (org["rep"], None)  # proposed: not collected yet

    with uow_factory() as uow:
        opportunities.assign_iron_triangle(open_deal, ar_id=org["rep2"], actor=org.actor("manager"), uow=uow)
        uow.commit()
    owners, allocations = _assert_exact(engine)
    assert owners[invoice] == org["rep2"] and allocations[allocation] == (org["rep2"], None)

    # A won deal has no service to reassign it; a hand-made fix of its owner moves everything too.
    won, contract = _won_with_receivables(uow_factory, org)
    with engine.begin() as conn:
        conn.execute(update(o).where(o.c.id == won).values(owner_id=org["rep_w"]))
    owners, allocations = _assert_exact(engine)
    with engine.connect() as conn:
        mine = set(conn.execute(select(i.c.id).where(i.c.contract_id == contract)).scalars())
    assert {owners[x] for x in mine} == {org["rep_w"]}
    assert {a for k, (a, _) in allocations.items() if k != allocation} == {org["rep_w"]}


def test_every_column_the_copies_depend_on_moves_them_and_direct_writes_are_put_back(engine, uow_factory, org):
    won, contract = _won_with_receivables(uow_factory, org)
    other = builders.make_deal(uow_factory, org, n=3, owner="rep_w", region="west")  # no contract yet
    with engine.begin() as conn:
        # Rows written by hand, not through the ORM: computed on insert.
        late = _raw_invoice(conn, contract, 1)
        pending = _raw_payment(conn, contract, 2)
        allocation = _raw_allocation(conn, pending, late)
    assert _assert_exact(engine)[1][allocation] == (org["rep"], None)

    with engine.begin() as conn:  # the payment confirmed: its money counts from its received_on
        conn.execute(update(p).where(p.c.id == pending).values(status="confirmed", allocated=Decimal("100.00"),
                                                                 confirmed_by=org["finance"], confirmed_at=AT))
    assert _assert_exact(engine)[1][allocation] == (org["rep"], date(2026, 11, 19))
    with engine.begin() as conn:  # received on another day
        conn.execute(update(p).where(p.c.id == pending).values(received_on=date(2026, 10, 31)))
    assert _assert_exact(engine)[1][allocation] == (org["rep"], date(2026, 10, 31))

    with engine.begin() as conn:  # the contract moved to another deal (and owner)
        conn.execute(update(c).where(c.c.id == contract).values(opportunity_id=other))
    owners, allocations = _assert_exact(engine)
    assert owners[late] == org["rep_w"] and allocations[allocation][0] == org["rep_w"]
    with engine.begin() as conn:  # and back; the other deal changes hands meanwhile
        conn.execute(update(c).where(c.c.id == contract).values(opportunity_id=won))
        conn.execute(update(o).where(o.c.id == other).values(owner_id=org["rep2"]))
    owners, allocations = _assert_exact(engine)
    assert owners[late] == org["rep"]

    second_deal = builders.make_deal(uow_factory, org, n=4)
    second = builders.lead_to_cash(uow_factory, org, second_deal)
    with engine.begin() as conn:  # an invoice moved to another contract (same currency), of another owner
        conn.execute(update(o).where(o.c.id == second_deal).values(owner_id=org["rep2"]))
        conn.execute(update(i).where(i.c.id == late).values(contract_id=second))
    owners, allocations = _assert_exact(engine)
    assert owners[late] == org["rep2"] and allocations[allocation][0] == org["rep2"]

    with engine.begin() as conn:  # direct writes to the copies are put back
        conn.execute(update(i).values(owner_id=org["admin"]))
        conn.execute(update(al).values(owner_id=org["admin"], collected_on=date(2000, 1, 1)))
    owners, allocations = _assert_exact(engine)
    assert org["admin"] not in owners.values()

    with engine.begin() as conn:  # an allocation moved to another invoice and payment
        fresh = _raw_invoice(conn, contract, 3, status="void")
        conn.execute(update(al).where(al.c.id == allocation).values(invoice_id=fresh))
    _assert_exact(engine)


def test_the_backfill_fills_rows_written_before_the_migration(engine, db_url, uow_factory, org, dialect):
    from domain.db.migrate import downgrade, upgrade

    won, contract = _won_with_receivables(uow_factory, org)
    engine.dispose()
    downgrade(db_url, "0012")
    with engine.begin() as conn:  # at 0012 there is no copy to keep: the deal changes hands, a payment is proposed
        conn.execute(update(o).where(o.c.id == won).values(owner_id=org["rep2"]))
        _raw_allocation(conn, _raw_payment(conn, contract, 1), _raw_invoice(conn, contract, 1))
    if dialect == "postgresql":
        # A writer still inside its transaction when the migration starts: the migration waits for it
        # (the table lock) instead of backfilling past its rows.
        writer = engine.connect()
        tx = writer.begin()
        _raw_invoice(writer, contract, 2)
        migration = threading.Thread(target=upgrade, args=(db_url,))
        migration.start()
        migration.join(timeout=2)
        assert migration.is_alive()
        tx.commit()
        writer.close()
        migration.join()
    else:
        upgrade(db_url)
    engine.dispose()
    owners, allocations = _assert_exact(engine)
    assert set(owners.values()) == {org["rep2"]}
    assert sum(1 for _, d in allocations.values() if d is None) == 1  # the proposed payment's


def _blocked(target) -> tuple[threading.Thread, list]:
    errors: list = []

    def run() -> None:
        try:
            target()
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    th = threading.Thread(target=run)
    th.start()
    th.join(timeout=1.5)
    return th, errors


def test_concurrent_reassignment_invoicing_and_allocation_agree(engine, uow_factory, org, dialect):
    if dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; the race is PostgreSQL's")
    won, contract = _won_with_receivables(uow_factory, org)

    # The owner changes first: an invoice written meanwhile waits, then takes the new owner.
    reassign = engine.connect()
    tx = reassign.begin()
    reassign.execute(update(o).where(o.c.id == won).values(owner_id=org["rep2"]))

    def invoice_it(n: int) -> None:
        with engine.begin() as conn:
            _raw_invoice(conn, contract, n)

    th, errors = _blocked(lambda: invoice_it(1))
    assert th.is_alive()  # waiting on the contract the reassignment holds
    tx.commit()
    reassign.close()
    th.join()
    assert errors == []
    assert set(_assert_exact(engine)[0].values()) == {org["rep2"]}

    # An invoice is written first: the reassignment waits for it, then moves it too.
    writer = engine.connect()
    tx = writer.begin()
    _raw_invoice(writer, contract, 2)

    def reassign_to(owner_id: int) -> None:
        with engine.begin() as conn:
            conn.execute(update(o).where(o.c.id == won).values(owner_id=owner_id))

    th, errors = _blocked(lambda: reassign_to(org["rep_w"]))
    assert th.is_alive()
    tx.commit()
    writer.close()
    th.join()
    assert errors == []
    assert set(_assert_exact(engine)[0].values()) == {org["rep_w"]}

    # The same two orders between a reassignment and a payment allocated to one of the deal's invoices.
    with engine.begin() as conn:
        invoice = conn.execute(select(i.c.id).where(i.c.contract_id == contract).order_by(i.c.id)).scalars().first()
        payments = [_raw_payment(conn, contract, n, status="confirmed") for n in (4, 5)]

    def allocate(payment: int) -> None:
        with engine.begin() as conn:
            _raw_allocation(conn, payment, invoice)

    for payment, new_owner, allocation_first in ((payments[0], org["rep"], False), (payments[1], org["rep2"], True)):
        first = engine.connect()
        tx = first.begin()
        if allocation_first:
            _raw_allocation(first, payment, invoice)
            th, errors = _blocked(lambda: reassign_to(new_owner))
        else:
            first.execute(update(o).where(o.c.id == won).values(owner_id=new_owner))
            th, errors = _blocked(lambda: allocate(payment))
        assert th.is_alive()
        tx.commit()
        first.close()
        th.join()
        assert errors == []
        owners, allocations = _assert_exact(engine)
        assert set(owners.values()) == {new_owner} and {a for a, _ in allocations.values()} == {new_owner}


SQLITE_TRIGGERS = {
    "invoices": {"trg_invoices_owner_insert", "trg_invoices_owner_update"},
    "payment_allocations": {"trg_payment_allocations_owner_insert", "trg_payment_allocations_owner_update"},
    "opportunities": {"trg_opportunities_receivables_owner"},
    "contracts": {"trg_contracts_receivables_owner"},
    "payments": {"trg_payments_collected_on"},
}
PG_TRIGGERS = {
    "invoices": {"trg_invoices_owner", "trg_invoices_owner_moved"},
    "payment_allocations": {"trg_payment_allocations_owner"},
    "opportunities": {"trg_opportunities_receivables_owner"},
    "contracts": {"trg_contracts_receivables_owner"},
    "payments": {"trg_payments_collected_on"},
}


def test_the_receivables_triggers_exist_at_head(db_url):
    """A later migration that rebuilds one of these tables on SQLite drops its triggers: it must make them again."""
    assert_triggers_at_head(db_url, PG_TRIGGERS, SQLITE_TRIGGERS)
