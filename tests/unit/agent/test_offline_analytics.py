"""The command language for reports and targets: each utterance (English / 中文) gives exactly its tool call.

Exact equality on the arguments, like the main table (test_offline_grammar.py). TODAY is Wednesday
2026-05-13, so "Q4" alone is 2026-Q4 and "11月" is 2026-11. A report is its metric words with a period,
a dimension, a count or days; anything else in the sentence means it is some other command, so the
phrasings the other rules own must come out exactly as before.
"""
from __future__ import annotations

import json
from datetime import date

import pytest

from bot.agent import selection
from bot.agent.offline import grammar
from bot.agent.offline.rules_analytics import find_dimension, find_period
from prompts.messages import render
from domain.settings import Settings
from tools.registry import all_tools, audiences_for

TODAY = date(2026, 5, 13)
REPORTS = {"pipeline_report", "forecast_report", "win_rate_report", "cycle_time_report", "funnel_report", "stuck_deals",
           "top_deals", "gate_throughput", "receivables_aging", "collection_rate", "reconciliation_report",
           "period_comparison", "set_target"}


def parse(text: str):
    return grammar.parse(text, today=TODAY)


EN = [
    # pipeline
    ("pipeline this quarter by stage", "pipeline_report", {"by": "stage", "period": "this_quarter"}),
    ("show me the pipeline by owner", "pipeline_report", {"by": "owner"}),
    ("pipeline by rep for next quarter", "pipeline_report", {"by": "owner", "period": "next_quarter"}),
    ("open pipeline by team", "pipeline_report", {"by": "team"}),
    ("pipeline by region this year", "pipeline_report", {"by": "region", "period": "this_year"}),
    ("pipeline 2026-11 by product", "pipeline_report", {"by": "product", "period": "2026-11"}),
    ("Q3 2026 pipeline by owner", "pipeline_report", {"by": "owner", "period": "2026-Q3"}),
    ("pipeline by close quarter", "pipeline_report", {"by": "quarter"}),
    ("deals closing next month by month", "pipeline_report", {"by": "month", "period": "next_month"}),
    ("what's our weighted pipeline for Nov 2026?", "pipeline_report", {"period": "2026-11"}),
    ("pipeline Q4", "pipeline_report", {"period": "2026-Q4"}),
    ("deals by stage", "pipeline_report", {"by": "stage"}),
    # forecast
    ("forecast", "forecast_report", {}),
    ("forecast vs target", "forecast_report", {}),
    ("forecast for next quarter", "forecast_report", {"period": "next_quarter"}),
    ("show the Q3 2026 forecast by owner", "forecast_report", {"period": "2026-Q3"}),
    ("quota attainment this year", "forecast_report", {"period": "this_year"}),
    # win rate
    ("win rate by region last year", "win_rate_report", {"by": "region", "period": "last_year"}),
    ("win rate", "win_rate_report", {}),
    ("win rate per rep this quarter", "win_rate_report", {"by": "owner", "period": "this_quarter"}),
    ("what is our win-rate by quarter in 2025", "win_rate_report", {"by": "quarter", "period": "2025"}),
    # cycle, funnel, approvals
    ("sales cycle", "cycle_time_report", {}),
    ("sales cycle this year", "cycle_time_report", {"period": "this_year"}),
    ("time in stage last quarter", "cycle_time_report", {"period": "last_quarter"}),
    ("how long do deals take to close", "cycle_time_report", {}),
    ("funnel", "funnel_report", {}),
    ("conversion funnel last quarter", "funnel_report", {"period": "last_quarter"}),
    ("lead conversion rate this year", "funnel_report", {"period": "this_year"}),
    ("approval turnaround this quarter", "gate_throughput", {"period": "this_quarter"}),
    ("approval times", "gate_throughput", {}),
    # stuck and top deals
    ("stuck deals", "stuck_deals", {}),
    ("show stalled opportunities", "stuck_deals", {}),
    ("deals with no movement for 60 days", "stuck_deals", {"days": 60}),
    ("deals stuck for over 45 days", "stuck_deals", {"days": 45}),
    ("top 5 deals closing this month", "top_deals", {"period": "this_month", "limit": 5}),
    ("top deals", "top_deals", {}),
    ("top 10 deals next quarter", "top_deals", {"period": "next_quarter", "limit": 10}),
    ("biggest deals closing this quarter", "top_deals", {"period": "this_quarter"}),
    # cash
    ("overdue by AR", "receivables_aging", {}),
    ("overdue per owner", "receivables_aging", {}),
    ("receivables aging", "receivables_aging", {}),
    ("AR aging as of 2026-04-30", "receivables_aging", {"as_of": "2026-04-30"}),
    ("DSO", "receivables_aging", {}),
    ("collection rate", "collection_rate", {}),
    ("collection rate last quarter", "collection_rate", {"period": "last_quarter"}),
    ("revenue reconciliation", "reconciliation_report", {}),
    ("revenue reconciliation this year", "reconciliation_report", {"period": "this_year"}),
    ("won vs invoiced last quarter", "reconciliation_report", {"period": "last_quarter"}),
    # period over period
    ("compare with last quarter", "period_comparison", {"period": "this_quarter"}),
    ("this month vs last month", "period_comparison", {"period": "this_month"}),
    ("quarter over quarter", "period_comparison", {"period": "this_quarter"}),
    ("YoY", "period_comparison", {"period": "this_year"}),
    ("compare Q1 2026 with the previous quarter", "period_comparison", {"period": "2026-Q1"}),
    # targets
    ("set the Q4 target for Li Na to 2,000,000", "set_target", {"person": "Li Na", "period": "2026-Q4",
                                                                "amount": "2000000"}),
    ("set Li Na's target for next quarter to 2M", "set_target", {"person": "Li Na", "period": "next_quarter",
                                                                 "amount": "2000000"}),
    ("set target for Wang Fang 1.5M", "set_target", {"person": "Wang Fang", "amount": "1500000"}),
    ("set team East target for next quarter to 5M", "set_target", {"team": "East", "period": "next_quarter",
                                                                   "amount": "5000000"}),
    ("set my quota for 2027 to 8M", "set_target", {"person": "my", "period": "2027", "amount": "8000000"}),
]

