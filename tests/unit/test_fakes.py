"""The fakes are only useful if they behave like the SQL unit of work: check the parts we rely on."""
from __future__ import annotations

import inspect
from datetime import datetime

import pytest

from domain.db import repositories as sql
from domain.db.uow import SqlAlchemyUnitOfWork
from domain.errors import Conflict
from domain.model.accounts import Account
from domain.model.records import OutboxMessage
from tests import fakes
from tests.fakes import FakeIntegrityError, FakeStore, FakeUnitOfWork

PAIRS = [
    ("users", sql.UserRepository), ("teams", sql.TeamRepository), ("leads", sql.LeadRepository),
    ("accounts", sql.AccountRepository), ("contacts", sql.ContactRepository),
    ("opportunities", sql.OpportunityRepository), ("activities", sql.ActivityRepository),
    ("approvals", sql.ApprovalRepository), ("policies", sql.PolicyRepository), ("quotes", sql.QuoteRepository),
    ("audit", sql.AuditRepository), ("outbox", sql.OutboxRepository), ("catalog", sql.CatalogRepository),
    ("contracts", sql.ContractRepository), ("orders", sql.OrderRepository), ("invoices", sql.InvoiceRepository),
    ("payments", sql.PaymentRepository), ("finance", sql.FinanceRepository),
]


def _public(cls) -> dict[str, inspect.Signature]:
    return {n: inspect.signature(f) for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


@pytest.mark.parametrize(("attr", "sql_repo"), PAIRS)
def test_each_fake_repository_mirrors_the_sql_one(attr, sql_repo, store):
    with FakeUnitOfWork(store) as uow:
        fake = _public(type(getattr(uow, attr)))
    for name, sig in _public(sql_repo).items():
        assert name in fake, f"{attr}.{name} is missing from the fake"
        assert list(sig.parameters)[1:] == list(fake[name].parameters)[1:], f"{attr}.{name} parameters differ"


def test_the_fake_unit_of_work_has_the_sql_ones_surface(store):
    source = inspect.getsource(SqlAlchemyUnitOfWork.__enter__)
    repos = [a for a, _ in PAIRS]
    assert all(f"self.{a} = " in source for a in repos)
    with FakeUnitOfWork(store) as uow:
        for name in ("commit", "rollback", "flush", "now", "after_commit", *repos):
            assert hasattr(uow, name)


def _account(name: str) -> Account:
    return Account(name=name, owner_id=1, name_norm=name.lower())


def test_commit_publishes_and_leaving_without_commit_discards():
    store = FakeStore()
    with FakeUnitOfWork(store) as uow:
        kept = uow.accounts.add(_account("Kept"))
        uow.commit()
        kept.name = "changed after commit, never committed"
    with FakeUnitOfWork(store) as uow:
        uow.accounts.add(_account("Dropped"))
    assert [a.name for a in store.rows("accounts")] == ["Kept"]
    with FakeUnitOfWork(store) as uow:
        uow.accounts.get(kept.id).name = "Renamed"
        uow.rollback()
        assert uow.accounts.get(kept.id).name == "Kept"


def test_unique_violations_raise_conflict_and_roll_back():
    store = FakeStore()
    with FakeUnitOfWork(store) as uow:
        uow.accounts.add(_account("Acme"))
        uow.commit()
    with FakeUnitOfWork(store) as uow:
        uow.accounts.add(_account("Other"))
        with pytest.raises(FakeIntegrityError):  # the repository lets the driver's error through
            uow.accounts.add(_account("Acme"))
        assert [a.name for a in uow.accounts.all()] == ["Acme"]  # the whole transaction is gone
    with FakeUnitOfWork(store) as uow:
        uow.accounts.add(_account("Beta")).name_norm = "acme"  # breaks the rule after the add's flush
        with pytest.raises(Conflict):  # the unit of work's flush translates it, as the SQL one does
            uow.flush()
        assert [a.name for a in uow.accounts.all()] == ["Acme"]
    with FakeUnitOfWork(store) as uow:
        uow.accounts.add(_account("Beta")).name_norm = "acme"
        with pytest.raises(FakeIntegrityError):  # a query autoflushes first, untranslated
            uow.accounts.by_name_norm("beta")


def test_outbox_is_deduplicated_by_key_and_ids_never_repeat():
    store = FakeStore()
    at = datetime(2025, 1, 1)
    with FakeUnitOfWork(store) as uow:
        a = uow.outbox.add(OutboxMessage(key="K:1", topic="T", payload={}, created_at=at, available_at=at))
        b = uow.outbox.add(OutboxMessage(key="K:1", topic="T", payload={"x": 1}, created_at=at, available_at=at))
        assert a is b
    with FakeUnitOfWork(store) as uow:
        c = uow.outbox.add(OutboxMessage(key="K:1", topic="T", payload={}, created_at=at, available_at=at))
        uow.commit()
    assert c.id != a.id and store.count("outbox") == 1


def test_child_rows_get_ids_on_flush(deal, store):
    opp = store.get("opportunities", deal("initiated"))
    assert all(m.id and m.opportunity_id == opp.id for m in opp.members)
    assert all(h.id and h.opportunity_id == opp.id for h in opp.history)
    for req in store.rows("approvals"):
        assert all(s.id and s.request_id == req.id for s in req.steps)
        assert all(d.id and d.request_id == req.id for d in req.decisions)


def test_every_unique_rule_names_a_table_the_fake_keeps():
    assert set(fakes.UNIQUE) <= set(fakes.TABLES)
