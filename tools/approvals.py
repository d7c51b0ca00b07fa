"""Approval tools: request a decision gate, list what waits for me, approve or reject.

Also the wording shared by every tool that names approvals: kinds, approver roles, who decides.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.errors import LTCError, PermissionDenied, ValidationFailed
from domain.services import approvals as svc
from domain.services import opportunities as opp_svc
from domain.services import users as user_svc
from domain.services.approvals import ApprovalView
from prompts.messages import render
from tools.context import ToolContext
from tools.format import money, table
from tools.registry import ALL, APPROVER, MANAGER, REP, ToolResult, tool
from tools.resolve import resolve

APPROVAL_WORDS = ("approval", "approvals", "approve", "审批", "批准")
GATE_WORDS = ("ATI", "ATB", "ATC", "decision", "gate", "review", "立项", "投标", "签约", "决策", "评审")


# --- wording shared with the deal and quote tools --------------------------------------------------

def user_names(uow, ctx: ToolContext) -> dict[int, str]:
    """Every user's name in the reader's language."""
    return {u.id: (u.name_zh if ctx.locale == "zh" and u.name_zh else u.name_en)
            for u in user_svc.list_users(actor=ctx.actor, uow=uow)}


def role_label(role: str, locale: str) -> str:
    return render(f"tool.approval.role.{role}", locale)


def kind_label(kind: str, locale: str) -> str:
    return render(f"tool.approval.kind.{kind}", locale)


def roles_text(roles: list[str], locale: str) -> str:
    return " → ".join(role_label(r, locale) for r in roles)


def approvers_text(view: ApprovalView, names: dict[int, str], locale: str) -> str:
    """Who decides: the people who may decide the current step, then the roles of the later steps."""
    later = [s.role for s in view.steps if s.seq > view.current_step]
    now = " / ".join(names.get(i, "?") for i in view.eligible_approver_ids)
    current = next((s.role for s in view.steps if s.seq == view.current_step), None)
    first = now or (role_label(current, locale) if current else "-")
    return " → ".join([first, *(role_label(r, locale) for r in later)])


def subject_text(view: ApprovalView) -> str:
    ctx = view.context
    deal = " ".join(x for x in (ctx.get("opportunity_ref"), ctx.get("opportunity_name")) if x)
    if ctx.get("quote_ref"):
        return f"{ctx['quote_ref']} · {deal}" if deal else ctx["quote_ref"]
    return deal or view.subject_ref


def amount_text(view: ApprovalView) -> str:
    amount = view.context.get("amount")
    return money(amount, view.context.get("currency", "CNY")) if amount is not None else "-"


def pct(value: Decimal | str | None) -> str:
    """12.50 → '12.5%'."""
    if value is None:
        return "-"
    text = f"{Decimal(str(value)):f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


# --- domain messages in the reader's language ------------------------------------------------------

LIST_SEP = {"zh": "、"}  # joins spoken codes ("投标、输单、放弃"); English keeps the domain's ", "
MISSING_SEP = {"zh": "；"}
LABELS = (("stage", "tool.deal.stage"), ("stages", "tool.deal.stage"), ("gate", "tool.approval.kind"),
          ("role", "tool.approval.role"), ("roles", "tool.approval.role"), ("quote_status", "tool.quote.status"),
          ("contract_status", "tool.cash.contract_status"))


def spoken(params: dict[str, Any], locale: str) -> dict[str, Any]:
    """A domain message's values as the reader says them: params named …stage(s), gate, …role(s) hold codes
    (domain/model/message_keys.py), which read as labels; anything else stays as the domain wrote it."""
    out = dict(params)
    if locale == "en":
        return out
    for name, value in params.items():
        prefix = next((p for suffix, p in LABELS if name == suffix or name.endswith("_" + suffix)), None)
        if prefix and isinstance(value, str) and value:
            out[name] = _labels(value, prefix, locale)
    return out


def _labels(codes: str, prefix: str, locale: str) -> str:
    try:
        return LIST_SEP.get(locale, ", ").join(render(f"{prefix}.{c.strip()}", locale) for c in codes.split(","))
    except KeyError:  # not a code we word (e.g. "no role"): as the domain wrote it
        return codes


def missing_text(e: LTCError, locale: str) -> str:
    """A gate's missing items: each named precondition rendered as domain.gate.<name>; English as the domain says."""
    missing = e.missing or []
    names = (e.details or {}).get("missing_names") or []
    if locale == "en" or len(names) != len(missing) or not all(names):
        return "; ".join(missing)
    params = (e.details or {}).get("missing_params") or [{} for _ in names]
    try:
        items = [render(f"domain.gate.{n}", locale, **p) for n, p in zip(names, params)]
    except (KeyError, IndexError):
        return "; ".join(missing)
    return MISSING_SEP.get(locale, "; ").join(items)


