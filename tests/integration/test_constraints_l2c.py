"""The database itself refuses contract-execution rows the code must never write: money beyond the
contract or the invoice, statuses that contradict the money, payments whose parts do not add up,
allocations across currencies, a second live invoice per milestone, a bank reference twice, a
second contract per deal, a second pending change order per contract.

Same style as test_constraints.py: each rule is broken with raw SQL (or a Core statement) that
bypasses every service, the error must name the constraint (PostgreSQL names every constraint;
SQLite names CHECKs but, for UNIQUE, the columns, and says nothing about which FOREIGN KEY), and
the valid counterpart of the same statement runs (rolled back), so a test cannot pass because the
SQL was wrong for another reason. Then the same violation goes through SqlAlchemyUnitOfWork, which
must turn it into the domain's Conflict: the friendly message of domain.db.uow.FRIENDLY where one
exists for the constraint the database reported, otherwise the generic one, never the row's data.

The books every test starts from (a signed contract, its advance invoice, a payment on it) are
built once per backend through the services and copied per test (see `db_url` below).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from domain.db import tables as t
from domain.db.engine import make_engine
from domain.db.uow import FRIENDLY, SqlAlchemyUnitOfWork, session_factory, utcnow
from domain.errors import Conflict
from domain.services import contracts, payments
from tests import builders
from tests.integration.conftest import BACKENDS, _require_pg

D = Decimal
NOW = datetime(2026, 1, 5, 9, 30)
GENERIC = "The change breaks a database rule; nothing was saved"
SQLITE_FK = "FOREIGN KEY constraint failed"


# ------------------------------------------------------------------------------ helpers


def rejects(engine, stmt, expect: str | tuple | dict, **params) -> str:
    """`stmt` (SQL text or a Core statement) fails with an IntegrityError naming `expect` (per
    dialect when a dict; any one of them when a tuple)."""
    fragment = expect[engine.dialect.name] if isinstance(expect, dict) else expect
    fragments = fragment if isinstance(fragment, tuple) else (fragment,)
    with pytest.raises(IntegrityError) as info:
        with engine.begin() as conn:
            conn.execute(text(stmt) if isinstance(stmt, str) else stmt, params)
    message = str(info.value.orig)
    assert any(f in message for f in fragments), f"expected {fragments!r} in {message!r}"
    return message


def accepts(engine, stmt, **params) -> None:
    """`stmt` succeeds; rolled back so the fixture data stays as it was."""
    with engine.connect() as conn:
        conn.execute(text(stmt) if isinstance(stmt, str) else stmt, params)
        conn.rollback()


def unique(pg_name: str, sqlite_columns: str) -> dict[str, str]:
    return {"postgresql": pg_name, "sqlite": f"UNIQUE constraint failed: {sqlite_columns}"}


def fk(pg_name: str) -> dict[str, str]:
    return {"postgresql": pg_name, "sqlite": SQLITE_FK}


def conflict(uow_factory, stmt, **params) -> Conflict:
    """The same violation inside a unit of work: the caller gets Conflict, never IntegrityError."""
    with pytest.raises(Conflict) as info:
        with uow_factory() as uow:
            uow.session.execute(text(stmt) if isinstance(stmt, str) else stmt, params)
            uow.commit()
    assert isinstance(info.value.__cause__, IntegrityError)
    return info.value


def assert_friendly(err: Conflict, name: str, dialect: str) -> None:
    """FRIENDLY[name] on both databases: SQLite reports a UNIQUE violation by its columns
    ("UNIQUE constraint failed: payments.bank_ref"), which as_conflict maps back to the rule's name."""
    assert (err.message, err.details) == (FRIENDLY[name], {"constraint": name}), err.to_dict()


def assert_generic(err: Conflict, constraint: str | dict[str, str | None] | None, dialect: str) -> None:
    """No friendly message for this rule: the generic one, naming the constraint in the details
    (SQLite does not say which FOREIGN KEY failed: None there)."""
    name = constraint.get(dialect) if isinstance(constraint, dict) else constraint
    assert (err.message, err.details) == (GENERIC, {"constraint": name}), err.to_dict()


def call(uow_factory, fn, *args, **kwargs):
    with uow_factory() as uow:
        result = fn(*args, uow=uow, **kwargs)
        uow.commit()
    return result


