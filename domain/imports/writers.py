"""Writing prepared rows: leads, accounts and contacts one by one through their domain services
(the same RBAC, audit with the caller's channel, and outbox events as a person creating them by
hand); opportunities checked one by one and written in batches (OpportunityBatch, and
domain.imports.pipeline for why).

A row ends "created" or "existing" (already there, left alone: leads de-duplicated by the leads
service, accounts by name, contacts by name/email on their account, opportunities by name on
their account), or raises a domain error / RowErrors that becomes the row's problems.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import Conflict, LTCError
from domain.imports.pipeline import build, check_owner, record
from domain.imports.resolve import AccountBook, OwnerPolicy, People
from domain.model.opportunities import CLOSED_STAGES
from domain.model.vocab import LeadSource, LeadStatus, Stage
from domain.rbac import UseCase
from domain.services import accounts as account_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.services.base import begin, parse


class RowErrors(Exception):
    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(p for _, p in problems))
        self.problems = problems


class Env:
    """What the rows of one unit of work share: people, accounts, policies."""

    def __init__(self, uow, actor: Actor, *, unknown_owner: OwnerPolicy, missing_account: str) -> None:
        self.uow, self.actor = uow, actor
        self.people = People(uow.users.all())
        self.owner_policy = unknown_owner
        self.missing_account = missing_account
        self.accounts = AccountBook(uow.session)
        self._new: list[tuple[str, int]] = []  # accounts the current row created

    def keep(self) -> None:
        """The row was written: the accounts it created are real for the rows after it."""
        for name, aid in self._new:
            self.accounts.remember(name, aid)
        self._new = []

    def drop(self) -> None:
        self._new = []

    def owner(self, values: dict[str, Any], problems: list) -> int | None:
        uid, why = self.people.owner(values.get("owner"), self.owner_policy)
        if why:
            problems.append(("owner", why + " (--unknown-owner assign:<email> gives such rows to someone)"))
        return uid

    def account(self, name: str, owner_id: int | None) -> int:
        """The account a row names; created under --missing-account create, else a row error."""
        found = self.accounts.find(name)
        if found is not None:
            return found
        if self.missing_account != "create":
            raise RowErrors([("account", f"account '{name}' does not exist "
                                         f"(--missing-account create would create it)")])
        view = account_svc.create_account({"name": name, "owner_id": owner_id}, actor=self.actor, uow=self.uow)
        self._new.append((name, view.id))
        return view.id


def _pick(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: values[k] for k in names if values.get(k) is not None}


LEAD_INPUT = ("company", "contact_name", "title", "email", "phone", "region", "need", "budget", "currency",
              "timeline", "authority", "notes")


def write_lead(uow, actor: Actor, values: dict[str, Any], env: Env) -> str:
    problems: list = []
    owner_id = env.owner(values, problems)
    if problems:
        raise RowErrors(problems)
    data = {**_pick(values, LEAD_INPUT), "source": values.get("source") or LeadSource.OTHER.value,
            "owner_id": owner_id}
    view = lead_svc.create_lead(data, actor=actor, uow=uow)
    if not view.created:
        return "existing"
    status = values.get("status")
    if status and status != LeadStatus.NEW.value:
        lead_svc.change_lead_status(view.id, status, reason=values.get("disqualify_reason"), actor=actor, uow=uow)
    return "created"


def write_account(uow, actor: Actor, values: dict[str, Any], env: Env) -> str:
    problems: list = []
    owner_id = env.owner(values, problems)
    if problems:
        raise RowErrors(problems)
    if env.accounts.find(values["name"]) is not None:
        return "existing"
    view = account_svc.create_account({**_pick(values, ("name", "industry", "region", "tier")),
                                       "owner_id": owner_id}, actor=actor, uow=uow)
    env._new.append((values["name"], view.id))  # known to later rows once this row is kept
    return "created"


def write_contact(uow, actor: Actor, values: dict[str, Any], env: Env) -> str:
    account_id = env.accounts.find(values["account"])
    if account_id is None:  # the owner matters only for an account this row would create
        problems: list = []
        owner_id = env.owner(values, problems)
        if problems:
            raise RowErrors(problems)
        account_id = env.account(values["account"], owner_id)
    try:
        account_svc.add_contact(account_id, _pick(values, ("name", "title", "email", "phone", "decision_role",
                                                           "relationship")), actor=actor, uow=uow)
    except Conflict as exc:
        if "contact_id" in exc.details:
            return "existing"
        raise
    return "created"


class NeedsEmptyBatch(Exception):
    """The row creates an account: the staged deals are written first (see OpportunityBatch.add)."""


class BatchFailed(Exception):
    """A batch's INSERTs failed: it was rolled back; its rows are retried one by one."""

    def __init__(self, rows: list[tuple[int, dict[str, Any]]], error: Exception) -> None:
        super().__init__(f"{len(rows)} rows to retry: {error}")
        self.rows, self.error = rows, error


