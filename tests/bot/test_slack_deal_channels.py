"""The deal's iron-triangle channel, through the real stack: gates decided with the domain services,
`dispatch_pending` with the DealChannels sink, the mock Slack Web API's recorded calls and the
`deal_conversations` / `chat_notices` rows."""
from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import select

from bot.slack.deal_channels import DealChannels, channel_name
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.services import approvals, opportunities
from knowledge.documents import checklists, load_library
from tests import builders
from tests.bot.test_slack_notify import blocks_of, client, deliver, outbox, posts, redeliver, services, set_user, words


class Playbooks:
    """The playbook index's checklist side, straight from the markdown library (no vector store)."""

    def __init__(self, folder: str) -> None:
        self.books = load_library(folder)

    def checklists(self, *, stage=None, gate=None, lang="en"):
        return checklists(self.books, stage=stage, gate=gate, lang=lang)


@pytest.fixture
def triangle(rig):
    """Deal channels on; SR and FR known to Slack; the playbooks available; the rep reads English."""
    rig.app.settings.slack_deal_channels = True
    rig.app._playbooks = Playbooks(rig.app.settings.playbooks_dir)
    set_user(rig, "sr", slack="U0SR")
    set_user(rig, "fr", slack="U0FR")
    set_user(rig, "rep", locale="en")
    return rig


def sink(rig) -> DealChannels:
    return DealChannels(services(rig), client(rig))


def stored(rig) -> list:
    with rig.app.engine.connect() as conn:
        return conn.execute(select(t.deal_conversations)).all()


def channel_posts(rig) -> list:
    return [c for c in rig.slack.of("chat.postMessage") if str(c.args.get("channel", "")).startswith("C")]


def ati(rig, n: int = 1, **kw) -> int:
    opp = builders.make_deal(rig.app.uow, rig.org, n=n, **kw)
    builders.run_gate(rig.app.uow, rig.org, opp, "ATI", ["manager"])
    return opp


# -- ATI opens the channel ----------------------------------------------------------------------------

def test_ati_approval_opens_a_channel_invites_the_triangle_and_posts_each_roles_checklist(triangle):
    rig = triangle
    opp = ati(rig)
    s = sink(rig)

    deliver(rig, s)
    redeliver(rig)  # at least once: everything again
    deliver(rig, s)

    [create] = rig.slack.of("conversations.create")
    assert create.args["name"] == f"deal-opp-{opp:05d}-customer-1-ltd-a-plant-wide-mes-upgrade-in-two-waves"
    assert str(create.args["is_private"]).lower() in ("1", "true")
    [row] = stored(rig)
    assert (row.surface, row.opportunity_id, row.kind, row.thread_ts) == ("slack", opp, "channel", None)
    invites = rig.slack.of("conversations.invite")
    assert invites and all(c.args["channel"] == row.channel for c in invites)
    assert set(invites[0].args["users"].split(",")) == {"U0REP", "U0SR", "U0FR"}
    [post] = channel_posts(rig)  # the kickoff once; it also tells the move to initiated
    assert post.args["channel"] == row.channel
    text = words(post)
    assert f"Project initiated (ATI passed): OPP-{opp:05d}" in text
    assert "Iron triangle: AR <@U0REP> · SR <@U0SR> · FR <@U0FR>" in text
    expected = Playbooks(rig.app.settings.playbooks_dir).checklists(stage="initiated", lang="en")
    for role, who in (("AR", "U0REP"), ("SR", "U0SR"), ("FR", "U0FR")):
        assert f"*{role} checklist for this stage (<@{who}>)*" in text
        assert all(f"• {item}" in text for item in expected[role])
    assert len(blocks_of(post)) <= 50
    with rig.app.engine.connect() as conn:
        [gate] = outbox(rig, "GatePassed")
        assert f"slack:{gate.key}:channel" in set(conn.scalars(select(t.chat_notices.c.key)))