@dataclass
class Books:
    opp: int
    account: int
    quote: int
    contract: int
    milestones: list[int]  # ids, by seq: [advance (invoiced), delivery, final]
    invoice: int  # the advance: 150,000, partially paid
    payment: int  # 100,000 confirmed, all of it on the advance


def _make_books(uow_factory, org) -> Books:
    """A signed 500,000 contract: the advance invoice (150,000) carries a 100,000 payment."""
    opp = builders.make_deal(uow_factory, org)
    builders.full_cycle(uow_factory, org, opp)
    with uow_factory() as uow:
        contract = uow.contracts.for_opportunity(opp)
        cid, account, quote = contract.id, contract.account_id, contract.quote_id
        milestones = [m.id for m in contract.milestones]
        (invoice,) = [i.id for i in uow.invoices.for_contract(cid)]
    pay = call(uow_factory, payments.record_payment, {
        "contract_id": cid, "amount": "100000", "currency": "CNY", "received_on": utcnow().date().isoformat(),
        "bank_ref": "BOC-CONSTRAINT-1"}, actor=org.actor("finance"))
    assert (pay.allocated, pay.unapplied) == (D("100000.00"), 0)
    with uow_factory() as uow:
        contract, invoice_row = uow.contracts.get(cid), uow.invoices.get(invoice)
        assert (contract.value, contract.invoiced_total, contract.paid_total) == (
            D("500000.00"), D("150000.00"), D("100000.00"))
        assert (invoice_row.amount, invoice_row.paid_amount, invoice_row.status) == (
            D("150000.00"), D("100000.00"), "partially_paid")
    return Books(opp=opp, account=account, quote=quote, contract=cid, milestones=milestones, invoice=invoice,
                 payment=pay.id)


def _seed(url: str) -> tuple[builders.Org, Books]:
    eng = make_engine(url)
    try:
        sf = session_factory(eng)

        def factory(**kwargs) -> SqlAlchemyUnitOfWork:
            return SqlAlchemyUnitOfWork(sf, **kwargs)

        org = builders.build_org(factory)
        return org, _make_books(factory, org)
    finally:
        eng.dispose()  # nobody stays connected: the database is a template from now on


@pytest.fixture(scope="module")
def seeded_templates() -> Iterator[dict]:
    """Per backend, a database holding the organisation and the books, built once for the module
    (through the services, ~0.5 s) and then copied for every test like conftest copies the
    migrated template (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL)."""
    made: dict[str, tuple] = {}
    yield made
    for source, _org, _books, server in made.values():
        if server is not None:
            server.drop(source)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path, tmp_path_factory, sqlite_template, seeded_templates) -> Iterator[str]:
    """Overrides conftest's db_url for this module: a copy of the seeded template, not an empty database."""
    if request.param == "sqlite":
        if "sqlite" not in seeded_templates:
            source = tmp_path_factory.mktemp("books") / "books.db"
            shutil.copyfile(sqlite_template, source)
            seeded_templates["sqlite"] = (source, *_seed(f"sqlite:///{source}"), None)
        path = tmp_path / "ltc.db"
        shutil.copyfile(seeded_templates["sqlite"][0], path)
        yield f"sqlite:///{path}"
        return
    server = _require_pg(request)
    if "postgresql" not in seeded_templates:
        source = server.new_name("books")
        url = server.create(source, template=server.migrated_template())
        seeded_templates["postgresql"] = (source, *_seed(url), server)
    name = server.new_name("db")
    url = server.create(name, template=seeded_templates["postgresql"][0])
    try:
        yield url
    finally:
        server.drop(name)


@pytest.fixture
def org(dialect, seeded_templates) -> builders.Org:
    return seeded_templates[dialect][1]


@pytest.fixture
def books(dialect, seeded_templates) -> Books:
    return seeded_templates[dialect][2]


# ------------------------------------------------------------------------------ contracts: paid ≤ invoiced ≤ value

CONTRACT_TOTALS = "ck_contracts_paid_le_invoiced_le_value"
UPDATE_CONTRACT = "UPDATE contracts SET {} WHERE id = :id"


