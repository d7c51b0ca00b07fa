"""From the approved quote to the order, through tools.runner as a chat user: send the quote, record the
customer's acceptance, the SR's solution, the FR's delivery plan and sign-off, and the FR's order.

Each test asserts what the user sees (status, text) and, above all, the state left in the fake store.
"""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import yaml

import prompts
from prompts.messages import names
from tools import runner
from tools.registry import all_tools

D = Decimal


from tests.unit.tools.helpers import call, ok, opp_ref  # noqa: E402


def quote_ref(quote_id: int) -> str:
    return f"Q-{quote_id:05d}"


def audits(store, entity: str, action: str) -> list:
    return [a for a in store.rows("audit") if a.entity == entity and a.action == action]


def today(store):
    return store.clock.current.date()


FLOW_TOOLS = ("send_quote", "record_quote_acceptance", "record_solution", "record_delivery_plan",
              "sign_off_deliverability", "create_order")


def test_every_flow_tool_is_registered_with_its_words_and_no_confirmation():
    tools = all_tools()
    for name in FLOW_TOOLS:
        spec = tools[name]
        assert spec.description and spec.keywords and spec.writes and spec.confirm is None


def test_every_flow_reply_exists_in_english_and_in_chinese():
    flow = {n for n in names("en") if n.startswith("tool.flow.")}
    assert flow and flow == {n for n in names("zh") if n.startswith("tool.flow.")}
    zh = yaml.safe_load((Path(prompts.__file__).parent / "tools_flow.zh.yaml").read_text(encoding="utf-8"))
    assert set(zh) == flow and all(re.search(r"[\u4e00-\u9fff]", text) for text in zh.values())


# --- send the approved quote to the customer --------------------------------------------------------------

def test_send_quote_sends_the_approved_quote_to_the_customer(negotiating, tool_ctx, store):
    deal = negotiating()
    out = ok(call(tool_ctx("rep"), "send_quote", quote=quote_ref(deal.quote)))
    quote = store.get("quotes", deal.quote)
    assert quote.status == "sent" and quote.sent_at is not None
    assert len(audits(store, "quote", "send")) == 1
    customer = store.get("accounts", store.get("opportunities", deal.opp).account_id).name
    assert out.text.startswith(f"Sent {quote_ref(deal.quote)} to {customer}") and "¥500,000" in out.text
    assert out.result["quote"]["status"] == "sent"


def test_send_quote_in_chinese(negotiating, tool_ctx, store):
    deal = negotiating()
    out = ok(call(tool_ctx("rep", locale="zh"), "send_quote", quote=str(deal.quote)))
    assert store.get("quotes", deal.quote).status == "sent"
    assert out.text.startswith(f"已将报价 {quote_ref(deal.quote)} 发送给客户") and "下一步：客户接受后" in out.text


def test_another_reps_quote_cannot_be_sent(negotiating, tool_ctx, store):
    deal = negotiating()
    out = call(tool_ctx("rep2"), "send_quote", quote=quote_ref(deal.quote))
    assert out.status == "error" and out.error.error == "permission_denied"
    assert store.get("quotes", deal.quote).status == "approved" and not audits(store, "quote", "send")


def test_a_quote_sent_twice_is_refused_with_its_status(negotiating, tool_ctx, store):
    deal = negotiating()
    ok(call(tool_ctx("rep"), "send_quote", quote=quote_ref(deal.quote)))
    out = call(tool_ctx("rep"), "send_quote", quote=quote_ref(deal.quote))
    assert out.status == "error" and out.error.error == "invalid_transition" and "accepted" in out.error.allowed
    assert len(audits(store, "quote", "send")) == 1


# --- record the customer's acceptance ------------------------------------------------------------------