def test_a_taken_channel_name_gets_a_numeric_suffix(triangle):
    rig = triangle
    opp = builders.make_deal(rig.app.uow, rig.org, n=2)
    base = f"deal-opp-{opp:05d}-customer-2-ltd-a-plant-wide-mes-upgrade-in-two-waves"
    rig.slack.taken_names.add(base)
    builders.run_gate(rig.app.uow, rig.org, opp, "ATI", ["manager"])
    deliver(rig, sink(rig))
    assert [c.args["name"] for c in rig.slack.of("conversations.create")] == [base, f"{base}-2"]
    assert len(stored(rig)) == 1 and len(channel_posts(rig)) == 1


def test_an_existing_channel_is_attached_not_created(triangle):
    rig = triangle
    opp = builders.make_deal(rig.app.uow, rig.org, n=3)
    with rig.app.engine.begin() as conn:
        conn.execute(t.deal_conversations.insert().values(surface="slack", opportunity_id=opp, kind="channel",
                                                          channel="CEXISTING", updated_at=utcnow()))
    builders.run_gate(rig.app.uow, rig.org, opp, "ATI", ["manager"])
    deliver(rig, sink(rig))
    assert rig.slack.of("conversations.create") == []
    assert rig.slack.of("conversations.invite")[0].args["channel"] == "CEXISTING"
    [post] = posts(rig, "CEXISTING")  # the move to initiated is the kickoff's news, not a post of its own
    assert "Project initiated (ATI passed)" in words(post)


def test_already_in_channel_is_not_an_error(triangle):
    rig = triangle
    ati(rig, n=4)
    rig.slack.fail_next("conversations.invite", "already_in_channel")
    deliver(rig, sink(rig))
    assert len(channel_posts(rig)) == 1 and all(r.dispatched_at for r in outbox(rig, "GatePassed"))


def test_without_a_playbook_index_the_header_says_so(triangle):
    rig = triangle
    rig.app._playbooks, rig.app._playbooks_checked_at = None, time.monotonic()  # not built: looked a moment ago
    ati(rig, n=5)
    deliver(rig, sink(rig))
    [post] = channel_posts(rig)
    assert "the playbook index has not been built yet" in words(post) and "checklist for this stage" not in words(post)


def test_with_the_setting_off_nothing_is_created_or_posted(rig):
    assert rig.app.settings.slack_deal_channels is False
    ati(rig, n=6)
    deliver(rig, sink(rig))
    assert [c.method for c in rig.slack.calls if c.method.startswith("conversations.")] == []
    assert rig.slack.of("chat.postMessage") == [] and stored(rig) == []


# -- news in the channel ------------------------------------------------------------------------------

def _solution_review(rig, opp: int) -> None:
    with rig.app.uow() as uow:
        opportunities.record_solution(opp, "Cloud MES with edge gateways", actor=rig.org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp, "Two waves, 6 months", actor=rig.org.actor("fr"), uow=uow)
        uow.commit()
    builders.run_gate(rig.app.uow, rig.org, opp, "solution_review", ["manager"])


def test_a_passed_gate_and_its_stage_change_are_posted_once_in_the_deals_channel(triangle):
    rig = triangle
    opp = ati(rig, n=7)
    s = sink(rig)
    deliver(rig, s)
    _solution_review(rig, opp)
    deliver(rig, s)
    redeliver(rig)
    deliver(rig, s)

    [kickoff, news] = channel_posts(rig)
    assert news.args["channel"] == kickoff.args["channel"]
    text = words(news)
    assert f"solution review passed: OPP-{opp:05d}" in text
    assert "Stage: initiated → solution · approval APR-" in text and "Win probability now" in text