ZH = [
    # pipeline
    ("本季度各阶段商机", "pipeline_report", {"by": "stage", "period": "this_quarter"}),
    ("按销售统计商机金额", "pipeline_report", {"by": "owner"}),
    ("下季度按团队的商机", "pipeline_report", {"by": "team", "period": "next_quarter"}),
    ("2026年第三季度 各区域商机", "pipeline_report", {"by": "region", "period": "2026-Q3"}),
    ("今年按产品统计在手商机", "pipeline_report", {"by": "product", "period": "this_year"}),
    ("2026年11月预计成交的商机", "pipeline_report", {"period": "2026-11"}),
    ("按季度看商机", "pipeline_report", {"by": "quarter"}),
    ("销售漏斗", "pipeline_report", {}),
    ("本月商机", "pipeline_report", {"period": "this_month"}),
    # forecast
    ("本季度预测", "forecast_report", {"period": "this_quarter"}),
    ("预测 vs 目标", "forecast_report", {}),
    ("下季度销售预测", "forecast_report", {"period": "next_quarter"}),
    ("今年目标达成率", "forecast_report", {"period": "this_year"}),
    # win rate
    ("去年各区域赢单率", "win_rate_report", {"by": "region", "period": "last_year"}),
    ("赢单率", "win_rate_report", {}),
    ("本季度按销售的赢单率", "win_rate_report", {"by": "owner", "period": "this_quarter"}),
    ("2025年各季度胜率", "win_rate_report", {"by": "quarter", "period": "2025"}),
    # cycle, funnel, approvals
    ("销售周期", "cycle_time_report", {}),
    ("今年销售周期", "cycle_time_report", {"period": "this_year"}),
    ("上季度各阶段停留时间", "cycle_time_report", {"period": "last_quarter"}),
    ("转化漏斗", "funnel_report", {}),
    ("上季度转化漏斗", "funnel_report", {"period": "last_quarter"}),
    ("今年线索转化率", "funnel_report", {"period": "this_year"}),
    ("审批时效", "gate_throughput", {}),
    ("本季度审批效率", "gate_throughput", {"period": "this_quarter"}),
    # stuck and top deals
    ("停滞商机", "stuck_deals", {}),
    ("卡住的商机", "stuck_deals", {}),
    ("超过60天没动的商机", "stuck_deals", {"days": 60}),
    ("45天没有推进的商机", "stuck_deals", {"days": 45}),
    ("本月即将成交的前5个商机", "top_deals", {"period": "this_month", "limit": 5}),
    ("下季度金额最大的10个商机", "top_deals", {"period": "next_quarter", "limit": 10}),
    ("前三大商机", "top_deals", {"limit": 3}),
    # cash
    ("按客户经理的逾期应收", "receivables_aging", {}),
    ("各客户经理逾期", "receivables_aging", {}),
    ("账龄", "receivables_aging", {}),
    ("应收账龄分析", "receivables_aging", {}),
    ("DSO 是多少", "receivables_aging", {}),
    ("回款率", "collection_rate", {}),
    ("上季度回款率", "collection_rate", {"period": "last_quarter"}),
    ("按客户经理的回款率", "collection_rate", {}),
    ("收入对账", "reconciliation_report", {}),
    ("今年收入对账", "reconciliation_report", {"period": "this_year"}),
    # period over period
    ("环比", "period_comparison", {}),
    ("本月环比", "period_comparison", {"period": "this_month"}),
    ("同比", "period_comparison", {"period": "this_year"}),
    ("本季度与上季度对比", "period_comparison", {"period": "this_quarter"}),
    ("和上个月相比", "period_comparison", {"period": "this_month"}),
    ("今年同比", "period_comparison", {"period": "this_year"}),
    # targets
    ("把李娜第四季度的目标设为200万", "set_target", {"person": "李娜", "period": "2026-Q4", "amount": "2000000"}),
    ("设置李娜本季度目标 200万", "set_target", {"person": "李娜", "period": "this_quarter", "amount": "2000000"}),
    ("给王芳定下季度销售目标150万", "set_target", {"person": "王芳", "period": "next_quarter", "amount": "1500000"}),
    ("把华东团队明年的目标设为5000万", "set_target", {"team": "华东", "period": "next_year", "amount": "50000000"}),
]