def unkeyed(details: dict[str, Any] | None) -> dict[str, Any]:
    """Details without the domain's message key: for an error the tool has already worded."""
    return {k: v for k, v in (details or {}).items() if k not in ("message_key", "params")}


def in_locale(e: LTCError, locale: str) -> LTCError:
    """The domain error worded for the reader, its codes spoken and its missing items named. (The runner renders
    message keys too, but cannot know which values are codes.) English, or an error without a key: unchanged."""
    details = e.details or {}
    key = details.get("message_key")
    if locale == "en" or not key:
        return e
    params = spoken(details.get("params") or {}, locale)
    if "missing" in params and details.get("missing_names"):
        params["missing"] = missing_text(e, locale)
    try:
        message = render(f"domain.{key}", locale, **params)
    except (KeyError, IndexError):
        return e
    return type(e)(message, field=e.field, allowed=e.allowed, missing=e.missing, details=unkeyed(details))


@contextmanager
def worded(locale: str) -> Iterator[None]:
    """Domain errors raised inside leave in the reader's language (see in_locale)."""
    try:
        yield
    except LTCError as e:
        said = in_locale(e, locale)
        if said is e:
            raise
        raise said from None


def figures_text(view: ApprovalView, locale: str) -> str:
    """The numbers an approver weighs: the amount, and the discount for a discount approval."""
    if view.context.get("discount_pct") is not None:
        return render("tool.approval.figures_discount", locale, pct=pct(view.context["discount_pct"]),
                      amount=amount_text(view))
    return render("tool.approval.figures", locale, amount=amount_text(view))


# --- request_decision --------------------------------------------------------------------------------

class RequestDecisionArgs(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="deal reference (OPP-00012 or 12) or name",
                             examples=["OPP-00012", "华东电力扩容"])
    decision: Literal["ATI", "solution_review", "ATB", "ATC"] = Field(
        description="the gate: ATI (立项), solution_review (方案评审), ATB (投标), ATC (签约)")
    note: str | None = Field(None, max_length=2000, description="what the deciders should know")


class GateRequestResult(ToolResult):
    approval: ApprovalView
    approvers: str
    already_pending: bool = False


def request_gate_on(uow, ctx: ToolContext, opp_id: int, kind: str, note: str | None = None) -> GateRequestResult:
    """Open the gate request (or find the one waiting) and word it; the caller commits."""
    deal = opp_svc.get_opportunity(opp_id, actor=ctx.actor, uow=uow)
    waiting = deal.next_gate is not None and deal.next_gate.kind == kind and deal.next_gate.pending_approval_id
    try:
        with worded(ctx.locale):
            view = svc.request_gate(opp_id, kind, actor=ctx.actor, uow=uow, note=note,
                                    ttl_hours=ctx.approval_ttl_hours)
    except ValidationFailed as e:
        if not e.missing:
            raise
        raise ValidationFailed(render("tool.gate.missing", ctx.locale, ref=deal.ref, gate=kind_label(kind, ctx.locale),
                                      missing=missing_text(e, ctx.locale)),
                               field=e.field, missing=e.missing, details=unkeyed(e.details)) from None
    who = approvers_text(view, user_names(uow, ctx), ctx.locale)
    key = "tool.gate.waiting" if waiting else "tool.gate.requested"
    text = render(key, ctx.locale, ref=deal.ref, gate=kind_label(kind, ctx.locale), apr=view.ref, approvers=who)
    return GateRequestResult(approval=view, approvers=who, already_pending=bool(waiting), text=text)


def confirm_signing_gate(result, args, locale: str) -> str | None:
    """The summary to confirm when a tool just asked for the ATC (request_decision, advance_stage into won).

    The signing decision commits the company: the rep says yes before it goes out. Other gates go at once."""
    approval = getattr(result, "approval", None)
    if approval is None or approval.kind != "ATC" or result.already_pending:
        return None
    c = approval.context
    return render("tool.gate.confirm_atc", locale, ref=c.get("opportunity_ref", approval.subject_ref),
                  name=c.get("opportunity_name", ""), amount=amount_text(approval), approvers=result.approvers)


@tool(audience=(REP, MANAGER), keywords=GATE_WORDS + ("request", "申请"), writes=True, confirm=confirm_signing_gate)
def request_decision(args: RequestDecisionArgs, ctx: ToolContext) -> GateRequestResult:
    """Request a deal's decision gate (ATI, solution_review, ATB or ATC) from its approvers."""
    with ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        result = request_gate_on(uow, ctx, opp_id, args.decision, args.note)
        uow.commit()
    return result


# --- list_my_approvals -------------------------------------------------------------------------------

class NoArgs(BaseModel):
    pass


class ApprovalListResult(ToolResult):
    approvals: list[ApprovalView]


