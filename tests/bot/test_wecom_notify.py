"""Outbox notifications on WeCom: notices to their recipient, gate outcomes to the deal's iron
triangle, each once; transient WeCom errors retried for the missing ones only; and one worker that
serves Slack and WeCom delivers to each person on the surfaces they have."""
from __future__ import annotations

import logging
from datetime import timedelta

from slack_sdk import WebClient
from sqlalchemy import select, update

from bot.agent.runtime import Agent
from bot.jobs import run_jobs
from bot.slack.app import SlackServices
from bot.surfaces import all_sinks
from bot.wecom.notify import WeComNotifier
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.outbox import dispatch_pending
from domain.services import approvals, leads, opportunities, quotes
from tests import builders
from tests.bot.slack_mock import SlackMock
from tests.fakes import FakeClock
from tests.unit.conftest import build_signed


def deliver(rig, sinks) -> int:
    total = 0
    while n := dispatch_pending(rig.app.session_factory, sinks):
        total += n
    return total


def redeliver(rig) -> None:
    """Make every message due again, as after a worker died before marking them (at-least-once)."""
    with rig.app.engine.begin() as conn:
        conn.execute(update(t.outbox).values(dispatched_at=None, available_at=utcnow() - timedelta(seconds=1)))


def _lead(rig, *, by: str, owner: str) -> int:
    with rig.app.uow() as uow:
        lead = leads.create_lead({"source": "trade_show", "company": "杭州阀门有限公司", "contact_name": "李伟",
                                  "title": "CIO", "email": "li@valve.example", "need": "两个工厂的 MES",
                                  "budget": "800000", "region": "east", "timeline": "within_3_months",
                                  "authority": "decision_maker", "owner_id": rig.org[owner]},
                                 actor=rig.org.actor(by), uow=uow)
        uow.commit()
    return lead.id


def _solution_ready(rig, opp: int) -> None:
    """What the solution review needs: the SR's solution and the FR's delivery plan."""
    with rig.app.uow() as uow:
        opportunities.record_solution(opp, "Cloud MES", actor=rig.org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp, "Two waves", actor=rig.org.actor("fr"), uow=uow)
        uow.commit()


def test_a_lead_assigned_to_a_rep_is_sent_to_their_wecom_once(wecom):
    lead = _lead(wecom, by="sales_ops", owner="rep")
    sink = WeComNotifier(wecom.services)
    deliver(wecom, [sink])
    redeliver(wecom)
    deliver(wecom, [sink])
    [message] = wecom.mock.sent("LiNa")
    assert message["msgtype"] == "markdown"
    text = message["markdown"]["content"]
    assert text.startswith(f"**") and f"LEAD-{lead:05d}" in text and "杭州阀门有限公司" in text and "李伟" in text


def test_the_overdue_digest_reaches_the_ar_on_wecom_once_a_day(wecom):
    org = wecom.org
    clock = FakeClock(start=utcnow() - timedelta(days=45))  # signed 45 days ago: 30-day invoices are overdue
    signed = build_signed(lambda: wecom.app.uow(clock=clock), org, n=201)
    with wecom.app.uow() as uow:
        number = uow.invoices.for_contract(signed.contract)[0].number
    run_jobs(wecom.app)
    sink = WeComNotifier(wecom.services)
    deliver(wecom, [sink])
    run_jobs(wecom.app)  # the job runs again the same day
    redeliver(wecom)
    deliver(wecom, [sink])
    digests = [x for x in wecom.texts("LiNa") if number in x]
    assert len(digests) == 1 and "逾期" in digests[0] and "Customer 201 Ltd" in digests[0]


def test_ati_kickoff_and_a_rejected_gate_reach_each_member_of_the_triangle(wecom):
    org = wecom.org
    opp = builders.make_deal(wecom.app.uow, org)
    builders.run_gate(wecom.app.uow, org, opp, "ATI", ["manager"])
    _solution_ready(wecom, opp)
    with wecom.app.uow() as uow:
        req = approvals.request_gate(opp, "solution_review", actor=org.actor("rep"), uow=uow)
        uow.commit()
    with wecom.app.uow() as uow:
        approvals.decide_approval(req.id, "reject", comment="交付计划缺少现场勘查结果", actor=org.actor("manager"),
                                  uow=uow)
        uow.commit()
    sink = WeComNotifier(wecom.services)
    deliver(wecom, [sink])
    redeliver(wecom)
    deliver(wecom, [sink])
    for member in ("LiNa", "ZhouMin", "SunLei"):  # AR, SR, FR
        texts = wecom.texts(member)
        kickoff = [x for x in texts if "项目已立项" in x]
        rejected = [x for x in texts if "被驳回" in x]
        assert len(kickoff) == 1 and len(rejected) == 1, (member, texts)
        assert "AR" in kickoff[0] and "SR" in kickoff[0] and "FR" in kickoff[0]
        assert "交付计划缺少现场勘查结果" in rejected[0]
    assert wecom.texts("WangFang") == []  # the manager decided it; the news is the triangle's


