"""Read the audit trail of one record, under the same visibility as reading the record."""
from __future__ import annotations

from datetime import datetime

from domain.actor import Actor
from domain.errors import PermissionDenied, ValidationFailed
from domain.rbac import UseCase
from domain.services.base import begin
from domain.services.schemas import View

AUDITED = ("lead", "account", "contact", "opportunity", "approval", "quote", "activity", "user", "team",
           "product", "price_book")


class AuditEntryView(View):
    id: int
    at: datetime
    actor_id: int
    actor_name: str
    channel: str
    via_agent: bool
    request_id: str
    entity: str
    entity_id: int
    action: str
    before: dict | None
    after: dict | None


def audit_trail(entity: str, entity_id: int, *, actor: Actor, uow) -> list[AuditEntryView]:
    """Who changed what and when, through which channel, oldest first."""
    from domain.services import accounts, approvals, leads, opportunities, quotes

    if entity not in AUDITED:
        raise ValidationFailed(f"Unknown entity '{entity}'", field="entity", allowed=list(AUDITED))
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    readers = {
        "lead": lambda: leads.get_lead(entity_id, actor=actor, uow=uow),
        "account": lambda: accounts.visible_account(uow, ctx, entity_id),
        "opportunity": lambda: opportunities.visible_opportunity(uow, ctx, entity_id),
        "approval": lambda: approvals.get_approval(entity_id, actor=actor, uow=uow),
        "quote": lambda: quotes.get_quote(entity_id, actor=actor, uow=uow),
    }
    if entity in readers:
        readers[entity]()  # raises NotFound / PermissionDenied exactly as reading the record would
    elif not ctx.scope.sees_all:
        raise PermissionDenied(f"The {entity} audit trail is for sales operations and admins")
    names = {u.id: u.display_name() for u in uow.users.all()}
    return [AuditEntryView(id=e.id, at=e.at, actor_id=e.actor_id, actor_name=names.get(e.actor_id, "?"),
                           channel=e.channel, via_agent=e.via_agent, request_id=e.request_id, entity=e.entity,
                           entity_id=e.entity_id, action=e.action, before=e.before, after=e.after)
            for e in uow.audit.for_entity(entity, entity_id)]
