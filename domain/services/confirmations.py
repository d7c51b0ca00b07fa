"""Human in the loop: a proposed write waits for its proposer's yes, once, for a few minutes.

The agent layer stores what it would do (tool name + validated arguments + a plain-words summary);
the chat surface shows the summary with Confirm / Cancel. The token goes to the person's client
only (a button value, a console prompt), never to the model, and only its hash is stored.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from domain.actor import Actor
from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.model.confirmations import CANCELLED, CONFIRMED, PENDING, PendingAction
from domain.model.message_keys import keyed
from domain.rbac import UseCase
from domain.services.base import audit, begin, jsonable, parse
from domain.services.schemas import Input, View

DEFAULT_TTL_MINUTES = 10


class ActionProposal(Input):
    tool: str = Field(min_length=1, max_length=60)
    args: dict[str, Any] = Field(default_factory=dict)
    summary: str = Field(min_length=1, max_length=4000, description="what will happen, in plain words")


class ProposedAction(View):
    id: int
    token: str  # shown once: the hash is what is stored
    tool: str
    summary: str
    expires_at: datetime


class PendingActionView(View):
    id: int
    tool: str
    args: dict[str, Any]
    summary: str
    status: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def propose_action(data: ActionProposal | dict, *, actor: Actor, uow,
                   ttl_minutes: int = DEFAULT_TTL_MINUTES) -> ProposedAction:
    """Store a proposal for the acting user; return its single-use token."""
    ctx = begin(uow, actor, UseCase.CONFIRM_ACTION)
    cmd = parse(ActionProposal, data)
    if ttl_minutes < 1:
        raise ValidationFailed("A proposal must live at least a minute", field="ttl_minutes")
    now = uow.now()
    token = secrets.token_urlsafe(18)
    action = uow.pending_actions.add(PendingAction(
        token_hash=token_hash(token), user_id=ctx.user.id, tool=cmd.tool, args=jsonable(cmd.args),
        summary=cmd.summary, created_at=now, expires_at=now + timedelta(minutes=ttl_minutes)))
    audit(uow, ctx, "pending_action", action.id, "proposed", None, {"tool": cmd.tool, "summary": cmd.summary})
    return ProposedAction(id=action.id, token=token, tool=action.tool, summary=action.summary,
                          expires_at=action.expires_at)


def _own_pending(uow, ctx, token: str, verb: str) -> PendingAction:
    action = uow.pending_actions.by_token_for_update(token_hash(token or ""))
    if action is None:
        raise NotFound("That confirmation does not exist: ask again and confirm the new proposal", field="token",
                       details=keyed("confirmation.not_found"))
    if action.user_id != ctx.user.id:
        raise PermissionDenied(f"Only the person who asked for this may {verb} it",
                               details=keyed(f"confirmation.not_yours.{verb}"))
    if action.status != PENDING:
        raise Conflict(f"This proposal was already {action.status}; nothing more happens",
                       details=keyed(f"confirmation.already.{action.status}", {"status": action.status}))
    if action.expired(uow.now()):
        raise ValidationFailed("This proposal expired: ask again",
                               details=keyed("confirmation.expired", {"expired_at": action.expires_at.isoformat()}))
    return action


def _decide(action: PendingAction, status: str, now: datetime) -> None:
    action.status = status
    action.decided_at = now


def confirm_action(token: str, *, actor: Actor, uow) -> PendingActionView:
    """Mark a proposal confirmed (single use) and return what to run; the caller runs it next."""
    ctx = begin(uow, actor, UseCase.CONFIRM_ACTION)
    action = _own_pending(uow, ctx, token, "confirm")
    _decide(action, CONFIRMED, uow.now())
    audit(uow, ctx, "pending_action", action.id, "confirmed", {"status": PENDING}, {"status": CONFIRMED})
    return _view(action)


def cancel_action(token: str, *, actor: Actor, uow) -> PendingActionView:
    """Drop a proposal: nothing happens."""
    ctx = begin(uow, actor, UseCase.CONFIRM_ACTION)
    action = _own_pending(uow, ctx, token, "cancel")
    _decide(action, CANCELLED, uow.now())
    audit(uow, ctx, "pending_action", action.id, "cancelled", {"status": PENDING}, {"status": CANCELLED})
    return _view(action)


def _view(a: PendingAction) -> PendingActionView:
    return PendingActionView(id=a.id, tool=a.tool, args=dict(a.args), summary=a.summary, status=a.status,
                             expires_at=a.expires_at)