@pytest.mark.parametrize("text, tool, args", EN, ids=[t for t, _, _ in EN])
def test_an_english_report_command_gives_exactly_its_tool_call(text, tool, args):
    command = parse(text)

    assert command is not None, f"not understood: {text!r}"
    assert (command.tool, command.args) == (tool, args)
    all_tools()[tool].args.model_validate(command.args)  # what the tool accepts, as the model hands it over
    json.dumps(command.args)


@pytest.mark.parametrize("text, tool, args", ZH, ids=[t for t, _, _ in ZH])
def test_a_chinese_report_command_gives_exactly_its_tool_call(text, tool, args):
    command = parse(text)

    assert command is not None, f"not understood: {text!r}"
    assert (command.tool, command.args) == (tool, args)
    all_tools()[tool].args.model_validate(command.args)
    json.dumps(command.args, ensure_ascii=False)


def test_every_report_tool_is_reachable_in_both_languages():
    assert {tool for _, tool, _ in EN} == REPORTS
    assert {tool for _, tool, _ in ZH} == REPORTS
    assert {n for n, s in all_tools().items() if s.fn.__module__ == "tools.analytics"} == REPORTS


@pytest.mark.parametrize("text, tool", [(text, tool) for text, tool, _ in EN + ZH])
def test_an_llm_is_given_the_report_tool_a_report_question_needs(text, tool):
    """With an LLM, a turn binds only the tools whose words the message holds (bot/agent/selection.py)."""
    bound = selection.select(all_tools().values(), audiences_for(["sales_manager"]), text,
                             limit=Settings().agent_max_tools)

    assert tool in [s.name for s in bound]


# -- what stays with the other rules ---------------------------------------------------------------

@pytest.mark.parametrize("text, tool, args", [
    ("pipeline", "list_deals", {}),
    ("my deals", "list_deals", {"owner": "me"}),
    ("deals of Li Lei in negotiation", "list_deals", {"owner": "Li Lei", "stage": "negotiate"}),
    ("投标阶段的商机", "list_deals", {"stage": "bid"}),
    ("我的商机", "list_deals", {"owner": "me"}),
    ("overdue", "list_overdue", {}),
    ("overdue for Li Lei", "list_overdue", {"owner": "Li Lei"}),
    ("my overdue invoices older than 90 days", "list_overdue", {"owner": "me", "min_days": 90}),
    ("逾期账款", "list_overdue", {}),
    ("李雷名下的逾期账款", "list_overdue", {"owner": "李雷"}),
    ("逾期超过30天", "list_overdue", {"min_days": 30}),
    ("my approvals", "list_my_approvals", {}),
    ("待我审批", "list_my_approvals", {}),
    ("convert lead Acme", "convert_lead", {"lead": "Acme"}),
    ("set OPP-12 amount to 1.2M", "update_opportunity", {"opportunity": "OPP-12", "amount": "1200000"}),
    ("log call with Acme: discussed the pipeline this quarter", "log_activity",
     {"about": "Acme", "kind": "call", "subject": "discussed the pipeline this quarter"}),
    ("find deal Core Upgrade", "search_records", {"query": "Core Upgrade", "kinds": ["opportunity"]}),
])
def test_phrasings_of_the_other_commands_are_unchanged(text, tool, args):
    command = parse(text)

    assert command is not None and (command.tool, command.args) == (tool, args)


