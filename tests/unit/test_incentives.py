"""Iron-triangle incentive split: a pool of collected cash, role weights as policy data, contributions per role."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.model.incentives import IncentivePlan, split
from domain.services import incentives, payments, users

D = Decimal


def _pay(run, org, store, contract_id, amount, ref="BANK-1"):
    run(payments.record_payment, {"contract_id": contract_id, "amount": amount, "currency": "CNY",
                                  "received_on": store.clock.current.date().isoformat(), "bank_ref": ref},
        actor=org.actor("finance"))


def _lines(view) -> list[tuple[str, int, Decimal]]:
    return [(x.role, x.user_id, x.amount) for x in view.lines]


def _split(run, org, contract_id, who="manager"):
    return run(incentives.incentive_split, contract_id, actor=org.actor(who))


def _person(run, org, key, role="solution_manager"):
    view = run(users.create_user, {"email": f"{key}@example.com", "name_en": key.title(), "region": "east",
                                   "roles": [role], "manager_id": org["director"]}, actor=org.actor("admin"))
    org.ids[key] = view.id
    return view.id


def _contribute(run, org, contract_id, role, shares, who="manager"):
    return run(incentives.record_contribution, contract_id, {
        "role": role, "shares": [{"user_id": org[k], "share_pct": p} for k, p in shares]}, actor=org.actor(who))


def test_nothing_collected_shares_nothing(signed, run, org):
    deal = signed()  # 150,000 invoiced on signing, nothing paid yet
    view = _split(run, org, deal.contract)
    assert _lines(view) == [("AR", org["rep"], 0), ("SR", org["sr"], 0), ("FR", org["fr"], 0)]
    assert (view.collected, view.pool, view.final) == (0, 0, False)
    assert "nothing collected yet, so nothing to share" in view.message


def test_the_pool_is_two_percent_of_collected_cash_split_40_30_30(signed, run, org, store):
    deal = signed()
    _pay(run, org, store, deal.contract, "150000")
    view = _split(run, org, deal.contract, who="rep")
    assert (view.collected, view.pool_pct, view.pool, view.final) == (D("150000.00"), D("2.00"), D("3000.00"), False)
    assert _lines(view) == [("AR", org["rep"], D("1200.00")), ("SR", org["sr"], D("900.00")),
                            ("FR", org["fr"], D("900.00"))]
    assert [x.share_pct for x in view.lines] == [100, 100, 100]
    assert "350000.00 earns shares only when collected" in view.message
    _pay(run, org, store, deal.contract, "350000", "BANK-2")  # nothing invoiced to pay: unapplied credit
    credit = _split(run, org, deal.contract)
    assert (credit.collected, credit.pool, credit.final) == (D("150000.00"), D("3000.00"), False)


def test_the_split_is_final_once_the_whole_contract_is_collected(delivered, run, org, store):
    _pay(run, org, store, delivered.contract, "500000")
    view = _split(run, org, delivered.contract, who="finance")
    assert (view.final, view.collected, view.pool) == (True, D("500000.00"), D("10000.00"))
    assert [x.amount for x in view.lines] == [D("4000.00"), D("3000.00"), D("3000.00")]


def test_the_weights_and_pool_are_policy_data(signed, run, org, store, uow_factory):
    deal = signed()
    _pay(run, org, store, deal.contract, "150000")
    with uow_factory() as uow:
        plan = uow.finance.incentive_plan()
        plan.pool_pct, plan.ar_pct, plan.sr_pct, plan.fr_pct = D("5"), D("50"), D("25"), D("25")
        uow.commit()
    view = _split(run, org, deal.contract)
    assert view.pool == D("7500.00") and [x.amount for x in view.lines] == [D("3750.00"), D("1875.00"), D("1875.00")]
    with uow_factory() as uow:
        uow.finance.incentive_plan().active = False
        uow.commit()
    with pytest.raises(NotFound) as err:
        _split(run, org, deal.contract)
    assert err.value.field == "plan"


def test_a_manager_splits_a_role_among_the_people_who_earned_it(signed, run, org, store):
    deal = signed()
    _pay(run, org, store, deal.contract, "150000")
    _person(run, org, "sr2")
    view = _contribute(run, org, deal.contract, "SR", [("sr", "60"), ("sr2", "40")])
    assert _lines(view) == [("AR", org["rep"], D("1200.00")), ("SR", org["sr"], D("540.00")),
                            ("SR", org["sr2"], D("360.00")), ("FR", org["fr"], D("900.00"))]
    assert "SR contributions" in view.message
    rows = [(x.user_id, x.role, x.share_pct, x.recorded_by) for x in store.rows("contributions")]
    assert rows == [(org["sr"], "SR", D("60"), org["manager"]), (org["sr2"], "SR", D("40"), org["manager"])]
    again = _contribute(run, org, deal.contract, "SR", [("sr2", "100")], who="director")  # replaces the role
    assert [x for x in _lines(again) if x[0] == "SR"] == [("SR", org["sr2"], D("900.00"))]
    assert [(x.user_id, x.share_pct) for x in store.rows("contributions")] == [(org["sr2"], D("100"))]
    audits = [a for a in store.rows("audit") if a.action == "contribution:SR"]
    assert [(a.entity, a.entity_id, a.actor_id) for a in audits] == [
        ("contract", deal.contract, org["manager"]), ("contract", deal.contract, org["director"])]
    assert audits[-1].after == {"shares": {org["sr2"]: "100"}}


@pytest.mark.parametrize(("shares", "error", "field"), [
    ([("sr", "60"), ("sr2", "30")], ValidationFailed, "shares"),
    ([("sr", "50"), ("sr", "50")], ValidationFailed, "shares"),
    ([("sr", "50"), ("ghost", "50")], NotFound, "shares.1.user_id"),
    ([("sr", "0"), ("sr2", "100")], ValidationFailed, "shares.0.share_pct"),
])
def test_contributions_must_name_real_people_and_add_up_to_100(shares, error, field, signed, run, org, store):
    deal = signed()
    _person(run, org, "sr2")
    org.ids["ghost"] = 9999
    before = store.count("contributions"), store.count("audit")
    with pytest.raises(error) as err:
        _contribute(run, org, deal.contract, "SR", shares)
    assert err.value.field == field
    assert (store.count("contributions"), store.count("audit")) == before


@pytest.mark.parametrize(("who", "why"), [("rep", "record_contribution"), ("sr", "record_contribution"),
                                          ("finance", "record_contribution"), ("manager_w", "not one of your")])
def test_only_managers_record_contributions(who, why, signed, run, org, store):
    deal = signed()
    with pytest.raises(PermissionDenied, match=why):
        _contribute(run, org, deal.contract, "FR", [("fr", "100")], who=who)
    assert store.count("contributions") == 0
    assert _contribute(run, org, deal.contract, "FR", [("fr", "100")], who="sales_ops").lines


def test_the_lines_of_a_role_add_up_exactly_to_the_role_amount(signed, run, org, store):
    deal = signed()
    _pay(run, org, store, deal.contract, "150000")
    for key in ("sr2", "sr3"):
        _person(run, org, key)
    view = _contribute(run, org, deal.contract, "SR", [("sr", "33.33"), ("sr2", "33.33"), ("sr3", "33.34")])
    sr = [x.amount for x in view.lines if x.role == "SR"]
    assert sr == [D("299.97"), D("299.97"), D("300.06")] and sum(sr) == D("900.00")


@pytest.mark.parametrize("collected", ["1234.57", "0.01", "99999.99", "333.33"])
def test_rounding_never_loses_or_makes_a_cent_within_a_role(collected):
    plan = IncentivePlan(name="p", pool_pct=D("2.00"), ar_pct=D("40"), sr_pct=D("30"), fr_pct=D("30"))
    shares = {"AR": [(1, D("100"))], "SR": [(2, D("33.33")), (3, D("33.33")), (4, D("33.34"))],
              "FR": [(5, D("70")), (6, D("30"))]}
    lines = split(D(collected), plan, shares)
    pool = (D(collected) * plan.pool_pct / 100).quantize(D("0.01"), rounding="ROUND_HALF_UP")
    assert sum(a for _, _, a in lines) == pool  # rounded once, then cut without losing or making a cent
    for role in ("AR", "SR", "FR"):
        exact = pool * plan.weight(role) / 100
        assert abs(sum(a for r, _, a in lines if r == role) - exact) < D("0.01")
    assert all(a >= 0 for _, _, a in lines)


@pytest.mark.parametrize(("collected", "people"), [("1234.57", 1), ("3.00", 4), ("0.01", 3), ("999999.99", 7)])
def test_the_split_adds_up_to_the_rounded_pool_and_never_goes_negative(collected, people):
    plan = IncentivePlan(name="p", pool_pct=D("2"), ar_pct=D("40"), sr_pct=D("30"), fr_pct=D("30"))
    shares = {"AR": [(1, D("100"))], "SR": [(2, D("100"))],
              "FR": [(10 + i, D("100") / people) for i in range(people)]}
    lines = split(D(collected), plan, shares)
    pool = (D(collected) * D("0.02")).quantize(D("0.01"), rounding="ROUND_HALF_UP")
    assert sum(a for _, _, a in lines) == pool
    assert all(a >= 0 and a == a.quantize(D("0.01")) for _, _, a in lines)