def test_db_keeps_paid_le_invoiced_le_contract_value(engine, db, uow_factory, books, dialect):
    rejects(engine, UPDATE_CONTRACT.format("paid_total = invoiced_total + 0.01"), CONTRACT_TOTALS, id=books.contract)
    rejects(engine, UPDATE_CONTRACT.format("invoiced_total = value + 0.01"), CONTRACT_TOTALS, id=books.contract)
    rejects(engine, UPDATE_CONTRACT.format("paid_total = -0.01"), CONTRACT_TOTALS, id=books.contract)
    # Core, as a careless repository would write it: collect more than was invoiced.
    rejects(engine, update(t.contracts).where(t.contracts.c.id == books.contract)
            .values(paid_total=t.contracts.c.paid_total + D("50000.01")), CONTRACT_TOTALS)
    rejects(engine, update(t.contracts).where(t.contracts.c.id == books.contract)
            .values(value=t.contracts.c.invoiced_total - 1), CONTRACT_TOTALS)
    # The limits themselves are allowed.
    accepts(engine, UPDATE_CONTRACT.format("paid_total = invoiced_total"), id=books.contract)
    accepts(engine, UPDATE_CONTRACT.format("invoiced_total = value"), id=books.contract)
    accepts(engine, update(t.contracts).where(t.contracts.c.id == books.contract)
            .values(paid_total=t.contracts.c.paid_total + D("50000")))

    # Through the unit of work: raw SQL in its session, ...
    err = conflict(uow_factory, UPDATE_CONTRACT.format("paid_total = invoiced_total + 1"), id=books.contract)
    assert_friendly(err, CONTRACT_TOTALS, dialect)
    # Through the ORM: the flush at commit hits the CHECK.
    with pytest.raises(Conflict) as info:
        with uow_factory() as uow:
            contract = uow.contracts.get(books.contract)
            contract.invoiced_total = contract.value + 1
            uow.commit()
    assert_friendly(info.value, CONTRACT_TOTALS, dialect)
    # ... and an explicit uow.flush() in the middle of a use case.
    with pytest.raises(Conflict) as info:
        with uow_factory() as uow:
            uow.contracts.get(books.contract).paid_total += D("50000.01")
            uow.flush()
    assert_friendly(info.value, CONTRACT_TOTALS, dialect)
    row = db.rows(t.contracts, t.contracts.c.id == books.contract)[0]
    assert (row.invoiced_total, row.paid_total) == (D("150000.00"), D("100000.00"))  # nothing was saved


# ------------------------------------------------------------------------------ invoices

UPDATE_INVOICE = "UPDATE invoices SET {} WHERE id = :id"
# Paying beyond the amount breaks two CHECKs; PostgreSQL reports paid_le_amount, SQLite the other.
OVERPAID = {"postgresql": "ck_invoices_paid_le_amount", "sqlite": "ck_invoices_status_matches_paid"}
STATUS = "ck_invoices_status_matches_paid"


def test_db_refuses_to_pay_an_invoice_beyond_its_amount(engine, uow_factory, books, dialect):
    rejects(engine, UPDATE_INVOICE.format("paid_amount = amount + 0.01"), OVERPAID, id=books.invoice)
    rejects(engine, UPDATE_INVOICE.format("paid_amount = amount + 0.01, status = 'paid'"), OVERPAID, id=books.invoice)
    rejects(engine, UPDATE_INVOICE.format("paid_amount = -1, status = 'partially_paid'"),
            {"postgresql": "ck_invoices_paid_le_amount", "sqlite": STATUS}, id=books.invoice)
    accepts(engine, UPDATE_INVOICE.format("paid_amount = amount, status = 'paid'"), id=books.invoice)
    err = conflict(uow_factory, UPDATE_INVOICE.format("paid_amount = amount + 1, status = 'paid'"), id=books.invoice)
    if dialect == "postgresql":
        assert_friendly(err, "ck_invoices_paid_le_amount", dialect)
    else:  # SQLite reports the status CHECK, which has no friendly message
        assert_generic(err, STATUS, dialect)