@pytest.mark.parametrize("text", [
    "submit Q3 forecast",             # a command about a forecast, not a question for one
    "pipeline Q-3 by owner",          # Q-3 is a quote
    "win rate by stage",              # win rate has no stage breakdown: no guess
    "top 5 customers",                # customers are no deals
    "本季度同比",                      # 同比 of a quarter: the tool compares with the quarter before, not a year ago
    "Q3 2026 vs last month",          # two kinds of period
    "set the Q4 target for Li Na",    # no amount
    "Li Na target 2M",                # no verb: a statement, not a command
])
def test_what_only_mentions_a_report_is_no_report(text):
    command = parse(text)

    assert command is None or command.tool not in REPORTS


# -- the parts --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, name", [
    ("this month", "this_month"), ("last month", "last_month"), ("next month", "next_month"),
    ("this quarter", "this_quarter"), ("the previous quarter", "last_quarter"), ("next quarter", "next_quarter"),
    ("this year", "this_year"), ("last year", "last_year"), ("next year", "next_year"), ("QTD", "this_quarter"),
    ("year to date", "this_year"), ("Q3 2026", "2026-Q3"), ("2026 Q3", "2026-Q3"), ("2026-Q3", "2026-Q3"),
    ("Q1", "2026-Q1"), ("Nov 2026", "2026-11"), ("November 2026", "2026-11"), ("2026-11", "2026-11"),
    ("in 2025", "2025"),
    ("本月", "this_month"), ("上个月", "last_month"), ("下月", "next_month"), ("本季度", "this_quarter"),
    ("上季度", "last_quarter"), ("下个季度", "next_quarter"), ("今年", "this_year"), ("去年", "last_year"),
    ("明年", "next_year"), ("2026年第三季度", "2026-Q3"), ("2026年三季度", "2026-Q3"), ("2026年Q3", "2026-Q3"),
    ("第四季度", "2026-Q4"), ("2026年11月", "2026-11"), ("11月", "2026-11"), ("十一月", "2026-11"),
    ("2025年", "2025"), ("2025年度", "2025"),
])
def test_periods_are_the_names_the_services_take(text, name):
    found = find_period(text, TODAY)

    assert found is not None and found[0] == name
    assert found[1] == (0, len(text))


@pytest.mark.parametrize("text", ["2026-06-30", "6月30日", "11月底", "amount 2,000,000", "OPP-2026"])
def test_dates_and_amounts_are_no_periods(text):
    found = find_period(text, TODAY)

    assert found is None or found[1] != (0, len(text))


@pytest.mark.parametrize("text, by", [
    ("by stage", "stage"), ("per rep", "owner"), ("by AR", "owner"), ("by sales people", "owner"),
    ("by team", "team"), ("by territory", "region"), ("by product", "product"), ("by quarter", "quarter"),
    ("by month", "month"), ("各阶段", "stage"), ("按销售", "owner"), ("按客户经理", "owner"), ("按团队", "team"),
    ("各区域", "region"), ("按产品", "product"), ("按季度", "quarter"), ("按月", "month"),
])
def test_dimensions(text, by):
    assert find_dimension(text) == (by, (0, len(text)))


# -- help -------------------------------------------------------------------------------------------

def _examples(lang: str, marker: str) -> list[str]:
    out = []
    for row in render("offline.usage.reports", lang).splitlines():
        row = row.strip()
        if row.startswith(marker):
            out += [x.strip() for x in row[len(marker):].split(" · ")]
    return out


@pytest.mark.parametrize("example", _examples("en", "e.g. ") + _examples("zh", "例："))
def test_every_example_in_the_reports_usage_parses_to_a_report(example):
    command = parse(example)

    assert command is not None and command.tool in REPORTS, example


def test_help_lists_the_reports_and_a_near_miss_gets_their_usage():
    assert render("offline.usage.reports", "zh") in grammar.help_text("zh", "帮助")
    assert grammar.help_text("en", "help reports") == render("offline.usage.reports", "en")
    assert grammar.help_text("en", "forecast for Acme please") == render(
        "offline.usage.hint", "en", usage=render("offline.usage.reports", "en"))
