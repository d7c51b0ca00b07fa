"""Sales-side tools through tools.runner, as a chat user would call them; assertions on the stored state."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.services import accounts, leads, quotes
from tests import builders
from tests.unit.conftest import run_in
from tools import runner


from tests.unit.tools.helpers import call, ok, opp_ref  # noqa: E402


@pytest.fixture
def catalog(uow_factory, org):
    """MES-LIC on the east CNY price book: list 1,000, cost 300, floor 500."""
    builders.seed_catalog(uow_factory, org)


def discount_request(uow_factory, org, opp_id: int, pct: str = "15") -> tuple[int, int]:
    """rep quotes 10 seats at `pct` off and submits: (quote id, approval id) waiting for the sales manager."""
    rep = org.actor("rep")
    quote = run_in(uow_factory, quotes.create_quote, opp_id,
                   {"lines": [{"product": "MES-LIC", "quantity": "10", "discount_pct": pct}]}, actor=rep)
    quote = run_in(uow_factory, quotes.submit_quote, quote.id, actor=rep)
    return quote.id, quote.approval_id


# --- account 360 -------------------------------------------------------------------------------------------

def test_account_360_shows_contacts_deals_and_recent_activities(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "log_activity", about=opp_ref(opp), kind="meeting", subject="Kick-off with the CIO"))
    out = ok(call(tool_ctx("rep"), "account_360", account="Customer 1"))
    account = store.get("accounts", store.get("opportunities", opp).account_id)
    assert out.result["account360"]["account"]["id"] == account.id
    for fact in (account.ref, "Contact 1", opp_ref(opp), "Kick-off with the CIO", "¥500,000", "technical evaluator"):
        assert fact in out.text


def test_account_360_in_chinese(deal, tool_ctx):
    deal()
    out = ok(call(tool_ctx("rep", locale="zh"), "account_360", account="Customer 1 Ltd"))
    assert "联系人（1）" in out.text and "商机（1）" in out.text and "验证" in out.text and "决策链缺口" in out.text


def test_a_misspelt_account_name_still_finds_the_account(deal, tool_ctx):
    deal()
    out = ok(call(tool_ctx("rep"), "account_360", account="Custmer 1"))
    assert "Customer 1 Ltd" in out.text


def test_two_similar_account_names_return_a_pick_list(run, org, tool_ctx, store):
    for name in ("Huadong Power Grid", "Huadong Power Systems"):
        run(accounts.create_account, {"name": name, "region": "east"}, actor=org.actor("rep"))
    out = call(tool_ctx("rep"), "account_360", account="Huadong Power")
    assert out.status == "error" and out.error.error == "ambiguous" and out.error.field == "account"
    assert len(out.error.did_you_mean) == 2 and all("Huadong Power" in c for c in out.error.did_you_mean)


def test_another_reps_account_is_not_found_by_name(deal, tool_ctx):
    deal(owner="rep2")
    out = call(tool_ctx("rep"), "account_360", account="rep2 Customer 1")
    assert out.status == "error" and out.error.error == "not_found"


# --- log_activity -------------------------------------------------------------------------------------------

def test_log_activity_on_a_deal_by_reference(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("rep"), "log_activity", about=opp_ref(opp), kind="call", subject="Budget call",
                  body="CFO confirms 500k", occurred_at="2025-03-02T15:00:00+08:00"))
    activity = store.rows("activities")[-1]
    assert (activity.kind, activity.opportunity_id, activity.body) == ("call", opp, "CFO confirms 500k")
    assert activity.account_id == store.get("opportunities", opp).account_id
    assert activity.occurred_at.isoformat() == "2025-03-02T07:00:00"
    assert out.text == f"Logged call \"Budget call\" on {opp_ref(opp)}."


def test_log_activity_by_name_lands_on_the_account_not_the_converted_lead(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "log_activity", about="Customer 1 Ltd", subject="Sent the brochure"))
    activity = store.rows("activities")[-1]
    assert activity.kind == "note" and activity.lead_id is None and activity.opportunity_id is None
    assert activity.account_id == store.get("opportunities", opp).account_id


def test_log_activity_on_a_lead_by_name_makes_it_contacted(run, org, tool_ctx, store):
    lead = run(leads.create_lead, {"source": "ad", "company": "Lead Target Co", "contact_name": "Sun Li",
                                   "region": "east"}, actor=org.actor("rep"))
    out = ok(call(tool_ctx("rep"), "log_activity", about="lead target", kind="call", subject="First call"))
    assert store.rows("activities")[-1].lead_id == lead.id
    assert store.get("leads", lead.id).status == "contacted" and lead.ref in out.text


def test_log_activity_in_chinese(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("rep", locale="zh"), "log_activity", about=f"opp {opp}", kind="meeting",
                  subject="拜访客户CIO"))
    assert out.text == f"已在 {opp_ref(opp)} 上记录会议：“拜访客户CIO”。"
    assert store.rows("activities")[-1].subject == "拜访客户CIO"


def test_log_activity_on_a_bare_number_asks_which_record(deal, tool_ctx, store):
    deal()
    before = store.count("activities")
    out = call(tool_ctx("rep"), "log_activity", about="1", subject="call")
    assert out.status == "error" and out.error.field == "about" and "OPP-1" in out.text
    assert store.count("activities") == before


def test_log_activity_with_a_wrong_kind_lists_the_kinds(deal, tool_ctx):
    out = call(tool_ctx("rep"), "log_activity", about="OPP-1", kind="lunch", subject="x")
    assert out.error.error == "bad_arguments" and out.error.field == "kind"
    assert out.error.allowed == ["call", "meeting", "email", "note"]


# --- list_deals ------------------------------------------------------------------------------------------------

def test_list_my_deals_is_a_table_of_my_deals(deal, tool_ctx):
    mine, other = deal(n=1), deal(n=2)
    theirs = deal(owner="rep2", n=3)
    out = ok(call(tool_ctx("rep"), "list_deals", owner="me"))
    assert {d["id"] for d in out.result["deals"]} == {mine, other}
    assert opp_ref(mine) in out.text and opp_ref(theirs) not in out.text
    assert out.text.splitlines()[1].split() == ["Ref", "Name", "Stage", "Amount", "Close", "Owner"]
    assert "¥500,000" in out.text


def test_a_rep_asking_for_another_reps_deals_is_refused(deal, tool_ctx):
    deal(owner="rep2")
    out = call(tool_ctx("rep"), "list_deals", owner="rep2")
    assert out.status == "error" and out.error.error == "permission_denied"
    assert "only see your own deals and your team's" in out.text


def test_a_manager_sees_their_teams_deals(deal, tool_ctx):
    mine, theirs = deal(n=1), deal(owner="rep2", n=2)
    manager = tool_ctx("manager")
    assert {d["id"] for d in ok(call(manager, "list_deals", owner="Rep2")).result["deals"]} == {theirs}
    assert {d["id"] for d in ok(call(manager, "list_deals")).result["deals"]} == {mine, theirs}


def test_a_manager_of_another_region_is_refused_our_reps_deals(deal, tool_ctx):
    deal()
    out = call(tool_ctx("manager_w"), "list_deals", owner="rep@example.com")
    assert out.error.error == "permission_denied"


def test_list_deals_by_stage_in_chinese(deal, tool_ctx):
    deal(n=1)
    bid = deal("bid", n=2)
    out = ok(call(tool_ctx("rep", locale="zh"), "list_deals", stage="bid"))
    assert [d["id"] for d in out.result["deals"]] == [bid]
    assert out.text.startswith("共 1 个商机") and "投标" in out.text and "阶段" in out.text


def test_an_ambiguous_person_returns_a_pick_list(deal, tool_ctx):
    out = call(tool_ctx("director"), "list_deals", owner="direct")
    assert out.error.error == "ambiguous" and out.error.field == "owner"
    assert sorted(c.split()[0] for c in out.error.did_you_mean) == ["Director", "Director"]


def test_a_wrong_stage_is_a_bad_argument_with_the_allowed_stages(tool_ctx):
    out = call(tool_ctx("rep"), "list_deals", stage="closed")
    assert out.status == "error" and out.error.error == "bad_arguments" and out.error.field == "stage"
    assert "qualify" in out.error.allowed and "won" in out.error.allowed


# --- create / update / iron triangle -----------------------------------------------------------------------------

def test_create_opportunity_on_an_account_named_loosely(deal, tool_ctx, store):
    first = deal()
    out = ok(call(tool_ctx("rep"), "create_opportunity", account="customer 1", name="MES phase 2", amount="250000",
                  expected_close_date="2025-09-30", next_step="site survey"))
    opp = store.get("opportunities", out.result["deal"]["id"])
    assert (opp.name, opp.amount, opp.stage, opp.owner_id) == ("MES phase 2", Decimal("250000"), "qualify",
                                                                store.get("opportunities", first).owner_id)
    assert opp.account_id == store.get("opportunities", first).account_id
    assert "MES phase 2" in out.text and "¥250,000" in out.text and "2025-09-30" in out.text


def test_create_opportunity_in_chinese(deal, tool_ctx):
    deal()
    out = ok(call(tool_ctx("rep", locale="zh"), "create_opportunity", account="ACC-1", name="二期扩容",
                  amount="800000"))
    assert "已为 Customer 1 Ltd 创建商机" in out.text and "二期扩容" in out.text and "验证" in out.text


def test_a_negative_amount_is_refused_before_anything_is_written(deal, tool_ctx, store):
    deal()
    before = store.count("opportunities")
    out = call(tool_ctx("rep"), "create_opportunity", account="ACC-1", name="X", amount="-5")
    assert out.error.error == "bad_arguments" and out.error.field == "amount"
    assert store.count("opportunities") == before


def test_update_opportunity_changes_only_the_fields_given(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "update_opportunity", opportunity=opp_ref(opp), amount="650000",
            competitors=["Siemens", "用友"]))
    row = store.get("opportunities", opp)
    assert row.amount == Decimal("650000") and row.competitors == ["Siemens", "用友"]
    assert row.customer_need and row.stage == "qualify"


def test_assign_iron_triangle_by_name_and_email(deal, tool_ctx, store, org):
    opp = deal(triangle=False)
    out = ok(call(tool_ctx("rep"), "assign_iron_triangle", opportunity=opp_ref(opp), sr="Sr", fr="fr@example.com"))
    row = store.get("opportunities", opp)
    assert {(m.user_id, m.role) for m in row.members} == {(org["sr"], "SR"), (org["fr"], "FR")}
    assert "AR Rep, SR Sr, FR Fr" in out.text


def test_assign_iron_triangle_refuses_a_seat_holder_without_the_role(deal, tool_ctx, store):
    opp = deal(triangle=False)
    out = call(tool_ctx("rep"), "assign_iron_triangle", opportunity=opp_ref(opp), sr="rep2")
    assert out.error.error == "validation_failed" and not store.get("opportunities", opp).members


# --- advance_stage and decision gates ------------------------------------------------------------------------------

def test_advance_stage_requests_the_gate_it_needs(deal, tool_ctx, store, org):
    opp = deal()
    out = ok(call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp)))
    [request] = store.rows("approvals")
    assert (request.kind, request.status, request.subject_id, request.requested_by) == ("ATI", "pending", opp,
                                                                                         org["rep"])
    assert store.get("opportunities", opp).stage == "qualify"
    assert out.text == f"{opp_ref(opp)} needs the ATI decision: requested {request.ref} from Manager."


def test_advance_stage_with_a_request_waiting_opens_no_second_one(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp)))
    out = ok(call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp)))
    assert store.count("approvals") == 1 and "already waiting" in out.text


def test_advance_stage_lists_what_the_gate_is_missing(deal, tool_ctx, store):
    opp = deal(triangle=False)
    out = call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp))
    assert out.status == "error" and out.error.error == "approval_required"
    assert "SR (solution responsible) assigned" in out.text and "FR (fulfillment responsible) assigned" in out.text
    assert store.count("approvals") == 0


def test_advance_stage_without_a_gate_moves_the_deal_in_chinese(deal, tool_ctx, store):
    opp = deal("bid")
    out = ok(call(tool_ctx("rep", locale="zh"), "advance_stage", opportunity=opp_ref(opp)))
    assert store.get("opportunities", opp).stage == "negotiate"
    assert "已推进到谈判阶段（赢率 80%）" in out.text


def test_advance_stage_to_a_skipped_stage_names_the_allowed_ones(deal, tool_ctx):
    opp = deal()
    out = call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp), to_stage="won")
    assert out.error.error == "invalid_transition" and "initiated" in out.error.allowed


def test_request_decision_for_ati_goes_out_without_confirmation(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("rep"), "request_decision", opportunity=opp_ref(opp), decision="ATI", note="budget ok"))
    [request] = store.rows("approvals")
    assert request.kind == "ATI" and request.context["note"] == "budget ok"
    assert out.result["approval"]["ref"] == request.ref


def test_request_decision_for_atc_is_confirmed_first(negotiating, uow_factory, org, tool_ctx, store):
    deal = negotiating()
    builders.contract_under_review(uow_factory, org, deal.opp)
    ctx = tool_ctx("rep")
    before = store.count("approvals")
    out = call(ctx, "request_decision", opportunity=opp_ref(deal.opp), decision="ATC")
    assert out.status == "needs_confirmation"
    assert out.proposal.summary == (f"Request the ATC (签约决策) for {opp_ref(deal.opp)} Customer 201 Ltd – "
                                    "A plant-wide MES upgrade in two waves (¥500,000) from Director → finance.")
    assert store.count("approvals") == before
    done = ok(runner.confirm(out.proposal.token, ctx))
    request = store.rows("approvals")[-1]
    assert (request.kind, request.status) == ("ATC", "pending") and request.ref in done.text


def test_request_decision_with_a_wrong_gate_lists_the_gates(deal, tool_ctx):
    out = call(tool_ctx("rep"), "request_decision", opportunity="OPP-1", decision="ATX")
    assert out.error.error == "bad_arguments" and out.error.allowed == ["ATI", "solution_review", "ATB", "ATC"]


def test_close_opportunity_marks_it_lost_with_the_reason(deal, tool_ctx, store):
    opp = deal()
    out = ok(call(tool_ctx("rep"), "close_opportunity", opportunity="Customer 1", outcome="lost",
                  reason="price too high"))
    row = store.get("opportunities", opp)
    assert (row.stage, row.close_reason) == ("lost", "price too high")
    assert out.text.endswith("marked lost: price too high.")


def test_close_opportunity_offers_only_lost_or_abandoned(deal, tool_ctx, store):
    opp = deal()
    out = call(tool_ctx("rep"), "close_opportunity", opportunity=opp_ref(opp), outcome="won", reason="signed")
    assert out.error.allowed == ["lost", "abandoned"] and store.get("opportunities", opp).stage == "qualify"


# --- approvals ------------------------------------------------------------------------------------------------------

def test_list_my_approvals_shows_what_waits_for_me(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "request_decision", opportunity=opp_ref(opp), decision="ATI"))
    out = ok(call(tool_ctx("manager"), "list_my_approvals"))
    request = store.rows("approvals")[0]
    row = next(line for line in out.text.splitlines() if line.startswith(request.ref))
    assert "ATI" in row and opp_ref(opp) in row and "Rep" in row and "¥500,000" in row
    assert ok(call(tool_ctx("director"), "list_my_approvals")).text == "Nothing is waiting for your decision."


def test_list_my_approvals_in_chinese(deal, tool_ctx, uow_factory, org, catalog):
    opp = deal()
    discount_request(uow_factory, org, opp)
    out = ok(call(tool_ctx("manager", locale="zh"), "list_my_approvals"))
    assert out.text.startswith("共 1 项等待您审批") and "折扣审批" in out.text and "折扣 15%" in out.text
    assert "申请人" in out.text


def test_decide_approval_waits_for_confirmation_then_decides(deal, tool_ctx, store, uow_factory, org, catalog):
    opp = deal()
    quote_id, approval_id = discount_request(uow_factory, org, opp)
    ctx = tool_ctx("manager")
    audit_before = store.count("audit")
    out = call(ctx, "decide_approval", approval=f"APR-{approval_id:05d}", decision="approve", comment="parity ok")
    assert out.status == "needs_confirmation"
    assert out.proposal.summary == (f"Approve APR-{approval_id:05d} (discount) for Q-{quote_id:05d} · {opp_ref(opp)} "
                                    "Customer 1 Ltd – A plant-wide MES upgrade in two waves: 15% off, ¥8,500; "
                                    "the request is then approved.")
    # nothing changed but the proposal itself
    assert store.get("approvals", approval_id).status == "pending" and not store.get("approvals", approval_id).decisions
    assert store.get("quotes", quote_id).status == "pending_approval"
    assert store.count("audit") == audit_before + 1
    done = ok(runner.confirm(out.proposal.token, ctx))
    assert store.get("approvals", approval_id).status == "approved"
    assert store.get("quotes", quote_id).status == "approved"
    assert done.text.startswith(f"You approved APR-{approval_id:05d} (discount)")


def test_someone_elses_confirmation_is_refused(deal, tool_ctx, store, uow_factory, org, catalog):
    _, approval_id = discount_request(uow_factory, org, deal())
    out = call(tool_ctx("manager"), "decide_approval", approval=str(approval_id), decision="approve")
    refused = runner.confirm(out.proposal.token, tool_ctx("director"))
    assert refused.status == "error" and refused.error.error == "permission_denied"
    assert store.get("approvals", approval_id).status == "pending"


def test_a_second_confirmation_is_refused(deal, tool_ctx, store, uow_factory, org, catalog):
    _, approval_id = discount_request(uow_factory, org, deal())
    ctx = tool_ctx("manager")
    out = call(ctx, "decide_approval", approval=f"APR-{approval_id}", decision="approve")
    ok(runner.confirm(out.proposal.token, ctx))
    again = runner.confirm(out.proposal.token, ctx)
    assert again.status == "error" and again.error.error == "conflict"
    assert len(store.get("approvals", approval_id).decisions) == 1


def test_an_expired_confirmation_is_refused(deal, tool_ctx, store, uow_factory, org, catalog):
    _, approval_id = discount_request(uow_factory, org, deal())
    ctx = tool_ctx("manager")
    out = call(ctx, "decide_approval", approval=f"APR-{approval_id}", decision="approve")
    store.clock.advance(minutes=11)
    late = runner.confirm(out.proposal.token, ctx)
    assert late.status == "error" and "expired" in late.text
    assert store.get("approvals", approval_id).status == "pending"


def test_a_rep_approving_their_own_discount_is_refused(deal, tool_ctx, store, uow_factory, org, catalog):
    quote_id, approval_id = discount_request(uow_factory, org, deal())
    counts = {t: store.count(t) for t in ("audit", "pending_actions", "outbox")}
    out = call(tool_ctx("rep"), "decide_approval", approval=f"APR-{approval_id}", decision="approve")
    assert out.status == "error" and out.error.error == "permission_denied"
    assert {t: store.count(t) for t in counts} == counts
    assert store.get("approvals", approval_id).status == "pending"
    assert store.get("quotes", quote_id).status == "pending_approval"


def test_a_rejection_without_a_comment_is_refused_before_any_proposal(deal, tool_ctx, store, uow_factory, org,
                                                                      catalog):
    _, approval_id = discount_request(uow_factory, org, deal())
    out = call(tool_ctx("manager"), "decide_approval", approval=f"APR-{approval_id}", decision="reject")
    assert out.error.error == "validation_failed" and out.error.field == "comment"
    assert store.count("pending_actions") == 0


def test_approving_a_gate_moves_the_deal_in_chinese(deal, tool_ctx, store):
    opp = deal()
    ok(call(tool_ctx("rep"), "advance_stage", opportunity=opp_ref(opp)))
    request = store.rows("approvals")[0]
    ctx = tool_ctx("manager", locale="zh")
    out = call(ctx, "decide_approval", approval=request.ref, decision="approve")
    assert out.proposal.summary.startswith(f"批准 {request.ref}（立项决策（ATI））")
    assert out.proposal.summary.endswith(f"随后 {opp_ref(opp)} 进入已立项阶段。")
    done = ok(runner.confirm(out.proposal.token, ctx))
    assert store.get("opportunities", opp).stage == "initiated"
    assert done.text.endswith(f"{opp_ref(opp)} 已进入已立项阶段。")


def test_an_approval_reference_that_is_a_name_is_refused(tool_ctx):
    out = call(tool_ctx("manager"), "decide_approval", approval="the big one", decision="approve")
    assert out.error.error == "validation_failed" and "APR-00012" in out.text


# --- quotes ----------------------------------------------------------------------------------------------------------

def test_generate_quote_inside_the_auto_band_runs_without_confirmation(deal, tool_ctx, store, catalog):
    opp = deal()
    out = ok(call(tool_ctx("rep"), "generate_quote", opportunity=opp_ref(opp),
                  lines=[{"product": "MES licence", "quantity": "10", "discount_pct": "5"}]))
    [quote] = store.rows("quotes")
    assert (quote.status, quote.total, quote.opportunity_id) == ("draft", Decimal("9500.00"), opp)
    assert out.result["needs_approval"] is False
    assert "MES-LIC" in out.text and "¥9,500" in out.text and "5% off" in out.text
    assert "Inside the automatic band" in out.text


def test_generate_quote_beyond_the_auto_band_proposes_first(deal, tool_ctx, store, catalog):
    opp = deal()
    ctx = tool_ctx("rep")
    out = call(ctx, "generate_quote", opportunity=opp_ref(opp),
               lines=[{"product": "MES-LIC", "quantity": "10", "discount_pct": "15"}])
    assert out.status == "needs_confirmation" and store.count("quotes") == 0
    assert out.proposal.summary == (f"Draft a quote for {opp_ref(opp)} Customer 1 Ltd – A plant-wide MES upgrade in "
                                    "two waves: total ¥8,500 at 15% off list; it will need approval by sales manager.")
    done = ok(runner.confirm(out.proposal.token, ctx))
    [quote] = store.rows("quotes")
    assert quote.status == "draft" and "sales manager" in done.text


def test_generate_quote_in_chinese(deal, tool_ctx, catalog):
    opp = deal()
    out = ok(call(tool_ctx("rep", locale="zh"), "generate_quote", opportunity=opp_ref(opp),
                  lines=[{"product": "MES许可", "quantity": "3"}]))
    assert "生成报价" in out.text and "目录价" in out.text and "自动审批范围内" in out.text


def test_a_negative_quantity_is_a_bad_argument(deal, tool_ctx, store, catalog):
    opp = deal()
    out = call(tool_ctx("rep"), "generate_quote", opportunity=opp_ref(opp),
               lines=[{"product": "MES-LIC", "quantity": "-2"}])
    assert out.error.error == "bad_arguments" and out.error.field == "lines.0.quantity"
    assert store.count("quotes") == 0


def test_an_unknown_product_suggests_the_near_ones(deal, tool_ctx, catalog):
    opp = deal()
    out = call(tool_ctx("rep"), "generate_quote", opportunity=opp_ref(opp),
               lines=[{"product": "MES-LIK", "quantity": "1"}])
    assert out.error.error == "not_found" and out.error.allowed == ["MES-LIC"]


def test_submit_quote_inside_the_auto_band_is_approved_at_once(deal, tool_ctx, store, uow_factory, org, catalog):
    opp = deal()
    quote = run_in(uow_factory, quotes.create_quote, opp, {"lines": [{"product": "MES-LIC", "quantity": "10"}]},
                   actor=org.actor("rep"))
    out = ok(call(tool_ctx("rep"), "submit_quote", quote=quote.ref))
    assert store.get("quotes", quote.id).status == "approved" and store.count("approvals") == 0
    assert "is approved (inside the automatic discount band)" in out.text


def test_submit_quote_beyond_the_auto_band_is_confirmed_then_sent_for_approval(deal, tool_ctx, store, uow_factory,
                                                                             org, catalog):
    opp = deal()
    quote = run_in(uow_factory, quotes.create_quote, opp,
                   {"lines": [{"product": "MES-LIC", "quantity": "10", "discount_pct": "25"}]}, actor=org.actor("rep"))
    ctx = tool_ctx("rep", locale="zh")
    out = call(ctx, "submit_quote", quote=str(quote.id))
    assert out.status == "needs_confirmation"
    assert out.proposal.summary.startswith(f"提交报价 {quote.ref}") and "折扣 25%" in out.proposal.summary
    assert "Director → 财务" in out.proposal.summary
    assert store.get("quotes", quote.id).status == "draft" and store.count("approvals") == 0
    done = ok(runner.confirm(out.proposal.token, ctx))
    [request] = store.rows("approvals")
    assert (request.kind, request.status, store.get("quotes", quote.id).status) == ("discount", "pending",
                                                                                    "pending_approval")
    assert f"{request.ref} 等待 Director → 财务 审批" in done.text


def test_explain_discount_policy_places_a_discount_and_names_the_approvers(tool_ctx):
    out = ok(call(tool_ctx("rep"), "explain_discount_policy", discount_pct="15", amount="1200000"))
    assert out.result["policy"]["band"]["approver_roles"] == ["sales_manager"]
    assert len(out.result["policy"]["bands"]) == 3
    assert "15% off on ¥1,200,000: approved by sales manager." in out.text
    assert "director → finance" in out.text and "automatic" in out.text


def test_explain_discount_policy_says_when_margin_decides(tool_ctx):
    out = ok(call(tool_ctx("rep"), "explain_discount_policy", discount_pct="8"))
    assert out.result["policy"]["band_with_margin"]["approver_roles"] == []
    assert "8% off on any deal size: approved by sales manager; with a margin of at least 15%: automatic." in out.text


def test_explain_discount_policy_in_chinese_beyond_the_policy(tool_ctx):
    out = ok(call(tool_ctx("sr", locale="zh"), "explain_discount_policy", discount_pct="40", amount="300000"))
    assert out.result["policy"]["beyond_policy"] is True
    assert "折扣 40%（¥300,000）：超出折扣政策上限（最高 30%），无人可以审批。" in out.text
    assert "销售总监 → 财务" in out.text
