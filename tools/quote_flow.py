"""The quote on its way to the contract: the approved quote goes to the customer, the customer accepts it.

Neither moves money or a decision (the discount was decided when the quote was approved; the contract
and its ATC come after), so neither asks for confirmation.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from domain.services import opportunities as opp_svc
from domain.services import quotes as svc
from domain.services.quotes import QuoteView
from prompts.messages import render
from tools.approvals import pct
from tools.context import ToolContext
from tools.format import day, money
from tools.quotes import QUOTE_WORDS
from tools.registry import REP, ToolResult, tool
from tools.resolve import resolve


class QuoteRefArgs(BaseModel):
    quote: str = Field(min_length=1, max_length=40, description="quote reference (Q-00007 or 7)", examples=["Q-00007"])


class QuoteFlowResult(ToolResult):
    quote: QuoteView
    deal_ref: str
    deal_name: str
    customer: str


def _run(args: QuoteRefArgs, ctx: ToolContext, service, key: str) -> QuoteFlowResult:
    with ctx.uow() as uow:
        quote_id = resolve(uow, ctx.actor, "quote", args.quote, field="quote")
        quote = service(quote_id, actor=ctx.actor, uow=uow)
        deal = opp_svc.get_opportunity(quote.opportunity_id, actor=ctx.actor, uow=uow)
        uow.commit()
    valid = render("tool.flow.quote.valid", ctx.locale, day=day(quote.valid_until)) if quote.valid_until else ""
    text = render(key, ctx.locale, ref=quote.ref, deal=deal.ref, name=deal.name, customer=deal.account_name,
                  total=money(quote.total, quote.currency), discount=pct(quote.discount_pct), valid=valid)
    return QuoteFlowResult(quote=quote, deal_ref=deal.ref, deal_name=deal.name, customer=deal.account_name, text=text)


@tool(audience=(REP,), keywords=QUOTE_WORDS + ("send", "sent", "发送", "发给", "发出"), writes=True)
def send_quote(args: QuoteRefArgs, ctx: ToolContext) -> QuoteFlowResult:
    """Send an approved quote to the customer (it must still be valid); then record the customer's acceptance."""
    return _run(args, ctx, svc.send_quote, "tool.flow.quote.sent")


@tool(audience=(REP,), keywords=QUOTE_WORDS + ("accept", "agreed", "接受", "认可"), writes=True)
def record_quote_acceptance(args: QuoteRefArgs, ctx: ToolContext) -> QuoteFlowResult:
    """Record that the customer accepted a sent quote: the deal becomes worth its total; draft the contract next."""
    return _run(args, ctx, svc.accept_quote, "tool.flow.quote.accepted")
