"""Contract tools: draft the contract from the accepted quote, send it for signature (ATC signs it).

Also the contract-side reference helpers the other cash tools share: a contract is named by its
number (CT-2026-00001) or by its deal (OPP-00012, the deal's or the customer's name).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from domain.errors import NotFound, ValidationFailed
from domain.model import quotes as q
from domain.policy_defaults import DEFAULT_PAYMENT_PLAN, DEFAULT_PAYMENT_TERMS_DAYS
from domain.services import contracts as svc
from domain.services import quotes as quote_svc
from domain.services.contracts import ContractView
from prompts.messages import render
from tools.context import ToolContext
from tools.format import day, money, table
from tools.registry import REP, ToolResult, tool
from tools.resolve import LOCALE, number, resolve

CONTRACT_WORDS = ("contract", "sign", "signature", "payment plan", "合同", "签约", "签署", "付款计划")


# --- shared by the cash tools ---------------------------------------------------------------------

def contract_of(uow, ctx: ToolContext, text: str, *, field: str = "contract") -> ContractView:
    """The contract `text` names: its number, or the deal (reference, deal or customer name) it belongs to."""
    canon = number(text)
    if canon is not None:
        if not canon.startswith("CT-"):
            raise ValidationFailed(render("tool.cash.error.not_a_contract", ctx.locale, number=canon), field=field)
        return svc.get_contract(canon, actor=ctx.actor, uow=uow)
    opp_id = resolve(uow, ctx.actor, "opportunity", text, field=field)
    view = svc.contract_for_opportunity(opp_id, actor=ctx.actor, uow=uow)
    if view is None:
        raise NotFound(render("tool.cash.error.no_contract", ctx.locale, ref=f"OPP-{opp_id:05d}"), field=field)
    return view


def canonical(text: str, prefix: str, field: str, locale: str) -> str:
    """'inv-2026-4' → 'INV-2026-00004'; anything else is refused with the expected spelling."""
    canon = number(text)
    if canon is None or not canon.startswith(prefix + "-"):
        raise ValidationFailed(render("tool.cash.error.bad_number", locale, text=text, prefix=prefix,
                                      kind=render(f"tool.cash.number_kind.{prefix}", locale)), field=field)
    return canon


def account_name(uow, account_id: int) -> str:
    account = uow.accounts.get(account_id)
    return account.name if account else f"ACC-{account_id:05d}"


def joined(items, locale: str) -> str:
    """A list in running text: "a, b" in English, "a、b" in Chinese."""
    return ("、" if locale == "zh" else ", ").join(str(i) for i in items)


def trigger_label(trigger: str, locale: str) -> str:
    return render(f"tool.cash.trigger.{trigger}", locale)


def plan_table(view: ContractView, locale: str) -> str:
    col = lambda key: render(f"tool.cash.col.{key}", locale)  # noqa: E731
    rows = [(m.seq, m.label, f"{m.pct}%", money(m.amount, view.currency),
             trigger_label(m.trigger, locale) + (f" {day(m.due_date)}" if m.due_date else ""),
             m.invoice_number or "-") for m in view.milestones]
    return table([col("seq"), col("milestone"), col("pct"), col("amount"), col("trigger"), col("invoice")], rows,
                 right=(0, 2, 3))


# --- tools ------------------------------------------------------------------------------------------

class MilestoneArg(BaseModel):
    label: str = Field(min_length=1, max_length=100, description="what the customer pays for",
                       examples=["Advance / 预付款", "验收款"])
    pct: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2, description="share of the contract value, %",
                         examples=[30])
    trigger: Literal["signing", "delivery_acceptance", "final_acceptance", "date"] = Field(
        description="what makes it invoiceable: signing, delivery_acceptance (到货验收), final_acceptance (终验), "
                    "or a date")
    due_date: date | None = Field(None, description="YYYY-MM-DD, only with trigger 'date'")


class CreateContractArgs(BaseModel):
    opportunity: str = Field(min_length=1, max_length=200, description="the deal (OPP-00012) or its / the customer's "
                             "name", examples=["OPP-00012", "华东电力扩容"])
    payment_plan: list[MilestoneArg] | None = Field(None, min_length=1, max_length=24,
                                                   description="payment milestones adding up to 100%; omit for "
                                                               "the default 30/60/10")
    payment_terms_days: int = Field(DEFAULT_PAYMENT_TERMS_DAYS, ge=0, le=365,
                                    description="days from invoice to due date")

    @field_validator("payment_plan", mode="before")
    @classmethod
    def _shorthand(cls, v):
        """"40/50/10" (as people say it) → the default plan's three milestones with these shares."""
        if isinstance(v, str):
            shares = [p.strip().rstrip("%") for p in v.split("/")]
            if len(shares) != len(DEFAULT_PAYMENT_PLAN) or not all(shares):
                raise ValueError(render("tool.cash.error.plan_shorthand", LOCALE.get(), n=len(DEFAULT_PAYMENT_PLAN)))
            return [{**m, "pct": share} for m, share in zip(DEFAULT_PAYMENT_PLAN, shares)]
        return v


