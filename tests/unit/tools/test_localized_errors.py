"""What the domain says reaches a Chinese user in Chinese: errors that name their message (message_key +
params), gate preconditions by name, "what next" items and stages, catalog names on quotes.

English stays exactly what the domain says; every domain.* template exists in both languages."""
from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

from domain.errors import LTCError
from domain.services import approvals, next_steps, opportunities, payments, quotes
from prompts.messages import render
from tests import builders
from tests.unit.conftest import run_in
from tests.unit.tools.helpers import call, ok, opp_ref
from tools import runner

PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def refused(outcome, code: str):
    assert outcome.status == "error", outcome.text
    assert outcome.error.error == code, outcome.error
    return outcome.error


def in_both(tool_ctx, user: str, tool: str, args: dict, code: str) -> tuple[str, str]:
    """The refusal's message in English and in Chinese; the same error code in both."""
    en, zh = (refused(call(tool_ctx(user, loc), tool, **args), code).message for loc in ("en", "zh"))
    return en, zh


@pytest.fixture
def catalog(uow_factory, org):
    """MES-LIC (MES许可) on the east CNY price book: list 1,000, cost 300, floor 500."""
    builders.seed_catalog(uow_factory, org)


# --- every template in both languages ------------------------------------------------------------------

def _templates(lang: str) -> dict[str, str]:
    return yaml.safe_load((PROMPTS / f"domain.{lang}.yaml").read_text(encoding="utf-8"))


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_domain_message_exists_in_english_and_chinese_with_the_same_placeholders():
    en, zh = _templates("en"), _templates("zh")
    assert len(en) >= 40 and all(k.startswith("domain.") for k in [*en, *zh])
    assert set(en) == set(zh)
    for key in en:
        assert _placeholders(en[key]) == _placeholders(zh[key]), key


# --- refusals, English unchanged and Chinese -------------------------------------------------------------

def test_another_reps_deal_is_refused_in_the_users_language(deal, tool_ctx):
    other = opp_ref(deal(owner="rep2"))
    for tool, args in (("what_next", {}), ("advance_stage", {"to_stage": "initiated"}),
                       ("close_opportunity", {"outcome": "lost", "reason": "price too high"})):
        en, zh = in_both(tool_ctx, "rep", tool, {"opportunity": other, **args}, "permission_denied")
        assert en == f"{other} is not one of your deals or your team's deals"
        assert zh == f"{other} 不是你或你团队的商机，你无权查看或操作。"


def test_a_role_without_the_use_case_is_told_which_roles_may(deal, tool_ctx):
    en, zh = in_both(tool_ctx, "sr", "advance_stage", {"opportunity": opp_ref(deal())}, "permission_denied")
    assert en == ("advance_stage needs one of the roles admin, director, sales_manager, sales_rep; "
                  "you have solution_manager")
    assert zh == ("你的角色（方案经理）无权执行此操作（advance_stage），需要以下角色之一：管理员、销售总监、销售经理、"
                  "客户经理。")


def test_only_the_ar_or_their_managers_move_or_quote_a_deal(deal, tool_ctx, catalog):
    # The east director sees the west rep's deal through its east SR, but is not the AR's manager.
    west = opp_ref(deal(owner="rep_w", region="west"))
    en, zh = in_both(tool_ctx, "director", "advance_stage", {"opportunity": west}, "permission_denied")
    assert en == f"Only {west}'s AR or their managers may move its stage"
    assert zh == f"只有 {west} 的客户经理（AR）或其上级可以推进商机阶段。"
    en, zh = in_both(tool_ctx, "director", "generate_quote",
                     {"opportunity": west, "lines": [{"product": "MES-LIC", "quantity": 1}]}, "permission_denied")
    assert en == f"Only {west}'s AR or their managers may quote it"
    assert zh == f"只有 {west} 的客户经理（AR）、方案经理（SR）或 AR 的上级可以报价。"


def test_a_skipped_stage_names_the_allowed_next_stages_in_words(deal, tool_ctx, store):
    opp = deal()
    en, zh = in_both(tool_ctx, "rep", "advance_stage", {"opportunity": opp_ref(opp), "to_stage": "negotiate"},
                     "invalid_transition")
    assert en == (f"{opp_ref(opp)} is in stage qualify; it cannot move to negotiate "
                  "(allowed next: initiated, lost, abandoned)")
    assert zh == f"{opp_ref(opp)} 目前处于「验证」阶段，不能推进到「谈判」（下一步只能是：已立项、输单、放弃）。"
    assert store.get("opportunities", opp).stage == "qualify"