def test_db_refuses_an_invoice_status_that_contradicts_its_money(engine, db, uow_factory, books, dialect):
    for change in ("status = 'paid'",  # 100,000 of 150,000 is not paid
                   "status = 'issued'",  # issued means nothing paid yet
                   "status = 'partially_paid', paid_amount = 0",
                   "status = 'partially_paid', paid_amount = amount",
                   "status = 'void', void_reason = 'typo'",  # money on it: never void
                   "status = 'void', paid_amount = 0, void_reason = NULL"):  # void needs a reason
        rejects(engine, UPDATE_INVOICE.format(change), STATUS, id=books.invoice)
    for change in ("status = 'paid', paid_amount = amount",
                   "status = 'issued', paid_amount = 0",
                   "status = 'void', paid_amount = 0, void_reason = 'wrong entity'"):
        accepts(engine, UPDATE_INVOICE.format(change), id=books.invoice)
    with pytest.raises(Conflict) as info:  # the ORM way: a status set by hand
        with uow_factory() as uow:
            uow.invoices.get(books.invoice).status = "paid"
            uow.commit()
    assert_generic(info.value, STATUS, dialect)
    row = db.rows(t.invoices, t.invoices.c.id == books.invoice)[0]
    assert (row.paid_amount, row.status) == (D("100000.00"), "partially_paid")


# ------------------------------------------------------------------------------ payments

PARTS = "ck_payments_parts_add_up"
UPDATE_PAYMENT = "UPDATE payments SET {} WHERE id = :id"


def test_db_refuses_a_confirmed_payment_whose_parts_do_not_add_up(engine, db, uow_factory, books, dialect):
    for change in ("unapplied = unapplied + 0.01",  # money out of nowhere
                   "allocated = allocated - 0.01",  # money lost
                   "amount = amount + 1",
                   "status = 'proposed'",  # a proposed payment has allocated nothing yet
                   "status = 'rejected'"):
        rejects(engine, UPDATE_PAYMENT.format(change), PARTS, id=books.payment)
    rejects(engine, UPDATE_PAYMENT.format("allocated = allocated + 1, unapplied = -1"),
            "ck_payments_parts_positive", id=books.payment)
    accepts(engine, UPDATE_PAYMENT.format("allocated = allocated - 1, unapplied = unapplied + 1"), id=books.payment)
    accepts(engine, UPDATE_PAYMENT.format("amount = amount + 1, unapplied = unapplied + 1"), id=books.payment)

    err = conflict(uow_factory, UPDATE_PAYMENT.format("unapplied = unapplied + 5"), id=books.payment)
    assert_generic(err, PARTS, dialect)
    with pytest.raises(Conflict) as info:
        with uow_factory() as uow:
            uow.payments.get(books.payment).allocated -= 1
            uow.commit()
    assert_generic(info.value, PARTS, dialect)
    assert "BOC-CONSTRAINT" not in info.value.message  # the row's data stays in the logs
    row = db.rows(t.payments, t.payments.c.id == books.payment)[0]
    assert (row.allocated, row.unapplied) == (D("100000.00"), 0)


INSERT_PAYMENT = (
    "INSERT INTO payments (number, account_id, currency, amount, received_on, method, bank_ref, status, "
    "allocated, unapplied, created_by, created_at) VALUES (:number, :account, :currency, 100, :on, 'bank_transfer', "
    ":ref, 'proposed', 0, 0, :by, :at)"
)


def test_db_refuses_a_duplicate_bank_reference(engine, uow_factory, books, org, dialect):
    args = dict(number="PAY-X-1", account=books.account, currency="CNY", on=NOW.date(), by=org["finance"], at=NOW)
    rejects(engine, INSERT_PAYMENT, unique("uq_payments_bank_ref", "payments.bank_ref"), ref="BOC-CONSTRAINT-1",
            **args)
    accepts(engine, INSERT_PAYMENT, ref="BOC-CONSTRAINT-2", **args)
    err = conflict(uow_factory, INSERT_PAYMENT, ref="BOC-CONSTRAINT-1", **args)
    assert_friendly(err, "uq_payments_bank_ref", dialect)
    assert "BOC-CONSTRAINT" not in err.message


# ------------------------------------------------------------------------------ one currency, end to end

INSERT_ALLOCATION = (
    "INSERT INTO payment_allocations (payment_id, invoice_id, currency, amount, allocated_at, allocated_by) "
    "VALUES (:payment, :invoice, :currency, 1, :at, :by)"
)


