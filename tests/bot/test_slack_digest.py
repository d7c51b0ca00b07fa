"""The weekly pipeline digest: raised once per manager per week by the jobs, delivered through the
outbox as a Slack DM whose numbers are the manager's own analytics, and never another team's."""
from __future__ import annotations

from sqlalchemy import update

from bot.jobs import run_jobs
from domain import analytics as an
from domain.db import tables as t
from tests import builders
from tests.bot.test_slack_notify import deliver, notifier, notices_sent, outbox, posts, redeliver, set_user, words
from tools.format import money


def _deals(rig) -> dict[str, int]:
    org, uf = rig.org, rig.app.uow
    ids = {"east_1": builders.make_deal(uf, org, n=1, amount="400000"),
           "east_2": builders.make_deal(uf, org, n=2, amount="250000", owner="rep2"),
           "west": builders.make_deal(uf, org, n=3, amount="9900000", owner="rep_w", region="west")}
    with rig.app.engine.begin() as conn:  # one east deal closes this month, so the digest lists it
        conn.execute(update(t.opportunities).where(t.opportunities.c.id == ids["east_1"])
                     .values(expected_close_date=rig.app.uow().now().date()))
    return ids


def test_each_manager_gets_one_digest_a_week_with_their_own_numbers(rig):
    set_user(rig, "manager", locale="en")
    ids = _deals(rig)
    run_jobs(rig.app)
    run_jobs(rig.app)  # the hourly job again: the same week's digest is one fact
    managers = {rig.org[k] for k in ("manager", "director", "manager_w", "director_w")}
    assert {r.payload["manager_id"] for r in outbox(rig, "PipelineDigestDue")} == managers
    assert len(outbox(rig, "PipelineDigestDue")) == len(managers)

    sink = notifier(rig)
    deliver(rig, sink)
    redeliver(rig, "PipelineDigestDue")  # at-least-once delivery must still post once
    deliver(rig, sink)

    [dm] = posts(rig, "DU0MGR")
    text = words(dm)
    with rig.app.uow() as uow:
        view = an.pipeline("stage", actor=rig.org.actor("manager"), uow=uow)
    assert view.total.count == 2
    assert f"Open pipeline: 2 deals, {money(view.total.amount)} (weighted {money(view.total.weighted)})" in text
    assert "Weekly pipeline digest" in text and "Closing this month: 1 deals" in text
    assert f"OPP-{ids['east_1']:05d}" in text and f"OPP-{ids['east_2']:05d}" not in text  # closing this month
    assert money(9900000) not in text  # the west team's deal is not this manager's business
    assert len([k for k in notices_sent(rig) if k.startswith("slack:PipelineDigestDue:")]) == 1  # others: no Slack
    [shared] = rig.slack.shared_files()  # the pipeline-by-stage picture, once, under the text
    assert shared["channel"] == "DU0MGR" and shared["data"].startswith(b"\x89PNG\r\n\x1a\n")
    assert str(view.total.count) in shared["alt_txt"]  # the picture carries the same numbers


def test_a_manager_reading_chinese_gets_the_digest_in_chinese(rig):
    set_user(rig, "manager", locale="zh")
    _deals(rig)
    run_jobs(rig.app)
    deliver(rig, notifier(rig))
    [dm] = posts(rig, "DU0MGR")
    assert "商机周报" in words(dm) and "在途商机：2 个" in words(dm)


def test_no_digest_when_the_weekday_is_switched_off(rig):
    rig.app.settings.pipeline_digest_weekday = None
    _deals(rig)
    run_jobs(rig.app)
    assert outbox(rig, "PipelineDigestDue") == []
