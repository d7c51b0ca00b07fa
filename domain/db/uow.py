"""Unit of work: one use case, one transaction. Commit is explicit; leaving the block rolls back."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from domain.db import repositories as r
from domain.db.orm import start_mappers
from domain.errors import Conflict


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
        self.audit = r.AuditRepository(s)
        self.outbox = r.OutboxRepository(s)
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
        if isinstance(exc, IntegrityError):
            raise Conflict(f"The change breaks a database rule: {exc.orig}") from exc
        if isinstance(exc, StaleDataError):
            raise Conflict("Someone else changed this record at the same time; load it again and retry") from exc

    def commit(self) -> None:
        assert self.session is not None, "commit outside `with uow:`"
        try:
            self.session.commit()
        except StaleDataError as e:
            self.session.rollback()
            raise Conflict("Someone else changed this record at the same time; load it again and retry") from e
        except IntegrityError as e:
            self.session.rollback()
            raise Conflict(f"The change breaks a database rule: {e.orig}") from e
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
        except IntegrityError as e:
            self.session.rollback()
            raise Conflict(f"The change breaks a database rule: {e.orig}") from e


def session_factory(engine: Engine) -> sessionmaker[Session]:
    start_mappers()
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