def test_db_refuses_an_allocation_in_another_currency(engine, uow_factory, books, org, dialect):
    """payment_allocations (payment_id, currency) → payments (id, currency) and (invoice_id, currency)
    → invoices (id, currency): an allocation can only join a payment and an invoice of its own currency."""
    common = dict(account=books.account, on=NOW.date(), by=org["finance"], at=NOW)
    with engine.begin() as conn:
        usd = conn.execute(text(INSERT_PAYMENT + " RETURNING id"), dict(
            number="PAY-USD-1", currency="USD", ref="CITI-USD-1", **common)).scalar_one()
        cny = conn.execute(text(INSERT_PAYMENT + " RETURNING id"), dict(
            number="PAY-CNY-2", currency="CNY", ref="BOC-CNY-2", **common)).scalar_one()
    alloc = dict(invoice=books.invoice, at=NOW, by=org["finance"])
    # A USD payment onto the CNY invoice, labelled either way: one of the two ends refuses.
    rejects(engine, INSERT_ALLOCATION, fk("fk_payment_allocations_invoice_currency"), payment=usd, currency="USD",
            **alloc)
    rejects(engine, INSERT_ALLOCATION, fk("fk_payment_allocations_payment_currency"), payment=usd, currency="CNY",
            **alloc)
    accepts(engine, INSERT_ALLOCATION, payment=cny, currency="CNY", **alloc)
    # Re-labelling the money afterwards is refused too: the allocations still point at (id, 'CNY').
    rejects(engine, UPDATE_PAYMENT.format("currency = 'USD'"), fk("fk_payment_allocations_payment_currency"),
            id=books.payment)
    rejects(engine, UPDATE_INVOICE.format("currency = 'USD'"),  # both of its (id, currency) links break
            {"postgresql": ("fk_invoices_contract_currency", "fk_payment_allocations_invoice_currency"),
             "sqlite": SQLITE_FK}, id=books.invoice)
    err = conflict(uow_factory, INSERT_ALLOCATION, payment=usd, currency="USD", **alloc)
    assert_generic(err, {"postgresql": "fk_payment_allocations_invoice_currency"}, dialect)


INSERT_INVOICE = (
    "INSERT INTO invoices (number, contract_id, milestone_id, account_id, currency, amount, paid_amount, status, "
    "issued_on, due_on, dunning_level, created_by, void_reason) VALUES (:number, :contract, :milestone, :account, "
    ":currency, 1000, 0, :status, :on, :on, 0, :by, :reason)"
)


def test_db_refuses_an_invoice_in_another_currency_than_its_contract(engine, uow_factory, books, org, dialect):
    args = dict(number="INV-X-1", contract=books.contract, milestone=books.milestones[1], account=books.account,
                status="issued", on=NOW.date(), by=org["finance"], reason=None)
    rejects(engine, INSERT_INVOICE, fk("fk_invoices_contract_currency"), currency="USD", **args)
    accepts(engine, INSERT_INVOICE, currency="CNY", **args)
    rejects(engine, UPDATE_CONTRACT.format("currency = 'USD'"), fk("fk_invoices_contract_currency"),
            id=books.contract)
    err = conflict(uow_factory, INSERT_INVOICE, currency="USD", **args)
    assert_generic(err, {"postgresql": "fk_invoices_contract_currency"}, dialect)


# ------------------------------------------------------------------------------ one of a kind


def test_db_allows_one_live_invoice_per_payment_milestone(engine, uow_factory, books, org, dialect):
    args = dict(contract=books.contract, milestone=books.milestones[0], account=books.account, currency="CNY",
                on=NOW.date(), by=org["finance"])
    for status in ("issued", "partially_paid", "paid"):  # the advance is already invoiced (and live)
        rejects(engine, INSERT_INVOICE.replace("1000, 0,", "1000, :paid,"),
                unique("uq_invoices_one_per_milestone", "invoices.milestone_id"), number=f"INV-X-{status}",
                status=status, reason=None, paid={"issued": 0, "partially_paid": 1, "paid": 1000}[status], **args)
    # The index is partial: void invoices of the same milestone may pile up (void and reissue).
    accepts(engine, INSERT_INVOICE, number="INV-X-VOID", status="void", reason="wrong entity", **args)
    # ... and voiding the live one frees the milestone for a new live invoice.
    with engine.connect() as conn:
        conn.execute(text("UPDATE invoices SET status = 'void', paid_amount = 0, void_reason = 'x' WHERE id = :id"),
                     {"id": books.invoice})
        conn.execute(text("DELETE FROM payment_allocations WHERE invoice_id = :id"), {"id": books.invoice})
        conn.execute(text(INSERT_INVOICE), dict(number="INV-X-AGAIN", status="issued", reason=None, **args))
        conn.rollback()
    err = conflict(uow_factory, INSERT_INVOICE, number="INV-X-2", status="issued", reason=None, **args)
    assert_friendly(err, "uq_invoices_one_per_milestone", dialect)


