"""Who sees whose numbers: managers their subtree, reps themselves, the back office everything.

The standard organisation (tests/builders.py) has two teams: East (director → manager → rep,
rep2; sr and fr also report to the director) and West (director_w → manager_w → rep_w);
sales_ops owns a few deals and has no team. Expected owner sets are written out here by hand,
not derived from the oracle's scope rules, and the numbers come from the oracle over those owners.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func

from domain import analytics as an
from domain.analytics.sql import OPEN
from domain.errors import PermissionDenied
from tests.integration.analytics_fixture import analytics_database
from tests.integration.conftest import BACKENDS
from tests.integration.analytics_oracle import Scope

EAST_MANAGER = ("manager", "rep", "rep2")
EAST_DIRECTOR = ("director", "manager", "rep", "rep2", "sr", "fr")
WEST_DIRECTOR = ("director_w", "manager_w", "rep_w")
WEST_TEAM = ("director_w", "manager_w", "rep_w")
EVERY_SERVICE = [
    (an.pipeline, ("stage", "this_quarter")), (an.forecast, ("this_quarter",)), (an.win_rate, ("owner", "this_year")),
    (an.cycle_time, ("this_quarter",)), (an.funnel, ("this_quarter",)), (an.stuck_deals, (30, 20)),
    (an.top_deals, ("this_month", 5)), (an.gate_throughput, ("this_quarter",)), (an.aging, (None,)),
    (an.collection_rate, ("this_quarter",)), (an.reconciliation, ("this_quarter",)),
    (an.period_over_period, ("this_quarter",)),
]


@pytest.fixture(scope="module", params=BACKENDS)
def analytics_db(request, tmp_path_factory, sqlite_template):
    yield from analytics_database(request, tmp_path_factory, sqlite_template)


def run(adb, fn, *args, who, **kwargs):
    with adb.uow_factory() as uow:
        return fn(*args, actor=adb.org.actor(who), uow=uow, **kwargs)


def scope_of(adb, name: str, people) -> Scope:
    return Scope(name, frozenset(adb.org[p] for p in people))


def pipeline_numbers(view):
    return [(r.key, r.count, r.amount, r.weighted) for r in view.rows], (view.total.count, view.total.amount)


def expected_pipeline(adb, sc: Scope, by="stage", period="this_quarter"):
    exp = adb.oracle.pipeline(by, sc, adb.oracle.period(period))
    return ([(r["key"], r["count"], r["amount"], r["weighted"]) for r in exp["rows"]],
            (exp["total"]["count"], exp["total"]["amount"]))


def west_deals(adb) -> list[dict]:
    west = {adb.org[p] for p in WEST_TEAM}
    return [o for o in adb.oracle.opps.values() if o["owner_id"] in west]


# --------------------------------------------------------------------------- managers


def test_a_manager_sees_their_subtree_and_never_the_other_team(analytics_db):
    adb = analytics_db
    sc = scope_of(adb, "team", EAST_MANAGER)
    view = run(adb, an.pipeline, "stage", "this_quarter", who="manager")
    assert (view.scope, sorted(view.owner_ids)) == ("team", sorted(sc.owners))
    assert pipeline_numbers(view) == expected_pipeline(adb, sc)
    by_owner = run(adb, an.pipeline, "owner", None, who="manager")
    assert {r.key for r in by_owner.rows} <= {str(adb.org[p]) for p in EAST_MANAGER}
    # The West's big deal (CNY 8,888,888.88, closing this month) is nowhere in the manager's answers.
    big = Decimal("8888888.88")
    top = run(adb, an.top_deals, "this_month", 100, who="manager")
    assert adb.dataset.planted.west_big not in {d.opportunity_id for d in top.deals}
    assert all(d.amount != big and d.owner_id in sc.owners for d in top.deals)
    admin_top = run(adb, an.top_deals, "this_month", 100, who="admin")
    assert adb.dataset.planted.west_big in {d.opportunity_id for d in admin_top.deals}
    west_ids = {o["id"] for o in west_deals(adb)}
    stuck = run(adb, an.stuck_deals, 1, 100, who="manager")
    assert not west_ids & {d.opportunity_id for d in stuck.deals}
    # Every total is the East subtree's alone: the admin's total minus everyone else's.
    everyone = expected_pipeline(adb, Scope("all", None))[1]
    assert view.total.amount < everyone[1]


def test_a_director_sees_their_whole_subtree(analytics_db):
    adb = analytics_db
    for who, people in (("director", EAST_DIRECTOR), ("director_w", WEST_DIRECTOR)):
        sc = scope_of(adb, "team", people)
        view = run(adb, an.pipeline, "stage", "this_quarter", who=who)
        assert (view.scope, sorted(view.owner_ids)) == ("team", sorted(sc.owners)), who
        assert pipeline_numbers(view) == expected_pipeline(adb, sc), who
        wins = run(adb, an.win_rate, "owner", "this_year", who=who)
        assert {r.key for r in wins.rows} <= {str(x) for x in sc.owners}, who


def test_a_rep_sees_only_their_own(analytics_db):
    adb = analytics_db
    rep = adb.org["rep"]
    sc = scope_of(adb, "self", ("rep",))
    view = run(adb, an.pipeline, "owner", None, who="rep")
    assert (view.scope, view.owner_ids) == ("self", [rep])
    assert [r.key for r in view.rows] == [str(rep)]
    assert pipeline_numbers(view) == expected_pipeline(adb, sc, "owner", None)
    assert all(d.owner_id == rep for d in run(adb, an.top_deals, "this_quarter", 100, who="rep").deals)
    assert all(d.owner_id == rep for d in run(adb, an.stuck_deals, 1, 100, who="rep").deals)
    assert {r.key for r in run(adb, an.aging, None, who="rep").owners} <= {str(rep)}
    assert {r.key for r in run(adb, an.collection_rate, "this_year", who="rep").owners} <= {str(rep)}
    assert {x.key for x in run(adb, an.forecast, "this_quarter", who="rep").owners} == {str(rep)}


@pytest.mark.parametrize("who", ("admin", "sales_ops", "finance"))
def test_the_back_office_sees_everything(analytics_db, who):
    adb = analytics_db
    view = run(adb, an.pipeline, "team", None, who=who)
    assert (view.scope, view.owner_ids) == ("all", None)
    everyone = Scope("all", None)
    exp = adb.oracle.pipeline("team", everyone, None)
    assert [(r.key, r.count, r.amount) for r in view.rows] == [(r["key"], r["count"], r["amount"]) for r in exp["rows"]]
    assert {r.key for r in view.rows} == {str(adb.org["team_east"]), str(adb.org["team_west"]), ""}


@pytest.mark.parametrize("who", ("sr", "fr", "legal"))
def test_delivery_and_legal_may_not_read_analytics(analytics_db, who):
    for fn, args in EVERY_SERVICE:
        with pytest.raises(PermissionDenied):
            run(analytics_db, fn, *args, who=who)


# --------------------------------------------------------------------------- narrowing


def test_narrowing_outside_the_scope_is_refused_for_every_service(analytics_db):
    adb = analytics_db
    refused = [("manager", {"team": "West"}), ("manager", {"team": adb.org["team_west"]}),
               ("manager", {"owner": adb.org["rep_w"]}), ("manager", {"owner": adb.org["director"]}),
               ("rep", {"owner": adb.org["rep2"]}), ("rep", {"team": "West"}),
               ("director_w", {"team": "East"}), ("director_w", {"owner": adb.org["rep"]})]
    for who, narrowing in refused:
        for fn, args in EVERY_SERVICE:
            with pytest.raises(PermissionDenied):
                run(adb, fn, *args, who=who, **narrowing)


def test_narrowing_inside_the_scope_gives_the_narrowed_numbers(analytics_db):
    adb = analytics_db
    cases = [
        ("admin", {"team": "West"}, "all", WEST_TEAM),
        ("admin", {"team": adb.org["team_west"]}, "all", WEST_TEAM),
        ("finance", {"owner": adb.org["sales_ops"]}, "all", ("sales_ops",)),
        ("director_w", {"team": "West"}, "team", WEST_TEAM),
        ("director", {"owner": adb.org["rep2"]}, "team", ("rep2",)),
        ("manager", {"owner": adb.org["rep"]}, "team", ("rep",)),
        ("rep", {"owner": adb.org["rep"]}, "self", ("rep",)),
        ("director", {"team": "East", "owner": adb.org["manager"]}, "team", ("manager",)),
    ]
    for who, narrowing, scope_name, people in cases:
        sc = scope_of(adb, scope_name, people)
        view = run(adb, an.pipeline, "owner", None, who=who, **narrowing)
        assert sorted(view.owner_ids) == sorted(sc.owners), (who, narrowing)
        assert pipeline_numbers(view) == expected_pipeline(adb, sc, "owner", None), (who, narrowing)
        # Whose numbers (the amounts themselves are test_analytics_metrics.py's business).
        fc = run(adb, an.forecast, "this_quarter", who=who, **narrowing)
        exp = adb.oracle.forecast(sc, adb.oracle.period("this_quarter"))
        assert [c.count for c in fc.categories] == [c["count"] for c in exp["categories"]], (who, narrowing)
        assert [x.key for x in fc.owners] == [x["key"] for x in exp["owners"]], (who, narrowing)


def test_a_team_holding_someone_above_the_asker_is_outside_the_scope(analytics_db):
    """Reading of "narrowing to anyone outside the scope": East includes the manager's director,
    so East is refused to the manager (and to a rep), never silently cut down to a part of it."""
    adb = analytics_db
    for who in ("manager", "rep"):
        with pytest.raises(PermissionDenied):
            run(adb, an.pipeline, "stage", "this_quarter", who=who, team="East")
    assert adb.oracle.scope(adb.org["director"], team="East").owners == frozenset(
        adb.org[p] for p in ("director", "manager", "rep", "rep2"))


# --------------------------------------------------------------------------- leads, approvals, invoices


def test_leads_approvals_and_invoices_follow_their_owners(analytics_db):
    """Counted straight from the rows: leads by owner, approvals by requester, invoices by the AR
    of the deal behind the contract."""
    adb = analytics_db
    o = adb.oracle
    q4 = o.period("this_quarter")
    for who, people in (("manager", EAST_MANAGER), ("rep_w", ("rep_w",)), ("director_w", WEST_DIRECTOR)):
        ids = {adb.org[p] for p in people}
        leads = sum(1 for x in o.leads if x["owner_id"] in ids and q4.has(x["created_at"]))
        assert run(adb, an.funnel, "this_quarter", who=who).steps[0].count == leads, who
        pending = sum(1 for x in o.approvals if x["requested_by"] in ids and x["status"] == "pending")
        assert run(adb, an.gate_throughput, "this_quarter", who=who).total.pending == pending, who
        balances = [(x["amount"] - x["paid_amount"]) * o.fx[x["currency"]] for x in o.invoices
                    if x["status"] != "void" and x["amount"] > x["paid_amount"]
                    and o.opps[o.contracts[x["contract_id"]]["opportunity_id"]]["owner_id"] in ids]
        aging = run(adb, an.aging, None, who=who)
        assert abs(aging.total.total - sum(balances, Decimal(0))) <= Decimal("0.05"), who
    # Leads nobody owns are counted for the back office only.
    year = o.period("this_year")
    unowned = sum(1 for x in o.leads if x["owner_id"] is None and year.has(x["created_at"]))
    everyone = sum(1 for x in o.leads if year.has(x["created_at"]))
    assert unowned > 0
    assert run(adb, an.funnel, "this_year", who="admin").steps[0].count == everyone


def test_an_owner_filter_is_dropped_only_while_no_one_outside_the_scope_owns_anything(analytics_db):
    """A VP's subtree is every seller but not the back office: the IN list of owners is skipped while no
    one outside owns a deal or a lead, and comes back the moment someone does. Never committed."""
    from sqlalchemy import select, update

    from domain.analytics.scope import ask
    from domain.db import tables as t
    adb = analytics_db
    director = adb.org["director"]
    inside = [adb.org[p] for p in EAST_DIRECTOR]
    o, ld = t.opportunities, t.leads
    with adb.uow_factory() as uow:
        actor = adb.org.actor("director")
        a = ask(uow, actor)
        assert a.filter_ids == a.strict_ids == frozenset(inside)  # West and sales ops own deals
        uow.session.execute(update(o).where(o.c.owner_id.not_in(inside)).values(owner_id=director))
        uow.session.execute(update(ld).where(ld.c.owner_id.not_in(inside)).values(owner_id=director))
        a = ask(uow, actor)
        assert a.filter_ids is None and a.strict_ids == frozenset(inside)
        every_open = uow.session.execute(select(func.count()).where(o.c.stage.in_(OPEN))).scalar_one()
        assert an.pipeline("stage", actor=actor, uow=uow).total.count == every_open
        owned_leads = uow.session.execute(select(func.count()).where(ld.c.owner_id.is_not(None))).scalar_one()
        all_leads = uow.session.execute(select(func.count()).select_from(ld)).scalar_one()
        assert owned_leads < all_leads
        assert an.funnel("2000", actor=actor, uow=uow).steps[0].count == 0  # no lead is that old
        funnel_all = sum(an.funnel(str(y), actor=actor, uow=uow).steps[0].count for y in range(2020, 2031))
        assert funnel_all == owned_leads  # the unassigned leads stay out, as with the owner list
        one = uow.session.execute(select(o.c.id).where(o.c.stage.in_(OPEN)).limit(1)).scalar_one()
        uow.session.execute(update(o).where(o.c.id == one).values(owner_id=adb.org["sales_ops"]))
        a = ask(uow, actor)
        assert a.filter_ids == frozenset(inside)
        assert an.pipeline("stage", actor=actor, uow=uow).total.count == every_open - 1
