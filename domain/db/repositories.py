"""SQLAlchemy repositories. They add, load and query; they never commit."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from sqlalchemy import exists, false, func, insert, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from domain.db import tables as t
from domain.db.upsert import insert_for
from domain.model.confirmations import PendingAction
from domain.model.accounts import Account, Contact
from domain.model.activities import Activity
from domain.model.approvals import ApprovalRequest
from domain.model.leads import OPEN_STATUSES, Lead
from domain.model.opportunities import Opportunity
from domain.model.records import (
    AssignmentRule,
    AuditEntry,
    GatePolicy,
    OutboxMessage,
    StagePolicy,
)
from domain.model.catalog import DiscountBand, PriceBook, PriceBookEntry, Product
from domain.model.quotes import APPROVED_OR_LATER, Quote
from domain.model.billing import OPEN_INVOICE, Invoice, Payment, PromiseToPay, RevenueEntry
from domain.model.contracts import Contract
from domain.model.delivery import Order
from domain.model.incentives import Contribution, IncentivePlan
from domain.model.users import Team, User
from domain.rbac import Scope

T = TypeVar("T")


class SqlRepository(Generic[T]):
    model: type[T]

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: T) -> T:
        self.session.add(obj)
        self.session.flush()  # assigns the id; commit stays with the unit of work
        return obj

    def get(self, id_: int) -> T | None:
        return self.session.get(self.model, id_)

    def get_for_update(self, id_: int) -> T | None:
        # Row lock on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE instead. The lock
        # re-reads the newest row into an object this session may have loaded before the lock
        # (populate_existing). Not Session.get(with_for_update=...): that also compares the version
        # of a versioned row (contracts, opportunities) with the earlier copy and raises
        # StaleDataError when someone committed meanwhile, exactly what waiting for the lock is for.
        pk = sa_inspect(self.model).primary_key[0]
        stmt = select(self.model).where(pk == id_).with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def all(self) -> list[T]:
        return list(self.session.scalars(select(self.model)))


class UserRepository(SqlRepository[User]):
    """People change rarely and are read on every call: one load per transaction is enough."""

    model = User

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._all: list[User] | None = None
        self._managers: dict[int, int | None] | None = None

    def add(self, obj: User) -> User:
        self._all = self._managers = None
        return super().add(obj)

    def all(self) -> list[User]:
        if self._all is None:
            self._all = super().all()
        return self._all

    def by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(func.lower(t.users.c.email) == email.lower()))

    def by_slack_id(self, slack_user_id: str) -> User | None:
        return self.session.scalar(select(User).where(t.users.c.slack_user_id == slack_user_id))

    def by_wecom_id(self, wecom_userid: str) -> User | None:
        """WeCom userids are case-insensitive (WeCom matches them so)."""
        return self.session.scalar(select(User).where(func.lower(t.users.c.wecom_userid) == wecom_userid.lower()))

    def managers(self) -> dict[int, int | None]:
        if self._managers is None:
            rows = self.session.execute(select(t.users.c.id, t.users.c.manager_id))
            self._managers = {uid: mid for uid, mid in rows}
        return self._managers


class TeamRepository(SqlRepository[Team]):
    model = Team


def _opp_visible(scope: Scope):
    if scope.sees_all:
        return None
    pool = list(scope.subtree if scope.is_manager else {scope.user_id})
    member = exists().where(
        t.opportunity_members.c.opportunity_id == t.opportunities.c.id,
        t.opportunity_members.c.user_id.in_(pool),
    )
    clauses = [t.opportunities.c.owner_id.in_(pool), member]
    if scope.stages:
        clauses.append(t.opportunities.c.stage.in_([s.value for s in scope.stages]))
    return or_(*clauses)


class LeadRepository(SqlRepository[Lead]):
    model = Lead

    def find_duplicate(self, email_norm: str | None, phone_norm: str | None, identity_norm: str, *,
                       exclude_id: int | None = None) -> tuple[Lead, str] | None:
        keys = [(column, value, why) for column, value, why in (
            (t.leads.c.email_norm, email_norm, "same email"),
            (t.leads.c.phone_norm, phone_norm, "same phone"),
            (t.leads.c.identity_norm, identity_norm, "same company and contact"),
        ) if value]
        q = select(Lead).where(or_(*(column == value for column, value, _ in keys)))
        if exclude_id is not None:
            q = q.where(t.leads.c.id != exclude_id)
        found = list(self.session.scalars(q.limit(3)))
        for column, value, why in keys:  # report the strongest reason: email, then phone, then name
            lead = next((x for x in found if getattr(x, column.name) == value), None)
            if lead is not None:
                return lead, why
        return None

    def open_counts(self, owner_ids: Iterable[int]) -> dict[int, int]:
        ids = list(owner_ids)
        rows = self.session.execute(
            select(t.leads.c.owner_id, func.count())
            .where(t.leads.c.owner_id.in_(ids), t.leads.c.status.in_([s.value for s in OPEN_STATUSES]))
            .group_by(t.leads.c.owner_id)
        )
        counts = {uid: 0 for uid in ids}
        counts.update({uid: n for uid, n in rows})
        return counts

    def list(self, scope: Scope, *, status: str | None = None, owner_id: int | None = None, limit: int = 100) -> list[Lead]:
        q = select(Lead).order_by(t.leads.c.id.desc()).limit(limit)
        if not scope.sees_all:
            pool = list(scope.subtree if scope.is_manager else {scope.user_id})
            q = q.where(t.leads.c.owner_id.in_(pool)) if pool else q.where(false())
        if status:
            q = q.where(t.leads.c.status == status)
        if owner_id:
            q = q.where(t.leads.c.owner_id == owner_id)
        return list(self.session.scalars(q))


class AccountRepository(SqlRepository[Account]):
    model = Account

    def by_name_norm(self, name_norm: str) -> Account | None:
        return self.session.scalar(select(Account).where(t.accounts.c.name_norm == name_norm))

    def list(self, scope: Scope, *, limit: int = 100) -> list[Account]:
        q = select(Account).order_by(t.accounts.c.name).limit(limit)
        if not (scope.sees_all or scope.stages):
            pool = list(scope.subtree if scope.is_manager else {scope.user_id})
            on_team = exists().where(
                t.opportunities.c.account_id == t.accounts.c.id,
                or_(
                    t.opportunities.c.owner_id.in_(pool),
                    exists().where(
                        t.opportunity_members.c.opportunity_id == t.opportunities.c.id,
                        t.opportunity_members.c.user_id.in_(pool),
                    ),
                ),
            )
            q = q.where(or_(t.accounts.c.owner_id.in_(pool), on_team))
        return list(self.session.scalars(q))

    def deal_team_ids(self, account_id: int) -> set[int]:
        owners = select(t.opportunities.c.owner_id).where(t.opportunities.c.account_id == account_id)
        members = (
            select(t.opportunity_members.c.user_id)
            .join(t.opportunities, t.opportunities.c.id == t.opportunity_members.c.opportunity_id)
            .where(t.opportunities.c.account_id == account_id)
        )
        return set(self.session.scalars(owners.union(members)))


class ContactRepository(SqlRepository[Contact]):
    model = Contact

    def for_account(self, account_id: int) -> list[Contact]:
        return list(self.session.scalars(
            select(Contact).where(t.contacts.c.account_id == account_id).order_by(t.contacts.c.id)
        ))


class OpportunityRepository(SqlRepository[Opportunity]):
    model = Opportunity

    def list(self, scope: Scope, *, stage: str | None = None, owner_id: int | None = None,
             account_id: int | None = None, limit: int = 100) -> list[Opportunity]:
        q = select(Opportunity).order_by(t.opportunities.c.id.desc()).limit(limit)
        visible = _opp_visible(scope)
        if visible is not None:
            q = q.where(visible)
        if stage:
            q = q.where(t.opportunities.c.stage == stage)
        if owner_id:
            q = q.where(t.opportunities.c.owner_id == owner_id)
        if account_id:
            q = q.where(t.opportunities.c.account_id == account_id)
        return list(self.session.scalars(q))


class ActivityRepository(SqlRepository[Activity]):
    model = Activity

    def for_subject(self, *, lead_id: int | None = None, account_id: int | None = None,
                    opportunity_id: int | None = None, limit: int = 50) -> list[Activity]:
        q = select(Activity).order_by(t.activities.c.occurred_at.desc(), t.activities.c.id.desc()).limit(limit)
        if lead_id is not None:
            q = q.where(t.activities.c.lead_id == lead_id)
        if account_id is not None:
            q = q.where(t.activities.c.account_id == account_id)
        if opportunity_id is not None:
            q = q.where(t.activities.c.opportunity_id == opportunity_id)
        return list(self.session.scalars(q))

    def count_for_lead(self, lead_id: int) -> int:
        return self.session.scalar(select(func.count()).where(t.activities.c.lead_id == lead_id)) or 0


class ApprovalRepository(SqlRepository[ApprovalRequest]):
    model = ApprovalRequest

    def subject_of(self, id_: int) -> tuple[str, int] | None:
        """What a request is about, without loading it (to lock the subject first)."""
        row = self.session.execute(select(t.approval_requests.c.subject_type, t.approval_requests.c.subject_id)
                                   .where(t.approval_requests.c.id == id_)).first()
        return (row[0], row[1]) if row else None

    def pending_for(self, subject_type: str, subject_id: int, kind: str) -> ApprovalRequest | None:
        return self.session.scalar(select(ApprovalRequest).where(
            t.approval_requests.c.subject_type == subject_type,
            t.approval_requests.c.subject_id == subject_id,
            t.approval_requests.c.kind == kind,
            t.approval_requests.c.status == "pending",
        ))

    def for_subject(self, subject_type: str, subject_id: int) -> list[ApprovalRequest]:
        return list(self.session.scalars(select(ApprovalRequest).where(
            t.approval_requests.c.subject_type == subject_type,
            t.approval_requests.c.subject_id == subject_id,
        ).order_by(t.approval_requests.c.id)))

    def pending(self, *, limit: int = 500) -> list[ApprovalRequest]:
        return list(self.session.scalars(
            select(ApprovalRequest).where(t.approval_requests.c.status == "pending")
            .order_by(t.approval_requests.c.created_at).limit(limit)
        ))

    def expired(self, now: datetime) -> list[ApprovalRequest]:
        return list(self.session.scalars(select(ApprovalRequest).where(
            t.approval_requests.c.status == "pending", t.approval_requests.c.expires_at < now,
        )))


class SeveralTablesRepository:
    """A repository over several small tables (policies, catalog): add any of their rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj):
        self.session.add(obj)
        self.session.flush()
        return obj


