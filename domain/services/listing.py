"""Paged reads for integrations: keyset pages by id, filters, and exactly the visibility of the views.

Every list here answers what the matching `get_*` service would show, one record at a time: the
visibility rules of `domain.rbac.Scope` (sees_lead, sees_account, sees_opportunity) and of
payments._sees_payment, written as SQL so a rep's page never scans other people's rows. Records
come out through the services' own view functions: never an ORM object.

Pages are keyset pages: `after_id` (the last id of the previous page) and `limit`; a page says the
id to continue after, or None on the last page. Rows are in id order, so a row created while a
client pages through shows up at the end, and none is skipped or repeated.

Reads by id answer "not found" when the record exists but the caller may not see it, so an
integration cannot probe for ids it has no business knowing (a missing role stays "permission
denied": that says nothing about any record).

SQL only (SqlAlchemyUnitOfWork): these reads serve the REST edge, which always has a database.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, exists, or_, select

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model import billing as b
from domain.model import contracts as c
from domain.model import delivery as d
from domain.model import quotes as q
from domain.model.accounts import Account, Contact
from domain.model.billing import Invoice, Payment
from domain.model.contracts import Contract
from domain.model.delivery import Order
from domain.model.leads import Lead
from domain.model.message_keys import keyed, slug
from domain.model.opportunities import Opportunity
from domain.model.quotes import Quote
from domain.model.vocab import LeadSource, LeadStatus, Role, Stage
from domain.rbac import Scope, UseCase
from domain.services import accounts as account_svc
from domain.services import billing as billing_svc
from domain.services import contracts as contract_svc
from domain.services import delivery as delivery_svc
from domain.services import leads as lead_svc
from domain.services import opportunities as opp_svc
from domain.services import payments as payment_svc
from domain.services import quotes as quote_svc
from domain.services.accounts import AccountView, ContactView
from domain.services.base import Ctx, begin
from domain.services.billing import InvoiceView
from domain.services.contracts import ContractView
from domain.services.delivery import OrderView
from domain.services.leads import LeadView
from domain.services.opportunities import OpportunityView
from domain.services.payments import PaymentView
from domain.services.quotes import QuoteView

V = TypeVar("V")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Slice(Generic[V]):
    """One page: the views, and the id to continue after (None on the last page)."""

    items: list[V]
    next_after_id: int | None


# --- visibility as SQL ------------------------------------------------------------------------------

def _pool(scope: Scope) -> list[int]:
    """Scope.sees_people's people: the user, or a manager's whole subtree."""
    return sorted(scope.subtree if scope.is_manager else {scope.user_id})


def deal_visible(scope: Scope):
    """Scope.sees_opportunity on t.opportunities (None = no restriction)."""
    if scope.sees_all:
        return None
    pool, o, m = _pool(scope), t.opportunities, t.opportunity_members
    clauses = [o.c.owner_id.in_(pool), exists().where(m.c.opportunity_id == o.c.id, m.c.user_id.in_(pool))]
    if scope.stages:
        clauses.append(o.c.stage.in_(sorted(s.value for s in scope.stages)))
    return or_(*clauses)


def _via_deal(scope: Scope, opportunity_id_column, *joins):
    """Rows whose deal the scope sees; `joins` link the row's table to t.opportunities."""
    visible = deal_visible(scope)
    if visible is None:
        return None
    return exists().where(t.opportunities.c.id == opportunity_id_column, *joins, visible)


def _lead_visible(scope: Scope):
    """Scope.sees_lead: an unassigned lead is seen only by those who see everything."""
    return None if scope.sees_all else t.leads.c.owner_id.in_(_pool(scope))


def _account_visible(scope: Scope, account_id_column=None):
    """Scope.sees_account: finance and legal see customer master data; sellers their own and their deals'."""
    if scope.sees_all or scope.stages:
        return None
    pool, a, o, m = _pool(scope), t.accounts, t.opportunities, t.opportunity_members
    on_team = exists().where(o.c.account_id == a.c.id, or_(
        o.c.owner_id.in_(pool), exists().where(m.c.opportunity_id == o.c.id, m.c.user_id.in_(pool))))
    mine = or_(a.c.owner_id.in_(pool), on_team)
    if account_id_column is None:
        return mine
    return exists().where(a.c.id == account_id_column, mine)


