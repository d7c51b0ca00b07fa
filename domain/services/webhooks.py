"""Outbound webhooks: endpoints ERP/billing subscribes, and the log of what was sent to them.

Managing endpoints is admin's and sales ops' (audited). The secret that signs requests is made
here, returned once by `add_endpoint` and never shown again. The outbox sink (bot/webhooks/sink.py)
queues one delivery per subscribed active endpoint with `enqueue`; the deliverer
(bot/webhooks/sender.py) sends them with retries.

Replay resets the same delivery row (same delivery id, same event id, same body): it goes back to
`pending`, due now, with a fresh attempt budget; the attempts made before stay in the log.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from sqlalchemy import func, select, update

from domain.actor import Actor
from domain.db import tables as t
from domain.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from domain.model.message_keys import keyed
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services.base import Ctx, audit, begin, parse
from domain.services.schemas import Input, View

# The public event types, in the past tense; what each means is in bot/webhooks/README.md.
EVENT_TYPES: tuple[str, ...] = (
    "lead.created",
    "opportunity.won",
    "opportunity.lost",
    "contract.signed",
    "order.created",
    "invoice.issued",
    "invoice.voided",
    "payment.recorded",
)
ALL_EVENTS = "*"
STATUSES = ("pending", "delivered", "failed")
MANAGERS = frozenset({Role.ADMIN, Role.SALES_OPS})
ENDPOINT_FIELDS = ("url", "events", "active", "description")


# --- views and inputs ------------------------------------------------------------------------------

class EndpointCreate(Input):
    url: str = Field(max_length=2000, description="where events are POSTed (http or https)",
                     examples=["https://erp.example.com/hooks/ltc"])
    events: list[str] = Field(min_length=1, description=f"event types, or {ALL_EVENTS!r} for all",
                              examples=[["invoice.issued", "payment.recorded"]])
    description: str | None = Field(None, max_length=200, examples=["ERP billing"])

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError("must not contain spaces or control characters")
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: requests are signed with the endpoint secret")
        return v

    @field_validator("events")
    @classmethod
    def _known_events(cls, v: list[str]) -> list[str]:
        wanted = list(dict.fromkeys(e.strip() for e in v))
        unknown = [e for e in wanted if e != ALL_EVENTS and e not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {ALL_EVENTS}, "
                             f"{', '.join(EVENT_TYPES)}")
        return [ALL_EVENTS] if ALL_EVENTS in wanted else wanted


class EndpointView(View):
    id: int
    url: str
    events: list[str]
    active: bool
    description: str | None
    created_by: int
    created_at: datetime
    secret: str | None = Field(None, description="the signing secret: only in the answer that creates it")
    message: str = ""


class AttemptView(View):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryView(View):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] | None = Field(None, description="the JSON body sent (in the single-delivery view)")
    log: list[AttemptView] = Field(default_factory=list, description="every attempt, oldest first")
    message: str = ""


# --- who may ---------------------------------------------------------------------------------------

def _begin(uow, actor: Actor) -> Ctx:
    ctx = begin(uow, actor, UseCase.SEARCH_RECORDS)  # anyone active; the role check is webhooks' own
    if not ctx.user.roles & MANAGERS:
        have = ", ".join(sorted(r.value for r in ctx.user.roles)) or "no role"
        roles = ", ".join(sorted(r.value for r in MANAGERS))
        raise PermissionDenied(f"manage_webhooks needs one of the roles {roles}; you have {have}",
                               allowed=sorted(r.value for r in MANAGERS),
                               details=keyed("rbac.needs_role", use_case="manage_webhooks", roles=roles,
                                             have_roles=have))
    return ctx


def _session(uow):
    return uow.session  # webhooks live in their own tables, read and written with plain SQL


def _endpoint_view(row, *, secret: str | None = None, message: str = "") -> EndpointView:
    return EndpointView(id=row.id, url=row.url, events=list(row.events), active=row.active,
                        description=row.description, created_by=row.created_by, created_at=row.created_at,
                        secret=secret, message=message)


def _endpoint_row(uow, endpoint_id: int):
    row = _session(uow).execute(select(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id)).first()
    if row is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist", field="endpoint_id")
    return row


def _snapshot(row) -> dict[str, Any]:
    return {"url": row.url, "events": list(row.events), "active": row.active, "description": row.description}


# --- endpoints -------------------------------------------------------------------------------------

def add_endpoint(data: EndpointCreate | dict, *, actor: Actor, uow) -> EndpointView:
    """Subscribe a URL to event types; the answer carries the signing secret, shown this once."""
    ctx = _begin(uow, actor)
    cmd = parse(EndpointCreate, data)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    new_id = _session(uow).execute(t.webhook_endpoints.insert().values(
        url=cmd.url, secret=secret, events=cmd.events, active=True, description=cmd.description,
        created_by=ctx.user.id, created_at=uow.now())).inserted_primary_key[0]
    row = _endpoint_row(uow, new_id)
    audit(uow, ctx, "webhook_endpoint", row.id, "create", None, _snapshot(row))  # never the secret
    return _endpoint_view(row, secret=secret, message=f"Webhook endpoint {row.id} added for "
                                                      f"{', '.join(row.events)}; keep its secret now, "
                                                      f"it is not shown again")


def list_endpoints(*, actor: Actor, uow, active: bool | None = None) -> list[EndpointView]:
    _begin(uow, actor)
    q = select(t.webhook_endpoints).order_by(t.webhook_endpoints.c.id)
    if active is not None:
        q = q.where(t.webhook_endpoints.c.active.is_(active))
    return [_endpoint_view(r) for r in _session(uow).execute(q)]


def get_endpoint(endpoint_id: int, *, actor: Actor, uow) -> EndpointView:
    _begin(uow, actor)
    return _endpoint_view(_endpoint_row(uow, endpoint_id))


def set_endpoint_active(endpoint_id: int, active: bool, *, actor: Actor, uow) -> EndpointView:
    """Disable an endpoint (it gets nothing, pending deliveries wait) or enable it again."""
    ctx = _begin(uow, actor)
    before = _endpoint_row(uow, endpoint_id)
    if before.active == active:
        return _endpoint_view(before, message=f"Webhook endpoint {endpoint_id} is already "
                                              f"{'active' if active else 'disabled'}")
    _session(uow).execute(update(t.webhook_endpoints).where(t.webhook_endpoints.c.id == endpoint_id)
                          .values(active=active))
    row = _endpoint_row(uow, endpoint_id)
    audit(uow, ctx, "webhook_endpoint", endpoint_id, "enable" if active else "disable", _snapshot(before),
          _snapshot(row))
    return _endpoint_view(row, message=f"Webhook endpoint {endpoint_id} {'enabled' if active else 'disabled'}")


def disable_endpoint(endpoint_id: int, *, actor: Actor, uow) -> EndpointView:
    return set_endpoint_active(endpoint_id, False, actor=actor, uow=uow)


def enable_endpoint(endpoint_id: int, *, actor: Actor, uow) -> EndpointView:
    return set_endpoint_active(endpoint_id, True, actor=actor, uow=uow)


# --- deliveries ------------------------------------------------------------------------------------

def _delivery_view(row, *, full: bool = False, log: list | None = None, message: str = "") -> DeliveryView:
    return DeliveryView(id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id, event_type=row.event_type,
                        status=row.status, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
                        last_status_code=row.last_status_code, last_error=row.last_error,
                        created_at=row.created_at, delivered_at=row.delivered_at,
                        payload=row.payload if full else None, log=log or [], message=message)


def list_deliveries(*, actor: Actor, uow, endpoint_id: int | None = None, status: str | None = None,
                    event_type: str | None = None, before_id: int | None = None,
                    limit: int = 50) -> list[DeliveryView]:
    """The delivery log, newest first; `before_id` continues a page (keyset)."""
    _begin(uow, actor)
    d = t.webhook_deliveries
    if status is not None and status not in STATUSES:
        raise ValidationFailed(f"status {status!r} is not one of {', '.join(STATUSES)}", field="status",
                               allowed=STATUSES)
    if event_type is not None and event_type not in EVENT_TYPES:
        raise ValidationFailed(f"event type {event_type!r} is unknown", field="event_type", allowed=EVENT_TYPES)
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit must be between 1 and 500", field="limit")
    q = select(d).order_by(d.c.id.desc()).limit(limit)
    for column, value in ((d.c.endpoint_id, endpoint_id), (d.c.status, status), (d.c.event_type, event_type)):
        if value is not None:
            q = q.where(column == value)
    if before_id is not None:
        q = q.where(d.c.id < before_id)
    return [_delivery_view(r) for r in _session(uow).execute(q)]


def _delivery_row(uow, delivery_id: int):
    row = _session(uow).execute(select(t.webhook_deliveries)
                                .where(t.webhook_deliveries.c.id == delivery_id)).first()
    if row is None:
        raise NotFound(f"Webhook delivery {delivery_id} does not exist", field="delivery_id")
    return row


def _attempts(uow, delivery_id: int) -> list[AttemptView]:
    a = t.webhook_attempts
    rows = _session(uow).execute(select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id))
    return [AttemptView(attempted_at=r.attempted_at, status_code=r.status_code, error=r.error,
                        duration_ms=r.duration_ms) for r in rows]


def get_delivery(delivery_id: int, *, actor: Actor, uow) -> DeliveryView:
    """One delivery with the body sent and every attempt."""
    _begin(uow, actor)
    return _delivery_view(_delivery_row(uow, delivery_id), full=True, log=_attempts(uow, delivery_id))


def replay_delivery(delivery_id: int, *, actor: Actor, uow) -> DeliveryView:
    """Send a delivery again: the same row (same event id and body) goes back to pending, due now."""
    ctx = _begin(uow, actor)
    row = _delivery_row(uow, delivery_id)
    endpoint = _endpoint_row(uow, row.endpoint_id)
    if not endpoint.active:
        raise InvalidTransition(f"Webhook endpoint {endpoint.id} is disabled; enable it before replaying "
                                f"delivery {delivery_id}", field="endpoint_id")
    if row.status == "pending":  # a sender may hold it right now: resetting it would send it twice
        raise InvalidTransition(f"Delivery {delivery_id} is still queued (attempt {row.attempts + 1} is due); "
                                "only a delivered or failed one can be replayed", field="delivery_id")
    # A fresh attempt budget; the attempts so far stay in the log.
    values: dict[str, Any] = {"status": "pending", "next_attempt_at": uow.now(), "attempts": 0,
                              "delivered_at": None, "last_status_code": None, "last_error": None}
    _session(uow).execute(update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id)
                          .values(**values))
    audit(uow, ctx, "webhook_delivery", delivery_id, "replay",
          {"status": row.status, "attempts": row.attempts}, {"status": "pending", "attempts": values.get(
              "attempts", row.attempts)})
    after = _delivery_row(uow, delivery_id)
    return _delivery_view(after, log=_attempts(uow, delivery_id),
                          message=f"Delivery {delivery_id} ({row.event_type}, {row.event_id}) queued again")


# --- the outbox side (no actor: the system queues what happened) ------------------------------------

def subscribers(uow, event_type: str) -> list[int]:
    """Active endpoints that want this event type."""
    e = t.webhook_endpoints
    rows = _session(uow).execute(select(e.c.id, e.c.events).where(e.c.active.is_(True)).order_by(e.c.id))
    return [r.id for r in rows if ALL_EVENTS in r.events or event_type in r.events]


def enqueue(uow, endpoint_ids: list[int], envelope: dict[str, Any]) -> int:
    """One pending delivery per endpoint for this event, due now; a second call for the same event id
    adds nothing (the outbox delivers at least once). Returns how many were new."""
    if not endpoint_ids:
        return 0
    session = _session(uow)
    d = t.webhook_deliveries
    now = uow.now()
    rows = [{"endpoint_id": eid, "event_id": envelope["id"], "event_type": envelope["type"], "payload": envelope,
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for eid in endpoint_ids]
    mine = (d.c.endpoint_id.in_(endpoint_ids), d.c.event_id == envelope["id"])  # the unique index
    before = session.execute(select(func.count()).select_from(d).where(*mine)).scalar_one()
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        session.execute(insert(d).on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]), rows)
    else:  # other databases: skip the endpoints that have it, then insert
        have = set(session.scalars(select(d.c.endpoint_id).where(*mine)))
        fresh = [r for r in rows if r["endpoint_id"] not in have]
        if fresh:
            session.execute(d.insert(), fresh)
    after = session.execute(select(func.count()).select_from(d).where(*mine)).scalar_one()
    return after - before
