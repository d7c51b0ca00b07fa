"""API keys for integrations: each acts as one service user, within its scopes.

A key reads `ltc_<prefix>_<secret>`. The prefix finds the row (unique, shown in listings so an
admin can tell keys apart); only the SHA-256 of the secret is stored. The secret is 32 random
bytes from `secrets`, so a fast hash is right: slow password hashes (bcrypt, argon2) exist to
make guessing *low-entropy* passwords expensive, and no one can guess 256 random bits, while a
slow hash would cost every API call tens of milliseconds. Comparison is constant-time.

What a key may do = its scopes (checked by the API edge) AND its user's roles (RBAC, in every
service it calls). Creating, listing and revoking keys is admin work, audited.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from pydantic import Field, field_validator
from sqlalchemy import insert, select, update

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import InvalidTransition, NotFound, Unauthenticated, ValidationFailed
from domain.model.records import AuditEntry
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, parse
from domain.services.schemas import Input, View

RESOURCES = ("leads", "accounts", "contacts", "opportunities", "quotes", "contracts", "orders", "invoices",
             "payments", "imports", "webhooks", "forms")
SCOPES = ("*", *(f"{r}:{a}" for r in RESOURCES for a in ("read", "write")))
SECRET_BYTES = 32
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is for humans: no write on every call


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    user_email: str = Field(min_length=3, max_length=200, description="the service user the key acts as")
    scopes: list[str] = Field(min_length=1)

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in SCOPES]
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)} (write <resource>:read|write, or *)")
        return sorted(set(value))


class ApiKeyView(View):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    user_id: int
    user_email: str
    created_by: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKey(ApiKeyView):
    key: str  # the plaintext, shown once: only its hash is stored


class Principal(View):
    """Who an authenticated API call acts as."""

    id: int
    name: str
    user_id: int
    scopes: list[str]
    last_used_at: datetime | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _views(uow, *where) -> list[ApiKeyView]:
    k, u = t.api_keys.c, t.users.c
    rows = uow.session.execute(select(t.api_keys, u.email).join(t.users, u.id == k.user_id)
                               .where(*where).order_by(k.id))
    return [ApiKeyView(id=r.id, name=r.name, prefix=r.prefix, scopes=list(r.scopes), user_id=r.user_id,
                       user_email=r.email, created_by=r.created_by, created_at=r.created_at,
                       last_used_at=r.last_used_at, revoked_at=r.revoked_at) for r in rows]


def _record(view: ApiKeyView) -> dict:
    return {"name": view.name, "prefix": view.prefix, "scopes": view.scopes, "user_id": view.user_id}


def create_key(data: ApiKeyCreate | dict, *, actor: Actor, uow) -> CreatedKey:
    ctx: Ctx = begin(uow, actor, UseCase.MANAGE_API_KEYS)
    cmd = parse(ApiKeyCreate, data)
    user = uow.users.by_email(cmd.user_email)
    if user is None:
        raise NotFound(f"No user with email {cmd.user_email}", field="user_email")
    if not user.active:
        raise ValidationFailed(f"User {user.email} is deactivated: a key acting as them could do nothing",
                               field="user_email")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(SECRET_BYTES)
    key_id = uow.session.execute(insert(t.api_keys).values(
        name=cmd.name, prefix=prefix, secret_hash=_hash(secret), scopes=cmd.scopes, user_id=user.id,
        created_by=ctx.user.id, created_at=uow.now())).inserted_primary_key[0]
    view = _views(uow, t.api_keys.c.id == key_id)[0]
    audit(uow, ctx, "api_key", key_id, "create", None, _record(view))
    return CreatedKey(**view.model_dump(), key=f"ltc_{prefix}_{secret}")


def list_keys(*, actor: Actor, uow) -> list[ApiKeyView]:
    begin(uow, actor, UseCase.MANAGE_API_KEYS)
    return _views(uow)


def revoke_key(key_id: int, *, actor: Actor, uow) -> ApiKeyView:
    ctx = begin(uow, actor, UseCase.MANAGE_API_KEYS)
    found = _views(uow, t.api_keys.c.id == key_id)
    if not found:
        raise NotFound(f"API key {key_id} does not exist", field="id")
    if found[0].revoked_at is not None:
        raise InvalidTransition(f"API key {key_id} ({found[0].name}) is already revoked", field="id")
    uow.session.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=uow.now()))
    audit(uow, ctx, "api_key", key_id, "revoke", {"revoked": False}, {"revoked": True})
    return _views(uow, t.api_keys.c.id == key_id)[0]


def authenticate(token: str, *, uow) -> Principal:
    """The key's principal, or Unauthenticated: unknown, malformed, revoked, or its user inactive.

    One message for every failure, so a caller cannot probe which prefixes exist.
    """
    refused = Unauthenticated("Invalid API key", details={"reason": "invalid_key"})
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "ltc" or not parts[1] or not parts[2]:
        raise refused
    k, u = t.api_keys.c, t.users.c
    row = uow.session.execute(select(k.id, k.name, k.secret_hash, k.scopes, k.user_id, k.revoked_at,
                                     k.last_used_at, u.active).join(t.users, u.id == k.user_id)
                              .where(k.prefix == parts[1])).first()
    # compare_digest even when the prefix is unknown: the answer takes as long either way
    ok = hmac.compare_digest(_hash(parts[2]), row.secret_hash if row else _hash(""))
    if row is None or not ok or row.revoked_at is not None or not row.active:
        raise refused
    return Principal(id=row.id, name=row.name, user_id=row.user_id, scopes=list(row.scopes),
                     last_used_at=row.last_used_at)


def touch(principal: Principal, *, uow) -> bool:
    """Record the use (at most once a minute per key); True when there is something to commit."""
    now = uow.now()
    if principal.last_used_at is not None and now - principal.last_used_at < TOUCH_EVERY:
        return False
    uow.session.execute(update(t.api_keys).where(t.api_keys.c.id == principal.id).values(last_used_at=now))
    return True


def record_call(key_id: int, method: str, path: str, status: int, *, actor: Actor, uow) -> None:
    """The audit row of one API call: its key, what was asked (the route, not ids or queries) and
    the answer's status. Written for reads too: every call is audited with channel api."""
    uow.audit.add(AuditEntry(at=uow.now(), actor_id=actor.user_id, channel=actor.channel.value,
                             via_agent=False, request_id=actor.request_id, entity="api_call", entity_id=key_id,
                             action=f"{method} {path}"[:60], before=None, after={"status": status}))