def test_record_quote_acceptance_makes_the_deal_worth_the_quote(negotiating, tool_ctx, store):
    deal = negotiating()
    ctx = tool_ctx("rep")
    ok(call(ctx, "update_opportunity", opportunity=opp_ref(deal.opp), amount="650000"))
    ok(call(ctx, "send_quote", quote=quote_ref(deal.quote)))
    out = ok(call(ctx, "record_quote_acceptance", quote=quote_ref(deal.quote)))
    quote, opp = store.get("quotes", deal.quote), store.get("opportunities", deal.opp)
    assert quote.status == "accepted" and quote.accepted_at is not None
    assert opp.amount == quote.total == D("500000")
    assert len(audits(store, "opportunity", "amount_from_quote")) == 1
    assert f"{opp_ref(deal.opp)}" in out.text and "now worth ¥500,000" in out.text and "contract" in out.text


def test_record_quote_acceptance_in_chinese(negotiating, tool_ctx, store):
    deal = negotiating()
    ok(call(tool_ctx("rep"), "send_quote", quote=quote_ref(deal.quote)))
    out = ok(call(tool_ctx("rep", locale="zh"), "record_quote_acceptance", quote=f"q {deal.quote}"))
    assert store.get("quotes", deal.quote).status == "accepted"
    assert f"已接受报价 {quote_ref(deal.quote)}" in out.text and "下一步：据此起草合同" in out.text


def test_an_unsent_quote_cannot_be_accepted(negotiating, tool_ctx, store):
    deal = negotiating()
    out = call(tool_ctx("rep"), "record_quote_acceptance", quote=quote_ref(deal.quote))
    assert out.status == "error" and out.error.error == "invalid_transition" and out.error.allowed == [
        "draft", "expired", "sent", "superseded"]
    assert store.get("quotes", deal.quote).status == "approved"


# --- the SR's solution, the FR's delivery plan and sign-off ------------------------------------------------

def test_record_solution_stores_the_srs_summary(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("sr"), "record_solution", opportunity=opp_ref(opp), summary="Two-wave MES rollout"))
    assert store.get("opportunities", opp).solution_summary == "Two-wave MES rollout"
    assert len(audits(store, "opportunity", "record_solution_summary")) == 1
    assert out.text.startswith(f"Solution summary recorded on {opp_ref(opp)}") and "Two-wave MES rollout" in out.text


def test_record_solution_in_chinese(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("sr", locale="zh"), "record_solution", opportunity=str(opp), summary="分两期上线MES"))
    assert store.get("opportunities", opp).solution_summary == "分两期上线MES"
    assert out.text.startswith(f"已在 {opp_ref(opp)}") and "方案概要：“分两期上线MES”" in out.text


def test_the_ar_cannot_record_the_srs_solution(deal, tool_ctx, store):
    opp = deal()
    out = call(tool_ctx("rep"), "record_solution", opportunity=opp_ref(opp), summary="Two-wave MES rollout")
    assert out.status == "error" and out.error.error == "permission_denied"
    assert store.get("opportunities", opp).solution_summary is None


def test_record_delivery_plan_stores_the_frs_plan(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("fr"), "record_delivery_plan", opportunity=opp_ref(opp),
                  plan="Hardware in December, go-live in January"))
    assert store.get("opportunities", opp).delivery_plan == "Hardware in December, go-live in January"
    assert out.text.startswith(f"Delivery plan recorded on {opp_ref(opp)}") and "sign-off" not in out.text


def test_a_new_delivery_plan_voids_the_signoff_and_says_so_in_chinese(negotiating, tool_ctx, store):
    deal = negotiating()
    assert store.get("opportunities", deal.opp).deliverability_signed_at is not None
    out = ok(call(tool_ctx("fr", locale="zh"), "record_delivery_plan", opportunity=opp_ref(deal.opp),
                  plan="三期交付，延长至九个月"))
    opp = store.get("opportunities", deal.opp)
    assert opp.delivery_plan == "三期交付，延长至九个月" and opp.deliverability_signed_at is None
    assert "交付计划：“三期交付，延长至九个月”" in out.text and "可交付性确认随之失效" in out.text