class PolicyRepository(SeveralTablesRepository):
    """Policy rows, read once per transaction."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._probabilities: dict[str, int] | None = None
        self._gates: list[GatePolicy] | None = None

    def add(self, obj):
        self._probabilities = self._gates = None
        return super().add(obj)

    def stage_probabilities(self) -> dict[str, int]:
        if self._probabilities is None:
            self._probabilities = {p.stage: p.probability for p in self.session.scalars(select(StagePolicy))}
        return self._probabilities

    def gates(self) -> list[GatePolicy]:
        if self._gates is None:
            self._gates = list(self.session.scalars(select(GatePolicy).where(t.gate_policies.c.active.is_(True))))
        return self._gates

    def assignment_rules(self) -> list[AssignmentRule]:
        return list(self.session.scalars(
            select(AssignmentRule).where(t.assignment_rules.c.active.is_(True))
            .order_by(t.assignment_rules.c.priority, t.assignment_rules.c.id)
        ))


class QuoteRepository(SqlRepository[Quote]):
    model = Quote

    def has_approved(self, opportunity_id: int) -> bool:
        return bool(self.session.scalar(select(exists().where(
            t.quotes.c.opportunity_id == opportunity_id,
            t.quotes.c.status.in_(sorted(APPROVED_OR_LATER)),
        ))))

    def for_opportunity(self, opportunity_id: int) -> list[Quote]:
        return list(self.session.scalars(select(Quote).where(t.quotes.c.opportunity_id == opportunity_id)
                                         .order_by(t.quotes.c.version)))

    def open_past_validity(self, today) -> list[Quote]:
        return list(self.session.scalars(select(Quote).where(
            t.quotes.c.status.in_(["draft", "pending_approval", "approved", "rejected", "sent"]),
            t.quotes.c.valid_until < today).order_by(t.quotes.c.id)))

    def open_expiring(self, today, until) -> list[Quote]:
        """Approved or sent quotes whose validity ends between today and `until` (inclusive)."""
        return list(self.session.scalars(select(Quote).where(
            t.quotes.c.status.in_(["approved", "sent"]), t.quotes.c.valid_until >= today,
            t.quotes.c.valid_until <= until).order_by(t.quotes.c.id)))

    def won_line_discounts(self, product_ids: list[int], *, since: datetime) -> list[tuple]:
        """(line discount %, deal owner, deal id) of accepted quotes on deals won since `since`."""
        if not product_ids:
            return []
        rows = self.session.execute(
            select(t.quote_lines.c.discount_pct, t.opportunities.c.owner_id, t.opportunities.c.id)
            .join(t.quotes, t.quotes.c.id == t.quote_lines.c.quote_id)
            .join(t.opportunities, t.opportunities.c.id == t.quotes.c.opportunity_id)
            .where(t.quote_lines.c.product_id.in_(product_ids), t.quotes.c.status == "accepted",
                   t.opportunities.c.stage == "won", t.opportunities.c.stage_changed_at >= since))
        return [tuple(r) for r in rows]


class CatalogRepository(SeveralTablesRepository):
    """Products, price books and the discount policy; small, read on every quote."""

    def products(self) -> list[Product]:
        return list(self.session.scalars(select(Product).order_by(t.products.c.sku)))

    def product_by_sku(self, sku: str) -> Product | None:
        return self.session.scalar(select(Product).where(func.lower(t.products.c.sku) == sku.strip().lower()))

    def find_product(self, text: str) -> Product | None:
        """An active product by SKU, else by exact English or Chinese name (case-insensitive)."""
        found = self.product_by_sku(text)
        if found is not None:
            return found if found.active else None
        needle = text.strip().lower()
        return next((p for p in self.products()
                     if p.active and needle in (p.name_en.lower(), p.name_zh.lower())), None)

    def similar_products(self, text: str, limit: int = 3) -> list[str]:
        import difflib

        names = {p.sku: p for p in self.products() if p.active}
        keys = list(names) + [p.name_en for p in names.values()] + [p.name_zh for p in names.values()]
        hits = difflib.get_close_matches(text.strip(), keys, n=limit, cutoff=0.5)
        skus = {h if h in names else next(p.sku for p in names.values() if h in (p.name_en, p.name_zh)) for h in hits}
        return sorted(skus)

    def price_books(self) -> list[PriceBook]:
        return list(self.session.scalars(select(PriceBook).where(t.price_books.c.active.is_(True))))

    def price_book_for(self, region: str, currency: str) -> PriceBook | None:
        books = [b for b in self.price_books() if b.currency == currency]
        return next((b for b in books if b.region == region), None) or next(
            (b for b in books if b.region == "*"), None)

    def entry(self, price_book_id: int, product_id: int) -> PriceBookEntry | None:
        return self.session.scalar(select(PriceBookEntry).where(
            t.price_book_entries.c.price_book_id == price_book_id, t.price_book_entries.c.product_id == product_id))

    def discount_bands(self) -> list[DiscountBand]:
        return list(self.session.scalars(select(DiscountBand).order_by(t.discount_bands.c.priority)))


class ContractRepository(SqlRepository[Contract]):
    model = Contract

    def for_opportunity(self, opportunity_id: int) -> Contract | None:
        return self.session.scalar(select(Contract).where(t.contracts.c.opportunity_id == opportunity_id))

    def for_account(self, account_id: int) -> list[Contract]:
        return list(self.session.scalars(select(Contract).where(t.contracts.c.account_id == account_id)
                                         .order_by(t.contracts.c.id)))

    def by_number(self, number: str) -> Contract | None:
        return self.session.scalar(select(Contract).where(func.upper(t.contracts.c.number) == number.strip().upper()))

    def in_force(self) -> list[Contract]:
        return list(self.session.scalars(select(Contract).where(
            t.contracts.c.status.in_(["signed", "executing", "completed"])).order_by(t.contracts.c.id)))

    def lock_many(self, ids: Iterable[int]) -> list[Contract]:
        """Row locks in id order, so two payments over the same contracts never deadlock."""
        return [self.get_for_update(i) for i in sorted(set(ids))]


class OrderRepository(SqlRepository[Order]):
    model = Order

    def for_contract(self, contract_id: int) -> Order | None:
        return self.session.scalar(select(Order).where(t.orders.c.contract_id == contract_id))

    def by_number(self, number: str) -> Order | None:
        return self.session.scalar(select(Order).where(func.upper(t.orders.c.number) == number.strip().upper()))

    def with_milestones_due(self, until) -> list[Order]:
        """Open orders with a milestone still planned on or before `until`."""
        due = select(t.delivery_milestones.c.order_id).where(t.delivery_milestones.c.status == "planned",
                                                             t.delivery_milestones.c.planned_date <= until)
        return list(self.session.scalars(select(Order).where(t.orders.c.status == "open", t.orders.c.id.in_(due))
                                         .order_by(t.orders.c.id)))


class InvoiceRepository(SqlRepository[Invoice]):
    model = Invoice

    def for_contract(self, contract_id: int) -> list[Invoice]:
        return list(self.session.scalars(select(Invoice).where(t.invoices.c.contract_id == contract_id)
                                         .order_by(t.invoices.c.id)))

    def open_for_account(self, account_id: int, currency: str) -> list[Invoice]:
        """Open invoices oldest first (by due date): the order oldest-first allocation pays them in."""
        return list(self.session.scalars(select(Invoice).where(
            t.invoices.c.account_id == account_id, t.invoices.c.currency == currency,
            t.invoices.c.status.in_(sorted(OPEN_INVOICE))).order_by(t.invoices.c.due_on, t.invoices.c.id)))

    def open_all(self) -> list[Invoice]:
        return list(self.session.scalars(select(Invoice).where(t.invoices.c.status.in_(sorted(OPEN_INVOICE)))
                                         .order_by(t.invoices.c.due_on, t.invoices.c.id)))

    def by_number(self, number: str) -> Invoice | None:
        return self.session.scalar(select(Invoice).where(func.upper(t.invoices.c.number) == number.strip().upper()))

    def lock_many(self, ids: Iterable[int]) -> list[Invoice]:
        return [self.get_for_update(i) for i in sorted(set(ids))]


class PaymentRepository(SqlRepository[Payment]):
    model = Payment

    def by_number(self, number: str) -> Payment | None:
        return self.session.scalar(select(Payment).where(func.upper(t.payments.c.number) == number.strip().upper()))

    def by_bank_ref(self, bank_ref: str) -> Payment | None:
        return self.session.scalar(select(Payment).where(t.payments.c.bank_ref == bank_ref,
                                                         t.payments.c.status != "rejected"))

    def for_account(self, account_id: int) -> list[Payment]:
        return list(self.session.scalars(select(Payment).where(t.payments.c.account_id == account_id)
                                         .order_by(t.payments.c.id)))

    def for_invoice(self, invoice_id: int) -> list[Payment]:
        ids = select(t.payment_allocations.c.payment_id).where(t.payment_allocations.c.invoice_id == invoice_id)
        return list(self.session.scalars(select(Payment).where(t.payments.c.id.in_(ids)).order_by(t.payments.c.id)))

    def allocated_to(self, invoice_id: int) -> Decimal:
        return Decimal(str(self.session.scalar(select(func.coalesce(func.sum(t.payment_allocations.c.amount), 0))
                                               .where(t.payment_allocations.c.invoice_id == invoice_id)))).quantize(
            Decimal("0.01"))


class FinanceRepository(SeveralTablesRepository):
    """Promises to pay, revenue entries, incentive policy and contributions, and number sequences."""

    def promises_for(self, invoice_id: int) -> list[PromiseToPay]:
        return list(self.session.scalars(select(PromiseToPay).where(t.promises_to_pay.c.invoice_id == invoice_id)
                                         .order_by(t.promises_to_pay.c.id)))

    def revenue_for(self, contract_id: int) -> list[RevenueEntry]:
        return list(self.session.scalars(select(RevenueEntry).where(t.revenue_entries.c.contract_id == contract_id)
                                         .order_by(t.revenue_entries.c.id)))

    def incentive_plan(self) -> IncentivePlan | None:
        return self.session.scalar(select(IncentivePlan).where(t.incentive_plans.c.active.is_(True))
                                   .order_by(t.incentive_plans.c.id))

    def contributions_for(self, contract_id: int) -> list[Contribution]:
        return list(self.session.scalars(select(Contribution).where(t.contributions.c.contract_id == contract_id)
                                         .order_by(t.contributions.c.id)))

    def delete(self, obj) -> None:
        self.session.delete(obj)
        self.session.flush()

    def next_number(self, name: str) -> int:
        """The next value of a named counter, atomically (the row stays locked until commit)."""
        stmt = insert_for(self.session.get_bind().dialect.name)(t.number_sequences).values(name=name, value=1)
        stmt = stmt.on_conflict_do_update(index_elements=["name"],
                                          set_={"value": t.number_sequences.c.value + 1})
        return int(self.session.execute(stmt.returning(t.number_sequences.c.value)).scalar_one())


class AuditRepository(SqlRepository[AuditEntry]):
    model = AuditEntry

    def for_entity(self, entity: str, entity_id: int) -> list[AuditEntry]:
        return list(self.session.scalars(select(AuditEntry).where(
            t.audit_log.c.entity == entity, t.audit_log.c.entity_id == entity_id
        ).order_by(t.audit_log.c.id)))


class PendingActionRepository(SqlRepository[PendingAction]):
    model = PendingAction

    def by_token_for_update(self, token_hash: str) -> PendingAction | None:
        stmt = (select(PendingAction).where(t.pending_actions.c.token_hash == token_hash).with_for_update()
                .execution_options(populate_existing=True))
        return self.session.scalars(stmt).one_or_none()


class OutboxRepository(SqlRepository[OutboxMessage]):
    """Events are buffered and written in one INSERT … ON CONFLICT (key) DO NOTHING before commit."""

    model = OutboxMessage

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.pending: dict[str, OutboxMessage] = {}

    def add(self, obj: OutboxMessage) -> OutboxMessage:
        return self.pending.setdefault(obj.key, obj)

    def write_pending(self) -> None:
        if not self.pending:
            return
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            dialect_insert = None
        rows = [{"key": m.key, "topic": m.topic, "payload": m.payload, "created_at": m.created_at,
                 "available_at": m.available_at, "attempts": m.attempts} for m in self.pending.values()]
        if dialect_insert is not None:
            self.session.execute(dialect_insert(t.outbox).on_conflict_do_nothing(index_elements=["key"]), rows)
        else:  # other databases: skip keys already written, then insert
            existing = set(self.session.scalars(select(t.outbox.c.key).where(t.outbox.c.key.in_(list(self.pending)))))
            fresh = [r for r in rows if r["key"] not in existing]
            if fresh:
                self.session.execute(insert(t.outbox), fresh)
        self.pending.clear()

    def all(self) -> list[OutboxMessage]:
        self.write_pending()
        return super().all()