def test_a_rejected_gate_is_posted_with_its_reason_in_chinese_for_a_chinese_ar(triangle):
    rig = triangle
    set_user(rig, "rep", locale="zh")
    opp = ati(rig, n=8)
    s = sink(rig)
    deliver(rig, s)
    with rig.app.uow() as uow:
        opportunities.record_solution(opp, "Cloud MES", actor=rig.org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp, "Two waves", actor=rig.org.actor("fr"), uow=uow)
        req = approvals.request_gate(opp, "solution_review", actor=rig.org.actor("rep"), uow=uow)
        uow.commit()
    with rig.app.uow() as uow:
        approvals.decide_approval(req.id, "reject", comment="交付计划缺少现场勘查结果", actor=rig.org.actor("manager"),
                                  uow=uow)
        uow.commit()
    deliver(rig, s)

    kickoff, rejected = channel_posts(rig)
    assert "项目已立项（ATI 通过）" in words(kickoff) and "AR 本阶段清单（<@U0REP>）" in words(kickoff)
    text = words(rejected)
    assert f"方案评审被驳回：OPP-{opp:05d}" in text and "驳回原因：交付计划缺少现场勘查结果" in text
    assert f"审批 APR-{req.id:05d} · 当前阶段：已立项" in text


def test_a_stage_change_of_a_deal_without_a_channel_posts_nothing(triangle):
    rig = triangle
    opp = builders.make_deal(rig.app.uow, rig.org, n=9)
    with rig.app.uow() as uow:
        opportunities.close_opportunity(opp, "lost", "budget frozen", actor=rig.org.actor("rep"), uow=uow)
        uow.commit()
    deliver(rig, sink(rig))
    assert rig.slack.of("chat.postMessage") == [] and rig.slack.of("conversations.create") == []
    assert stored(rig) == []


# -- Slack errors -------------------------------------------------------------------------------------

def test_a_missing_scope_is_logged_and_the_message_not_retried(triangle, caplog):
    rig = triangle
    ati(rig, n=10)
    rig.slack.fail_next("conversations.create", "missing_scope")
    with caplog.at_level(logging.ERROR, logger="ltc.slack"):
        deliver(rig, sink(rig))
    [gate] = outbox(rig, "GatePassed")
    assert gate.dispatched_at is not None and stored(rig) == [] and channel_posts(rig) == []
    assert any("missing_scope" in r.getMessage() for r in caplog.records)


def test_a_transient_error_is_retried_without_a_second_channel_or_post(triangle):
    rig = triangle
    ati(rig, n=11)
    s = sink(rig)
    rig.slack.fail_next("chat.postMessage", "internal_error")
    deliver(rig, s)
    [gate] = outbox(rig, "GatePassed")
    assert gate.dispatched_at is None and "internal_error" in gate.last_error
    assert len(stored(rig)) == 1  # the channel is kept for the retry
    redeliver(rig, "GatePassed")
    deliver(rig, s)
    assert len(rig.slack.of("conversations.create")) == 1
    assert len([p for p in channel_posts(rig) if "Project initiated" in words(p)]) == 2  # the failed one, then one


# -- channel names ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("prefix", "ref", "name", "n", "expected"), [
    ("deal-", "OPP-00012", "Acme MES Upgrade", 1, "deal-opp-00012-acme-mes-upgrade"),
    ("deal-", "OPP-00012", "华东电力 MES 升级", 1, "deal-opp-00012-mes"),
    ("deal-", "OPP-00012", "华东电力二期", 1, "deal-opp-00012"),
    ("Deal_", "OPP-00012", "Café & Co. (Phase 2)", 3, "deal_opp-00012-cafe-co-phase-2-3"),
    ("", "OPP-00012", "x", 1, "opp-00012-x"),
])
def test_channel_names_are_lowercase_ascii_with_the_ref(prefix, ref, name, n, expected):
    assert channel_name(prefix, ref, name, n) == expected


def test_a_long_channel_name_is_cut_to_80_characters_keeping_its_suffix():
    name = channel_name("deal-", "OPP-00012", "word " * 40, 12)
    assert len(name) <= 80 and name.endswith("-12") and name.startswith("deal-opp-00012-word-word")
    assert "--" not in name