INSERT_CONTRACT = (
    "INSERT INTO contracts (number, opportunity_id, account_id, quote_id, currency, value, status, "
    "payment_terms_days, created_by, created_at) VALUES (:number, :opp, :account, :quote, 'CNY', 1000, 'draft', 30, "
    ":by, :at)"
)
INSERT_QUOTE = ("INSERT INTO quotes (opportunity_id, version, status, total, currency, created_at) "
                "VALUES (:opp, :version, 'accepted', 1000, 'CNY', :at)")


def test_db_allows_one_contract_per_opportunity(engine, uow_factory, books, org, dialect):
    other_opp = builders.make_deal(uow_factory, org, n=2)
    with engine.begin() as conn:
        q_same_deal = conn.execute(text(INSERT_QUOTE + " RETURNING id"),
                                   dict(opp=books.opp, version=99, at=NOW)).scalar_one()
        q_other_deal = conn.execute(text(INSERT_QUOTE + " RETURNING id"),
                                    dict(opp=other_opp, version=1, at=NOW)).scalar_one()
    args = dict(account=books.account, by=org["rep"], at=NOW)
    # A second contract for the won deal, even from another quote: refused.
    rejects(engine, INSERT_CONTRACT, unique("uq_contracts_opportunity_id", "contracts.opportunity_id"),
            number="CT-X-1", opp=books.opp, quote=q_same_deal, **args)
    # The signed contract's quote used again for another deal: refused.
    rejects(engine, INSERT_CONTRACT, unique("uq_contracts_quote_id", "contracts.quote_id"),
            number="CT-X-2", opp=other_opp, quote=books.quote, **args)
    accepts(engine, INSERT_CONTRACT, number="CT-X-3", opp=other_opp, quote=q_other_deal, **args)
    err = conflict(uow_factory, INSERT_CONTRACT, number="CT-X-1", opp=books.opp, quote=q_same_deal, **args)
    assert_friendly(err, "uq_contracts_opportunity_id", dialect)
    err = conflict(uow_factory, INSERT_CONTRACT, number="CT-X-2", opp=other_opp, quote=books.quote, **args)
    assert_friendly(err, "uq_contracts_quote_id", dialect)


INSERT_CHANGE = (
    "INSERT INTO change_orders (number, contract_id, old_value, new_value, old_plan, new_plan, reason, status, "
    "requested_by, created_at) VALUES (:number, :contract, 500000, 700000, '[]', '[]', 'again', :status, :by, :at)"
)


def test_db_allows_one_pending_change_order_per_contract(engine, uow_factory, books, org, dialect):
    view = call(uow_factory, contracts.request_change_order, books.contract, {
        "value": "600000", "reason": "second line", "milestones": [
            {"label": "Advance", "pct": "25", "trigger": "signing"},
            {"label": "Delivery", "pct": "65", "trigger": "delivery_acceptance"},
            {"label": "Final", "pct": "10", "trigger": "final_acceptance"}]}, actor=org.actor("rep"))
    assert view.changes[-1].status == "pending"
    args = dict(contract=books.contract, by=org["rep"], at=NOW)
    rejects(engine, INSERT_CHANGE, unique("uq_change_orders_one_pending", "change_orders.contract_id"),
            number="CO-X-1", status="pending", **args)
    # Partial index: decided change orders of the same contract may pile up.
    for status in ("approved", "rejected", "cancelled"):
        accepts(engine, INSERT_CHANGE, number=f"CO-X-{status}", status=status, **args)
    err = conflict(uow_factory, INSERT_CHANGE, number="CO-X-1", status="pending", **args)
    assert_friendly(err, "uq_change_orders_one_pending", dialect)
