"""Accounts and contacts (MCR): the customer, its decision chain, and the 360 view."""
from __future__ import annotations

from datetime import datetime

from pydantic import Field

from domain.actor import Actor
from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.model.accounts import Account, Contact
from domain.model.message_keys import keyed
from domain.model.vocab import Authority, DecisionChainRole, Role, Tier
from domain.normalize import company_norm, email_norm, person_norm
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, get_or_404, parse, snapshot
from domain.services.schemas import Email, Input, Name, Phone, View

ACCOUNT_FIELDS = ("name", "industry", "region", "tier", "owner_id")
CONTACT_FIELDS = ("account_id", "name", "title", "email", "phone", "decision_role", "relationship")
# A lead's authority suggests the contact's place in the decision chain.
AUTHORITY_TO_CHAIN = {
    Authority.DECISION_MAKER.value: DecisionChainRole.DECISION_MAKER.value,
    Authority.INFLUENCER.value: DecisionChainRole.INFLUENCER.value,
}


class AccountCreate(Input):
    name: Name
    industry: str | None = Field(None, max_length=100)
    region: str = Field("", max_length=50)
    tier: Tier = Tier.STANDARD
    owner_id: int | None = Field(None, description="the AR; defaults to the acting user")


class AccountUpdate(Input):
    name: Name | None = None
    industry: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=50)
    tier: Tier | None = None
    owner_id: int | None = None


class ContactCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    email: Email = None
    phone: Phone = None
    decision_role: DecisionChainRole = DecisionChainRole.USER
    relationship: int = Field(2, ge=1, le=5, description="1 = cold/unknown … 5 = trusted advocate")


class AccountView(View):
    id: int
    ref: str
    name: str
    industry: str | None
    region: str
    tier: str
    owner_id: int
    owner_name: str | None
    message: str = ""


class ContactView(View):
    id: int
    ref: str
    account_id: int
    name: str
    title: str | None
    email: str | None
    phone: str | None
    decision_role: str
    relationship: int


class ActivityLine(View):
    id: int
    kind: str
    subject: str
    occurred_at: datetime
    user_id: int
    opportunity_id: int | None


class OpportunityLine(View):
    id: int
    ref: str
    name: str
    stage: str
    amount: str
    currency: str
    probability: int
    owner_id: int


class Account360(View):
    account: AccountView
    contacts: list[ContactView]
    decision_chain_gaps: list[str]
    opportunities: list[OpportunityLine]
    open_pipeline: dict[str, str]
    activities: list[ActivityLine]


def account_view(uow, a: Account, message: str = "") -> AccountView:
    owner = uow.users.get(a.owner_id)
    return AccountView(id=a.id, ref=a.ref, name=a.name, industry=a.industry, region=a.region, tier=a.tier,
                       owner_id=a.owner_id, owner_name=owner.display_name() if owner else None, message=message)


def contact_view(c: Contact) -> ContactView:
    return ContactView(id=c.id, ref=c.ref, account_id=c.account_id, name=c.name, title=c.title, email=c.email,
                       phone=c.phone, decision_role=c.decision_role, relationship=c.relationship)


def visible_account(uow, ctx: Ctx, account_id: int) -> Account:
    account = get_or_404(uow.accounts, account_id, "Account",
                         f"ACC-{account_id:05d}" if isinstance(account_id, int) else account_id)
    if not ctx.scope.sees_account(account.owner_id, uow.accounts.deal_team_ids(account.id)):
        raise PermissionDenied(f"{account.ref} is not in your accounts or your team's deals",
                               details=keyed("account.not_visible", ref=account.ref))
    return account


def _check_ar(uow, owner_id: int) -> None:
    owner = uow.users.get(owner_id)
    if owner is None or not owner.active:
        raise NotFound(f"User {owner_id} does not exist or is inactive", field="owner_id")
    if not owner.has_role(Role.SALES_REP, Role.SALES_MANAGER, Role.DIRECTOR):
        raise ValidationFailed(f"{owner.display_name()} cannot be an account's AR (needs a sales role)",
                               field="owner_id")


def find_or_create_account(uow, ctx: Ctx, *, account_id: int | None, name: str, owner_id: int,
                           region: str = "", industry: str | None = None) -> tuple[Account, bool]:
    if account_id is not None:
        return visible_account(uow, ctx, account_id), False
    existing = uow.accounts.by_name_norm(company_norm(name))
    if existing is not None:
        return existing, False
    return _new_account(uow, ctx, AccountCreate(name=name, region=region, industry=industry), owner_id), True


def _new_account(uow, ctx: Ctx, cmd: AccountCreate, owner_id: int) -> Account:
    _check_ar(uow, owner_id)
    now = uow.now()
    account = Account(name=cmd.name, name_norm=company_norm(cmd.name), industry=cmd.industry, region=cmd.region,
                      tier=cmd.tier.value, owner_id=owner_id, created_at=now, updated_at=now)
    uow.accounts.add(account)
    uow.flush()
    audit(uow, ctx, "account", account.id, "create", None, snapshot(account, ACCOUNT_FIELDS))
    return account


def find_or_create_contact(uow, ctx: Ctx, *, account: Account, name: str, title: str | None,
                           email: str | None, phone: str | None, authority: str) -> Contact:
    for c in uow.contacts.for_account(account.id):
        if (email and email_norm(c.email) == email_norm(email)) or person_norm(c.name) == person_norm(name):
            return c
    return _new_contact(uow, ctx, account, ContactCreate(
        name=name, title=title, email=email, phone=phone,
        decision_role=AUTHORITY_TO_CHAIN.get(authority, DecisionChainRole.USER.value)))