class ContractResult(ToolResult):
    contract: ContractView


def _contract_text(view: ContractView, locale: str, key: str, customer: str) -> str:
    return render(key, locale, number=view.number, value=money(view.value, view.currency), customer=customer,
                  terms=view.payment_terms_days, status=render(f"tool.cash.contract_status.{view.status}", locale))


@tool(audience=(REP,), keywords=CONTRACT_WORDS + ("draft", "create", "起草", "拟定"), writes=True)
def create_contract(args: CreateContractArgs, ctx: ToolContext) -> ContractResult:
    """Draft a deal's contract from its accepted quote, with a payment plan (default 30/60/10) and terms."""
    with ctx.uow() as uow:
        opp_id = resolve(uow, ctx.actor, "opportunity", args.opportunity, field="opportunity")
        accepted = [x for x in quote_svc.list_quotes(opp_id, actor=ctx.actor, uow=uow) if x.status == q.ACCEPTED]
        if not accepted:
            raise ValidationFailed(render("tool.cash.error.no_accepted_quote", ctx.locale, ref=f"OPP-{opp_id:05d}"),
                                   field="opportunity", allowed=[q.ACCEPTED])
        data: dict = {"quote_id": accepted[-1].id, "payment_terms_days": args.payment_terms_days}
        if args.payment_plan is not None:
            data["milestones"] = [m.model_dump(mode="json", exclude_none=True) for m in args.payment_plan]
        view = svc.create_contract(data, actor=ctx.actor, uow=uow)
        customer = account_name(uow, view.account_id)
        uow.commit()
    text = _contract_text(view, ctx.locale, "tool.cash.contract.created", customer) + "\n" + plan_table(
        view, ctx.locale)
    return ContractResult(contract=view, text=text)


class ContractRef(BaseModel):
    contract: str = Field(min_length=1, max_length=200, description="contract number (CT-2026-00001), or the deal "
                          "(OPP-00012, deal or customer name)", examples=["CT-2026-00001", "华东电力"])


class SubmittedContract(ContractResult):
    customer: str


def _confirm_submit(preview: SubmittedContract, _args: ContractRef, locale: str) -> str:
    view = preview.contract
    return render("tool.cash.contract.confirm_submit", locale, number=view.number, customer=preview.customer,
                  value=money(view.value, view.currency))


@tool(audience=(REP,), keywords=CONTRACT_WORDS + ("submit", "review", "提交", "送签", "审核"), writes=True,
      confirm=_confirm_submit)
def submit_contract(args: ContractRef, ctx: ToolContext) -> SubmittedContract:
    """Send a draft contract for signature: it goes under review and the ATC decision signs it."""
    with ctx.uow() as uow:
        found = contract_of(uow, ctx, args.contract)
        view = svc.submit_contract(found.number, actor=ctx.actor, uow=uow)
        customer = account_name(uow, view.account_id)
        uow.commit()
    return SubmittedContract(contract=view, customer=customer,
                             text=_contract_text(view, ctx.locale, "tool.cash.contract.submitted", customer))
