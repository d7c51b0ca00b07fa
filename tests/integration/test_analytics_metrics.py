"""Every analytics number equals an independent plain-Python computation over the same rows.

The dataset (analytics_fixture.py) is built once per backend; each test walks the variants of one
service (every `by`, several periods, several askers) and reports every mismatch at once.
Edge cases (period bounds, currency, superseded quotes, empty database) have tests of their own.
"""
from __future__ import annotations

import copy
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import insert

from domain import analytics as an
from domain.db import tables as t
from domain.errors import PermissionDenied
from tests import builders
from tests.integration.analytics_compare import HOURS, Diff
from tests.integration.analytics_fixture import NOW, analytics_database, fixed_clock_factory
from tests.integration.conftest import BACKENDS
from tests.integration.analytics_oracle import OPEN, Oracle

PERIODS = ("this_quarter", "this_month", "2026-Q3", "this_year", "last_year", "next_quarter", "2026-10")
# finance and sales_ops have the admin's scope: test_analytics_scope.py checks they see the same.
ASKERS = ("admin", "manager", "director_w", "rep")


@pytest.fixture(scope="module", params=BACKENDS)
def analytics_db(request, tmp_path_factory, sqlite_template):
    yield from analytics_database(request, tmp_path_factory, sqlite_template)


def run(adb, fn, *args, who="admin", **kwargs):
    with adb.uow_factory() as uow:
        return fn(*args, actor=adb.org.actor(who), uow=uow, **kwargs)


def test_dataset_is_rich_enough(analytics_db):
    """The fixture covers what the comparisons rely on (else a green run would prove little)."""
    o = analytics_db.oracle
    stages = {x["stage"] for x in o.opps.values()}
    assert stages == {*OPEN, "won", "lost", "abandoned"}
    assert {x["currency"] for x in o.opps.values()} == {"CNY", "USD", "EUR"}
    assert 200 <= len(o.opps) <= 300
    assert any(x["expected_close_date"] is None for x in o.opps.values() if x["stage"] in OPEN)
    assert any(a["changed_at"] == b["changed_at"] for rows in o.history.values() for a, b in zip(rows, rows[1:]))
    assert {x["status"] for x in o.approvals} == {"pending", "approved", "rejected", "expired", "cancelled"}
    assert {x["status"] for x in o.invoices} == {"issued", "partially_paid", "paid", "void"}
    assert {x["status"] for x in o.payments.values()} >= {"confirmed", "proposed"}
    assert {x["status"] for x in o.contracts.values()} >= {"draft", "signed", "executing"}
    assert any(x["status"] == "superseded" for x in o.quotes)
    assert {x["status"] for x in o.leads} >= {"converted", "new", "disqualified"}
    assert any(x["team_id"] for x in o.targets) and any(x["user_id"] for x in o.targets)
    # The equal timestamps matter: ordering them by id the other way changes the sales cycle.
    flipped = copy.copy(o)
    flipped.history = {k: sorted(v, key=lambda h: (h["changed_at"], -h["id"])) for k, v in o.history.items()}
    sc = o.scope(analytics_db.org["admin"])
    assert any(flipped.cycle_time(sc, o.period(p))["stages"] != o.cycle_time(sc, o.period(p))["stages"]
               for p in PERIODS)