def test_a_gate_requested_in_the_wrong_stage_says_where_the_deal_is(deal, tool_ctx, store):
    opp = opp_ref(deal())
    en, zh = in_both(tool_ctx, "rep", "request_decision", {"opportunity": opp, "decision": "ATB"},
                     "invalid_transition")
    assert en == f"ATB moves a deal from solution to bid; {opp} is in qualify"
    assert zh == f"投标决策（ATB）用于把商机从「方案」推进到「投标」，而 {opp} 目前处于「验证」阶段。"
    assert store.count("approvals") == 0


def test_deciding_ones_own_request_or_the_wrong_step_is_refused(deal, tool_ctx, uow_factory, org, store):
    req = run_in(uow_factory, approvals.request_gate, deal(), "ATI", actor=org.actor("admin"))
    args = {"approval": req.ref, "decision": "approve"}
    en, zh = in_both(tool_ctx, "admin", "decide_approval", args, "permission_denied")
    assert en == f"You cannot decide {req.ref}: you requested this decision and cannot decide it yourself"
    assert zh == f"你不能审批 {req.ref}：这是你自己发起的申请，不能自己审批。"
    en, zh = in_both(tool_ctx, "director", "decide_approval", args, "permission_denied")
    assert en == f"You cannot decide {req.ref}: step 1 needs a sales_manager"
    assert zh == f"你不能审批 {req.ref}：第 1 步需要由销售经理审批。"
    en, zh = in_both(tool_ctx, "finance", "decide_approval", args, "permission_denied")
    assert en == f"{req.ref} is about a deal you cannot see"
    assert zh == f"{req.ref} 涉及的商机你无权查看。"
    en, zh = in_both(tool_ctx, "manager", "decide_approval", {**args, "decision": "reject"}, "validation_failed")
    assert en == "A rejection or a request for changes needs a comment saying why"
    assert zh == "驳回或要求修改时请填写意见，说明原因。"
    assert store.get("approvals", req.id).status == "pending" and not store.get("approvals", req.id).decisions


def test_an_approval_that_does_not_exist(tool_ctx):
    en, zh = in_both(tool_ctx, "manager", "decide_approval", {"approval": "APR-09999", "decision": "approve"},
                     "not_found")
    assert (en, zh) == ("Approval request APR-09999 does not exist", "审批 APR-09999 不存在")


def test_an_unknown_product_and_a_price_below_the_floor(deal, tool_ctx, catalog, store):
    opp = opp_ref(deal())
    en, zh = in_both(tool_ctx, "rep", "generate_quote",
                     {"opportunity": opp, "lines": [{"product": "NOPE-XYZ", "quantity": 1}]}, "not_found")
    assert (en, zh) == ("Unknown product 'NOPE-XYZ'", "没有找到产品「NOPE-XYZ」。")
    en, zh = in_both(tool_ctx, "rep", "generate_quote",
                     {"opportunity": opp, "lines": [{"product": "MES-LIC", "quantity": 10, "discount_pct": 60}]},
                     "validation_failed")
    assert en == "MES-LIC at 60% off nets 400.00 per MES licence, below its floor price 500.00: refused"
    assert zh == "MES-LIC（MES licence）折扣 60% 后单价为 400.00，低于底价 500.00，不予报价。"
    assert store.count("quotes") == 0


def test_a_discount_beyond_the_policy_is_refused_in_words(deal, tool_ctx, catalog, uow_factory, org, store):
    opp = deal()
    q = run_in(uow_factory, quotes.create_quote, opp,
               {"lines": [{"product": "MES-LIC", "quantity": "10", "discount_pct": "45"}]}, actor=org.actor("rep"))
    en, zh = in_both(tool_ctx, "rep", "submit_quote", {"quote": q.ref}, "validation_failed")
    assert en == ("No approval band allows a 45.00% discount on 5500.00 with margin 45.45%: the policy stops at 30%. "
                  "Redesign the offer (scope, phasing, payment terms) instead of discounting further")
    assert zh == ("折扣政策中没有任何审批档允许在金额 5500.00、毛利率 45.45% 的情况下给出 45.00% 的折扣：政策上限为 30%。"
                  "请从范围、分期或付款条件上调整方案，而不是继续加大折扣。")
    assert store.get("quotes", q.id).status == "draft"


