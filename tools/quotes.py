"""Quote tools (CPQ): draft a quote, submit it for approval, and explain the discount policy.

A discount inside the automatic band goes through without asking; beyond it the user confirms
first, because the quote then starts an approval chain (tools/runner.py runs the proposal).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.services import approvals as approval_svc
from domain.services import catalog as catalog_svc
from domain.services import opportunities as opp_svc
from domain.services import quotes as svc
from domain.services.catalog import DiscountBandView, DiscountPolicyView
from domain.services.quotes import QuoteView
from prompts.messages import render
from tools.approvals import approvers_text, pct, roles_text, user_names, worded
from tools.context import ToolContext
from tools.format import money, table
from tools.registry import ALL, REP, ToolResult, tool
from tools.resolve import resolve

QUOTE_WORDS = ("quote", "quotation", "price", "pricing", "discount", "报价", "折扣", "价格", "报价单")


def routing_discount(q: QuoteView) -> Decimal:
    """What the policy routes on: the overall discount, or a deeper single line (as the domain does)."""
    return max([q.discount_pct, *(line.discount_pct for line in q.lines)])


def _policy_for(uow, ctx: ToolContext, q: QuoteView) -> DiscountPolicyView:
    return catalog_svc.discount_policy(actor=ctx.actor, uow=uow, discount_pct=routing_discount(q), amount=q.total,
                                       margin_pct=q.margin_pct)


def _band_words(policy: DiscountPolicyView, locale: str) -> str:
    """Which approval the discount needs, in a sentence."""
    if policy.beyond_policy:
        top = max((b.max_discount_pct for b in policy.bands), default=Decimal("0"))
        return render("tool.quote.band_beyond", locale, top=pct(top))
    band = policy.band
    if band.automatic:
        return render("tool.quote.band_auto", locale)
    return render("tool.quote.band_needs", locale, roles=roles_text(band.approver_roles, locale),
                  band=pct(band.max_discount_pct))


class QuoteResult(ToolResult):
    quote: QuoteView
    deal_ref: str
    deal_name: str
    band: DiscountBandView | None = Field(None, description="the discount band that decides this quote")
    needs_approval: bool = Field(description="true when the discount is beyond the automatic band")
    beyond_policy: bool = False
    approvers: str = ""


def _quote_text(r: QuoteResult, locale: str, key: str) -> str:
    q = r.quote
    rows = [(ln.sku, ln.name_zh if locale == "zh" and ln.name_zh else ln.name, f"{ln.quantity.normalize():f}",
             money(ln.list_price, q.currency), pct(ln.discount_pct), money(ln.net, q.currency)) for ln in q.lines]
    headers = [render(f"tool.quote.col.{c}", locale) for c in ("sku", "product", "qty", "list", "discount", "net")]
    head = render(key, locale, ref=q.ref, version=q.version, deal=r.deal_ref, name=r.deal_name,
                  total=money(q.total, q.currency), list_total=money(q.list_total, q.currency),
                  discount=pct(q.discount_pct), margin=pct(q.margin_pct), valid=q.valid_until or "-",
                  apr=f"APR-{q.approval_id:05d}" if q.approval_id else "-", approvers=r.approvers or "-")
    return "\n".join([head, table(headers, rows, right=(2, 3, 4, 5))])


# --- generate_quote ------------------------------------------------------------------------------------

class QuoteLineArg(BaseModel):
    product: str = Field(min_length=1, max_length=200, description="SKU or product name (en or zh)",
                         examples=["MES-LIC", "MES许可"])
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=2, examples=[10])
    discount_pct: Decimal = Field(Decimal("0"), ge=0, le=100, max_digits=5, decimal_places=2,
                                  description="percent off list price, e.g. 12.5", examples=[10])


class GenerateQuoteArgs(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="deal reference (OPP-00012 or 12) or name",
                             examples=["OPP-00012"])
    lines: list[QuoteLineArg] = Field(min_length=1, max_length=200)
    valid_until: date | None = Field(None, description="YYYY-MM-DD; default 30 days from today")


def _confirm_new_quote(result: QuoteResult, args: GenerateQuoteArgs, locale: str) -> str | None:
    if not (result.needs_approval or result.beyond_policy):
        return None
    q = result.quote
    return render("tool.quote.confirm_generate", locale, deal=result.deal_ref, name=result.deal_name,
                  total=money(q.total, q.currency), discount=pct(routing_discount(q)),
                  approval=_band_words_from(result, locale))


def _band_words_from(result: QuoteResult, locale: str) -> str:
    if result.beyond_policy:
        return render("tool.quote.band_beyond_short", locale)
    return render("tool.quote.band_needs_short", locale, roles=roles_text(result.band.approver_roles, locale))


@tool(audience=(REP,), keywords=QUOTE_WORDS + ("generate", "draft", "生成", "做报价"), writes=True,
      confirm=_confirm_new_quote)
def generate_quote(args: GenerateQuoteArgs, ctx: ToolContext) -> QuoteResult:
    """Draft a quote for a deal from the price book: product lines with quantity and discount %."""
    with worded(ctx.locale), ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        data = args.model_dump(exclude_none=True, exclude={"opportunity"}, mode="json")
        quote = svc.create_quote(opp_id, data, actor=ctx.actor, uow=uow)
        deal = opp_svc.get_opportunity(opp_id, actor=ctx.actor, uow=uow)
        policy = _policy_for(uow, ctx, quote)
        uow.commit()
    band = policy.band
    result = QuoteResult(quote=quote, deal_ref=deal.ref, deal_name=deal.name, band=band,
                         needs_approval=band is not None and not band.automatic, beyond_policy=policy.beyond_policy,
                         text="")
    text = _quote_text(result, ctx.locale, "tool.quote.drafted") + "\n" + _band_words(policy, ctx.locale)
    return result.model_copy(update={"text": text})


# --- submit_quote ----------------------------------------------------------------------------------------

class SubmitQuoteArgs(BaseModel):
    quote: str = Field(min_length=1, max_length=40, description="quote reference (Q-00007 or 7)", examples=["Q-00007"])


def _confirm_submit(result: QuoteResult, args: SubmitQuoteArgs, locale: str) -> str | None:
    if not result.needs_approval:
        return None  # inside the automatic band: approved at once, nothing to weigh
    q = result.quote
    return render("tool.quote.confirm_submit", locale, ref=q.ref, deal=result.deal_ref, name=result.deal_name,
                  discount=pct(routing_discount(q)), total=money(q.total, q.currency), approvers=result.approvers)


@tool(audience=(REP,), keywords=QUOTE_WORDS + ("submit", "approval", "提交", "审批", "送审"), writes=True,
      confirm=_confirm_submit)
def submit_quote(args: SubmitQuoteArgs, ctx: ToolContext) -> QuoteResult:
    """Submit a draft quote: approved at once inside the automatic discount band, else sent for approval."""
    with worded(ctx.locale), ctx.uow() as uow:
        quote_id = resolve(uow, ctx.actor, "quote", args.quote, field="quote")
        quote = svc.submit_quote(quote_id, actor=ctx.actor, uow=uow)
        deal = opp_svc.get_opportunity(quote.opportunity_id, actor=ctx.actor, uow=uow)
        policy = _policy_for(uow, ctx, quote)
        approvers = ""
        if quote.approval_id:
            approval = approval_svc.get_approval(quote.approval_id, actor=ctx.actor, uow=uow)
            approvers = approvers_text(approval, user_names(uow, ctx), ctx.locale)
        uow.commit()
    result = QuoteResult(quote=quote, deal_ref=deal.ref, deal_name=deal.name, band=policy.band,
                         needs_approval=quote.status == "pending_approval", approvers=approvers, text="")
    key = "tool.quote.submitted_pending" if result.needs_approval else "tool.quote.submitted_auto"
    return result.model_copy(update={"text": _quote_text(result, ctx.locale, key)})


# --- explain_discount_policy --------------------------------------------------------------------------------

class ExplainPolicyArgs(BaseModel):
    discount_pct: Decimal | None = Field(None, ge=0, le=100, description="a discount to check, in percent",
                                         examples=[15])
    amount: Decimal | None = Field(None, ge=0, max_digits=16, decimal_places=2,
                                   description="the deal or quote size it applies to", examples=[1200000])


def _policy_verdict(policy: DiscountPolicyView, band: DiscountBandView | None, locale: str) -> str:
    if band is None:
        top = max((b.max_discount_pct for b in policy.bands), default=Decimal("0"))
        return render("tool.policy.verdict_beyond", locale, top=pct(top))
    if band.automatic:
        return render("tool.policy.automatic", locale)
    return render("tool.policy.verdict_needs", locale, roles=roles_text(band.approver_roles, locale))


class PolicyResult(ToolResult):
    policy: DiscountPolicyView


@tool(audience=(ALL,), keywords=("discount", "policy", "band", "who approves", "how much", "折扣", "政策", "谁审批",
                                 "权限", "审批权限", "能打几折"))
def explain_discount_policy(args: ExplainPolicyArgs, ctx: ToolContext) -> PolicyResult:
    """Explain the discount policy: which discount needs whose approval; optionally for one discount and size."""
    with ctx.uow() as uow:
        policy = catalog_svc.discount_policy(actor=ctx.actor, uow=uow, discount_pct=args.discount_pct,
                                             amount=args.amount)
    loc = ctx.locale
    rows = [(render("tool.policy.up_to", loc, pct=pct(b.max_discount_pct)),
             render("tool.policy.up_to", loc, pct=money(b.max_amount)) if b.max_amount is not None
             else render("tool.policy.any", loc),
             render("tool.policy.at_least", loc, pct=pct(b.min_margin_pct)) if b.min_margin_pct is not None
             else render("tool.policy.any", loc),
             roles_text(b.approver_roles, loc) if b.approver_roles else render("tool.policy.automatic", loc))
            for b in policy.bands]
    headers = [render(f"tool.policy.col.{c}", loc) for c in ("discount", "size", "margin", "approvers")]
    lines = [render("tool.policy.header", loc), table(headers, rows)]
    if args.discount_pct is not None:
        size = money(args.amount) if args.amount is not None else render("tool.policy.any_size", loc)
        verdict = _policy_verdict(policy, policy.band, loc)
        if policy.band_with_margin is not None:  # unknown margin: say what a good margin would change
            verdict += render("tool.policy.with_margin", loc, margin=pct(policy.band_with_margin.min_margin_pct),
                              verdict=_policy_verdict(policy, policy.band_with_margin, loc))
        lines.append(render("tool.policy.case", loc, pct=pct(args.discount_pct), amount=size, verdict=verdict))
    lines.append(render("tool.policy.floor", loc))
    return PolicyResult(policy=policy, text="\n".join(lines))
