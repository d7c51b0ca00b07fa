"""What every use case shares: who acts, what they see, audit rows, outbox events, input parsing."""
from __future__ import annotations

import enum
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from domain.actor import Actor
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model.events import Event
from domain.model.message_keys import keyed, slug
from domain.model.records import AuditEntry, OutboxMessage
from domain.model.users import User
from domain.rbac import Scope, UseCase, build_scope, require

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Ctx:
    """The acting user resolved once per use case."""

    actor: Actor
    user: User
    scope: Scope


def begin(uow, actor: Actor, use_case: UseCase) -> Ctx:
    user = uow.users.get(actor.user_id)
    if user is None:
        raise PermissionDenied(f"Unknown user id {actor.user_id}: no such person in LTC Copilot")
    if not user.active:
        raise PermissionDenied(f"User {user.email} is deactivated")
    require(user.roles, use_case)
    scope = build_scope(user.id, user.roles, uow.users.managers())
    return Ctx(actor=actor, user=user, scope=scope)


def get_or_404(repo, id_: int, label: str, ref: str | None = None, *, field: str = "id") -> Any:
    obj = repo.get(id_) if isinstance(id_, int) and id_ > 0 else None
    if obj is None:
        raise NotFound(f"{label} {ref or id_} does not exist", field=field,
                       details=keyed(f"not_found.{slug(label)}", ref=ref or id_))
    return obj


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def snapshot(obj: Any, fields: typing.Iterable[str]) -> dict[str, Any]:
    return {f: jsonable(getattr(obj, f)) for f in fields}


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[dict | None, dict | None]:
    """Keep only the fields that changed, so the audit trail reads as a change list."""
    if before is None or after is None:
        return before, after
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def audit(uow, ctx: Ctx, entity: str, entity_id: int, action: str,
          before: dict | None = None, after: dict | None = None) -> AuditEntry:
    b, a = diff(before, after)
    return uow.audit.add(AuditEntry(
        at=uow.now(), actor_id=ctx.user.id, channel=ctx.actor.channel.value,
        via_agent=ctx.actor.via_agent, request_id=ctx.actor.request_id,
        entity=entity, entity_id=entity_id, action=action, before=b, after=a,
    ))


def emit(uow, event: Event) -> None:
    now = uow.now()
    uow.outbox.add(OutboxMessage(key=event.key, topic=event.topic, payload=jsonable(event.payload()),
                                 created_at=now, available_at=now))


def parse(model: type[M], data: M | dict[str, Any]) -> M:
    """Validate input into a schema; errors name the field and, for choices, the allowed values."""
    if isinstance(data, model):
        return data
    if not isinstance(data, dict):
        raise ValidationFailed(f"Expected the fields of {model.__name__}, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        allowed = _allowed_values(model, err["loc"][0]) if err["loc"] else None
        msg = f"{field}: {err['msg']}" if field else err["msg"]
        if allowed:
            msg += f" (allowed: {', '.join(allowed)})"
        extra = len(e.errors()) - 1
        if extra:
            msg += f"; and {extra} more problem(s)"
        raise ValidationFailed(msg, field=field, allowed=allowed) from None


def _allowed_values(model: type[BaseModel], name: Any) -> list[str] | None:
    field = model.model_fields.get(str(name))
    if field is None:
        return None
    for arg in (field.annotation, *typing.get_args(field.annotation)):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            return [m.value for m in arg]
    return None


def job_date(uow, as_of: date | None) -> date:
    """The day a job acts on: today, or a past day to catch up; never the future (no invoice dated ahead)."""
    today = uow.now().date()
    if as_of is not None and as_of > today:
        raise ValidationFailed(f"as_of {as_of} is in the future; jobs act on what has happened", field="as_of")
    return as_of or today


def next_ref(uow, prefix: str) -> str:
    """A gap-free human number per prefix and year, e.g. CT-2026-00001 (the counter row is locked to commit)."""
    year = uow.now().year
    return f"{prefix}-{year}-{uow.finance.next_number(f'{prefix}:{year}'):05d}"