@tool(audience=(ALL,), keywords=APPROVAL_WORDS + ("pending", "waiting", "my approvals", "todo", "待审批", "待办"))
def list_my_approvals(args: NoArgs, ctx: ToolContext) -> ApprovalListResult:
    """List the approval requests waiting for my decision (gates and discounts)."""
    with ctx.uow() as uow:
        views = svc.list_my_approvals(actor=ctx.actor, uow=uow)
        names = user_names(uow, ctx) if views else {}
    if not views:
        return ApprovalListResult(approvals=[], text=render("tool.approval.none", ctx.locale))
    rows = [(v.ref, kind_label(v.kind, ctx.locale), subject_text(v), figures_text(v, ctx.locale),
             names.get(v.requested_by, v.requested_by_name), f"{v.created_at:%Y-%m-%d %H:%M}") for v in views]
    headers = [render(f"tool.approval.col.{c}", ctx.locale)
               for c in ("ref", "kind", "subject", "figures", "requester", "since")]
    text = render("tool.approval.header", ctx.locale, n=len(views)) + "\n" + table(headers, rows)
    return ApprovalListResult(approvals=views, text=text)


# --- decide_approval ---------------------------------------------------------------------------------

class DecideApprovalArgs(BaseModel):
    approval: str = Field(min_length=1, max_length=40, description="approval reference (APR-00003 or 3)",
                          examples=["APR-00003"])
    decision: Literal["approve", "reject", "revise"] = Field(
        description="approve, reject, or revise (request changes: a discount quote goes back to draft)")
    comment: str | None = Field(None, max_length=2000, description="why; required to reject or revise",
                                examples=["price parity ok", "折扣过高，请调整方案"])


class DecisionResult(ToolResult):
    approval: ApprovalView
    decided: bool = Field(description="false when nothing was recorded now (already decided, expired, closed)")
    deal_stage: str | None = Field(None, description="the deal's stage after an approved gate")


def _confirm_decision(result: DecisionResult, args: DecideApprovalArgs, locale: str) -> str | None:
    if not result.decided:
        return None  # nothing to decide: the answer says why
    v = result.approval
    return render("tool.approval.summary", locale, verb=render(f"tool.approval.verb.{args.decision}", locale),
                  ref=v.ref, kind=kind_label(v.kind, locale), subject=subject_text(v),
                  figures=figures_text(v, locale), effect=_effect(result, locale))


def _effect(result: DecisionResult, locale: str, tense: str = "effect") -> str:
    """What the decision leads to: `effect` words it ahead (a proposal), `outcome` after the fact."""
    v = result.approval
    if v.status == "approved" and result.deal_stage:
        return render(f"tool.approval.{tense}_stage", locale, ref=v.subject_ref,
                      stage=render(f"tool.deal.stage.{result.deal_stage}", locale))
    if v.status == "rejected" and v.decisions and v.decisions[-1].outcome == "revise":
        return render(f"tool.approval.{tense}_revised", locale)
    if v.status in ("approved", "rejected"):
        return render(f"tool.approval.{tense}_{v.status}", locale)
    step = next((s for s in v.steps if s.seq == v.current_step), None)
    return render(f"tool.approval.{tense}_next", locale, who=role_label(step.role, locale) if step else "-")


@tool(audience=(APPROVER,), keywords=APPROVAL_WORDS + ("reject", "decide", "驳回", "同意", "拒绝", "批"), writes=True,
      confirm=_confirm_decision)
def decide_approval(args: DecideApprovalArgs, ctx: ToolContext) -> DecisionResult:
    """Approve or reject the approval step waiting for me (a gate or a discount), with a comment."""
    with worded(ctx.locale), ctx.uow() as uow:
        approval_id = resolve(uow, ctx.actor, "approval", args.approval, field="approval")
        before = svc.get_approval(approval_id, actor=ctx.actor, uow=uow)
        view = svc.decide_approval(approval_id, args.decision, actor=ctx.actor, uow=uow, comment=args.comment)
        stage = None
        if view.status == "approved" and view.subject_type == "opportunity":  # a passed gate moved the deal
            try:
                stage = opp_svc.get_opportunity(view.subject_id, actor=ctx.actor, uow=uow).stage
            except PermissionDenied:  # an approver outside the deal's team still decides; they just see less
                stage = None
        uow.commit()
    result = DecisionResult(approval=view, decided=len(view.decisions) > len(before.decisions), deal_stage=stage,
                            text="")
    if not result.decided:
        key = "tool.approval.already_mine" if view.status == "pending" else "tool.approval.closed"
        text = render(key, ctx.locale, ref=view.ref, status=render(f"tool.approval.status.{view.status}", ctx.locale))
    else:
        text = render(f"tool.approval.decided_{args.decision}", ctx.locale, ref=view.ref,
                      kind=kind_label(view.kind, ctx.locale), subject=subject_text(view),
                      outcome=_effect(result, ctx.locale, "outcome"))
    return result.model_copy(update={"text": text})
