"""Naming a team in an analytics question: by id, full name, or a part of its name only one team has."""
from __future__ import annotations

import pytest

from domain import analytics as an
from domain.analytics.scope import team_id
from domain.errors import NotFound, ValidationFailed
from tests import builders


def test_a_team_is_found_by_id_full_name_or_a_unique_part_of_it(uow_factory, org):
    with uow_factory() as uow:
        assert team_id(uow, org["team_east"]) == org["team_east"]
        assert team_id(uow, "east") == org["team_east"]
        assert team_id(uow, "WES") == org["team_west"]
        with pytest.raises(ValidationFailed) as ambiguous:
            team_id(uow, "st")  # East and West
        assert ambiguous.value.field == "team" and sorted(ambiguous.value.allowed) == ["East", "West"]
        with pytest.raises(NotFound):
            team_id(uow, "Nowhere")


def test_a_director_narrowed_to_their_team_by_part_of_its_name_sees_exactly_its_deals(uow_factory, org):
    builders.make_deal(uow_factory, org, n=1, amount="300000")
    builders.make_deal(uow_factory, org, n=2, amount="200000", owner="rep2")
    builders.make_deal(uow_factory, org, n=3, amount="9000000", owner="rep_w", region="west")
    with uow_factory() as uow:
        view = an.pipeline("stage", team="Ea", actor=org.actor("director"), uow=uow)
    assert view.scope == "team" and view.total.count == 2


def test_a_decision_in_exactly_fifteen_minutes_is_a_third_of_an_hour_on_both_databases(engine, uow_factory, org):
    from datetime import datetime, timedelta
    from decimal import Decimal

    from sqlalchemy import insert

    from domain.db import tables as t

    start = datetime(2026, 11, 2, 9, 0, 0)
    with engine.begin() as conn:  # SQLite's julianday gave 899.99998 s: 0.2 h instead of 0.25 → 0.3
        conn.execute(insert(t.approval_requests).values(
            kind="discount", subject_type="quote", subject_id=1, title="x", requested_by=org["rep"],
            status="approved", current_step=1, context={}, created_at=start, closed_at=start + timedelta(minutes=15)))
    with uow_factory(clock=lambda: datetime(2026, 11, 20, 12)) as uow:
        gates = an.gate_throughput("2026-11", actor=org.actor("admin"), uow=uow)
    assert gates.total.average_decision_hours == Decimal("0.3")