def test_a_payment_in_the_wrong_currency_or_dated_ahead(signed, tool_ctx, store):
    contract = store.get("contracts", signed().contract)
    base = {"amount": "1000", "bank_ref": "B-1", "contract": contract.number}
    en, zh = in_both(tool_ctx, "finance", "record_payment", {**base, "currency": "USD"}, "validation_failed")
    assert en == f"{contract.number} is in CNY; the payment is in USD"
    assert zh == f"{contract.number} 的币种是 CNY，而这笔回款是 USD。"
    en, zh = in_both(tool_ctx, "finance", "record_payment", {**base, "received_on": "2099-03-01"}, "validation_failed")
    assert (en, zh) == ("received_on 2099-03-01 is in the future", "到账日期 2099-03-01 在未来，请填写实际到账日期。")
    assert store.count("payments") == 0


def test_a_bank_reference_already_recorded_with_other_details(signed, tool_ctx, uow_factory, org, store):
    contract = store.get("contracts", signed().contract)
    today = uow_factory().store.clock.current.date()
    first = run_in(uow_factory, payments.record_payment, {"contract_id": contract.id, "amount": "1000",
                                                         "currency": "CNY", "bank_ref": "B-7", "received_on": today},
                   actor=org.actor("finance"))
    en, zh = in_both(tool_ctx, "finance", "record_payment",
                     {"amount": "2000", "bank_ref": "B-7", "contract": contract.number}, "conflict")
    assert en == f"Bank reference B-7 is already recorded as {first.number} with other details (CNY 1000.00 on {today})"
    assert zh == f"银行流水号 B-7 已登记为 {first.number}，但信息不同（CNY 1000.00，{today} 到账）。"
    assert store.count("payments") == 1


def test_confirmations_refused_in_the_users_language(deal, tool_ctx, catalog, store):
    proposal = call(tool_ctx("rep", "zh"), "generate_quote", opportunity=opp_ref(deal()),
                    lines=[{"product": "MES-LIC", "quantity": 10, "discount_pct": 15}])
    assert proposal.status == "needs_confirmation"
    token = proposal.proposal.token

    def confirm_as(user: str, code: str, with_token: str = token) -> tuple[str, str]:
        return tuple(refused(runner.confirm(with_token, tool_ctx(user, loc)), code).message for loc in ("en", "zh"))

    en, zh = confirm_as("rep2", "permission_denied")
    assert (en, zh) == ("Only the person who asked for this may confirm it", "只有发起这项操作的人才能确认。")
    ok(runner.confirm(token, tool_ctx("rep", "zh")))
    en, zh = confirm_as("rep", "conflict")
    assert (en, zh) == ("This proposal was already confirmed; nothing more happens", "这项提议已经确认过了，不会再执行一次。")
    en, zh = confirm_as("rep", "not_found", "no-such-token")
    assert en == "That confirmation does not exist: ask again and confirm the new proposal"
    assert zh == "这个确认已不存在：请重新发起，再确认新的提议。"
    assert store.count("quotes") == 1


# --- gates: what is missing, by name --------------------------------------------------------------------

def test_a_gate_refusal_lists_the_missing_items_in_chinese(deal, tool_ctx, store):
    opp = opp_ref(deal(triangle=False))
    for tool, args in (("request_decision", {"decision": "ATI"}), ("advance_stage", {})):
        en = refused(call(tool_ctx("rep"), tool, opportunity=opp, **args), "validation_failed"
                     if tool == "request_decision" else "approval_required")
        zh = refused(call(tool_ctx("rep", "zh"), tool, opportunity=opp, **args), en.error)
        assert en.message == (f"{opp} cannot get the ATI decision yet. Missing: SR (solution responsible) assigned; "
                              "FR (fulfillment responsible) assigned.")
        assert zh.message == f"{opp} 暂不能申请立项决策（ATI），尚缺：指派方案经理（SR）；指派交付经理（FR）。"
    assert store.count("approvals") == 0