def _payment_visible(ctx: Ctx):
    """payments._sees_payment: its proposer, or every deal its money touches (and at least one)."""
    if ctx.scope.sees_all or Role.FINANCE in ctx.user.roles:
        return None
    p, al, i, k, o = t.payments, t.payment_allocations, t.invoices, t.contracts, t.opportunities
    visible = deal_visible(ctx.scope)
    named_hidden = and_(p.c.contract_id.is_not(None), ~exists().where(
        k.c.id == p.c.contract_id, o.c.id == k.c.opportunity_id, visible))
    paid_hidden = exists().where(al.c.payment_id == p.c.id, i.c.id == al.c.invoice_id, k.c.id == i.c.contract_id,
                                 o.c.id == k.c.opportunity_id, ~visible)
    linked = or_(p.c.contract_id.is_not(None), exists().where(al.c.payment_id == p.c.id))
    return or_(p.c.created_by == ctx.user.id, and_(linked, ~named_hidden, ~paid_hidden))


# --- paging ---------------------------------------------------------------------------------------------

def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def _after(after_id: int | None) -> int:
    if after_id is None:
        return 0
    if not isinstance(after_id, int) or after_id < 0:
        raise ValidationFailed("The cursor does not point at a record", field="cursor")
    return after_id


def _since(value: datetime | None) -> datetime | None:
    """Times are stored as naive UTC: an aware time is converted, a naive one taken as UTC."""
    if value is not None and value.tzinfo is not None:
        try:
            return value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # an instant before year 1 or after 9999 in UTC: every row or none is later
            return datetime.min if value.year == 1 else datetime.max
    return value


def _choice(value: str | None, allowed, field: str) -> str | None:
    allowed = [getattr(x, "value", x) for x in allowed]
    if value is not None and value not in allowed:
        raise ValidationFailed(f"Unknown {field} '{value}'", field=field, allowed=allowed)
    return value


