"""The analytics tools through `tools.runner.invoke`, on SQLite and PostgreSQL, as a chat user sees them.

A small company is built through the normal services (tests/builders.py) on a clock that walks
through Q4 2026: open deals in several stages and owners, a deal won and signed with its first invoice
now overdue, a deal won and paid in full, a lost deal, a target. The reports are read on 2026-11-20.
Each reply must carry the numbers of the service's own view (the service is checked against its
definitions elsewhere: test_analytics_metrics.py), its chart must be that view's, and asking about
someone else's people must be a clear refusal, never someone else's numbers.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from domain import analytics as an
from domain.db import tables as t
from domain.db.engine import make_engine
from domain.db.uow import SqlAlchemyUnitOfWork, session_factory
from domain.services import opportunities
from domain.settings import Settings
from tests import builders
from tests.integration.conftest import BACKENDS, _require_pg
from tools import runner
from tools.charts import aging_chart, forecast_chart, funnel_chart, pipeline_chart
from tools.context import ToolContext
from tools.format import money
from tools.registry import all_tools

REPORT_DAY = datetime(2026, 11, 20, 10, 0)
CONFIRM = frozenset(Settings().confirm_tools)
ANALYTICS = sorted(n for n, s in all_tools().items() if s.fn.__module__ == "tools.analytics")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Company:
    backend: str
    engine: Engine
    org: builders.Org
    uow: object  # factory of units of work on `clock`
    clock: Clock
    deals: dict[str, int]

    def ctx(self, who: str, locale: str = "en") -> ToolContext:
        return ToolContext(actor=self.org.actor(who, via_agent=True), uow=self.uow, locale=locale,
                           confirm_tools=CONFIRM)

    def view(self, service, who: str, *args, **kwargs):
        with self.uow() as uow:
            return service(*args, actor=self.org.actor(who), uow=uow, **kwargs)


def _build(engine: Engine) -> tuple[builders.Org, object, Clock, dict[str, int]]:
    clock = Clock(datetime(2026, 10, 5, 9, 0))
    sf = session_factory(engine)

    def factory(**kwargs):
        kwargs.setdefault("clock", clock)
        return SqlAlchemyUnitOfWork(sf, **kwargs)

    factory.session_factory = sf
    org = builders.build_org(factory)
    builders.seed_catalog(factory, org)

    def deal(n: int, amount: str, close: str, owner: str = "rep", region: str = "east") -> int:
        opp = builders.make_deal(factory, org, n=n, amount=amount, owner=owner, region=region)
        with factory() as uow:
            opportunities.update_opportunity(opp, {"expected_close_date": close}, actor=org.actor(owner), uow=uow)
            uow.commit()
        return opp

    deals = {
        "small": deal(1, "500000", "2026-11-25"),                             # rep, qualify, this month
        "initiated": deal(2, "1200000", "2026-12-15"),                        # rep, → initiated, this quarter
        "rep2": deal(3, "800000", "2026-11-28", owner="rep2"),                # rep2, qualify, this month
        "west": deal(4, "2000000", "2026-12-20", owner="rep_w", region="west"),  # rep_w, qualify
        "signed": deal(5, "1000000", "2026-10-31"),                            # rep: won and signed below
        "lost": deal(6, "300000", "2026-12-01", owner="rep_w", region="west"),
    }
    builders.run_gate(factory, org, deals["initiated"], "ATI", ["manager"])
    builders.full_cycle(factory, org, deals["signed"])  # won on 2026-10-05; the signing invoice falls due later
    with factory() as uow:
        opportunities.close_opportunity(deals["lost"], "lost", "price", actor=org.actor("rep_w"), uow=uow)
        uow.commit()
    clock.now = datetime(2026, 10, 12, 9, 0)
    deals["paid"] = deal(7, "600000", "2026-10-31", owner="rep")
    builders.lead_to_cash(factory, org, deals["paid"], seats=800)  # won, invoiced and paid in full
    clock.now = REPORT_DAY
    return org, factory, clock, deals


@pytest.fixture(scope="module", params=BACKENDS)
def company(request, tmp_path_factory, sqlite_template):
    drop = None
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("analytics_tools") / "ltc.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        server = _require_pg(request)
        name = server.new_name("an_tools")
        url = server.create(name, template=server.migrated_template())
        drop = lambda: server.drop(name)  # noqa: E731
    engine = make_engine(url)
    try:
        org, factory, clock, deals = _build(engine)
        yield Company(request.param, engine, org, factory, clock, deals)
    finally:
        engine.dispose()
        if drop is not None:
            drop()


def ok(outcome):
    assert outcome.status == "ok", outcome.text
    return outcome


def call(company: Company, who: str, tool: str, locale: str = "en", **args):
    return runner.invoke(tool, args, company.ctx(who, locale))


def m(amount: Decimal) -> str:
    return money(amount, "CNY")


# --- pipeline ----------------------------------------------------------------------------------------

def test_pipeline_this_quarter_by_stage_shows_the_services_numbers_and_its_chart(company):
    out = ok(call(company, "manager", "pipeline_report", by="stage", period="this_quarter"))
    view = company.view(an.pipeline, "manager", "stage", "this_quarter")

    # the manager's line (rep, rep2, themselves): three open deals close in Q4; the signed and paid ones are won
    assert (view.total.count, view.total.amount) == (3, Decimal("2500000"))
    assert out.text.startswith("Open pipeline by stage, closing Q4 2026: 3 deals, ¥2,500,000 (¥370,000 weighted).")
    for row in view.rows:
        if row.count:
            assert f"{row.key}" in out.text and m(row.amount) in out.text
    assert out.result["report"]["total"]["count"] == 3
    assert out.result["chart"] == pipeline_chart(view, "en").model_dump(mode="json")


def test_pipeline_by_owner_in_chinese_names_each_owner_with_their_amount(company):
    out = ok(call(company, "admin", "pipeline_report", "zh", by="owner"))
    view = company.view(an.pipeline, "admin", "owner", None)

    assert out.text.startswith(f"全部在手商机（按客户经理，不限成交日期）：共 {view.total.count} 个")
    for row in view.rows:
        assert row.label in out.text and m(row.amount) in out.text
    assert out.result.get("chart") is None  # a picture for the stages only


def test_a_rep_sees_only_their_own_pipeline(company):
    out = ok(call(company, "rep", "pipeline_report", period="this_quarter"))

    assert out.result["report"]["scope"] == "self"
    assert out.result["report"]["total"]["count"] == 2  # "small" and "initiated"
    assert m(Decimal("1700000")) in out.text


def test_a_rep_asking_for_another_team_is_refused_in_plain_words(company):
    out = call(company, "rep", "pipeline_report", team="West")

    assert out.status == "error" and out.error.error == "permission_denied"
    assert "your own reporting line" in out.text and "West" in out.text
    assert "2,000,000" not in out.text


def test_a_manager_asking_for_someone_outside_their_line_is_refused(company):
    out = call(company, "manager", "forecast_report", owner="rep_w@example.com")

    assert out.status == "error" and out.error.error == "permission_denied"


def test_an_unknown_team_or_period_is_a_fixable_error(company):
    team = call(company, "admin", "pipeline_report", team="Narnia")
    period = call(company, "admin", "forecast_report", period="someday")

    assert team.status == "error" and team.error.error == "not_found" and "East" in team.error.allowed
    assert period.status == "error" and period.error.error == "validation_failed"
    assert "this_quarter" in period.error.allowed


def test_periods_may_be_written_the_way_people_write_them(company):
    named = ok(call(company, "admin", "pipeline_report", period="2026-Q4")).result["report"]
    for spelled in ("Q4 2026", "2026 Q4", "2026年第4季度", "this quarter", "本季度"):
        assert ok(call(company, "admin", "pipeline_report", period=spelled)).result["report"] == named


# --- forecast, win rate, cycle, funnel ----------------------------------------------------------------

def test_forecast_shows_won_and_weighted_with_its_chart(company):
    out = ok(call(company, "manager", "forecast_report", period="this_quarter"))
    view = company.view(an.forecast, "manager", "this_quarter")

    won = next(c for c in view.categories if c.category == "won")
    assert won.count == 2 and won.amount > 0
    assert f"weighted {m(view.weighted_forecast)}" in out.text
    assert m(won.amount) in out.text
    assert out.result["chart"] == forecast_chart(view, "en").model_dump(mode="json")


def test_win_rate_by_region_this_quarter(company):
    out = ok(call(company, "admin", "win_rate_report", by="region", period="this_quarter"))
    view = company.view(an.win_rate, "admin", "region", "this_quarter")

    assert (view.total.won, view.total.lost) == (2, 1)
    assert out.text.startswith("Win rate Q4 2026: 66.7% (2 won, 1 lost, 0 abandoned)")
    assert "east" in out.text and "west" in out.text


def test_cycle_time_and_funnel(company):
    cycle = ok(call(company, "admin", "cycle_time_report", "zh"))
    funnel = ok(call(company, "admin", "funnel_report", period="this_quarter"))
    cycle_view = company.view(an.cycle_time, "admin", "this_quarter")
    funnel_view = company.view(an.funnel, "admin", "this_quarter")

    assert "销售周期" in cycle.text and f"共 {cycle_view.won_deals} 个赢单" in cycle.text
    leads = next(s for s in funnel_view.steps if s.step == "leads")
    assert leads.count == 7 and f"{leads.count} leads" in funnel.text
    assert funnel.result["chart"] == funnel_chart(funnel_view, "en").model_dump(mode="json")


# --- deal lists and approvals -------------------------------------------------------------------------

def test_top_deals_closing_this_month_are_the_largest_first(company):
    out = ok(call(company, "admin", "top_deals", period="this_month", limit=2))

    refs = [d["ref"] for d in out.result["report"]["deals"]]
    assert refs == [f"OPP-{company.deals['rep2']:05d}", f"OPP-{company.deals['small']:05d}"]
    assert out.text.startswith("Top 2 of 2 open deals closing Nov 2026")
    assert all(ref in out.text for ref in refs)


def test_stuck_deals_name_why(company):
    out = ok(call(company, "admin", "stuck_deals", days=30))
    view = company.view(an.stuck_deals, "admin", 30, 10)

    assert view.count >= 3 and f"{view.count} stuck deals" in out.text
    assert f"OPP-{company.deals['small']:05d}" in out.text and "no move" in out.text


def test_gate_throughput_counts_the_decisions(company):
    out = ok(call(company, "admin", "gate_throughput", period="this_quarter"))
    view = company.view(an.gate_throughput, "admin", "this_quarter")

    decided = view.total.approved + view.total.rejected + view.total.expired + view.total.cancelled
    assert view.total.approved >= 10 and f"{decided} decided ({view.total.approved} approved" in out.text


# --- cash ---------------------------------------------------------------------------------------------

def test_overdue_by_ar_is_the_aging_per_owner_with_its_chart(company):
    out = ok(call(company, "finance", "receivables_aging"))
    view = company.view(an.aging, "finance")

    assert view.total.overdue > 0 and view.owners[0].label == "Rep"
    assert f"{m(view.total.total)} open, {m(view.total.overdue)} overdue" in out.text
    assert m(view.owners[0].buckets["1-30"]) in out.text
    assert out.result["chart"] == aging_chart(view, "en").model_dump(mode="json")


def test_collection_rate_and_reconciliation(company):
    rate = ok(call(company, "finance", "collection_rate", period="this_quarter"))
    recon = ok(call(company, "finance", "reconciliation_report", "zh", period="this_quarter"))
    rate_view = company.view(an.collection_rate, "finance", "this_quarter")
    recon_view = company.view(an.reconciliation, "finance", "this_quarter")

    assert f"{m(rate_view.total.collected)} collected of {m(rate_view.total.due)} due" in rate.text
    assert recon_view.won_deals == 2
    assert f"赢单 2 个，金额 {m(recon_view.won)}" in recon.text and m(recon_view.collected) in recon.text


def test_period_comparison_against_the_quarter_before(company):
    out = ok(call(company, "admin", "period_comparison", "zh"))
    view = company.view(an.period_over_period, "admin", "this_quarter")

    won = next(k for k in view.kpis if k.kpi == "won_amount")
    assert out.text.startswith("2026年第4季度与2026年第3季度对比")
    assert m(won.current) in out.text


def test_a_role_without_analytics_is_refused(company):
    out = call(company, "legal", "pipeline_report")

    assert out.status == "error" and out.error.error == "permission_denied"


# --- targets ------------------------------------------------------------------------------------------

def _targets(company: Company) -> list:
    with company.engine.connect() as conn:
        return list(conn.execute(select(t.targets).order_by(t.targets.c.id)))


def _audits(company: Company) -> list:
    with company.engine.connect() as conn:
        return list(conn.execute(select(t.audit_log).where(t.audit_log.c.entity == "target")))


def test_set_target_writes_a_row_and_an_audit_row_and_the_forecast_reads_it(company):
    before, audits = len(_targets(company)), len(_audits(company))
    out = ok(call(company, "manager", "set_target", person="rep@example.com", period="2026-Q4", amount="2000000"))

    rows = _targets(company)
    assert len(rows) == before + 1 and len(_audits(company)) == audits + 1
    row = rows[-1]
    assert (row.user_id, row.period_start, row.period_end, row.amount, row.set_by) == (
        company.org["rep"], date(2026, 10, 1), date(2027, 1, 1), Decimal("2000000"), company.org["manager"])
    assert out.text == "Target set: Rep, Q4 2026: ¥2,000,000."
    forecast = ok(call(company, "manager", "forecast_report", owner="rep")).result["report"]
    assert Decimal(forecast["target"]) >= Decimal("2000000")

    again = ok(call(company, "manager", "set_target", "zh", person="Rep", period="本季度", amount="2500000"))
    assert len(_targets(company)) == before + 1 and len(_audits(company)) == audits + 2
    assert again.text == "Rep 2026年第4季度的目标已改为 ¥2,500,000（原为 ¥2,000,000）。"


def test_a_team_target_and_a_target_outside_the_line_is_refused(company):
    before = len(_targets(company))
    ok(call(company, "director_w", "set_target", team="West", period="next_quarter", amount="5000000"))
    refused = call(company, "manager", "set_target", person="rep_w@example.com", amount="1000000")
    by_rep = call(company, "rep", "set_target", person="me", amount="9000000")

    assert len(_targets(company)) == before + 1 and _targets(company)[-1].team_id == company.org["team_west"]
    assert refused.status == "error" and refused.error.error == "permission_denied"
    assert by_rep.status == "error" and by_rep.error.error == "permission_denied"


def test_set_target_needs_exactly_one_holder(company):
    both = call(company, "manager", "set_target", person="rep", team="East", amount="1")
    none = call(company, "manager", "set_target", amount="1")

    assert both.status == none.status == "error" and both.error.error == "bad_arguments"


# --- any arguments ------------------------------------------------------------------------------------

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=20),
                      st.sampled_from(["me", "East", "West", "2026-Q4", "this_quarter", "Q3 2026", "本季度", "2026-13",
                                       "rep2@example.com", "stage", "owner", "2026-02-30", "-5"]))


@pytest.mark.parametrize("name", ANALYTICS)
def test_any_arguments_give_an_outcome_never_a_crash(company, name):
    if name == "set_target" and company.backend == "postgresql":
        pytest.skip("the writes are fuzzed once, on SQLite")
    spec = all_tools()[name]
    fields = list(spec.args.model_fields)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(args=st.fixed_dictionaries({}, optional={f: JSON_LEAF for f in fields}))
    def check(args):
        out = runner.invoke(name, args, company.ctx("manager"))
        assert out.status in ("ok", "error")
        if out.status == "error":
            assert out.error.error != "internal", f"{name}({args!r}) hit a bug: see the log"

    check()
