"""Cash-side tools through the runner: contracts, delivery, invoices, payments, collections.

Each test asserts what a user would see (status, text) and, above all, the state left in the store.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.services import billing, contracts, delivery, payments
from tests.unit.test_payment_status import Aged, build_aged
from tools import runner

D = Decimal


@pytest.fixture
def aged(cached, org) -> Aged:
    return cached(("payment-status-aged",), lambda f: build_aged(f, org))


def _invoke(name, args, ctx):
    return runner.invoke(name, args, ctx)


def _number(store, table, id_):
    return store.get(table, id_).number


def _invoices(store, contract_id):
    return sorted((i for i in store.rows("invoices") if i.contract_id == contract_id), key=lambda i: i.id)


def _today(store):
    return store.clock.current.date()


# --- contracts -----------------------------------------------------------------------------------------

def test_create_contract_drafts_from_the_accepted_quote_with_the_default_plan(accepted, tool_ctx, store):
    deal = accepted()
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}"}, tool_ctx("rep"))
    assert out.status == "ok", out.text
    contract = next(c for c in store.rows("contracts") if c.opportunity_id == deal.opp)
    quote = store.get("quotes", deal.quote)
    assert (contract.status, contract.value, contract.quote_id, contract.payment_terms_days) == (
        "draft", quote.total, deal.quote, 30)
    assert [(m.pct, m.trigger) for m in contract.milestones] == [
        (D("30"), "signing"), (D("60"), "delivery_acceptance"), (D("10"), "final_acceptance")]
    assert contract.number in out.text and "¥500,000" in out.text and "on delivery acceptance" in out.text


def test_create_contract_in_chinese_with_a_custom_plan(accepted, tool_ctx, store):
    deal = accepted()
    plan = [{"label": "预付款", "pct": 50, "trigger": "signing"},
            {"label": "终验款", "pct": 50, "trigger": "final_acceptance"}]
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}", "payment_plan": plan,
                                      "payment_terms_days": 45}, tool_ctx("rep", locale="zh"))
    assert out.status == "ok", out.text
    contract = next(c for c in store.rows("contracts") if c.opportunity_id == deal.opp)
    assert [(m.label, m.amount) for m in contract.milestones] == [("预付款", D("250000")), ("终验款", D("250000"))]
    assert contract.payment_terms_days == 45
    assert "已为" in out.text and "付款计划" in out.text and "终验时" in out.text


def test_create_contract_without_an_accepted_quote_is_refused(negotiating, tool_ctx, store):
    deal = negotiating()
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}"}, tool_ctx("rep"))
    assert out.status == "error" and out.error.field == "opportunity" and "accepted" in out.error.message
    assert store.count("contracts") == 0


def test_create_contract_without_an_accepted_quote_is_refused_in_chinese(negotiating, tool_ctx, store):
    deal = negotiating()
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}"}, tool_ctx("rep", locale="zh"))
    assert out.status == "error" and out.error.field == "opportunity"
    assert out.error.message == f"OPP-{deal.opp:05d} 还没有客户已接受的报价：请先发送已审批的报价，并登记客户接受"
    assert store.count("contracts") == 0


def test_create_contract_with_an_unknown_trigger_names_the_allowed_ones(accepted, tool_ctx, store):
    deal = accepted()
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}", "payment_plan": [
        {"label": "all", "pct": 100, "trigger": "whenever"}]}, tool_ctx("rep"))
    assert out.status == "error" and out.error.error == "bad_arguments"
    assert out.error.field == "payment_plan.0.trigger"
    assert "delivery_acceptance" in " ".join(out.error.allowed) and "final_acceptance" in out.text
    assert store.count("contracts") == 0


@pytest.fixture
def draft(accepted, run, org):
    deal = accepted()
    return run(contracts.create_contract, {"quote_id": deal.quote}, actor=org.actor("rep"))


def test_submit_contract_waits_for_the_users_yes_then_goes_under_review(draft, tool_ctx, store):
    ctx = tool_ctx("rep")
    audits = store.count("audit")
    out = _invoke("submit_contract", {"contract": draft.number}, ctx)
    assert out.status == "needs_confirmation"
    assert out.proposal.summary == (f"Send {draft.number} (Customer 201 Ltd, ¥500,000) for signature: it goes under "
                                    f"review and the ATC decision will sign it")
    assert store.get("contracts", draft.id).status == "draft"
    assert store.count("audit") == audits + 1  # the proposal's own row, nothing on the contract
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok" and "under review" in done.text
    assert store.get("contracts", draft.id).status == "under_review"


def test_submit_contract_by_the_deal_name_in_chinese(draft, tool_ctx, store):
    ctx = tool_ctx("rep", locale="zh")
    out = _invoke("submit_contract", {"contract": "Customer 201"}, ctx)
    assert out.status == "needs_confirmation" and "签约决策" in out.proposal.summary
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok" and "审核中" in done.text
    assert store.get("contracts", draft.id).status == "under_review"


def test_a_proposal_is_confirmed_once_by_its_own_proposer_before_it_expires(draft, tool_ctx, store):
    ctx = tool_ctx("rep")
    token = _invoke("submit_contract", {"contract": draft.number}, ctx).proposal.token
    other = runner.confirm(token, tool_ctx("manager"))
    assert other.status == "error" and other.error.error == "permission_denied"
    assert store.get("contracts", draft.id).status == "draft"
    assert runner.confirm(token, ctx).status == "ok"
    again = runner.confirm(token, ctx)
    assert again.status == "error" and again.error.error == "conflict"
    late = _invoke("submit_contract", {"contract": draft.number}, ctx)  # now under review: refused at preview
    assert late.status == "error" and late.error.error == "invalid_transition"


# --- delivery ------------------------------------------------------------------------------------------

@pytest.fixture
def executing(signed, run, org, store):
    deal = signed()
    today = _today(store).isoformat()
    order = run(delivery.create_order, deal.contract, {"milestones": [
        {"name": "Install", "planned_date": today},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}, actor=org.actor("fr"))
    return deal, order


def test_delivery_done_then_accepted_fires_the_delivery_invoice(executing, tool_ctx, store):
    deal, order = executing
    number = _number(store, "contracts", deal.contract)
    ctx = tool_ctx("fr")
    out = _invoke("update_delivery_milestone", {"contract": number, "milestone": 1, "status": "done"}, ctx)
    assert out.status == "ok", out.text
    assert store.get("orders", order.id).milestones[0].status == "done"
    assert "delivered on" in out.text
    before = len(_invoices(store, deal.contract))
    out = _invoke("update_delivery_milestone", {"contract": number, "milestone": 1, "status": "accepted",
                                                "certificate_ref": "YS-001"}, ctx)
    assert out.status == "ok", out.text
    fired = _invoices(store, deal.contract)[before:]
    assert [(i.amount, i.status) for i in fired] == [(D("300000"), "issued")]
    assert out.result["invoices"] == [fired[0].number] and fired[0].number in out.text
    assert store.get("orders", order.id).milestones[0].certificate_ref == "YS-001"
    assert any(e.contract_id == deal.contract for e in store.rows("revenue_entries"))


def test_final_acceptance_by_order_number_in_chinese_completes_the_contract(executing, run, org, tool_ctx, store):
    deal, order = executing
    run(delivery.mark_delivered, order.id, 1, actor=org.actor("fr"))
    run(delivery.accept_milestone, order.id, 1, {"certificate_ref": "YS-001"}, actor=org.actor("fr"))
    ctx = tool_ctx("fr", locale="zh")
    done = _invoke("update_delivery_milestone", {"contract": order.number.lower(), "milestone": 2,
                                                 "status": "done"}, ctx)
    assert done.status == "ok" and "已于" in done.text and "验收证书" in done.text
    out = _invoke("update_delivery_milestone", {"contract": order.number.lower(), "milestone": 2,
                                                "status": "accepted", "certificate_ref": "ZY-002"}, ctx)
    assert out.status == "ok", out.text
    assert store.get("contracts", deal.contract).status == "completed"
    assert "通过客户验收" in out.text and "已自动开票" in out.text and "已完成" in out.text
    assert _invoices(store, deal.contract)[-1].amount == D("50000")


def test_an_acceptance_needs_its_certificate(executing, tool_ctx, store):
    deal, order = executing
    out = _invoke("update_delivery_milestone", {"contract": order.number, "milestone": 1, "status": "accepted"},
                  tool_ctx("fr"))
    assert out.status == "error" and out.error.field == "certificate_ref"
    assert store.get("orders", order.id).milestones[0].status == "planned"


def test_an_acceptance_without_its_certificate_is_refused_in_chinese(executing, tool_ctx, store):
    deal, order = executing
    out = _invoke("update_delivery_milestone", {"contract": order.number, "milestone": 1, "status": "accepted"},
                  tool_ctx("fr", locale="zh"))
    assert out.status == "error" and out.error.field == "certificate_ref"
    assert out.error.message == "登记客户验收，需要提供客户签署的验收单编号"
    assert store.get("orders", order.id).milestones[0].status == "planned"


def test_an_unknown_delivery_status_lists_the_allowed_ones(executing, tool_ctx, store):
    deal, order = executing
    out = _invoke("update_delivery_milestone", {"contract": order.number, "milestone": 1, "status": "finished"},
                  tool_ctx("fr"))
    assert out.status == "error" and out.error.error == "bad_arguments"
    assert (out.error.field, out.error.allowed) == ("status", ["done", "accepted"])
    assert store.get("orders", order.id).milestones[0].status == "planned"


# --- invoices ------------------------------------------------------------------------------------------

def test_finance_issues_a_milestones_invoice_again_after_a_void(signed, run, org, tool_ctx, store):
    deal = signed()
    advance = _invoices(store, deal.contract)[0]
    run(billing.void_invoice, advance.id, {"reason": "wrong purchase order"}, actor=org.actor("finance"))
    out = _invoke("issue_invoice", {"contract": _number(store, "contracts", deal.contract), "milestone": 1},
                  tool_ctx("finance"))
    assert out.status == "ok", out.text
    new = _invoices(store, deal.contract)[-1]
    assert (new.id != advance.id, new.amount, new.status) == (True, D("150000"), "issued")
    assert store.get("contracts", deal.contract).invoiced_total == D("150000")
    assert new.number in out.text and "¥150,000" in out.text


def test_issuing_an_invoiced_milestone_in_chinese_says_it_exists(signed, tool_ctx, store):
    deal = signed()
    count = store.count("invoices")
    out = _invoke("issue_invoice", {"contract": _number(store, "contracts", deal.contract), "milestone": 1},
                  tool_ctx("finance", locale="zh"))
    assert out.status == "ok" and "已开票" in out.text and "未重复开票" in out.text
    assert store.count("invoices") == count


def test_finance_voids_an_invoice_after_confirming(signed, tool_ctx, store):
    deal = signed()
    advance = _invoices(store, deal.contract)[0]
    ctx = tool_ctx("finance")
    out = _invoke("void_invoice", {"invoice": advance.number.lower(), "reason": "wrong purchase order"}, ctx)
    assert out.status == "needs_confirmation"
    assert advance.number in out.proposal.summary and "wrong purchase order" in out.proposal.summary
    assert store.get("invoices", advance.id).status == "issued"
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok", done.text
    assert store.get("invoices", advance.id).status == "void"
    assert store.get("contracts", deal.contract).invoiced_total == 0


def test_a_rep_cannot_void_an_invoice_and_nothing_changes(signed, tool_ctx, store):
    deal = signed()
    advance = _invoices(store, deal.contract)[0]
    counts = {t: store.count(t) for t in ("audit", "pending_actions", "outbox")}
    out = _invoke("void_invoice", {"invoice": advance.number, "reason": "customer asked"}, tool_ctx("rep"))
    assert out.status == "error" and out.error.error == "permission_denied"
    assert store.get("invoices", advance.id).status == "issued"
    assert {t: store.count(t) for t in counts} == counts


# --- payments ------------------------------------------------------------------------------------------

def _pay_args(store, contract_id, amount="200000", ref="BOC-0001", **extra):
    return {"amount": amount, "bank_ref": ref, "contract": _number(store, "contracts", contract_id), **extra}


def test_finance_records_a_payment_only_after_confirming(delivered, tool_ctx, store):
    ctx = tool_ctx("finance")
    out = _invoke("record_payment", _pay_args(store, delivered.contract), ctx)
    assert out.status == "needs_confirmation"
    advance, shipment, _ = _invoices(store, delivered.contract)
    assert out.proposal.summary == (
        f"Record ¥200,000 received on {_today(store)} (bank ref BOC-0001) from Customer 101 Ltd, applied to "
        f"{advance.number} ¥150,000, {shipment.number} ¥50,000")
    assert store.count("payments") == 0 and advance.paid_amount == 0
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok", done.text
    [payment] = store.rows("payments")
    assert (payment.status, payment.amount, payment.bank_ref) == ("confirmed", D("200000"), "BOC-0001")
    assert [(a.invoice_id, a.amount) for a in payment.allocations] == [(advance.id, D("150000")),
                                                                      (shipment.id, D("50000"))]
    assert store.get("invoices", advance.id).status == "paid"
    assert store.get("contracts", delivered.contract).paid_total == D("200000")
    assert payment.number in done.text


def test_a_payment_proposal_is_refused_to_others_twice_and_late(delivered, tool_ctx, store):
    ctx = tool_ctx("finance")
    token = _invoke("record_payment", _pay_args(store, delivered.contract), ctx).proposal.token
    other = runner.confirm(token, tool_ctx("rep"))
    assert other.status == "error" and other.error.error == "permission_denied"
    assert store.count("payments") == 0
    assert runner.confirm(token, ctx).status == "ok"
    again = runner.confirm(token, ctx)
    assert again.status == "error" and again.error.error == "conflict"
    assert store.count("payments") == 1
    late = _invoke("record_payment", _pay_args(store, delivered.contract, ref="BOC-0002"), ctx).proposal.token
    store.clock.advance(minutes=11)
    expired = runner.confirm(late, ctx)
    assert expired.status == "error" and "expired" in expired.error.message
    assert store.count("payments") == 1


def test_a_bank_line_already_on_the_books_needs_no_confirmation(delivered, run, org, tool_ctx, store):
    run(payments.record_payment, {"contract_id": delivered.contract, "amount": "200000", "currency": "CNY",
                                  "received_on": _today(store).isoformat(), "bank_ref": "BOC-0001"},
        actor=org.actor("finance"))
    out = _invoke("record_payment", _pay_args(store, delivered.contract, ref=" boc-0001 "), tool_ctx("finance"))
    assert out.status == "ok" and out.result["duplicate"] is True and "already on record" in out.text
    assert store.count("payments") == 1


def test_a_rep_reports_a_payment_to_finance_in_chinese(delivered, tool_ctx, store):
    ctx = tool_ctx("rep", locale="zh")
    out = _invoke("record_payment", _pay_args(store, delivered.contract, amount="150000"), ctx)
    assert out.status == "needs_confirmation" and out.proposal.summary.startswith("向财务报送回款 ¥150,000")
    assert store.count("payments") == 0
    done = runner.confirm(out.proposal.token, ctx)
    assert done.status == "ok" and "待财务" in done.text
    [payment] = store.rows("payments")
    assert (payment.status, payment.allocations, payment.contract_id) == ("proposed", [], delivered.contract)
    assert all(i.paid_amount == 0 for i in store.rows("invoices"))


def test_finance_confirms_a_reported_payment(delivered, run, org, tool_ctx, store):
    proposed = run(payments.propose_payment, {"contract_id": delivered.contract, "amount": "150000",
                                              "currency": "CNY", "received_on": _today(store).isoformat(),
                                              "bank_ref": "ICBC-77"}, actor=org.actor("rep"))
    ctx = tool_ctx("finance")
    out = _invoke("confirm_payment", {"payment": proposed.number}, ctx)
    advance = _invoices(store, delivered.contract)[0]
    assert out.status == "needs_confirmation" and f"{advance.number} ¥150,000" in out.proposal.summary
    assert store.get("payments", proposed.id).status == "proposed"
    assert runner.confirm(out.proposal.token, ctx).status == "ok"
    payment = store.get("payments", proposed.id)
    assert (payment.status, [a.invoice_id for a in payment.allocations]) == ("confirmed", [advance.id])
    assert store.get("invoices", advance.id).status == "paid"


def test_confirming_something_that_is_not_a_payment_number_is_refused_in_chinese(delivered, tool_ctx, store):
    invoice = _invoices(store, delivered.contract)[0]
    out = _invoke("confirm_payment", {"payment": invoice.number}, tool_ctx("finance", locale="zh"))
    assert out.status == "error" and out.error.field == "payment"
    assert out.error.message == f"“{invoice.number}”不是有效的回款编号，请写成例如 PAY-2026-00001"
    en = _invoke("confirm_payment", {"payment": invoice.number}, tool_ctx("finance"))
    assert en.error.message == f"'{invoice.number}' is not a PAY number: write e.g. PAY-2026-00001"
    assert store.count("payments") == 0 and store.count("pending_actions") == 0


def test_a_payment_by_the_customers_name_goes_oldest_first(delivered, tool_ctx, store):
    ctx = tool_ctx("finance")
    out = _invoke("record_payment", {"amount": 520000, "bank_ref": "BOC-9", "account": "Customer 101"}, ctx)
    assert out.status == "needs_confirmation" and "¥20,000 kept as unapplied credit" in out.proposal.summary
    assert runner.confirm(out.proposal.token, ctx).status == "ok"
    [payment] = store.rows("payments")
    assert (payment.allocated, payment.unapplied) == (D("500000"), D("20000"))


def test_a_payment_must_say_who_paid_and_how(delivered, tool_ctx, store):
    ctx = tool_ctx("finance")
    out = _invoke("record_payment", {"amount": 100, "bank_ref": "X-1"}, ctx)
    assert out.status == "error" and out.error.field == "contract"
    bad = _invoke("record_payment", {"amount": -5, "bank_ref": "X-1", "method": "bitcoin",
                                     "contract": "CT-2025-1"}, ctx)
    assert bad.status == "error" and bad.error.error == "bad_arguments"
    assert {p.field for p in bad.error.problems} == {"amount", "method"}
    assert "bank_transfer" in next(p.allowed for p in bad.error.problems if p.field == "method")
    assert store.count("payments") == 0 and store.count("pending_actions") == 0


# --- payment status --------------------------------------------------------------------------------------

def _expected(store, invoices, today):
    live = [i for i in invoices if i.status != "void"]
    open_ = [i for i in live if i.status in ("issued", "partially_paid")]
    return (sum((i.amount for i in live), D(0)), sum((i.paid_amount for i in live), D(0)),
            sum((i.amount - i.paid_amount for i in open_), D(0)),
            sum((i.amount - i.paid_amount for i in open_ if i.due_on < today), D(0)))


def _got(out):
    s = out.result["status"]
    return tuple(D(s[k]) for k in ("invoiced", "paid", "outstanding", "overdue"))


def test_payment_status_of_a_contract_number(aged, tool_ctx, store):
    out = _invoke("payment_status", {"of": _number(store, "contracts", aged.contract)}, tool_ctx("rep"))
    assert out.status == "ok", out.text
    assert _got(out) == _expected(store, _invoices(store, aged.contract), _today(store)) == (
        D("500000"), D("100000"), D("400000"), D("50000"))
    advance = store.get("invoices", aged.advance)
    assert "Invoiced ¥500,000 · paid ¥100,000 · outstanding ¥400,000 · overdue ¥50,000" in out.text
    assert advance.number in out.text and "L1 friendly" in out.text and "promised by" in out.text
    assert f"Next due: ¥350,000 on {aged.day0 + timedelta(days=50)}" in out.text


def test_payment_status_of_a_customer_by_its_chinese_name(aged, tool_ctx, store):
    store.get("accounts", aged.account).name = "华东电力集团有限公司"
    out = _invoke("payment_status", {"of": "华东电力"}, tool_ctx("rep", locale="zh"))
    assert out.status == "ok", out.text
    assert out.result["status"]["kind"] == "account"
    assert _got(out) == _expected(store, store.rows("invoices"), _today(store))
    assert "华东电力集团有限公司" in out.text and "逾期 ¥50,000" in out.text and "一级 友好提醒" in out.text
    assert "下一笔应收" in out.text and "最近一笔回款" in out.text


def test_payment_status_of_an_invoice_in_chinese(aged, tool_ctx, store):
    advance = store.get("invoices", aged.advance)
    out = _invoke("payment_status", {"of": advance.number.lower()}, tool_ctx("finance", locale="zh"))
    assert out.status == "ok", out.text
    assert _got(out) == _expected(store, [advance], _today(store)) == (D("150000"), D("100000"), D("50000"),
                                                                       D("50000"))
    assert "承诺" in out.text and "已开票 ¥150,000" in out.text


def test_payment_status_of_a_deal_out_of_sight_is_refused(aged, tool_ctx, store):
    out = _invoke("payment_status", {"of": _number(store, "contracts", aged.contract)}, tool_ctx("rep2"))
    assert out.status == "error" and out.error.error == "permission_denied"
    unknown = _invoke("payment_status", {"of": "PAY-2025-00001"}, tool_ctx("rep"))
    assert unknown.status == "error" and unknown.error.field == "of"


# --- collections ---------------------------------------------------------------------------------------

def test_list_overdue_shows_my_late_invoices(aged, tool_ctx, store):
    out = _invoke("list_overdue", {"owner": "me"}, tool_ctx("rep"))
    assert out.status == "ok", out.text
    advance = store.get("invoices", aged.advance)
    assert [(x["invoice_number"], D(x["balance"]), x["days_overdue"]) for x in out.result["lines"]] == [
        (advance.number, D("50000"), 5)]
    assert out.result["totals"] == {"CNY": "50000.00"}
    assert "Total overdue: ¥50,000" in out.text and "Customer 101 Ltd" in out.text


def test_a_manager_lists_a_reps_overdue_in_chinese(aged, tool_ctx, store):
    out = _invoke("list_overdue", {"owner": "Rep", "min_days": 1}, tool_ctx("manager", locale="zh"))
    assert out.status == "ok" and len(out.result["lines"]) == 1
    assert "逾期合计：¥50,000" in out.text and "承诺" in out.text
    none = _invoke("list_overdue", {"owner": "rep2@example.com"}, tool_ctx("manager", locale="zh"))
    assert none.status == "ok" and none.result["lines"] == [] and "没有逾期" in none.text
    later = _invoke("list_overdue", {"min_days": 6}, tool_ctx("finance"))
    assert later.result["lines"] == []


def test_record_promise_holds_the_reminders(aged, tool_ctx, store):
    delivery_invoice = store.get("invoices", aged.delivery)
    on = _today(store) + timedelta(days=20)
    out = _invoke("record_promise", {"invoice": delivery_invoice.number, "amount": 300000,
                                     "promised_on": on.isoformat(), "note": "CFO on the phone"}, tool_ctx("rep"))
    assert out.status == "ok", out.text
    promise = store.rows("promises")[-1]
    assert (promise.invoice_id, promise.amount, promise.promised_on, promise.note) == (
        aged.delivery, D("300000"), on, "CFO on the phone")
    assert "Customer 101 Ltd promised to pay ¥300,000" in out.text


def test_record_promise_in_chinese_and_a_past_date_is_refused(aged, tool_ctx, store):
    final = store.get("invoices", aged.final)
    count = store.count("promises")
    past = _invoke("record_promise", {"invoice": final.number, "amount": 50000,
                                      "promised_on": (_today(store) - timedelta(days=1)).isoformat()},
                   tool_ctx("finance", locale="zh"))
    assert past.status == "error" and past.error.field == "promised_on"
    assert store.count("promises") == count
    out = _invoke("record_promise", {"invoice": final.number, "amount": 50000,
                                     "promised_on": (_today(store) + timedelta(days=3)).isoformat()},
                  tool_ctx("finance", locale="zh"))
    assert out.status == "ok" and "承诺于" in out.text and "暂停催收提醒" in out.text
    assert store.count("promises") == count + 1


def test_every_cash_tool_is_registered_with_en_and_zh_texts():
    from prompts.messages import names
    from tools.registry import all_tools

    tools = all_tools()
    for name in ("create_contract", "submit_contract", "update_delivery_milestone", "issue_invoice", "void_invoice",
                 "record_payment", "confirm_payment", "payment_status", "list_overdue", "record_promise"):
        assert name in tools and tools[name].description and tools[name].keywords
    cash = {n for n in names("en") if n.startswith("tool.cash.")}
    assert cash and cash == {n for n in names("zh") if n.startswith("tool.cash.")}


def test_create_contract_takes_the_plan_as_people_say_it(accepted, tool_ctx, store):
    deal = accepted()
    out = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}", "payment_plan": "40/50/10"},
                  tool_ctx("rep"))
    assert out.status == "ok", out.text
    contract = store.rows("contracts")[-1]
    assert [m.pct for m in sorted(contract.milestones, key=lambda m: m.seq)] == [Decimal(40), Decimal(50), Decimal(10)]
    bad = _invoke("create_contract", {"opportunity": f"OPP-{deal.opp:05d}", "payment_plan": "50/50"},
                  tool_ctx("rep"))
    assert bad.error.error == "bad_arguments" and "30/60/10" in bad.error.message