def test_sign_off_deliverability_after_the_plan(deal, tool_ctx, store, org):
    opp = deal()
    ok(call(tool_ctx("fr"), "record_delivery_plan", opportunity=opp_ref(opp), plan="Two waves, 6 months"))
    out = ok(call(tool_ctx("fr"), "sign_off_deliverability", opportunity=opp_ref(opp)))
    row = store.get("opportunities", opp)
    assert row.deliverability_signed_at is not None and row.deliverability_signed_by == org["fr"]
    assert out.text.startswith(f"Deliverability of {opp_ref(opp)}") and "ATC" in out.text


def test_sign_off_deliverability_in_chinese(deal, tool_ctx, store):
    opp = deal("solution")
    out = ok(call(tool_ctx("fr", locale="zh"), "sign_off_deliverability", opportunity=opp_ref(opp)))
    assert store.get("opportunities", opp).deliverability_signed_at is not None
    assert "的可交付性已于" in out.text and "签约决策" in out.text


def test_a_rep_cannot_sign_off_deliverability(deal, tool_ctx, store):
    opp = deal("solution")
    out = call(tool_ctx("rep"), "sign_off_deliverability", opportunity=opp_ref(opp))
    assert out.status == "error" and out.error.error == "permission_denied"
    assert store.get("opportunities", opp).deliverability_signed_at is None


def test_no_signoff_without_a_delivery_plan(deal, tool_ctx, store):
    opp = deal()
    out = call(tool_ctx("fr"), "sign_off_deliverability", opportunity=opp_ref(opp))
    assert out.status == "error" and out.error.error == "validation_failed" and out.error.field == "delivery_plan"
    assert store.get("opportunities", opp).deliverability_signed_at is None


# --- the FR opens the order --------------------------------------------------------------------------------

def _order_of(store, contract_id: int):
    return next((o for o in store.rows("orders") if o.contract_id == contract_id), None)


def test_create_order_from_the_shorthand_people_write(signed, tool_ctx, store):
    deal = signed()
    t = today(store)
    dates = [t + timedelta(days=n) for n in (10, 40, 80)]
    number = store.get("contracts", deal.contract).number
    plan = f"hardware on site {dates[0]}; go-live on {dates[1]}; final acceptance {dates[2]}"
    out = ok(call(tool_ctx("fr"), "create_order", contract=number, milestones=plan))
    order = _order_of(store, deal.contract)
    assert [(m.seq, m.name, m.kind, m.planned_date) for m in order.milestones] == [
        (1, "hardware on site", "delivery", dates[0]), (2, "go-live", "delivery", dates[1]),
        (3, "final acceptance", "final_acceptance", dates[2])]
    assert sum(m.revenue_pct for m in order.milestones) == D("100")
    assert store.get("contracts", deal.contract).status == "executing"
    assert out.text.startswith(f"Opened order {order.number} for {number}") and "final acceptance" in out.text


def test_create_order_in_chinese_by_the_deal_with_revenue_shares(signed, tool_ctx, store):
    deal = signed()
    t = today(store)
    milestones = [{"name": "设备到货", "planned_date": str(t + timedelta(days=5)), "revenue_pct": 40},
                  {"name": "终验", "kind": "final_acceptance", "planned_date": str(t + timedelta(days=60)),
                   "revenue_pct": 60}]
    out = ok(call(tool_ctx("fr", locale="zh"), "create_order", contract=opp_ref(deal.opp), milestones=milestones))
    order = _order_of(store, deal.contract)
    assert [(m.name, m.kind, m.revenue_pct) for m in order.milestones] == [
        ("设备到货", "delivery", D("40")), ("终验", "final_acceptance", D("60"))]
    assert out.text.startswith("已为合同") and f"创建订单 {order.number}" in out.text and "终验" in out.text


