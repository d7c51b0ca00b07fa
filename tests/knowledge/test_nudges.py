"""Iron-triangle nudges: each role's checklist, in their language, once per event."""
from __future__ import annotations

import pytest

from bot.nudges import ChecklistNudger, RecordingNotifier
from domain.services import opportunities
from knowledge.index import build_index
from knowledge.retrieval import PlaybookSearch
from tests import builders
from tests.fakes import FakeStore, FakeUnitOfWork


@pytest.fixture
def world(settings, embedder):
    store = FakeStore()
    factory = lambda: FakeUnitOfWork(store)  # noqa: E731
    org = builders.build_org(factory)
    build_index(settings, embedder)
    return store, factory, org, PlaybookSearch(settings, embedder)


def deliver(store, nudger) -> None:
    for message in store.tables["outbox"].values():
        nudger.handle(message.key, message.topic, message.payload)


def test_reaching_bid_posts_each_roles_stage_checklist_in_their_language(world):
    store, factory, org, search = world
    opp = builders.make_deal(factory, org)
    builders.run_gate(factory, org, opp, "ATI", ["manager"])
    with factory() as uow:
        opportunities.record_solution(opp, "MES", actor=org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp, "Two waves", actor=org.actor("fr"), uow=uow)
        uow.commit()
    builders.run_gate(factory, org, opp, "solution_review", ["manager"])
    builders.approve_quote(factory, opp)
    builders.run_gate(factory, org, opp, "ATB", ["manager", "director"])
    notifier = RecordingNotifier()
    deliver(store, ChecklistNudger(factory, search, notifier))
    bid = [n for n in notifier.notices if "bid" in n.text]
    assert {(n.role, n.user_id) for n in bid} == {("AR", org["rep"]), ("SR", org["sr"]), ("FR", org["fr"])}
    ar = next(n for n in bid if n.role == "AR")
    assert ar.lang == "zh" and "确认投标截止时间" in ar.text and "已进入" in ar.text
    fr = next(n for n in bid if n.role == "FR")
    assert "确认投标的交付能力" in fr.text and "确认投标截止时间" not in fr.text


def test_a_gate_request_posts_what_each_role_brings_and_falls_back_to_english(world):
    store, factory, org, search = world
    opp = builders.make_deal(factory, org)
    builders.full_cycle(factory, org, opp)
    notifier = RecordingNotifier()
    deliver(store, ChecklistNudger(factory, search, notifier))
    atc = [n for n in notifier.notices if "ATC" in n.text]
    assert {n.role for n in atc} == {"AR", "FR"}  # the ATC playbook has no SR checklist
    assert "Sign off deliverability" in next(n for n in atc if n.role == "FR").text


def test_the_same_event_delivered_twice_nudges_once(world):
    store, factory, org, search = world
    opp = builders.make_deal(factory, org)
    builders.full_cycle(factory, org, opp)
    notifier = RecordingNotifier()
    nudger = ChecklistNudger(factory, search, notifier)
    deliver(store, nudger)
    first = len(notifier.notices)
    deliver(store, nudger)  # at-least-once delivery: a repeat must not post again
    assert first > 0 and len(notifier.notices) == first


def test_closing_a_deal_nudges_nobody(world):
    store, factory, org, search = world
    opp = builders.make_deal(factory, org)
    with factory() as uow:
        opportunities.close_opportunity(opp, "lost", "budget frozen", actor=org.actor("rep"), uow=uow)
        uow.commit()
    notifier = RecordingNotifier()
    deliver(store, ChecklistNudger(factory, search, notifier))
    assert notifier.notices == []
