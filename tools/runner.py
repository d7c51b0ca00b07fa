"""Invoke a tool by name with raw arguments: validate → (propose | run) → a structured outcome.

Every edge (the agent's tool node, slash commands, buttons, the console) calls tools through here,
so validation, error translation and the confirmation rule are the same everywhere.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from domain.errors import LTCError
from domain.services import confirmations
from prompts.messages import render
from tools import resolve
from tools.context import ToolContext
from tools.errors import HINTS, ToolError, from_domain, from_validation
from tools.registry import ToolSpec, all_tools

log = logging.getLogger(__name__)


class Proposal(BaseModel):
    """A write waiting for the user's yes. `token` goes to the user's client, never to the model."""

    id: int
    tool: str
    summary: str
    expires_at: datetime
    minutes: int  # how long it may be confirmed
    token: str


class ToolOutcome(BaseModel):
    status: Literal["ok", "error", "needs_confirmation", "cancelled"]
    tool: str
    text: str
    result: dict[str, Any] | None = None
    error: ToolError | None = None
    proposal: Proposal | None = None

    def for_model(self) -> dict[str, Any]:
        """What the LLM sees: no confirmation token, ever."""
        if self.status == "needs_confirmation":
            assert self.proposal is not None
            return {"status": "awaiting_user_confirmation", "summary": self.proposal.summary,
                    "minutes": self.proposal.minutes,
                    "instruction": "Tell the user what will happen and that they must press Confirm (or answer y). "
                                   "You cannot confirm for them."}
        if self.status == "error":
            assert self.error is not None
            return {"status": "error", **self.error.model_dump(exclude_none=True)}
        data = dict(self.result or {"text": self.text})
        if "status" in data:  # e.g. payment_status's own `status`: keep it, but the call's status wins
            data["record_status"] = data.pop("status")
        return {"status": self.status, **data}


def invoke(name: str, raw_args: dict[str, Any] | BaseModel | None, ctx: ToolContext, *,
           confirmed: bool = False) -> ToolOutcome:
    """Run one tool for ctx.actor. `confirmed` only from `confirm()` (after the user's yes)."""
    token = resolve.LOCALE.set(ctx.locale)
    try:
        return _invoke(name, raw_args, ctx, confirmed=confirmed)
    finally:
        resolve.LOCALE.reset(token)


def _invoke(name: str, raw_args: dict[str, Any] | BaseModel | None, ctx: ToolContext, *,
            confirmed: bool) -> ToolOutcome:
    spec = all_tools().get(name)
    if spec is None:
        err = ToolError(error="unknown_tool", message=f"There is no tool named {name}",
                        allowed=sorted(all_tools()), hint=HINTS["unknown_tool"])
        return _error(name, err, ctx)
    unknown = sorted(set(raw_args) - set(spec.args.model_fields)) if isinstance(raw_args, dict) else []
    if unknown:  # e.g. an `actor` or `user_id`: who acts comes from the chat identity, never an argument
        err = ToolError(error="bad_arguments", message=f"{name} takes no argument {', '.join(unknown)}",
                        field=unknown[0], allowed=list(spec.args.model_fields), hint=HINTS["bad_arguments"])
        return _error(name, err, ctx)
    try:
        args = raw_args if isinstance(raw_args, spec.args) else spec.args.model_validate(raw_args or {})
    except ValidationError as e:
        err = from_validation(e, spec.args)
        return _error(name, err, ctx)
    try:
        if spec.confirm is not None and name in ctx.confirm_tools and not confirmed:
            proposal = _propose(spec, args, ctx)
            if proposal is not None:
                return ToolOutcome(status="needs_confirmation", tool=name, proposal=proposal,
                                   text=render("confirm.ask", ctx.locale, summary=proposal.summary,
                                              minutes=proposal.minutes))
        result = spec.fn(args, ctx)
    except LTCError as e:
        err = from_domain(e, ctx.locale)
        return _error(name, err, ctx)
    except Exception:  # never a stack trace to the user or the model
        log.exception("tool %s failed for user %s", name, ctx.actor.user_id)
        err = ToolError(error="internal", message=render("agent.internal_error", ctx.locale), hint=HINTS["internal"])
        return _error(name, err, ctx)
    return ToolOutcome(status="ok", tool=name, text=getattr(result, "text", ""),
                       result=result.model_dump(mode="json"))


def _propose(spec: ToolSpec, args: BaseModel, ctx: ToolContext) -> Proposal | None:
    # The preview is the real service call in a transaction that never commits: the same checks,
    # the same numbers, so the summary tells the truth and errors surface before anyone confirms.
    seen: dict[str, str] = {}
    pinned = resolve.RESOLVED.set(seen)
    try:
        preview = spec.fn(args, ctx.previewing())
    finally:
        resolve.RESOLVED.reset(pinned)
    summary = spec.confirm(preview, args, ctx.locale)
    if summary is None:
        return None
    stored = args.model_dump(mode="json", exclude_none=True)
    stored.update({name: ref for name, ref in seen.items() if name in stored})  # names → the records previewed
    with ctx.uow() as uow:
        made = confirmations.propose_action(
            {"tool": spec.name, "args": stored, "summary": summary},
            actor=ctx.actor, uow=uow, ttl_minutes=ctx.confirm_ttl_minutes)
        uow.commit()
    return Proposal(id=made.id, tool=made.tool, summary=made.summary, expires_at=made.expires_at,
                    minutes=ctx.confirm_ttl_minutes, token=made.token)


def confirm(token: str, ctx: ToolContext) -> ToolOutcome:
    """The user said yes: spend the token (once), then run the stored call as that same user."""
    action = _answer(confirmations.confirm_action, token, ctx)
    if isinstance(action, ToolOutcome):
        return action
    return invoke(action.tool, action.args, ctx, confirmed=True)


def cancel(token: str, ctx: ToolContext) -> ToolOutcome:
    action = _answer(confirmations.cancel_action, token, ctx)
    if isinstance(action, ToolOutcome):
        return action
    return ToolOutcome(status="cancelled", tool=action.tool, text=render("confirm.cancelled", ctx.locale,
                                                                        summary=action.summary))


def _answer(decide, token: str, ctx: ToolContext):
    """Confirm or cancel a proposal in its own transaction: the stored action, or the refusal as an outcome."""
    try:
        with ctx.uow() as uow:
            action = decide(token, actor=ctx.actor, uow=uow)
            uow.commit()
    except LTCError as e:
        return _error(decide.__name__.removesuffix("_action"), from_domain(e, ctx.locale), ctx)
    return action


def _error(tool: str, err: ToolError, ctx: ToolContext) -> ToolOutcome:
    return ToolOutcome(status="error", tool=tool, text=err.text_in(ctx.locale), error=err)
