"""In-memory fakes of the unit of work and its repositories (cosmicpython style), no database.

`FakeStore` plays the database: the committed tables. `FakeUnitOfWork(store)` plays one
transaction: entering deep-copies the committed tables, repositories work on that copy,
`commit()` publishes a copy of it, leaving the block without commit discards it. So a factory
`lambda: FakeUnitOfWork(store)` behaves like `SqlAlchemyUnitOfWork` over a real database:

    with FakeUnitOfWork(store) as uow:
        leads.create_lead({...}, actor=actor, uow=uow)
        uow.commit()

What the database would do and the services rely on, the fakes do too: ids on add (children
too: members, history, steps, decisions), outbox de-duplication by key, row-level visibility
through the same `domain.rbac.Scope` rules the SQL filters encode, and the UNIQUE rules, checked
where SQLAlchemy would flush: `uow.flush()`/`commit()` turn a violation into `Conflict` (like
`SqlAlchemyUnitOfWork`); `repo.add()` and every query (the session's autoflush) raise the raw
`FakeIntegrityError`, as the SQL repositories let `IntegrityError` through. Either way the
transaction is rolled back.

Limits: one transaction at a time per store (a commit replaces every table, so two overlapping
transactions would lose the first one's writes); no optimistic version check.
"""
from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from domain.errors import Conflict
from domain.model.catalog import DiscountBand, PriceBook, PriceBookEntry, Product
from domain.model.billing import OPEN_INVOICE, PromiseToPay, RevenueEntry
from domain.model.incentives import Contribution, IncentivePlan
from domain.model.leads import OPEN_STATUSES
from domain.model.quotes import APPROVED_OR_LATER
from domain.model.records import AssignmentRule, GatePolicy, OutboxMessage, StagePolicy
from domain.rbac import Scope

TABLES = (
    "users", "teams", "leads", "accounts", "contacts", "opportunities", "activities", "approvals",
    "quotes", "audit", "outbox", "stage_policies", "gate_policies", "assignment_rules",
    "products", "price_books", "price_book_entries", "discount_bands",
    "contracts", "orders", "invoices", "payments", "promises", "revenue_entries", "incentive_plans", "contributions",
    "pending_actions",
)
_OPEN = {s.value for s in OPEN_STATUSES}

# The UNIQUE constraints of domain/db/tables.py: per table, functions giving each row's keys;
# a key (None = no key, like NULL) may occur once in the table.
UNIQUE: dict[str, list[Callable[[object], Iterable]]] = {
    "users": [lambda u: [("email", u.email)],
              lambda u: [("slack", u.slack_user_id)] if u.slack_user_id else [],
              lambda u: [("wecom", u.wecom_userid)] if u.wecom_userid else []],
    "teams": [lambda t: [t.name]],
    "leads": [lambda x: [("email", x.email_norm)] if x.email_norm else [],
              lambda x: [("phone", x.phone_norm)] if x.phone_norm else [],
              lambda x: [("identity", x.identity_norm)]],
    "accounts": [lambda a: [a.name_norm]],
    "opportunities": [
        lambda o: [(o.id, m.user_id, m.role) for m in o.members],
        lambda o: [(o.id, m.role) for m in o.members if m.role in ("SR", "FR")],  # one SR, one FR
    ],
    "approvals": [
        lambda r: [(r.subject_type, r.subject_id, r.kind)] if r.status == "pending" else [],
        lambda r: [(r.id, "step", s.seq) for s in r.steps],
        lambda r: [(r.id, "decision", d.step_seq) for d in r.decisions],
    ],
    "quotes": [lambda q: [(q.opportunity_id, q.version)]],
    "products": [lambda p: [p.sku.lower()]],
    "price_books": [lambda b: [b.name], lambda b: [(b.region, b.currency)]],
    "price_book_entries": [lambda e: [(e.price_book_id, e.product_id)]],
    "outbox": [lambda m: [m.key]],
    "contracts": [lambda c: [("number", c.number)], lambda c: [("opp", c.opportunity_id)],
                  lambda c: [("quote", c.quote_id)], lambda c: [(c.id, "seq", m.seq) for m in c.milestones],
                  lambda c: [(c.id, "pending change")] if any(x.status == "pending" for x in c.changes) else [],
                  lambda c: [(c.id, "change", x.number) for x in c.changes]],
    "orders": [lambda o: [("number", o.number)], lambda o: [("contract", o.contract_id)],
               lambda o: [(o.id, "seq", m.seq) for m in o.milestones]],
    "invoices": [lambda i: [("number", i.number)], lambda i: [("milestone", i.milestone_id)] if i.status != "void" else []],
    "payments": [lambda p: [("number", p.number)],
                 lambda p: [("bank_ref", p.bank_ref)] if p.status != "rejected" else [],
                 lambda p: [(p.id, a.invoice_id) for a in p.allocations]],
    "contributions": [lambda x: [(x.contract_id, x.user_id, x.role)]],
    "incentive_plans": [lambda x: [x.name]],
    "stage_policies": [lambda p: [p.stage]],
    "gate_policies": [lambda g: [g.kind], lambda g: [(g.from_stage, g.to_stage)]],
}