# --------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("who", ("admin", "manager", "director_w"))
def test_pipeline_matches_oracle_for_every_grouping_and_period(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for by in ("stage", "owner", "team", "region", "product", "quarter", "month"):
        for name in (None, "this_quarter", "this_month", "this_year", "next_quarter", "last_quarter"):
            where = f"pipeline({by}, {name}) as {who}"
            view = run(adb, an.pipeline, by, name, who=who)
            exp = o.pipeline(by, sc, o.period(name))
            d.scoped(where, view, sc)
            d.eq(f"{where}.metric/by", (view.metric, view.by), ("pipeline", by))
            d.period(where, view.period, o.period(name))
            got_rows = [(r.key, r.count, r.amount, r.weighted) if by == "stage" else
                        (r.key, r.label, r.count, r.amount, r.weighted) for r in view.rows]
            exp_rows = [(r["key"], r["count"], r["amount"], r["weighted"]) if by == "stage" else
                        (r["key"], r["label"], r["count"], r["amount"], r["weighted"]) for r in exp["rows"]]
            d.eq(f"{where}.rows", got_rows, exp_rows)
            if by == "product":  # the sum of the rows (each checked above), as shown
                d.eq(f"{where}.total", (view.total.count, view.total.amount, view.total.weighted),
                     (sum(r.count for r in view.rows), sum(r.amount for r in view.rows),
                      sum(r.weighted for r in view.rows)))
            if by != "product" or adb.backend != "sqlite":  # there: rows (each checked) may each be a cent off
                d.fields(f"{where}.total", view.total, exp["total"], ("count", "amount", "weighted"))
    d.check()


# --------------------------------------------------------------------------- forecast


FORECAST_LINE = ("label", "won", "commit", "best_case", "pipeline", "weighted_forecast", "target",
                 "attainment", "coverage")


@pytest.mark.parametrize("who", ASKERS)
def test_forecast_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in ("this_quarter", "this_month", "this_year", "last_quarter", "next_quarter"):
        where = f"forecast({name}) as {who}"
        view = run(adb, an.forecast, name, who=who)
        exp = o.forecast(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.eq(f"{where}.categories", [(c.category, c.count, c.amount) for c in view.categories],
             [(c["category"], c["count"], c["amount"]) for c in exp["categories"]])
        d.fields(where, view, exp, ("weighted_forecast", "target", "attainment", "coverage"),
                 fractions=("attainment", "coverage"))
        for part in ("owners", "teams"):
            got = {x.key: x for x in getattr(view, part)}
            want = {x["key"]: x for x in exp[part]}
            d.eq(f"{where}.{part} keys", sorted(got), sorted(want))
            for key in set(got) & set(want):
                d.fields(f"{where}.{part}[{key}]", got[key], want[key], FORECAST_LINE,
                         fractions=("attainment", "coverage"))
            # Sorted by weighted forecast, largest first (the order among equal ones is not defined).
            d.descending(f"{where}.{part} order", [x.weighted_forecast for x in getattr(view, part)])
    d.check()


# --------------------------------------------------------------------------- win rate


@pytest.mark.parametrize("who", ASKERS)
def test_win_rate_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    fields = ("label", "won", "lost", "abandoned", "win_rate", "won_amount", "average_deal")
    for by in ("none", "owner", "team", "region", "quarter"):
        for name in ("this_year", "last_year", "this_quarter", "last_quarter", "this_month"):
            where = f"win_rate({by}, {name}) as {who}"
            view = run(adb, an.win_rate, by, name, who=who)
            exp = o.win_rate(by, sc, o.period(name))
            d.scoped(where, view, sc)
            d.period(where, view.period, o.period(name))
            d.eq(f"{where}.by", view.by, by)
            d.fields(f"{where}.total", view.total, exp["total"], fields[1:], fractions=("win_rate",))
            if by == "none":
                continue  # the rows of "none" are not defined; the total carries the numbers
            got = {r.key: r for r in view.rows}
            d.eq(f"{where}.row keys", sorted(got), sorted(exp["rows"]))
            for key in set(got) & set(exp["rows"]):
                d.fields(f"{where}[{key}]", got[key], exp["rows"][key], fields, fractions=("win_rate",))
    d.check()


# --------------------------------------------------------------------------- cycle time, funnel


@pytest.mark.parametrize("who", ASKERS)
def test_cycle_time_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in PERIODS:
        where = f"cycle_time({name}) as {who}"
        view = run(adb, an.cycle_time, name, who=who)
        exp = o.cycle_time(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.eq(f"{where}.stages", [(s.stage, s.spells, s.median_days) for s in view.stages],
             [(s["stage"], s["spells"], s["median_days"]) for s in exp["stages"]])
        d.eq(f"{where}.won", (view.won_deals, view.median_days_to_win),
             (exp["won_deals"], exp["median_days_to_win"]))
    d.check()


@pytest.mark.parametrize("who", ASKERS)
def test_funnel_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in PERIODS:
        where = f"funnel({name}) as {who}"
        view = run(adb, an.funnel, name, who=who)
        exp = o.funnel(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.eq(f"{where}.steps", [(s.step, s.count) for s in view.steps],
             [(s["step"], s["count"]) for s in exp["steps"]])
        for got, want in zip(view.steps[1:], exp["steps"][1:]):
            d.fields(f"{where}[{want['step']}]", got, want, ("of_previous", "of_first"),
                     fractions=("of_previous", "of_first"))
        first = view.steps[0] if view.steps else None
        if first is not None and first.count:  # the first step: nothing before it, all of itself
            d.eq(f"{where}[leads].of_first", first.of_first, Decimal(1))
    d.check()


# --------------------------------------------------------------------------- deal lists

DEAL_FIELDS = ("opportunity_id", "ref", "name", "account_name", "owner_id", "owner_name", "stage", "amount",
               "deal_currency", "deal_amount", "probability", "expected_close_date", "days_in_stage")


def compare_deals(d: Diff, where: str, view, exp: dict, *, reasons: bool) -> None:
    d.eq(f"{where}.count/amount", (view.count, view.amount), (exp["count"], exp["amount"]))
    d.eq(f"{where}.ids", [x.opportunity_id for x in view.deals], [x["opportunity_id"] for x in exp["deals"]])
    for got, want in zip(view.deals, exp["deals"]):
        names = DEAL_FIELDS + (("reasons",) if reasons else ())
        d.fields(f"{where}[{want['opportunity_id']}]", got, want, names)


@pytest.mark.parametrize("who", ASKERS)
def test_stuck_deals_match_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for days, limit in ((30, 20), (30, 100), (90, 5), (1, 3), (400, 20), (2, 100)):
        where = f"stuck_deals({days}, {limit}) as {who}"
        view = run(adb, an.stuck_deals, days, limit, who=who)
        d.scoped(where, view, sc)
        d.eq(f"{where}.metric/days/period", (view.metric, view.days, view.period), ("stuck_deals", days, None))
        compare_deals(d, where, view, o.stuck_deals(sc, days, limit), reasons=True)
    d.check()


@pytest.mark.parametrize("who", ASKERS)
def test_top_deals_match_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in PERIODS:
        for limit in (5, 100):
            where = f"top_deals({name}, {limit}) as {who}"
            view = run(adb, an.top_deals, name, limit, who=who)
            d.scoped(where, view, sc)
            d.period(where, view.period, o.period(name))
            d.eq(f"{where}.metric", view.metric, "top_deals")
            compare_deals(d, where, view, o.top_deals(sc, o.period(name), limit), reasons=False)
    d.check()


# --------------------------------------------------------------------------- gates


@pytest.mark.parametrize("who", ASKERS)
def test_gate_throughput_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    counts = ("kind", "pending", "approved", "rejected", "expired", "cancelled")
    hours = ("oldest_pending_hours", "average_decision_hours")
    for name in PERIODS:
        where = f"gate_throughput({name}) as {who}"
        view = run(adb, an.gate_throughput, name, who=who)
        exp = o.gate_throughput(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.eq(f"{where}.kinds", [k.kind for k in view.kinds], [k["kind"] for k in exp["kinds"]])
        for got, want in zip([*view.kinds, view.total], [*exp["kinds"], exp["total"]]):
            d.fields(f"{where}[{want['kind']}]", got, want, counts + hours, fractions=hours, coarsest=HOURS)
    d.check()


# --------------------------------------------------------------------------- cash


AS_OF = (None, date(2026, 9, 30), date(2026, 6, 30), date(2026, 11, 1), date(2024, 1, 1))


@pytest.mark.parametrize("who", ASKERS)
def test_aging_and_dso_match_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for as_of in AS_OF:
        where = f"aging({as_of}) as {who}"
        view = run(adb, an.aging, as_of, who=who)
        exp = o.aging(sc, as_of or NOW.date())
        d.scoped(where, view, sc)
        d.eq(f"{where}.as_of", view.as_of, as_of or NOW.date())
        d.eq(f"{where}.dso/invoiced_90", (view.dso_days, view.invoiced_90_days),
             (exp["dso_days"], exp["invoiced_90_days"]))
        d.fields(f"{where}.total", view.total, exp["total"], ("key", "buckets", "total", "overdue"))
        got = {r.key: r for r in view.owners}
        want = {r["key"]: r for r in exp["owners"]}
        d.eq(f"{where}.owner keys", sorted(got), sorted(want))
        for key in set(got) & set(want):
            d.fields(f"{where}[{key}]", got[key], want[key], ("label", "buckets", "total", "overdue"))
        d.descending(f"{where}.owners order", [r.total for r in view.owners])
    d.check()


@pytest.mark.parametrize("who", ASKERS)
def test_collection_rate_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in PERIODS:
        where = f"collection_rate({name}) as {who}"
        view = run(adb, an.collection_rate, name, who=who)
        exp = o.collection_rate(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.fields(f"{where}.total", view.total, exp["total"], ("due", "collected", "rate"), fractions=("rate",))
        got = {r.key: r for r in view.owners}
        want = {r["key"]: r for r in exp["owners"]}
        d.eq(f"{where}.owner keys", sorted(got), sorted(want))
        for key in set(got) & set(want):
            d.fields(f"{where}[{key}]", got[key], want[key], ("label", "due", "collected", "rate"),
                     fractions=("rate",))
        d.descending(f"{where}.owners order", [r.due for r in view.owners])
    d.check()


@pytest.mark.parametrize("who", ASKERS)
def test_reconciliation_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    names = ("won_deals", "deals_without_contract", "won", "contracted", "invoiced", "collected", "recognised",
             "gap_won_contracted", "gap_contracted_invoiced", "gap_invoiced_collected")
    for name in PERIODS:
        where = f"reconciliation({name}) as {who}"
        view = run(adb, an.reconciliation, name, who=who)
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.fields(where, view, o.reconciliation(sc, o.period(name)), names)
    d.check()


@pytest.mark.parametrize("who", ASKERS)
def test_period_over_period_matches_oracle(analytics_db, who):
    adb, o, d = analytics_db, analytics_db.oracle, Diff(analytics_db.backend)
    sc = o.scope(adb.org[who])
    for name in ("this_quarter", "this_month", "2026", "last_quarter", "2026-10"):
        where = f"period_over_period({name}) as {who}"
        view = run(adb, an.period_over_period, name, who=who)
        exp = o.period_over_period(sc, o.period(name))
        d.scoped(where, view, sc)
        d.period(where, view.period, o.period(name))
        d.period(f"{where}.previous", view.previous, exp["previous"])
        d.eq(f"{where}.kpis", [k.kpi for k in view.kpis], [k["kpi"] for k in exp["kpis"]])
        for got, want in zip(view.kpis, exp["kpis"]):
            exact = ("current", "previous", "change") if want["money"] or want["kpi"] == "won_count" else ()
            d.fields(f"{where}[{want['kpi']}]", got, want, ("current", "previous", "change", "change_pct"),
                     fractions=tuple({"current", "previous", "change", "change_pct"} - set(exact)))
    d.check()


# --------------------------------------------------------------------------- edges on the big dataset


def test_period_edges_start_included_end_excluded(analytics_db):
    adb, p = analytics_db, analytics_db.dataset.planted
    q4 = run(adb, an.top_deals, "this_quarter", 100)
    ids = {x.opportunity_id for x in q4.deals}
    assert p.usd_commit in ids  # expected to close on 2026-10-01: the quarter's first day
    assert p.eur_on_end not in ids  # 2027-01-01 is the next quarter's
    assert p.eur_on_end in {x.opportunity_id for x in run(adb, an.top_deals, "next_quarter", 100).deals}
    # Won at 2026-10-01 00:00:00 is Q4's; won at 2026-09-30 23:59:59 is Q3's.
    rep_q4 = run(adb, an.win_rate, "none", "this_quarter", owner=adb.org["rep"])
    rep2_q3 = run(adb, an.win_rate, "none", "2026-Q3", owner=adb.org["rep2"])
    o = adb.oracle
    assert rep_q4.total.won_amount == o.win_rate("none", o.scope(adb.org["admin"], owner=adb.org["rep"]),
                                                 o.period("this_quarter"))["total"]["won_amount"]
    won_q4 = {x["id"] for x in o.closed_deals(o.scope(adb.org["admin"]), o.period("this_quarter"), ("won",))}
    assert p.won_on_start in won_q4 and p.won_before_start not in won_q4
    assert rep2_q3.total.won >= 1
    rec = run(adb, an.reconciliation, "this_quarter", owner=adb.org["rep2"])
    assert rec.won_deals == len([x for x in o.opps.values() if x["owner_id"] == adb.org["rep2"]
                                 and x["stage"] == "won" and o.period("this_quarter").has(x["stage_changed_at"])])


def test_currency_conversion_at_the_book_rate(analytics_db):
    adb, p = analytics_db, analytics_db.dataset.planted
    deal = next(x for x in run(adb, an.top_deals, "this_quarter", 100).deals if x.opportunity_id == p.usd_commit)
    assert (deal.deal_currency, deal.deal_amount, deal.amount) == ("USD", Decimal("100000.00"), Decimal("710000.00"))
    eur = next(x for x in run(adb, an.top_deals, "next_quarter", 100).deals if x.opportunity_id == p.eur_on_end)
    assert eur.amount == Decimal("385000.00")


def test_stuck_deal_reasons(analytics_db):
    adb, p = analytics_db, analytics_db.dataset.planted
    stuck = {x.opportunity_id: x for who in ("rep", "rep2")
             for x in run(adb, an.stuck_deals, 30, 100, owner=adb.org[who]).deals}
    assert stuck[p.stuck_exact].reasons == ["no_move"]  # exactly 30 days: "at least" includes it
    assert stuck[p.stuck_exact].days_in_stage == 30
    assert stuck[p.past_close].reasons == ["past_close"]  # moved a week ago, close date yesterday
    assert p.closes_today not in stuck  # closing today is not past its date
    assert any(x.reasons == ["no_move", "past_close"] for x in stuck.values())
    later = run(adb, an.stuck_deals, 31, 100, owner=adb.org["rep2"])
    assert p.stuck_exact not in {x.opportunity_id for x in later.deals}


def test_dso_is_none_when_nothing_was_issued(analytics_db):
    view = run(analytics_db, an.aging, date(2024, 1, 1))
    assert view.dso_days is None and view.invoiced_90_days == 0 and view.total.total == 0


# --------------------------------------------------------------------------- small databases of their own


@pytest.fixture
def clocked(engine):
    factory = fixed_clock_factory(engine)
    return factory, builders.build_org(factory)


def test_empty_database_gives_zeros_and_none(engine, clocked):
    factory, org = clocked
    with factory() as uow:
        kw = {"actor": org.actor("admin"), "uow": uow}
        stage = an.pipeline("stage", "this_quarter", **kw)
        assert [(r.key, r.count, r.amount, r.weighted) for r in stage.rows] == [(s, 0, 0, 0) for s in OPEN]
        assert (stage.total.count, stage.total.amount) == (0, 0)
        for by in ("owner", "team", "region", "product", "quarter", "month"):
            view = an.pipeline(by, None, **kw)
            assert view.rows == [] and view.total.count == 0 and view.total.amount == 0
        fc = an.forecast("this_quarter", **kw)
        assert [(c.count, c.amount) for c in fc.categories] == [(0, 0)] * 4
        assert (fc.weighted_forecast, fc.target, fc.attainment, fc.coverage) == (0, 0, None, None)
        assert fc.owners == [] and fc.teams == []
        wr = an.win_rate("owner", "this_year", **kw)
        assert wr.rows == [] and (wr.total.won, wr.total.win_rate, wr.total.average_deal) == (0, None, None)
        ct = an.cycle_time("this_quarter", **kw)
        assert [(s.spells, s.median_days) for s in ct.stages] == [(0, None)] * 5
        assert (ct.won_deals, ct.median_days_to_win) == (0, None)
        fn = an.funnel("this_quarter", **kw)
        assert all(s.count == 0 and s.of_previous is None for s in fn.steps)
        for view in (an.stuck_deals(30, 20, **kw), an.top_deals("this_month", 5, **kw)):
            assert (view.count, view.amount, view.deals) == (0, 0, [])
        gt = an.gate_throughput("this_quarter", **kw)
        assert [k.kind for k in gt.kinds] == ["ATI", "solution_review", "ATB", "ATC", "discount", "contract_change"]
        assert all(k.pending == 0 and k.oldest_pending_hours is None and k.average_decision_hours is None
                   for k in [*gt.kinds, gt.total])
        ag = an.aging(None, **kw)
        assert ag.dso_days is None and ag.owners == [] and ag.total.total == 0
        assert ag.total.buckets == dict.fromkeys(("current", "1-30", "31-60", "61-90", "90+"), 0)
        cr = an.collection_rate("this_quarter", **kw)
        assert cr.owners == [] and (cr.total.due, cr.total.rate) == (0, None)
        rc = an.reconciliation("this_quarter", **kw)
        assert (rc.won_deals, rc.deals_without_contract, rc.won, rc.gap_won_contracted) == (0, 0, 0, 0)
        pop = an.period_over_period("this_quarter", **kw)
        assert all(k.change_pct is None for k in pop.kpis)
        assert {k.kpi: k.current for k in pop.kpis}["new_pipeline"] == 0


def _deal(engine, org, oid: int, *, amount: str, currency: str = "CNY", probability: int = 50) -> None:
    with engine.begin() as conn:
        if oid == 1:
            conn.execute(insert(t.accounts), [dict(id=1, name="Acme", name_norm="acme", owner_id=org["rep"],
                                                   created_at=NOW, updated_at=NOW)])
        conn.execute(insert(t.opportunities), [dict(
            id=oid, name=f"D{oid}", account_id=1, owner_id=org["rep"], amount=Decimal(amount), currency=currency,
            region="east", expected_close_date=date(2026, 12, 1), competitors=[], stage="bid",
            probability=probability, created_at=datetime(2026, 10, 2), updated_at=datetime(2026, 10, 2),
            stage_changed_at=datetime(2026, 10, 2), version=1)])


def test_product_pipeline_counts_the_current_quote_only(engine, clocked):
    """v1 superseded, v2 current, v3 superseded: v2's lines count; all superseded → "—"."""
    factory, org = clocked
    _deal(engine, org, 1, amount="1000.00", probability=50)
    _deal(engine, org, 2, amount="777.77", currency="EUR", probability=20)
    with engine.begin() as conn:
        conn.execute(insert(t.products), [
            dict(id=i, sku=sku, name_en=name, name_zh=name, unit="u", currency="CNY", cost=0, floor_price=0)
            for i, sku, name in ((1, "A", "Alpha"), (2, "B", "Beta"), (3, "C", "Gamma"))])
        quotes = [(1, 1, 1, "superseded", "CNY"), (2, 1, 2, "approved", "USD"), (3, 1, 3, "superseded", "CNY"),
                  (4, 2, 1, "superseded", "EUR")]
        conn.execute(insert(t.quotes), [dict(id=q, opportunity_id=o, version=v, status=s, total=1, currency=c,
                                             created_at=NOW) for q, o, v, s, c in quotes])
        lines = [(1, 1, "C", "5", "100", "0"),  # superseded: ignored
                 (2, 1, "A", "2", "100.00", "10"), (2, 2, "B", "1.5", "33.33", "12.5"), (2, 3, "A", "1", "0.01", "0"),
                 (3, 1, "C", "9", "100", "0"), (4, 1, "B", "9", "100", "0")]
        conn.execute(insert(t.quote_lines), [dict(
            quote_id=q, position=pos, product_id={"A": 1, "B": 2, "C": 3}[sku], sku=sku,
            name={"A": "Alpha", "B": "Beta", "C": "Gamma"}[sku],
            quantity=Decimal(qty), list_price=Decimal(price), discount_pct=Decimal(disc), unit_cost=0, floor_price=0)
            for q, pos, sku, qty, price, disc in lines])
    with factory() as uow:
        view = an.pipeline("product", None, actor=org.actor("manager"), uow=uow)
    usd = Decimal("7.10")
    alpha = (2 * Decimal("100.00") * Decimal("0.9") + Decimal("0.01")) * usd  # 1278.071
    beta = Decimal("1.5") * Decimal("33.33") * Decimal("0.875") * usd  # 310.6139…
    none = Decimal("777.77") * Decimal("7.70")  # the EUR deal, at its own amount
    q = lambda x: x.quantize(Decimal("0.01"), "ROUND_HALF_UP")  # noqa: E731
    assert [(r.key, r.label, r.count, r.amount, r.weighted) for r in view.rows] == [
        ("A", "Alpha", 1, q(alpha), q(alpha / 2)),
        ("B", "Beta", 1, q(beta), q(beta / 2)),
        ("", "—", 1, q(none), q(none / 5)),
    ]
    # The product total is the sum of the rows as shown.
    assert (view.total.count, view.total.amount, view.total.weighted) == (
        3, q(alpha) + q(beta) + q(none), q(alpha / 2) + q(beta / 2) + q(none / 5))


def test_a_fresh_oracle_agrees_on_the_small_database(engine, clocked):
    """The oracle itself on a hand-checkable database (guards the guard)."""
    factory, org = clocked
    _deal(engine, org, 1, amount="100.00", currency="USD", probability=60)
    o = Oracle(engine, NOW)
    exp = o.pipeline("stage", o.scope(org["admin"]), o.period("this_quarter"))
    assert exp["total"] == {"count": 1, "amount": Decimal("710.00"), "weighted": Decimal("426.00")}
    assert exp["rows"][3]["key"] == "bid" and exp["rows"][3]["count"] == 1


def test_targets_set_and_listed_feed_the_forecast(engine, clocked):
    factory, org = clocked
    _deal(engine, org, 1, amount="100.00", currency="USD", probability=60)
    with factory() as uow:
        first = an.set_target({"user_id": org["rep"], "period": "2026-Q4", "amount": "1000000"},
                              actor=org.actor("manager"), uow=uow)
        uow.commit()
    with factory() as uow:
        again = an.set_target({"user_id": org["rep"], "period": "this_quarter", "amount": "2000000.50"},
                              actor=org.actor("manager"), uow=uow)
        uow.commit()
    assert (again.id, again.amount, again.previous_amount) == (first.id, Decimal("2000000.50"), Decimal("1000000"))
    assert (again.period.start, again.period.end) == (date(2026, 10, 1), date(2027, 1, 1))
    with factory() as uow:
        listed = an.list_targets("2026-Q4", actor=org.actor("manager"), uow=uow)
        fc = an.forecast("this_quarter", actor=org.actor("manager"), uow=uow)
        with pytest.raises(PermissionDenied):  # setting targets is a manager's job
            an.set_target({"user_id": org["rep"], "period": "2026-Q4", "amount": "1"},
                          actor=org.actor("rep"), uow=uow)
    assert [(x.user_id, x.amount) for x in listed] == [(org["rep"], Decimal("2000000.50"))]
    o = Oracle(engine, NOW)
    exp = o.forecast(o.scope(org["manager"]), o.period("this_quarter"))
    assert (fc.target, fc.weighted_forecast) == (exp["target"], exp["weighted_forecast"]) and fc.coverage is not None
    assert fc.target == Decimal("2000000.50") and fc.weighted_forecast == Decimal("426.00")
