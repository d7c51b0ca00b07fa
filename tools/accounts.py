"""Account tools: the 360 view of a customer, and logging what happened (calls, meetings, notes)."""
from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field

from domain.errors import NotFound, ValidationFailed
from domain.model.vocab import ActivityKind, DecisionChainRole
from domain.services import accounts as svc
from domain.services import activities as activity_svc
from domain.services import leads as lead_svc
from domain.services.accounts import Account360
from domain.services.activities import ActivityView
from domain.services.search import search_records
from prompts.messages import render
from tools.context import ToolContext
from tools.format import money, table
from tools.registry import ALL, DELIVERY, REP, ToolResult, tool
from tools.resolve import choose, resolve

ACCOUNT_WORDS = ("account", "customer", "client", "360", "contacts", "客户", "联系人", "客户360", "全景")
# A reference that says its kind; a bare number or a name does not.
_ABOUT_REF = re.compile(r"^\s*(LEAD|OPP|ACC)\s*[-_ #]?\s*0*(\d{1,9})\s*$", re.IGNORECASE)
_KIND = {"LEAD": "lead", "OPP": "opportunity", "ACC": "account"}
_PREFIX = {"lead": "LEAD", "opportunity": "OPP", "account": "ACC"}
# The 360's decision-chain gaps, as the domain words them, back to the role they name.
_GAP_ROLE = {f"no {r.value.replace('_', ' ')} known": r.value for r in DecisionChainRole}


class AccountRef(BaseModel):
    account: str = Field(min_length=1, max_length=200, description="account reference (ACC-00003 or 3) or name",
                         examples=["ACC-00003", "华东电力"])


class Account360Result(ToolResult):
    account360: Account360


def _chain_role(role: str, locale: str) -> str:
    return render(f"tool.account.role.{role}", locale)


@tool(audience=(ALL,), keywords=ACCOUNT_WORDS)
def account_360(args: AccountRef, ctx: ToolContext) -> Account360Result:
    """Show a customer account at a glance: contacts and decision chain, deals, pipeline, recent activities."""
    with ctx.uow() as uow:
        account_id = resolve(uow, ctx.actor, "account", args.account, field="account")
        view = svc.account_360(account_id, actor=ctx.actor, uow=uow)
    return Account360Result(account360=view, text=_text_360(view, ctx.locale))


def _text_360(v: Account360, locale: str) -> str:
    a = v.account
    tier = render(f"tool.account.tier.{a.tier}", locale)
    lines = [render("tool.account.header", locale, ref=a.ref, name=a.name, industry=a.industry or "-",
                    region=a.region or "-", tier=tier, owner=a.owner_name or "-")]
    lines.append(render("tool.account.contacts", locale, n=len(v.contacts)))
    lines += [render("tool.account.contact", locale, name=c.name, title=c.title or "-",
                     role=_chain_role(c.decision_role, locale), strength=c.relationship) for c in v.contacts[:8]]
    gaps = [_chain_role(_GAP_ROLE[g], locale) if g in _GAP_ROLE else g for g in v.decision_chain_gaps]
    if gaps:
        lines.append(render("tool.account.gaps", locale, roles=", ".join(gaps)))
    pipeline = ", ".join(money(amount, cur) for cur, amount in v.open_pipeline.items()) or "-"
    lines.append(render("tool.account.deals", locale, n=len(v.opportunities), pipeline=pipeline))
    if v.opportunities:
        rows = [(o.ref, o.name if len(o.name) <= 36 else o.name[:35] + "…",
                 render(f"tool.deal.stage.{o.stage}", locale), money(o.amount, o.currency)) for o in v.opportunities]
        lines.append(table([render("tool.col.ref", locale), render("tool.col.name", locale),
                            render("tool.deal.col.stage", locale), render("tool.deal.col.amount", locale)],
                           rows, right=(3,), max_rows=10))
    if v.activities:
        lines.append(render("tool.account.activities", locale))
        lines += [render("tool.account.activity", locale, when=f"{x.occurred_at:%Y-%m-%d}",
                         kind=render(f"tool.activity.kind.{x.kind}", locale), subject=x.subject)
                  for x in v.activities[:5]]
    else:
        lines.append(render("tool.account.no_activities", locale))
    return "\n".join(lines)


# --- log_activity ------------------------------------------------------------------------------------------

class LogActivityArgs(BaseModel):
    about: str = Field(min_length=1, max_length=200,
                       description="what it is about: a lead, deal or account reference (LEAD-/OPP-/ACC-…) or name",
                       examples=["OPP-00012", "华东电力"])
    kind: ActivityKind = Field(ActivityKind.NOTE, description="call, meeting, email or note")
    subject: str = Field(min_length=1, max_length=200, description="one line: what happened",
                         examples=["Kick-off with the CIO", "拜访客户CIO"])
    body: str | None = Field(None, max_length=4000, description="details, minutes")
    occurred_at: datetime | None = Field(None, description="when it happened (ISO 8601); default now")


class ActivityResult(ToolResult):
    activity: ActivityView
    about_ref: str


def _about(uow, ctx: ToolContext, text: str) -> tuple[str, int, str]:
    """(kind, id, label) of the lead, deal or account `text` names: a typed reference, else a clear name."""
    m = _ABOUT_REF.match(text)
    if m:
        kind, id_ = _KIND[m.group(1).upper()], int(m.group(2))
        return kind, id_, f"{_PREFIX[kind]}-{id_:05d}"
    if text.strip().lstrip("#").isdigit():
        raise ValidationFailed(render("tool.activity.bare_number", ctx.locale, text=text.strip()), field="about",
                               allowed=["LEAD-…", "OPP-…", "ACC-…"])
    hits = search_records(text, actor=ctx.actor, uow=uow, kinds=["lead", "account", "opportunity"], limit=6)
    # A converted lead lives on as its account and deal: those are what the activity is about.
    hits = [h for h in hits if h.kind != "lead"
            or lead_svc.get_lead(h.id, actor=ctx.actor, uow=uow).status != "converted"]
    pick = choose(hits)
    if pick is not None:
        return pick.kind, pick.id, pick.label
    if not hits:
        raise NotFound(render("tool.activity.unknown", ctx.locale, text=text), field="about")
    raise ValidationFailed(render("tool.activity.ambiguous", ctx.locale, text=text), field="about",
                           details={"code": "ambiguous", "did_you_mean": [h.label for h in hits[:5]]})


@tool(audience=(REP, DELIVERY), keywords=("log", "call", "meeting", "visit", "email", "note", "activity", "记录",
                                          "拜访", "电话", "会议", "邮件", "备注", "跟进"), writes=True)
def log_activity(args: LogActivityArgs, ctx: ToolContext) -> ActivityResult:
    """Log a call, meeting, email or note on a lead, deal or account (by reference or name)."""
    with ctx.uow() as uow:
        kind, id_, label = _about(uow, ctx, args.about)
        data = args.model_dump(exclude_none=True, exclude={"about"}, mode="json")
        view = activity_svc.log_activity({**data, f"{kind}_id": id_}, actor=ctx.actor, uow=uow)
        uow.commit()
    text = render("tool.activity.logged", ctx.locale, kind=render(f"tool.activity.kind.{view.kind}", ctx.locale),
                  subject=view.subject, about=label)
    return ActivityResult(activity=view, about_ref=label, text=text)
