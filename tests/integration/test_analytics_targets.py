"""Targets: who may set them and who may read them."""
from __future__ import annotations

from decimal import Decimal

import pytest

from domain import analytics as an
from domain.errors import PermissionDenied


def _set(uow_factory, org, who: str, **target) -> an.TargetView:
    with uow_factory() as uow:
        view = an.set_target({"period": "2026-Q4", **target}, actor=org.actor(who), uow=uow)
        uow.commit()
    return view


def test_a_rep_never_reads_another_teams_target(uow_factory, org):
    _set(uow_factory, org, "sales_ops", team_id=org["team_west"], amount="9000000")
    _set(uow_factory, org, "sales_ops", team_id=org["team_east"], amount="5000000")
    with uow_factory() as uow:
        seen = an.list_targets("2026-Q4", actor=org.actor("rep"), uow=uow)  # an east rep
        everyone = an.list_targets("2026-Q4", actor=org.actor("admin"), uow=uow)
    assert [(v.holder, v.amount) for v in seen] == [("East", Decimal("5000000.00"))]
    assert sorted(v.holder for v in everyone) == ["East", "West"]


def test_nobody_sets_their_own_target_but_their_manager_does(uow_factory, org):
    with pytest.raises(PermissionDenied), uow_factory() as uow:
        an.set_target({"user_id": org["manager"], "period": "2026-Q4", "amount": "1"},
                      actor=org.actor("manager"), uow=uow)
    view = _set(uow_factory, org, "director", user_id=org["manager"], amount="3000000")
    assert view.amount == Decimal("3000000.00") and view.previous_amount is None