class OpportunityBatch:
    """Deals checked one by one, written `size` at a time (domain.imports.pipeline says why).

    `add` runs every check of the row and stages its deal in the session without SQL (no
    autoflush), or raises the row's problem with nothing of the row written. `drain` inserts the
    staged deals and their history (one flush), then their audit rows and events (one flush),
    inside a SAVEPOINT taken when the batch began; if the database refuses the batch, the
    savepoint is rolled back and BatchFailed hands the rows back to be retried one at a time.
    """

    def __init__(self, uow, actor: Actor, env: Env, *, size: int = 250) -> None:
        self.uow, self.env, self.size = uow, env, size
        self.ctx = begin(uow, actor, UseCase.CREATE_OPPORTUNITY)
        self.probabilities = uow.policies.stage_probabilities()
        self.staged: list[tuple[int, dict[str, Any], Any]] = []
        self.savepoint = None
        self.events: set[str] = set()
        self.names: dict[int, set[str]] = {}  # deal names per account (lower case), to find re-imports
        self.accounts: dict[int, Any] = {}  # accounts checked visible, held (the identity map is weak)

    def full(self) -> bool:
        return len(self.staged) >= self.size

    def add(self, number: int, values: dict[str, Any]) -> str:
        """'staged' or 'existing'; raises the row's problems (nothing of the row written)."""
        uow, env, ctx = self.uow, self.env, self.ctx
        problems: list = []
        owner_id = env.owner(values, problems) or ctx.user.id
        stage: Stage = values["stage"]
        now = uow.now()
        opened, closed_at = _timeline(values, stage, now, problems)
        if problems:
            raise RowErrors(problems)
        cmd = parse(opp_svc.OpportunityCreate, {
            **_pick(values, ("name", "amount", "currency", "next_step", "customer_need", "budget", "competitors")),
            "account_id": 1, "expected_close_date": values.get("close_date"), "owner_id": owner_id})
        owner = check_owner(uow.users.get(owner_id), owner_id)
        with uow.session.no_autoflush:
            account_id = env.accounts.find(values["account"])
            if account_id is None:
                if env.missing_account != "create":
                    raise RowErrors([("account", f"account '{values['account']}' does not exist "
                                                 f"(--missing-account create would create it)")])
                if self.staged:
                    raise NeedsEmptyBatch()
                with uow.session.begin_nested():  # the new account and its visibility, or neither
                    account_id = env.account(values["account"], owner_id)
                    self._account(account_id)
                env.keep()
            account = self._account(account_id)
            names = self._names(account_id)
            if cmd.name.lower() in names:
                return "existing"
            opp = build(ctx, self.probabilities, name=cmd.name, account=account, owner=owner, amount=cmd.amount,
                        currency=cmd.currency, expected_close_date=cmd.expected_close_date,
                        competitors=cmd.competitors, next_step=cmd.next_step, customer_need=cmd.customer_need,
                        budget=cmd.budget, stage=stage, opened=opened, closed_at=closed_at,
                        reason=values.get("close_reason"), now=now)
            if self.savepoint is None:  # nothing pending: taking it flushes nothing
                self.savepoint = uow.session.begin_nested()
                self.events = set(uow.outbox.pending)
            uow.session.add(opp)
        names.add(cmd.name.lower())
        self.staged.append((number, values, opp))
        return "staged"

    def drain(self) -> list[int]:
        """Write the staged deals; the row numbers written."""
        if not self.staged:
            return []
        staged, savepoint, self.staged, self.savepoint = self.staged, self.savepoint, [], None
        session = self.uow.session
        try:
            session.flush()
            for _, _, opp in staged:
                record(self.uow, self.ctx, opp)
            session.flush()
            savepoint.commit()
        except (SQLAlchemyError, LTCError) as exc:
            savepoint.rollback()  # also after a failed flush, which leaves it deactivated, not closed
            for key in set(self.uow.outbox.pending) - self.events:
                del self.uow.outbox.pending[key]
            self.reset()
            raise BatchFailed([(n, v) for n, v, _ in staged], exc) from exc
        return [n for n, _, _ in staged]

    def reset(self) -> None:
        """Forget what a rolled-back batch may have left in the caches: read them again."""
        self.env.accounts = AccountBook(self.uow.session)
        self.names.clear()
        self.accounts.clear()

    def _account(self, account_id: int):
        if account_id not in self.accounts:
            self.accounts[account_id] = account_svc.visible_account(self.uow, self.ctx, account_id)
        return self.accounts[account_id]

    def _names(self, account_id: int) -> set[str]:
        if account_id not in self.names:
            rows = self.uow.session.scalars(select(t.opportunities.c.name)
                                            .where(t.opportunities.c.account_id == account_id))
            self.names[account_id] = {n.lower() for n in rows}
        return self.names[account_id]


def _timeline(values: dict[str, Any], stage: Stage, now: datetime, problems: list) -> tuple[datetime, datetime | None]:
    """When the deal opened and (closed deals) when it closed; see domain.imports.pipeline."""
    created_on, close_date = values.get("created_on"), values.get("close_date")
    today = now.date()
    if created_on is not None and created_on > today:
        problems.append(("created_on", f"created {created_on} is in the future"))
    closed_at = None
    if stage in CLOSED_STAGES:
        if close_date is None:
            problems.append(("close_date", f"a {stage.value} deal needs its close date"))
        elif close_date > today:
            problems.append(("close_date", f"a {stage.value} deal cannot close in the future ({close_date})"))
        elif created_on is not None and created_on > close_date:
            problems.append(("close_date", f"closed {close_date}, before it was created ({created_on})"))
        else:
            closed_at = datetime.combine(close_date, time())
    if created_on is not None and created_on <= today:
        opened = datetime.combine(created_on, time())
    else:
        opened = closed_at or now
    return opened, closed_at


WRITERS = {"leads": write_lead, "accounts": write_account, "contacts": write_contact}  # opportunities: the batch

# Domain error fields → our import fields, so a problem names the file's column.
FIELD_OF = {"owner_id": "owner", "account_id": "account", "expected_close_date": "close_date",
            "contact_name": "contact_name"}
REASON_FIELD = {"leads": "disqualify_reason", "opportunities": "close_reason"}


def field_of(kind: str, error_field: str | None) -> str | None:
    if not error_field:
        return None
    head = error_field.split(".", 1)[0]
    if head == "reason":
        return REASON_FIELD.get(kind)
    return FIELD_OF.get(head, head)