class FakeIntegrityError(Exception):
    """The fake driver's IntegrityError: what leaks when a UNIQUE rule breaks outside uow.flush()."""


class FakeClock:
    """A clock that moves one `tick` per reading (so timestamps are distinct) and can jump."""

    def __init__(self, start: datetime = datetime(2025, 3, 3, 9, 0), tick: timedelta = timedelta(seconds=1)):
        self.current = start
        self.tick = tick

    def __call__(self) -> datetime:
        now = self.current
        self.current += self.tick
        return now

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeStore:
    """The committed state: one dict id → object per table, plus id sequences (never reused)."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.tables: dict[str, dict[int, object]] = {name: {} for name in TABLES}
        self.clock = clock or FakeClock()
        self._seq: dict[str, int] = {}
        self.commits = 0

    def next_id(self, kind: str) -> int:
        self._seq[kind] = self._seq.get(kind, 0) + 1
        return self._seq[kind]

    def clone(self) -> FakeStore:
        """An independent copy (tables, sequences and clock): a snapshot to start tests from."""
        return copy.deepcopy(self)

    # Read helpers for assertions: committed rows only.
    def rows(self, table: str) -> list:
        return sorted(self.tables[table].values(), key=lambda o: o.id)

    def get(self, table: str, id_: int):
        return self.tables[table].get(id_)

    def count(self, table: str) -> int:
        return len(self.tables[table])

    def topics(self) -> list[str]:
        return [m.topic for m in self.rows("outbox")]


def _deep_copy(tables: dict) -> dict:
    """copy.deepcopy, done by a pickle round trip: same result for these plain objects, ~4x faster."""
    return pickle.loads(pickle.dumps(tables, pickle.HIGHEST_PROTOCOL))


def _by_id(objs: Iterable) -> list:
    return sorted(objs, key=lambda o: o.id)


class FakeRepository:
    table: str

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    @property
    def _rows(self) -> dict[int, object]:
        return self.uow.tables[self.table]

    def add(self, obj):
        if obj.id is None:
            obj.id = self.uow.store.next_id(self.table)
        self._rows[obj.id] = obj
        self.uow.autoflush()  # like session.flush() in the SQL repository: ids now, raw errors now
        return obj

    def get(self, id_):  # an identity-map lookup: no autoflush
        return self._rows.get(id_)

    def get_for_update(self, id_):
        return self.get(id_)

    def all(self) -> list:
        """Every row by id, after an autoflush like any SELECT; all queries below go through it."""
        self.uow.autoflush()
        return _by_id(self._rows.values())


class FakeUserRepository(FakeRepository):
    table = "users"

    def by_email(self, email: str):
        return next((u for u in self.all() if u.email.lower() == email.lower()), None)

    def by_slack_id(self, slack_user_id: str):
        return next((u for u in self.all() if u.slack_user_id == slack_user_id), None)

    def by_wecom_id(self, wecom_userid: str):
        return next((u for u in self.all() if (u.wecom_userid or "").lower() == wecom_userid.lower()), None)

    def managers(self) -> dict[int, int | None]:
        return {u.id: u.manager_id for u in self.all()}


class FakeTeamRepository(FakeRepository):
    table = "teams"


class FakeLeadRepository(FakeRepository):
    table = "leads"

    def find_duplicate(self, email_norm, phone_norm, identity_norm, *, exclude_id=None):
        for attr, value, why in (("email_norm", email_norm, "same email"),
                                 ("phone_norm", phone_norm, "same phone"),
                                 ("identity_norm", identity_norm, "same company and contact")):
            if value:
                lead = next((x for x in self.all() if getattr(x, attr) == value and x.id != exclude_id), None)
                if lead is not None:
                    return lead, why
        return None

    def open_counts(self, owner_ids) -> dict[int, int]:
        counts = {uid: 0 for uid in owner_ids}
        for lead in self.all():
            if lead.owner_id in counts and lead.status in _OPEN:
                counts[lead.owner_id] += 1
        return counts

    def list(self, scope: Scope, *, status=None, owner_id=None, limit: int = 100) -> list:
        rows = [x for x in self.all() if scope.sees_lead(x.owner_id)
                and (not status or x.status == status) and (not owner_id or x.owner_id == owner_id)]
        return sorted(rows, key=lambda x: x.id, reverse=True)[:limit]


class FakeAccountRepository(FakeRepository):
    table = "accounts"

    def by_name_norm(self, name_norm: str):
        return next((a for a in self.all() if a.name_norm == name_norm), None)

    def list(self, scope: Scope, *, limit: int = 100) -> list:
        rows = [a for a in self.all() if scope.sees_account(a.owner_id, self.deal_team_ids(a.id))]
        return sorted(rows, key=lambda a: (a.name, a.id))[:limit]

    def deal_team_ids(self, account_id: int) -> set[int]:
        ids: set[int] = set()
        self.uow.autoflush()
        for o in self.uow.tables["opportunities"].values():
            if o.account_id == account_id:
                ids |= {o.owner_id, *o.member_ids()}
        return ids


class FakeContactRepository(FakeRepository):
    table = "contacts"

    def for_account(self, account_id: int) -> list:
        return [c for c in self.all() if c.account_id == account_id]


class FakeOpportunityRepository(FakeRepository):
    table = "opportunities"

    def list(self, scope: Scope, *, stage=None, owner_id=None, account_id=None, limit: int = 100) -> list:
        rows = [o for o in self.all() if scope.sees_opportunity(o.owner_id, o.member_ids(), o.stage)
                and (not stage or o.stage == stage) and (not owner_id or o.owner_id == owner_id)
                and (not account_id or o.account_id == account_id)]
        return sorted(rows, key=lambda o: o.id, reverse=True)[:limit]


class FakeActivityRepository(FakeRepository):
    table = "activities"

    def for_subject(self, *, lead_id=None, account_id=None, opportunity_id=None, limit: int = 50) -> list:
        rows = [a for a in self.all() if (lead_id is None or a.lead_id == lead_id)
                and (account_id is None or a.account_id == account_id)
                and (opportunity_id is None or a.opportunity_id == opportunity_id)]
        return sorted(rows, key=lambda a: (a.occurred_at, a.id), reverse=True)[:limit]

    def count_for_lead(self, lead_id: int) -> int:
        return sum(1 for a in self.all() if a.lead_id == lead_id)


class FakeApprovalRepository(FakeRepository):
    def subject_of(self, id_):
        request = self.get(id_)
        return (request.subject_type, request.subject_id) if request is not None else None

    table = "approvals"

    def pending_for(self, subject_type: str, subject_id: int, kind: str):
        return next((r for r in self.all() if r.subject_type == subject_type and r.subject_id == subject_id
                     and r.kind == kind and r.status == "pending"), None)

    def for_subject(self, subject_type: str, subject_id: int) -> list:
        return [r for r in self.all() if r.subject_type == subject_type and r.subject_id == subject_id]

    def pending(self, *, limit: int = 500) -> list:
        return sorted((r for r in self.all() if r.status == "pending"),
                      key=lambda r: (r.created_at, r.id))[:limit]

    def expired(self, now: datetime) -> list:
        return [r for r in self.all() if r.status == "pending" and r.expires_at is not None and r.expires_at < now]


class FakeSeveralTables:
    """A repository over several small tables, each row type mapped to its table."""

    TABLE_OF: dict[type, str] = {}

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def add(self, obj):
        table = self.TABLE_OF[type(obj)]
        if obj.id is None:
            obj.id = self.uow.store.next_id(table)
        self.uow.tables[table][obj.id] = obj
        self.uow.autoflush()
        return obj

    def _all(self, table: str) -> list:
        self.uow.autoflush()
        return _by_id(self.uow.tables[table].values())


class FakePolicyRepository(FakeSeveralTables):
    TABLE_OF = {StagePolicy: "stage_policies", GatePolicy: "gate_policies", AssignmentRule: "assignment_rules"}

    def stage_probabilities(self) -> dict[str, int]:
        return {p.stage: p.probability for p in self._all("stage_policies")}

    def gates(self) -> list:
        return [g for g in self._all("gate_policies") if g.active]

    def assignment_rules(self) -> list:
        return sorted((r for r in self._all("assignment_rules") if r.active), key=lambda r: (r.priority, r.id))


class FakeQuoteRepository(FakeRepository):
    table = "quotes"

    def has_approved(self, opportunity_id: int) -> bool:
        return any(q.opportunity_id == opportunity_id and q.status in APPROVED_OR_LATER for q in self.all())

    def for_opportunity(self, opportunity_id: int) -> list:
        return sorted((q for q in self.all() if q.opportunity_id == opportunity_id), key=lambda q: q.version)

    def open_past_validity(self, today) -> list:
        return [q for q in self.all() if q.status in ("draft", "pending_approval", "approved", "rejected", "sent")
                and q.valid_until is not None and q.valid_until < today]

    def open_expiring(self, today, until) -> list:
        return [q for q in self.all() if q.status in ("approved", "sent") and q.valid_until is not None
                and today <= q.valid_until <= until]

    def won_line_discounts(self, product_ids, *, since) -> list[tuple]:
        opps = self.uow.tables["opportunities"]
        return [(line.discount_pct, opps[q.opportunity_id].owner_id, q.opportunity_id)
                for q in self.all() if q.status == "accepted"
                and opps[q.opportunity_id].stage == "won" and opps[q.opportunity_id].stage_changed_at >= since
                for line in q.lines if line.product_id in product_ids]


class FakeCatalogRepository(FakeSeveralTables):
    TABLE_OF = {Product: "products", PriceBook: "price_books", PriceBookEntry: "price_book_entries",
                DiscountBand: "discount_bands"}

    def products(self) -> list:
        return sorted(self._all("products"), key=lambda p: p.sku)

    def product_by_sku(self, sku: str):
        return next((p for p in self._all("products") if p.sku.lower() == sku.strip().lower()), None)

    def find_product(self, text: str):
        needle = text.strip().lower()
        found = self.product_by_sku(text)
        if found is not None:
            return found if found.active else None
        return next((p for p in self.products() if p.active and needle in (p.name_en.lower(), p.name_zh.lower())),
                    None)

    def similar_products(self, text: str, limit: int = 3) -> list[str]:
        import difflib

        return difflib.get_close_matches(text.strip(), [p.sku for p in self.products() if p.active], n=limit,
                                          cutoff=0.5)

    def price_books(self) -> list:
        return [b for b in self._all("price_books") if b.active]

    def price_book_for(self, region: str, currency: str):
        books = [b for b in self.price_books() if b.currency == currency]
        return next((b for b in books if b.region == region), None) or next(
            (b for b in books if b.region == "*"), None)

    def entry(self, price_book_id: int, product_id: int):
        return next((e for e in self._all("price_book_entries")
                     if e.price_book_id == price_book_id and e.product_id == product_id), None)

    def discount_bands(self) -> list:
        return sorted(self._all("discount_bands"), key=lambda b: b.priority)


class FakeContractRepository(FakeRepository):
    table = "contracts"

    def for_opportunity(self, opportunity_id: int):
        return next((c for c in self.all() if c.opportunity_id == opportunity_id), None)

    def for_account(self, account_id: int) -> list:
        return [c for c in self.all() if c.account_id == account_id]

    def by_number(self, number: str):
        return next((c for c in self.all() if c.number.upper() == number.strip().upper()), None)

    def in_force(self) -> list:
        return [c for c in self.all() if c.status in ("signed", "executing", "completed")]

    def lock_many(self, ids) -> list:
        return [self.get_for_update(i) for i in sorted(set(ids))]


class FakeOrderRepository(FakeRepository):
    table = "orders"

    def for_contract(self, contract_id: int):
        return next((o for o in self.all() if o.contract_id == contract_id), None)

    def by_number(self, number: str):
        return next((o for o in self.all() if o.number.upper() == number.strip().upper()), None)

    def with_milestones_due(self, until) -> list:
        return [o for o in self.all() if o.status == "open"
                and any(m.status == "planned" and m.planned_date <= until for m in o.milestones)]


class FakeInvoiceRepository(FakeRepository):
    table = "invoices"

    def for_contract(self, contract_id: int) -> list:
        return [i for i in self.all() if i.contract_id == contract_id]

    def open_for_account(self, account_id: int, currency: str) -> list:
        return sorted((i for i in self.all() if i.account_id == account_id and i.currency == currency
                       and i.status in OPEN_INVOICE), key=lambda i: (i.due_on, i.id))

    def open_all(self) -> list:
        return sorted((i for i in self.all() if i.status in OPEN_INVOICE), key=lambda i: (i.due_on, i.id))

    def by_number(self, number: str):
        return next((i for i in self.all() if i.number.upper() == number.strip().upper()), None)

    def lock_many(self, ids) -> list:
        return [self.get_for_update(i) for i in sorted(set(ids))]


class FakePaymentRepository(FakeRepository):
    table = "payments"

    def by_number(self, number: str):
        return next((p for p in self.all() if p.number.upper() == number.strip().upper()), None)

    def by_bank_ref(self, bank_ref: str):
        return next((p for p in self.all() if p.bank_ref == bank_ref and p.status != "rejected"), None)

    def for_account(self, account_id: int) -> list:
        return [p for p in self.all() if p.account_id == account_id]

    def for_invoice(self, invoice_id: int) -> list:
        return [p for p in self.all() if any(a.invoice_id == invoice_id for a in p.allocations)]

    def allocated_to(self, invoice_id: int):
        from decimal import Decimal

        return sum((a.amount for p in self.all() for a in p.allocations if a.invoice_id == invoice_id), Decimal("0"))


class FakeFinanceRepository(FakeSeveralTables):
    """Sequences come from the store's id counters: like database sequences, a rollback leaves a gap."""

    TABLE_OF = {PromiseToPay: "promises", RevenueEntry: "revenue_entries", IncentivePlan: "incentive_plans",
                Contribution: "contributions"}

    def promises_for(self, invoice_id: int) -> list:
        return [p for p in self._all("promises") if p.invoice_id == invoice_id]

    def revenue_for(self, contract_id: int) -> list:
        return [e for e in self._all("revenue_entries") if e.contract_id == contract_id]

    def incentive_plan(self):
        return next((p for p in self._all("incentive_plans") if p.active), None)

    def contributions_for(self, contract_id: int) -> list:
        return [x for x in self._all("contributions") if x.contract_id == contract_id]

    def delete(self, obj) -> None:
        del self.uow.tables[self.TABLE_OF[type(obj)]][obj.id]

    def next_number(self, name: str) -> int:
        return self.uow.store.next_id(f"sequence:{name}")