def test_atb_without_an_approved_quote_asks_for_one_in_chinese(deal, tool_ctx):
    opp = opp_ref(deal("solution"))
    zh = refused(call(tool_ctx("rep", "zh"), "request_decision", opportunity=opp, decision="ATB"), "validation_failed")
    assert zh.message == f"{opp} 暂不能申请投标决策（ATB），尚缺：一份已审批通过的报价。"


# --- catalog names ---------------------------------------------------------------------------------------

def test_a_quote_shows_the_catalogs_chinese_product_name_to_chinese_readers(deal, tool_ctx, catalog, store):
    opp = opp_ref(deal())
    en = ok(call(tool_ctx("rep"), "generate_quote", opportunity=opp, lines=[{"product": "MES-LIC", "quantity": 2}]))
    zh = ok(call(tool_ctx("rep", "zh"), "generate_quote", opportunity=opp, lines=[{"product": "MES许可", "quantity": 2}]))
    assert "MES licence" in en.text and "MES许可" not in en.text
    assert "MES许可" in zh.text and "MES licence" not in zh.text
    assert zh.result["quote"]["lines"][0]["name_zh"] == "MES许可"
    assert [x.lines[0].name for x in store.rows("quotes")] == ["MES licence", "MES licence"]  # stored as priced


# --- what next --------------------------------------------------------------------------------------------

def test_what_next_in_chinese_words_its_items_and_stage(deal, tool_ctx):
    opp = opp_ref(deal("solution"))
    en = ok(call(tool_ctx("rep"), "what_next", opportunity=opp)).text
    zh = ok(call(tool_ctx("rep", "zh"), "what_next", opportunity=opp)).text
    assert "(stage solution):" in en and "1. [SR] For ATB: an approved quote" in en
    assert "2. [AR] Write down the next step" in en
    assert "（阶段：方案）下一步：" in zh
    assert "1. [SR] 投标决策（ATB）尚缺：一份已审批通过的报价" in zh and "2. [AR] 填写下一步行动" in zh
    assert "approved quote" not in zh and "solution" not in zh


def test_next_step_items_say_in_english_exactly_what_their_templates_say(deal, uow_factory, org):
    """Each item's key and params render its English text: the Chinese template says the same thing."""
    for opp in (deal(triangle=False), deal("solution")):
        view = run_in(uow_factory, next_steps.next_steps, opp, actor=org.actor("rep"))
        assert view.items
        for item in view.items:
            values = dict(item.params)
            if item.key == "gate_material":
                values["item"] = render(f"domain.gate.{item.params['gap']}", "en", **item.params)
            assert render(f"domain.next.{item.key}", "en", **values) == item.text


# --- the domain's English equals its template --------------------------------------------------------------

def _said(err: LTCError) -> str:
    return render(f"domain.{err.details['message_key']}", "en", **err.details["params"])


def test_domain_errors_say_in_english_exactly_what_their_templates_say(deal, uow_factory, org, catalog):
    opp, other, bare = deal(), deal(owner="rep2"), deal(triangle=False)
    rep = org.actor("rep")
    attempts = [
        lambda: run_in(uow_factory, opportunities.get_opportunity, other, actor=rep),
        lambda: run_in(uow_factory, opportunities.advance_stage, opp, "bid", actor=rep),
        lambda: run_in(uow_factory, opportunities.advance_stage, bare, actor=rep),
        lambda: run_in(uow_factory, opportunities.advance_stage, opp, actor=org.actor("sr")),
        lambda: run_in(uow_factory, approvals.request_gate, bare, "ATI", actor=rep),
        lambda: run_in(uow_factory, approvals.request_gate, opp, "ATB", actor=rep),
        lambda: run_in(uow_factory, quotes.create_quote, opp, {"lines": [{"product": "NOPE", "quantity": "1"}]},
                       actor=rep),
        lambda: run_in(uow_factory, approvals.get_approval, 999, actor=rep),
        lambda: run_in(uow_factory, opportunities.record_solution, opp, "Edge MES", actor=org.actor("fr")),
    ]
    for attempt in attempts:
        with pytest.raises(LTCError) as err:
            attempt()
        assert "message_key" in err.value.details, err.value.message
        assert _said(err.value) == err.value.message