def test_a_rep_cannot_open_the_order(signed, tool_ctx, store):
    deal = signed()
    out = call(tool_ctx("rep"), "create_order", contract=opp_ref(deal.opp),
               milestones=f"final acceptance {today(store) + timedelta(days=30)}")
    assert out.status == "error" and out.error.error == "permission_denied"
    assert _order_of(store, deal.contract) is None and store.get("contracts", deal.contract).status == "signed"


def test_a_milestone_without_a_date_is_refused_before_anything_is_written(signed, tool_ctx, store):
    deal = signed()
    out = call(tool_ctx("fr"), "create_order", contract=opp_ref(deal.opp), milestones="hardware soon; go-live")
    assert out.status == "error" and out.error.error == "bad_arguments" and out.error.field == "milestones"
    assert "hardware soon" in out.text and _order_of(store, deal.contract) is None


def test_final_acceptance_must_come_last(signed, tool_ctx, store):
    deal = signed()
    t = today(store)
    out = call(tool_ctx("fr"), "create_order", contract=opp_ref(deal.opp),
               milestones=f"final acceptance {t + timedelta(days=10)}; training {t + timedelta(days=20)}")
    assert out.status == "error" and out.error.error == "validation_failed"
    assert _order_of(store, deal.contract) is None


def test_an_order_needs_a_signed_contract(accepted, tool_ctx, store):
    deal = accepted()
    ok(call(tool_ctx("rep"), "create_contract", opportunity=opp_ref(deal.opp)))
    out = call(tool_ctx("fr"), "create_order", contract=opp_ref(deal.opp),
               milestones=f"final acceptance {today(store) + timedelta(days=30)}")
    assert out.status == "error" and out.error.error == "invalid_transition" and out.error.allowed == ["signed"]
    assert store.count("orders") == 0


# --- end to end: from negotiation to the contract under review, only through tools -----------------------------

def test_a_deal_walks_from_negotiation_to_its_contract_under_review_through_tools(negotiating, tool_ctx, store):
    deal = negotiating()
    rep = tool_ctx("rep")
    ok(call(rep, "send_quote", quote=quote_ref(deal.quote)))
    ok(call(rep, "record_quote_acceptance", quote=quote_ref(deal.quote)))
    drafted = ok(call(rep, "create_contract", opportunity=opp_ref(deal.opp), payment_plan="40/50/10"))
    number = drafted.result["contract"]["number"]
    contract = next(c for c in store.rows("contracts") if c.opportunity_id == deal.opp)
    assert (contract.number, contract.status, contract.quote_id) == (number, "draft", deal.quote)
    assert [m.pct for m in contract.milestones] == [D("40"), D("50"), D("10")]

    proposed = call(rep, "submit_contract", contract=number)
    assert proposed.status == "needs_confirmation" and number in proposed.proposal.summary
    assert store.get("contracts", contract.id).status == "draft"  # nothing happens before the user's yes

    done = runner.confirm(proposed.proposal.token, rep)
    assert done.status == "ok", done.text
    assert store.get("contracts", contract.id).status == "under_review"
    assert store.get("quotes", deal.quote).status == "accepted"
    assert store.get("opportunities", deal.opp).stage == "negotiate"  # ATC signs it and wins the deal
    assert runner.confirm(proposed.proposal.token, rep).status == "error"  # a token is spent once


def test_the_chinese_shorthand_reads_chinese_dates_shares_and_final_acceptance(signed, tool_ctx, store):
    deal = signed()
    t = today(store)
    first, last = t + timedelta(days=7), t + timedelta(days=90)
    plan = f"设备到货 {first} 40%；终验：{last.year}年{last.month}月{last.day}日 60%"
    ok(call(tool_ctx("fr", locale="zh"), "create_order", contract=opp_ref(deal.opp), milestones=plan))
    order = _order_of(store, deal.contract)
    assert [(m.name, m.kind, m.planned_date, m.revenue_pct) for m in order.milestones] == [
        ("设备到货", "delivery", first, D("40")), ("终验", "final_acceptance", last, D("60"))]