def _new_contact(uow, ctx: Ctx, account: Account, cmd: ContactCreate) -> Contact:
    contact = Contact(account_id=account.id, name=cmd.name, title=cmd.title, email=cmd.email, phone=cmd.phone,
                      decision_role=cmd.decision_role.value, relationship=cmd.relationship, created_at=uow.now())
    uow.contacts.add(contact)
    audit(uow, ctx, "contact", contact.id, "create", None, snapshot(contact, CONTACT_FIELDS))
    return contact


def create_account(data: AccountCreate | dict, *, actor: Actor, uow) -> AccountView:
    ctx = begin(uow, actor, UseCase.CREATE_ACCOUNT)
    cmd = parse(AccountCreate, data)
    existing = uow.accounts.by_name_norm(company_norm(cmd.name))
    if existing is not None:
        raise Conflict(f"Account {existing.ref} '{existing.name}' already exists", field="name",
                       details={"account_id": existing.id})
    account = _new_account(uow, ctx, cmd, cmd.owner_id or ctx.user.id)
    return account_view(uow, account, message=f"{account.ref} created")


def update_account(account_id: int, data: AccountUpdate | dict, *, actor: Actor, uow) -> AccountView:
    ctx = begin(uow, actor, UseCase.UPDATE_ACCOUNT)
    cmd = parse(AccountUpdate, data)
    account = visible_account(uow, ctx, account_id)
    if not (ctx.user.id == account.owner_id or ctx.user.roles & {Role.ADMIN, Role.SALES_OPS}
            or (ctx.scope.is_manager and account.owner_id in ctx.scope.subtree)):
        raise PermissionDenied(f"Only {account.ref}'s AR or their managers may change it",
                               details=keyed("account.ar_only", ref=account.ref))
    changes = cmd.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update: give at least one field", allowed=list(AccountUpdate.model_fields))
    if "owner_id" in changes:
        if changes["owner_id"] is None:
            raise ValidationFailed("owner_id cannot be cleared: every account has an AR", field="owner_id")
        _check_ar(uow, changes["owner_id"])
    for k, v in changes.items():
        if v is None and k in ("name", "region", "tier"):
            raise ValidationFailed(f"{k} cannot be cleared", field=k)
    if "name" in changes:
        clash = uow.accounts.by_name_norm(company_norm(changes["name"]))
        if clash is not None and clash.id != account.id:
            raise Conflict(f"Account {clash.ref} already has the name '{clash.name}'", field="name")
    before = snapshot(account, ACCOUNT_FIELDS)
    for k, v in changes.items():
        setattr(account, k, v.value if hasattr(v, "value") else v)
    if "name" in changes:
        account.name_norm = company_norm(account.name)
    account.updated_at = uow.now()
    uow.flush()
    audit(uow, ctx, "account", account.id, "update", before, snapshot(account, ACCOUNT_FIELDS))
    return account_view(uow, account, message=f"{account.ref} updated")


def add_contact(account_id: int, data: ContactCreate | dict, *, actor: Actor, uow) -> ContactView:
    ctx = begin(uow, actor, UseCase.ADD_CONTACT)
    cmd = parse(ContactCreate, data)
    account = visible_account(uow, ctx, account_id)
    for c in uow.contacts.for_account(account.id):
        if person_norm(c.name) == person_norm(cmd.name) or (cmd.email and email_norm(c.email) == email_norm(cmd.email)):
            raise Conflict(f"{c.ref} {c.name} is already a contact of {account.ref}", field="name",
                           details={"contact_id": c.id})
    return contact_view(_new_contact(uow, ctx, account, cmd))


def account_360(account_id: int, *, actor: Actor, uow) -> Account360:
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    account = visible_account(uow, ctx, account_id)
    contacts = uow.contacts.for_account(account.id)
    opps = uow.opportunities.list(ctx.scope, account_id=account.id, limit=1000)
    roles_present = {c.decision_role for c in contacts}
    gaps = [f"no {r.value.replace('_', ' ')} known" for r in
            (DecisionChainRole.DECISION_MAKER, DecisionChainRole.TECHNICAL_EVALUATOR) if r.value not in roles_present]
    pipeline: dict[str, object] = {}
    for o in opps:
        if o.is_open:
            pipeline[o.currency] = pipeline.get(o.currency, 0) + o.amount
    return Account360(
        account=account_view(uow, account),
        contacts=[contact_view(c) for c in contacts],
        decision_chain_gaps=gaps,
        opportunities=[OpportunityLine(id=o.id, ref=o.ref, name=o.name, stage=o.stage, amount=str(o.amount),
                                       currency=o.currency, probability=o.probability, owner_id=o.owner_id)
                       for o in opps],
        open_pipeline={k: str(v) for k, v in pipeline.items()},
        activities=[ActivityLine(id=a.id, kind=a.kind, subject=a.subject, occurred_at=a.occurred_at,
                                 user_id=a.user_id, opportunity_id=a.opportunity_id)
                    for a in uow.activities.for_subject(account_id=account.id, limit=200)
                    if a.opportunity_id is None or a.opportunity_id in {o.id for o in opps}][:20],
    )


def list_accounts(*, actor: Actor, uow, limit: int = 100) -> list[AccountView]:
    ctx = begin(uow, actor, UseCase.VIEW_ACCOUNT)
    return [account_view(uow, a) for a in uow.accounts.list(ctx.scope, limit=max(1, min(limit, 1000)))]