def _page(uow, model, table, where: list, after_id: int | None, limit: int,
          to_view: Callable[[Any], V]) -> Slice[V]:
    limit = _limit(limit)
    stmt = select(model).where(table.c.id > _after(after_id), *(w for w in where if w is not None))
    rows = list(uow.session.scalars(stmt.order_by(table.c.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Slice(items=[to_view(r) for r in rows], next_after_id=rows[-1].id if more and rows else None)


def _eq(column, value):
    return None if value is None else column == value


def _ge(column, value):
    return None if value is None else column >= value


# --- lists ----------------------------------------------------------------------------------------------

def list_leads(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
               status: str | None = None, owner_id: int | None = None, source: str | None = None,
               updated_since: datetime | None = None) -> Slice[LeadView]:
    ctx = begin(uow, actor, UseCase.VIEW_LEAD)
    ld = t.leads
    where = [_lead_visible(ctx.scope), _eq(ld.c.status, _choice(status, LeadStatus, "status")),
             _eq(ld.c.owner_id, owner_id), _eq(ld.c.source, _choice(source, LeadSource, "source")),
             _ge(ld.c.updated_at, _since(updated_since))]
    return _page(uow, Lead, ld, where, after_id, limit, lambda x: lead_svc.to_view(uow, x))


def list_accounts(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                  owner_id: int | None = None, region: str | None = None,
                  updated_since: datetime | None = None) -> Slice[AccountView]:
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    a = t.accounts
    where = [_account_visible(ctx.scope), _eq(a.c.owner_id, owner_id), _eq(a.c.region, region),
             _ge(a.c.updated_at, _since(updated_since))]
    return _page(uow, Account, a, where, after_id, limit, lambda x: account_svc.account_view(uow, x))


def list_contacts(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                  account_id: int | None = None, created_since: datetime | None = None) -> Slice[ContactView]:
    """Contacts of the accounts the caller sees (a contact is part of its account's master data)."""
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    ct = t.contacts
    where = [_account_visible(ctx.scope, ct.c.account_id), _eq(ct.c.account_id, account_id),
             _ge(ct.c.created_at, _since(created_since))]
    return _page(uow, Contact, ct, where, after_id, limit, account_svc.contact_view)


def list_opportunities(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                       stage: str | None = None, owner_id: int | None = None, account_id: int | None = None,
                       updated_since: datetime | None = None) -> Slice[OpportunityView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    o = t.opportunities
    where = [deal_visible(ctx.scope), _eq(o.c.stage, _choice(stage, Stage, "stage")), _eq(o.c.owner_id, owner_id),
             _eq(o.c.account_id, account_id), _ge(o.c.updated_at, _since(updated_since))]
    return _page(uow, Opportunity, o, where, after_id, limit, lambda x: opp_svc.to_view(uow, x))


def list_quotes(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                opportunity_id: int | None = None, status: str | None = None,
                created_since: datetime | None = None) -> Slice[QuoteView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    qt = t.quotes
    where = [_via_deal(ctx.scope, qt.c.opportunity_id), _eq(qt.c.opportunity_id, opportunity_id),
             _eq(qt.c.status, _choice(status, q.STATUSES, "status")), _ge(qt.c.created_at, _since(created_since))]
    return _page(uow, Quote, qt, where, after_id, limit, lambda x: quote_svc.to_view(x, uow=uow))


def list_contracts(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                   status: str | None = None, account_id: int | None = None, opportunity_id: int | None = None,
                   created_since: datetime | None = None) -> Slice[ContractView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    k = t.contracts
    where = [_via_deal(ctx.scope, k.c.opportunity_id), _eq(k.c.status, _choice(status, c.STATUSES, "status")),
             _eq(k.c.account_id, account_id), _eq(k.c.opportunity_id, opportunity_id),
             _ge(k.c.created_at, _since(created_since))]
    return _page(uow, Contract, k, where, after_id, limit, lambda x: contract_svc.to_view(uow, x))


def list_orders(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                status: str | None = None, contract_id: int | None = None,
                created_since: datetime | None = None) -> Slice[OrderView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    od, k = t.orders, t.contracts
    where = [_via_deal(ctx.scope, k.c.opportunity_id, k.c.id == od.c.contract_id),
             _eq(od.c.status, _choice(status, d.ORDER_STATUSES, "status")), _eq(od.c.contract_id, contract_id),
             _ge(od.c.created_at, _since(created_since))]
    return _page(uow, Order, od, where, after_id, limit, lambda x: delivery_svc.to_view(uow, x))


def list_invoices(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                  status: str | None = None, contract_id: int | None = None, account_id: int | None = None,
                  issued_since: date | None = None) -> Slice[InvoiceView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    i, k = t.invoices, t.contracts
    where = [_via_deal(ctx.scope, k.c.opportunity_id, k.c.id == i.c.contract_id),
             _eq(i.c.status, _choice(status, b.INVOICE_STATUSES, "status")), _eq(i.c.contract_id, contract_id),
             _eq(i.c.account_id, account_id), _ge(i.c.issued_on, issued_since)]
    return _page(uow, Invoice, i, where, after_id, limit, lambda x: billing_svc.to_view(uow, x))


def list_payments(*, actor: Actor, uow, after_id: int | None = None, limit: int = DEFAULT_LIMIT,
                  status: str | None = None, account_id: int | None = None,
                  received_since: date | None = None) -> Slice[PaymentView]:
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    p = t.payments
    where = [_payment_visible(ctx), _eq(p.c.status, _choice(status, b.PAYMENT_STATUSES, "status")),
             _eq(p.c.account_id, account_id), _ge(p.c.received_on, received_since)]
    return _page(uow, Payment, p, where, after_id, limit, lambda x: payment_svc.to_view(uow, x))


# --- one record by id -----------------------------------------------------------------------------------

def _missing(label: str, id_: object, field: str = "id") -> NotFound:
    return NotFound(f"{label} {id_} does not exist", field=field,
                    details=keyed(f"not_found.{slug(label)}", ref=id_))


def _read(use_case: UseCase, label: str, read: Callable[..., V], id_: int, *, actor: Actor, uow,
          field: str = "id") -> V:
    """The record's view; one and the same "does not exist" whether it is missing or hidden from the actor."""
    begin(uow, actor, use_case)  # a missing role is a permission error before any record is looked at
    try:
        return read(id_, actor=actor, uow=uow)
    except (NotFound, PermissionDenied):
        raise _missing(label, id_, field) from None


def get_lead(lead_id: int, *, actor: Actor, uow, field: str = "id") -> LeadView:
    return _read(UseCase.VIEW_LEAD, "Lead", lead_svc.get_lead, lead_id, actor=actor, uow=uow, field=field)


def _account(account_id: int, *, actor: Actor, uow) -> AccountView:
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    return account_svc.account_view(uow, account_svc.visible_account(uow, ctx, account_id))


def get_account(account_id: int, *, actor: Actor, uow, field: str = "id") -> AccountView:
    return _read(UseCase.VIEW_ACCOUNT, "Account", _account, account_id, actor=actor, uow=uow, field=field)


def _contact(contact_id: int, *, actor: Actor, uow) -> ContactView:
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    contact = uow.contacts.get(contact_id) if contact_id > 0 else None
    if contact is None:
        raise _missing("Contact", contact_id)
    account_svc.visible_account(uow, ctx, contact.account_id)
    return account_svc.contact_view(contact)


def get_contact(contact_id: int, *, actor: Actor, uow, field: str = "id") -> ContactView:
    return _read(UseCase.VIEW_ACCOUNT, "Contact", _contact, contact_id, actor=actor, uow=uow, field=field)


def get_opportunity(opp_id: int, *, actor: Actor, uow, field: str = "id") -> OpportunityView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Opportunity", opp_svc.get_opportunity, opp_id, actor=actor, uow=uow,
                 field=field)


def get_quote(quote_id: int, *, actor: Actor, uow, field: str = "id") -> QuoteView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Quote", quote_svc.get_quote, quote_id, actor=actor, uow=uow, field=field)


def get_contract(contract_id: int, *, actor: Actor, uow, field: str = "id") -> ContractView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Contract", contract_svc.get_contract, contract_id, actor=actor, uow=uow,
                 field=field)


def get_order(order_id: int, *, actor: Actor, uow, field: str = "id") -> OrderView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Order", delivery_svc.get_order, order_id, actor=actor, uow=uow,
                 field=field)


def get_invoice(invoice_id: int, *, actor: Actor, uow, field: str = "id") -> InvoiceView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Invoice", billing_svc.get_invoice, invoice_id, actor=actor, uow=uow,
                 field=field)


def get_payment(payment_id: int, *, actor: Actor, uow, field: str = "id") -> PaymentView:
    return _read(UseCase.VIEW_OPPORTUNITY, "Payment", payment_svc.get_payment, payment_id, actor=actor, uow=uow,
                 field=field)


GETTERS: dict[str, Callable[..., Any]] = {
    "lead": get_lead, "account": get_account, "contact": get_contact, "opportunity": get_opportunity,
    "quote": get_quote, "contract": get_contract, "order": get_order, "invoice": get_invoice, "payment": get_payment,
}


def check_visible(kind: str, id_: int | None, *, actor: Actor, uow, field: str = "id") -> None:
    """Before acting on a record (or naming one): the same "does not exist" for missing and hidden records.

    The services refuse a record the actor may not see with "permission denied", which would tell an
    integration that the id exists; the API answers as for an id that does not.
    """
    if id_ is not None:
        GETTERS[kind](id_, actor=actor, uow=uow, field=field)
