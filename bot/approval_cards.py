"""What an approval card says, on any chat surface (Slack blocks, WeCom template cards).

The card carries what an approver weighs in seconds: the subject, the amount, the discount and
margin, price parity with comparable won deals, who asks, who decides, and the playbook checklist
of the gate. Once the request is decided or closed, the same card says how it ended.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain.actor import Channel
from domain.services import approvals
from domain.services.approvals import ApprovalView
from prompts.messages import render
from tools.approvals import amount_text, approvers_text, kind_label, pct, subject_text
from tools.format import day

ROLES = ("AR", "SR", "FR")


@dataclass(frozen=True)
class ApprovalCard:
    approval_id: int
    ref: str
    lang: str
    title: str
    status: str
    is_open: bool  # pending: the buttons are offered
    facts: list[tuple[str, str]]
    checklist: list[tuple[str, list[str]]] = field(default_factory=list)  # (role, items)
    outcome: str | None = None  # how it ended, once it has
    opportunity_id: int | None = None
    requested_by: int = 0
    eligible_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CardSource:
    """One read of the request, shared by every recipient's card."""

    view: ApprovalView
    opportunity_id: int | None
    names: dict[int, str]  # display names of everyone involved


def load(app, approval_id: int) -> CardSource:
    """The request as the system user sees it, and the deal it is about."""
    system = app.system_actor(Channel.SYSTEM)
    with app.uow() as uow:
        view = approvals.get_approval(approval_id, actor=system, uow=uow)
        if view.subject_type == "opportunity":
            opp_id = view.subject_id
        else:
            quote = uow.quotes.get(view.subject_id) if view.subject_type == "quote" else None
            opp_id = quote.opportunity_id if quote is not None else None
        names = {u.id: u.display_name() for u in uow.users.all()}
    return CardSource(view, opp_id, names)


def build_card(source: CardSource, lang: str, playbooks=None) -> ApprovalCard:
    view, names = source.view, source.names
    ctx = view.context
    facts = [(render("card.subject", lang), subject_text(view)),
             (render("card.amount", lang), amount_text(view))]
    if ctx.get("discount_pct") is not None:
        facts += [(render("card.discount", lang), pct(ctx["discount_pct"])),
                  (render("card.margin", lang), pct(ctx.get("margin_pct"))),
                  (render("card.parity", lang), parity_text(ctx.get("parity") or {}, lang))]
    elif ctx.get("stage"):
        facts.append((render("card.stage", lang), render(f"tool.deal.stage.{ctx['stage']}", lang)))
    facts += [(render("card.requester", lang), view.requested_by_name),
              (render("card.deciders", lang), approvers_text(view, names, lang))]
    if view.expires_at is not None and view.status == "pending":
        facts.append((render("card.expires", lang), f"{day(view.expires_at.date())} {view.expires_at:%H:%M} UTC"))
    if ctx.get("note"):
        facts.append((render("card.note", lang), str(ctx["note"])))
    checklist = []
    if playbooks is not None:
        found = playbooks.checklists(gate=view.kind, lang=lang)
        checklist = [(role, found[role]) for role in ROLES if found.get(role)]
    return ApprovalCard(
        approval_id=view.id, ref=view.ref, lang=lang, status=view.status, is_open=view.status == "pending",
        title=render("card.title", lang, kind=kind_label(view.kind, lang), ref=view.ref),
        facts=facts, checklist=checklist, outcome=None if view.status == "pending" else outcome_text(view, lang),
        opportunity_id=source.opportunity_id, requested_by=view.requested_by,
        eligible_ids=tuple(view.eligible_approver_ids))


def parity_text(parity: dict, lang: str) -> str:
    if not parity.get("deals") or parity.get("median_discount_pct") is None:
        return render("card.parity_none", lang)
    return render("card.parity_value", lang, median=pct(parity["median_discount_pct"]),
                  p80=pct(parity.get("p80_discount_pct")), deals=parity["deals"])


def outcome_text(view: ApprovalView, lang: str) -> str:
    """'Approved: step 1 by 王芳 — "fine"' — every decision, then the end state."""
    lines = [render(f"card.decision.{d.outcome}", lang, who=d.decider_name, step=d.step_seq,
                    comment=f" — “{d.comment}”" if d.comment else "") for d in view.decisions]
    head = render(f"card.status.{_end_state(view)}", lang)
    return "\n".join([head, *lines])


def step_text(view: ApprovalView, lang: str) -> str:
    """For a request still pending after a decision: which step waits now."""
    return render("card.step_waiting", lang, step=view.current_step, total=len(view.steps))


def _end_state(view: ApprovalView) -> str:
    if view.status == "rejected" and view.decisions and view.decisions[-1].outcome == "revise":
        return "revise"
    return view.status