class FakeAuditRepository(FakeRepository):
    table = "audit"

    def for_entity(self, entity: str, entity_id: int) -> list:
        return [e for e in self.all() if e.entity == entity and e.entity_id == entity_id]


class FakeOutboxRepository(FakeRepository):
    table = "outbox"

    def add(self, obj: OutboxMessage) -> OutboxMessage:
        existing = next((m for m in self.all() if m.key == obj.key), None)
        return existing if existing is not None else super().add(obj)

    def write_pending(self) -> None:
        """The fake writes on add; nothing is buffered."""


class FakePendingActionRepository(FakeRepository):
    table = "pending_actions"

    def by_token_for_update(self, token_hash: str):
        return next((a for a in self.all() if a.token_hash == token_hash), None)


class FakeUnitOfWork:
    """Same surface as SqlAlchemyUnitOfWork: repositories, `now()`, commit/rollback/flush."""

    def __init__(self, store: FakeStore, *, clock: Callable[[], datetime] | None = None,
                 after_commit: list[Callable[[], None]] | None = None) -> None:
        self.store = store
        self.now = clock or store.clock
        self.after_commit = after_commit if after_commit is not None else []
        self.tables: dict[str, dict[int, object]] | None = None

    def __enter__(self) -> FakeUnitOfWork:
        self.tables = _deep_copy(self.store.tables)
        self.users = FakeUserRepository(self)
        self.teams = FakeTeamRepository(self)
        self.leads = FakeLeadRepository(self)
        self.accounts = FakeAccountRepository(self)
        self.contacts = FakeContactRepository(self)
        self.opportunities = FakeOpportunityRepository(self)
        self.activities = FakeActivityRepository(self)
        self.approvals = FakeApprovalRepository(self)
        self.policies = FakePolicyRepository(self)
        self.quotes = FakeQuoteRepository(self)
        self.catalog = FakeCatalogRepository(self)
        self.contracts = FakeContractRepository(self)
        self.orders = FakeOrderRepository(self)
        self.invoices = FakeInvoiceRepository(self)
        self.payments = FakePaymentRepository(self)
        self.finance = FakeFinanceRepository(self)
        self.audit = FakeAuditRepository(self)
        self.outbox = FakeOutboxRepository(self)
        self.pending_actions = FakePendingActionRepository(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.tables = None  # whatever was not committed is gone
        if isinstance(exc, FakeIntegrityError):  # as SqlAlchemyUnitOfWork translates IntegrityError
            raise Conflict(f"The change breaks a database rule: {exc}") from exc

    def commit(self) -> None:
        assert self.tables is not None, "commit outside `with uow:`"
        self.flush()
        self.store.tables = _deep_copy(self.tables)  # publish a copy; ours stays usable
        self.store.commits += 1
        for hook in list(self.after_commit):
            hook()

    def rollback(self) -> None:
        assert self.tables is not None
        self.tables = _deep_copy(self.store.tables)

    def flush(self) -> None:
        """Surface constraint errors as domain Conflicts, like SqlAlchemyUnitOfWork.flush."""
        try:
            self.autoflush()
        except FakeIntegrityError as e:
            raise Conflict(f"The change breaks a database rule: {e}") from e

    def autoflush(self) -> None:
        """What a database flush does: ids for new child rows, UNIQUE checks; roll back on failure."""
        assert self.tables is not None, "used outside `with uow:`"
        self._assign_child_ids()
        for table, rules in UNIQUE.items():
            for rule in rules:
                seen: set = set()
                for obj in self.tables[table].values():
                    for key in rule(obj):
                        if key in seen:
                            self.rollback()
                            raise FakeIntegrityError(f"UNIQUE {table} {key!r}")
                        seen.add(key)

    def _assign_child_ids(self) -> None:
        for user in self.tables["users"].values():
            for link in user.role_links:
                link.user_id = user.id
        for table, attr, parent_attr in (("opportunities", "members", "opportunity_id"),
                                         ("opportunities", "history", "opportunity_id"),
                                         ("approvals", "steps", "request_id"),
                                         ("approvals", "decisions", "request_id"),
                                         ("quotes", "lines", "quote_id"),
                                         ("contracts", "milestones", "contract_id"),
                                         ("contracts", "changes", "contract_id"),
                                         ("orders", "milestones", "order_id"),
                                         ("payments", "allocations", "payment_id")):
            for parent in self.tables[table].values():
                for child in getattr(parent, attr):
                    setattr(child, parent_attr, parent.id)
                    if child.id is None:
                        child.id = self.store.next_id(f"{table}.{attr}")