def test_a_transient_wecom_error_is_retried_for_the_missing_recipient_only(wecom):
    org = wecom.org
    opp = builders.make_deal(wecom.app.uow, org)
    builders.run_gate(wecom.app.uow, org, opp, "ATI", ["manager"])
    sink = WeComNotifier(wecom.services)
    wecom.mock.fail_next("message/send", 45009, "api freq out of limit")  # WeCom busy …
    wecom.mock.fail_next("message/send", 45009, "api freq out of limit")  # … also on the one quick retry
    deliver(wecom, [sink])
    with wecom.app.engine.connect() as conn:
        row = conn.execute(select(t.outbox.c.attempts, t.outbox.c.dispatched_at)
                           .where(t.outbox.c.topic == "GatePassed")).first()
    assert row.dispatched_at is None and row.attempts == 1  # the outbox will try again
    redeliver(wecom)
    deliver(wecom, [sink])
    for member in ("LiNa", "ZhouMin", "SunLei"):
        assert len([x for x in wecom.texts(member) if "项目已立项" in x]) == 1


def test_a_permanent_wecom_error_is_logged_and_not_retried(wecom, caplog):
    lead = _lead(wecom, by="sales_ops", owner="rep")
    wecom.mock.fail_next("message/send", 81013, "user & party & tag all invalid")  # not in the app's range
    with caplog.at_level(logging.ERROR, logger="ltc.wecom"):
        deliver(wecom, [WeComNotifier(wecom.services)])
    assert any("not retried" in r.getMessage() for r in caplog.records)
    with wecom.app.engine.connect() as conn:
        assert conn.execute(select(t.outbox.c.dispatched_at).where(t.outbox.c.topic == "LeadAssigned")).scalar()
    assert wecom.mock.sent("LiNa") == [] and lead


def test_one_worker_delivers_to_slack_and_wecom_each_person_on_the_surfaces_they_have(wecom):
    """The manager has Slack and WeCom: an approval card on both. The rep has only WeCom."""
    org = wecom.org
    with wecom.app.uow() as uow:
        uow.users.get(org["manager"]).slack_user_id = "U0MGR"
        uow.commit()
    builders.seed_catalog(wecom.app.uow, org)
    opp = builders.make_deal(wecom.app.uow, org)
    builders.run_gate(wecom.app.uow, org, opp, "ATI", ["manager"])
    _solution_ready(wecom, opp)
    builders.run_gate(wecom.app.uow, org, opp, "solution_review", ["manager"])
    with wecom.app.uow() as uow:
        quote = quotes.create_quote(opp, {"lines": [{"product": "MES-LIC", "quantity": "500", "discount_pct": "15"}]},
                                    actor=org.actor("rep"), uow=uow)
        uow.commit()
    with wecom.app.uow() as uow:
        quotes.submit_quote(quote.id, actor=org.actor("rep"), uow=uow)
        uow.commit()
    lead = _lead(wecom, by="sales_ops", owner="rep")
    with SlackMock() as slack:
        agent = Agent(wecom.app)
        sinks = all_sinks(wecom.app, agent, slack=(SlackServices(wecom.app, agent),
                                                    WebClient(token="xoxb-test", base_url=slack.base_url)),
                          wecom=wecom.services)
        deliver(wecom, sinks)
        for sink in sinks:  # e.g. App Home's debounce timers: stopped before the mock Slack goes away
            getattr(sink, "close", lambda: None)()
        slack_cards = [c for c in slack.of("chat.postMessage") if c.args.get("channel") == "DU0MGR"]
        slack_to_rep = [c for c in slack.of("conversations.open") if c.args.get("users") not in ("U0MGR",)]
    assert len(slack_cards) == 1 and len(wecom.cards("WangFang")) == 1  # the manager: both surfaces
    assert any(f"LEAD-{lead:05d}" in x for x in wecom.texts("LiNa")) and slack_to_rep == []  # the rep: WeCom only


def test_the_weekly_pipeline_digest_reaches_the_manager_on_wecom_with_its_chart_once(wecom):
    from domain import analytics as an
    from tools.format import money

    builders.make_deal(wecom.app.uow, wecom.org, n=301, amount="700000")
    builders.make_deal(wecom.app.uow, wecom.org, n=302, amount="9900000", owner="rep_w", region="west")
    run_jobs(wecom.app)
    sink = WeComNotifier(wecom.services)
    deliver(wecom, [sink])
    run_jobs(wecom.app)  # the hourly job again, then a worker that died before marking: still once
    redeliver(wecom)
    deliver(wecom, [sink])
    with wecom.app.uow() as uow:
        view = an.pipeline("stage", actor=wecom.org.actor("manager"), uow=uow)
    [digest] = [x for x in wecom.texts("WangFang") if "商机周报" in x]
    assert f"在途商机：1 个，金额 {money(view.total.amount)}" in digest and money(9900000) not in digest
    [image] = wecom.mock.sent("WangFang", "image")
    upload = wecom.mock.media[image["image"]["media_id"]]
    assert upload["data"].startswith(b"\x89PNG\r\n\x1a\n")
