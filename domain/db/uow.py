"""Unit of work: one use case, one transaction. Commit is explicit; leaving the block rolls back."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
import logging
import re

from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from domain.db import repositories as r
from domain.db.orm import start_mappers
from domain.errors import Conflict


log = logging.getLogger(__name__)

# What a person should read when a database rule stops a change (constraint name → message).
FRIENDLY = {
    "uq_leads_email_norm": "A lead with this email already exists",
    "uq_leads_phone_norm": "A lead with this phone number already exists",
    "uq_leads_identity_norm": "A lead for this company and contact already exists",
    "uq_accounts_name_norm": "An account with this name already exists",
    "uq_users_email": "A user with this email already exists",
    "uq_approval_requests_one_pending": "A request of this kind is already waiting for a decision",
    "uq_approval_decisions_request_id_step_seq": "This step has already been decided",
    "uq_opportunity_members_triangle_seat": "That iron-triangle seat is already taken",
    "uq_contracts_opportunity_id": "This deal already has a contract; change it with a change order",
    "uq_contracts_quote_id": "A contract already exists for this quote",
    "uq_orders_contract_id": "This contract already has an order",
    "uq_payments_bank_ref": "A payment with this bank reference is already recorded",
    "uq_invoices_one_per_milestone": "This payment milestone is already invoiced",
    "uq_change_orders_one_pending": "A change order for this contract is already waiting for a decision",
    "ck_contracts_paid_le_invoiced_le_value": "That would invoice or collect more than the contract value",
    "ck_invoices_paid_le_amount": "That would pay more than the invoice amount",
}
RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure (PostgreSQL)


def _sqlite_unique_names() -> dict[str, str]:
    """SQLite names the columns of a broken UNIQUE rule, not the rule: map "t.a, t.b" to its name."""
    from sqlalchemy import UniqueConstraint

    from domain.db.tables import metadata

    names = {}
    for table in metadata.tables.values():
        rules = [(c.name, [col.name for col in c.columns]) for c in table.constraints
                 if isinstance(c, UniqueConstraint)]
        rules += [(ix.name, [col.name for col in ix.columns]) for ix in table.indexes if ix.unique]
        rules += [(f"uq_{table.name}_{col.name}", [col.name]) for col in table.columns if col.unique]
        for name, cols in rules:
            if name:
                names.setdefault(", ".join(f"{table.name}.{c}" for c in cols), str(name))
    return names


SQLITE_UNIQUE = _sqlite_unique_names()


def as_conflict(exc: Exception) -> Conflict | None:
    """The domain's view of a database failure, or None when it is not one we translate."""
    if isinstance(exc, StaleDataError):
        return Conflict("Someone else changed this record at the same time; load it again and retry")
    if isinstance(exc, IntegrityError):
        text = str(exc.orig)
        sqlite = re.search(r"UNIQUE constraint failed: (.+)$", text)
        if sqlite and sqlite.group(1).strip() in SQLITE_UNIQUE:
            text = SQLITE_UNIQUE[sqlite.group(1).strip()]
        for name, message in FRIENDLY.items():
            if name in text:
                return Conflict(message, details={"constraint": name})
        # The driver's text can carry whole rows (PostgreSQL's DETAIL): keep it in the logs only.
        log.warning("constraint violation: %s", exc.orig)
        return Conflict("The change breaks a database rule; nothing was saved",
                        details={"constraint": _constraint_name(str(exc.orig))})
    if isinstance(exc, DataError):
        log.warning("value rejected by the database: %s", exc.orig)
        return Conflict("A value is out of the range the database can store (an amount or quantity too large?); "
                        "nothing was saved")
    if isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE:
        return Conflict("The database was busy with a competing change; please try again")
    return None


def _constraint_name(text: str) -> str | None:
    m = re.search(r'constraint "([^"]+)"', text) or re.search(r"(?:UNIQUE|CHECK) constraint failed: (\S+)", text)
    return m.group(1) if m else None


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite keeps no zone, and one convention beats two.
    return datetime.now(UTC).replace(tzinfo=None)


class SqlAlchemyUnitOfWork:
    """`with uow: ...; uow.commit()`. Hooks in `after_commit` run only once data is durable."""

    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        clock: Callable[[], datetime] = utcnow,
        after_commit: list[Callable[[], None]] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.now = clock
        self.after_commit = after_commit if after_commit is not None else []
        self.session: Session | None = None

    def __enter__(self) -> "SqlAlchemyUnitOfWork":
        self.session = s = self.session_factory()
        self.users = r.UserRepository(s)
        self.teams = r.TeamRepository(s)
        self.leads = r.LeadRepository(s)
        self.accounts = r.AccountRepository(s)
        self.contacts = r.ContactRepository(s)
        self.opportunities = r.OpportunityRepository(s)
        self.activities = r.ActivityRepository(s)
        self.approvals = r.ApprovalRepository(s)
        self.policies = r.PolicyRepository(s)
        self.quotes = r.QuoteRepository(s)
        self.catalog = r.CatalogRepository(s)
        self.contracts = r.ContractRepository(s)
        self.orders = r.OrderRepository(s)
        self.invoices = r.InvoiceRepository(s)
        self.payments = r.PaymentRepository(s)
        self.finance = r.FinanceRepository(s)
        self.audit = r.AuditRepository(s)
        self.outbox = r.OutboxRepository(s)
        self.pending_actions = r.PendingActionRepository(s)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.session is not None
        try:
            self.session.rollback()
        finally:
            self.session.close()
            self.session = None
        # An autoflush inside a query can hit a constraint anywhere in a use case; callers
        # still only ever see the domain's Conflict.
        conflict = as_conflict(exc) if exc is not None else None
        if conflict is not None:
            raise conflict from exc

    def commit(self) -> None:
        assert self.session is not None, "commit outside `with uow:`"
        try:
            self.outbox.write_pending()
            self.session.commit()
        except (StaleDataError, IntegrityError, DataError, OperationalError) as e:
            self.session.rollback()
            conflict = as_conflict(e)
            if conflict is None:
                raise
            raise conflict from e
        for hook in list(self.after_commit):
            hook()

    def rollback(self) -> None:
        assert self.session is not None
        self.session.rollback()

    def flush(self) -> None:
        """Surface constraint errors as domain Conflicts before the use case goes on."""
        assert self.session is not None
        try:
            self.session.flush()
        except (StaleDataError, IntegrityError, DataError) as e:
            self.session.rollback()
            raise as_conflict(e) from e


def session_factory(engine: Engine) -> sessionmaker[Session]:
    start_mappers()
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
