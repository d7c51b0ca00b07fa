"""Notifications from the outbox as Slack DMs, through the real stack: facts made with the domain
services on the migrated database, the reminders job, `dispatch_pending` with the SlackNotifier
sink, and the mock Slack Web API's recorded calls."""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal

from slack_sdk import WebClient
from sqlalchemy import select, update

from bot.agent.runtime import Agent
from bot.jobs import run_jobs
from bot.slack.app import SlackServices
from bot.slack.notify import SlackNotifier
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.outbox import dispatch_pending
from domain.services import collections, delivery, leads, quotes
from tests import builders
from tests.fakes import FakeClock
from tests.unit.conftest import build_signed
from tools.format import money

# -- helpers (the deal-channel tests use them too) -------------------------------------------------


def services(rig) -> SlackServices:
    return SlackServices(rig.app, Agent(rig.app))


def client(rig) -> WebClient:
    return WebClient(token="xoxb-test", base_url=rig.slack.base_url)


def deliver(rig, sink) -> int:
    """Dispatch every due outbox message to `sink`, as the worker does."""
    total = 0
    while n := dispatch_pending(rig.app.session_factory, [sink]):
        total += n
    return total


def redeliver(rig, topic: str | None = None) -> None:
    """Make messages due again, as after a worker died before marking them (at-least-once)."""
    q = update(t.outbox).values(dispatched_at=None, available_at=utcnow() - timedelta(seconds=1))
    if topic:
        q = q.where(t.outbox.c.topic == topic)
    with rig.app.engine.begin() as conn:
        conn.execute(q)


def outbox(rig, topic: str) -> list:
    with rig.app.engine.connect() as conn:
        return conn.execute(select(t.outbox).where(t.outbox.c.topic == topic).order_by(t.outbox.c.id)).all()


def posts(rig, channel: str) -> list:
    return [c for c in rig.slack.of("chat.postMessage") if c.args.get("channel") == channel]


def blocks_of(call) -> list[dict]:
    b = call.args.get("blocks") or []
    return json.loads(b) if isinstance(b, str) else b


def words(call) -> str:
    """Everything a person reads in a posted message: its blocks' texts."""
    parts = []
    for block in blocks_of(call):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)


def notices_sent(rig) -> set[str]:
    with rig.app.engine.connect() as conn:
        return set(conn.scalars(select(t.chat_notices.c.key)))


def set_user(rig, key: str, *, slack: str | None = None, locale: str | None = None) -> None:
    with rig.app.uow() as uow:
        user = uow.users.get(rig.org[key])
        if slack is not None:
            user.slack_user_id = slack
        if locale is not None:
            user.locale = locale
        uow.commit()


def notifier(rig) -> SlackNotifier:
    return SlackNotifier(services(rig), client(rig))


def _lead(rig, *, by: str, owner: str, n: int = 1) -> int:
    with rig.app.uow() as uow:
        lead = leads.create_lead({"source": "trade_show", "company": f"Hangzhou Valve {n} Co", "contact_name": "Li Wei",
                                  "title": "CIO", "email": f"li{n}@valve.example", "need": "MES for two plants",
                                  "budget": "800000", "region": "east", "timeline": "within_3_months",
                                  "authority": "decision_maker", "owner_id": rig.org[owner]},
                                 actor=rig.org.actor(by), uow=uow)
        uow.commit()
    return lead.id


# -- new lead assigned ------------------------------------------------------------------------------

def test_a_lead_assigned_by_someone_else_dms_its_owner_once_even_when_delivered_twice(rig):
    set_user(rig, "rep", locale="en")
    lead = _lead(rig, by="sales_ops", owner="rep")
    sink = notifier(rig)

    deliver(rig, sink)
    redeliver(rig)
    deliver(rig, sink)

    [dm] = posts(rig, "DU0REP")
    [opened] = rig.slack.of("conversations.open")
    assert opened.args["users"] == "U0REP"
    with rig.app.uow() as uow:
        score = uow.leads.get(lead).score
    text = words(dm)
    assert f"New lead for you: LEAD-{lead:05d} Hangzhou Valve 1 Co" in text
    assert "Contact: Li Wei, CIO, li1@valve.example" in text and "Source: trade show" in text
    assert f"Score: {score}/100" in text and "Budget: ¥800,000" in text
    assert "Next: reach Li Wei within one working day" in text
    assert dm.args["text"].startswith(f"New lead for you: LEAD-{lead:05d}")
    assert blocks_of(dm)[0]["type"] == "header"
    assert notices_sent(rig) == {f"slack:LeadAssigned:{lead}:1:{rig.org['rep']}"}


def test_a_lead_the_rep_created_for_themselves_sends_no_dm(rig):
    _lead(rig, by="rep", owner="rep")
    deliver(rig, notifier(rig))
    assert posts(rig, "DU0REP") == [] and notices_sent(rig) == set()


def test_a_reassigned_lead_dms_the_new_owner_in_chinese_and_nobody_without_slack(rig):
    lead = _lead(rig, by="sales_ops", owner="rep2")  # rep2 has no Slack id yet: nothing to deliver
    with rig.app.uow() as uow:
        leads.assign_lead(lead, rig.org["rep"], actor=rig.org.actor("manager"), uow=uow)
        uow.commit()
    deliver(rig, notifier(rig))
    [dm] = rig.slack.of("chat.postMessage")
    assert dm.args["channel"] == "DU0REP"  # the rep's locale is zh (the default)
    text = words(dm)
    assert f"您有一条新线索：LEAD-{lead:05d} Hangzhou Valve 1 Co" in text
    assert "来源：展会" in text and "下一步：请在一个工作日内联系 Li Wei" in text


# -- quote expiring ---------------------------------------------------------------------------------

def test_an_expiring_quote_dms_the_deals_ar_with_amount_and_days_left(rig):
    set_user(rig, "rep", locale="en")
    builders.seed_catalog(rig.app.uow, rig.org)
    opp = builders.make_deal(rig.app.uow, rig.org, n=1)
    rep = rig.org.actor("rep")
    with rig.app.uow() as uow:
        today = uow.now().date()
        quote = quotes.create_quote(opp, {"lines": [{"product": "MES-LIC", "quantity": "120", "discount_pct": "5"}],
                                          "valid_until": (today + timedelta(days=2)).isoformat()}, actor=rep, uow=uow)
        quotes.submit_quote(quote.id, actor=rep, uow=uow)  # within the auto band: approved
        uow.commit()
    run_jobs(rig.app)
    assert len(outbox(rig, "QuoteExpiring")) == 1

    deliver(rig, notifier(rig))

    [dm] = posts(rig, "DU0REP")
    text = words(dm)
    assert f"Quote Q-{quote.id:05d} expires in 2 days" in text
    assert f"Deal: OPP-{opp:05d} Customer 1 Ltd" in text
    assert f"Amount: {money(Decimal('120') * 1000 * Decimal('0.95'))} (5% off list)" in text  # ¥114,000
    assert f"Valid until: {(today + timedelta(days=2)).isoformat()}" in text
    assert "is approved but not sent" in text


# -- delivery milestone due -------------------------------------------------------------------------

def test_a_due_milestone_dms_the_fr_and_the_ar_each_in_their_language(rig):
    set_user(rig, "fr", slack="U0FR", locale="en")  # the rep (AR) reads Chinese
    deal = build_signed(rig.app.uow, rig.org, n=11)
    with rig.app.uow() as uow:
        today = uow.now().date()
        order = delivery.create_order(deal.contract, {"milestones": [
            {"name": "Install", "planned_date": (today + timedelta(days=2)).isoformat()},
            {"name": "Final acceptance", "kind": "final_acceptance",
             "planned_date": (today + timedelta(days=30)).isoformat()}]}, actor=rig.org.actor("fr"), uow=uow)
        uow.commit()
    run_jobs(rig.app)

    deliver(rig, notifier(rig))

    [fr_dm], [ar_dm] = posts(rig, "DU0FR"), posts(rig, "DU0REP")
    fr_text, ar_text = words(fr_dm), words(ar_dm)
    assert f"Delivery milestone due in 2 days: {order.number} #1 Install" in fr_text
    assert f"Order: {order.number} (contract {order.contract_number})" in fr_text
    assert "Next (FR): mark" in fr_text and "Final acceptance" not in fr_text
    assert f"交付里程碑还有 2 天到期：{order.number} 第 1 项 Install" in ar_text and "下一步（AR）" in ar_text
    assert len([k for k in notices_sent(rig) if "PipelineDigestDue" not in k]) == 2  # the manager's weekly digest aside


def test_a_failed_post_is_retried_for_that_person_only(rig):
    set_user(rig, "fr", slack="U0FR")
    deal = build_signed(rig.app.uow, rig.org, n=12)
    with rig.app.uow() as uow:
        day = (uow.now().date() + timedelta(days=1)).isoformat()
        delivery.create_order(deal.contract, {"milestones": [{"name": "Install", "planned_date": day}]},
                              actor=rig.org.actor("fr"), uow=uow)
        uow.commit()
    run_jobs(rig.app)
    sink = notifier(rig)
    deliver(rig, sink)  # everything else out of the way
    [due] = outbox(rig, "DeliveryMilestoneDue")
    with rig.app.engine.begin() as conn:  # as if the first delivery had not happened
        conn.execute(t.chat_notices.delete())
    redeliver(rig, "DeliveryMilestoneDue")
    before = {c: len(posts(rig, c)) for c in ("DU0FR", "DU0REP")}
    rig.slack.fail_next("chat.postMessage", "internal_error")  # the FR's post, first in line

    assert deliver(rig, sink) == 0  # the AR got theirs; the message waits for a retry
    [row] = outbox(rig, "DeliveryMilestoneDue")
    assert row.dispatched_at is None and row.attempts == due.attempts + 1 and "internal_error" in row.last_error
    redeliver(rig, "DeliveryMilestoneDue")
    deliver(rig, sink)
    after = {c: len(posts(rig, c)) for c in ("DU0FR", "DU0REP")}
    assert after["DU0REP"] - before["DU0REP"] == 1  # not told twice
    assert after["DU0FR"] - before["DU0FR"] == 2  # the failed attempt, then the retry


def test_a_permanent_slack_error_is_logged_and_not_retried(rig, caplog):
    set_user(rig, "rep", locale="en")
    _lead(rig, by="sales_ops", owner="rep")
    rig.slack.fail_next("chat.postMessage", "missing_scope")
    with caplog.at_level(logging.ERROR, logger="ltc.slack"):
        deliver(rig, notifier(rig))
    [row] = outbox(rig, "LeadAssigned")
    assert row.dispatched_at is not None and row.last_error is None
    assert notices_sent(rig) == set()
    assert any("missing_scope" in r.getMessage() for r in caplog.records)


# -- the AR's daily digest --------------------------------------------------------------------------

def test_the_digest_lists_exactly_the_ars_overdue_invoices_with_their_total_once_a_day(rig):
    set_user(rig, "rep", locale="en")
    org = rig.org
    clock = FakeClock(start=utcnow() - timedelta(days=45))  # signed 45 days ago: 30-day invoices are overdue
    past = lambda: rig.app.uow(clock=clock)  # noqa: E731
    first = build_signed(past, org, n=101)
    second = build_signed(past, org, n=102, amount="300000")
    not_due = build_signed(past, org, n=103, terms=90)
    other_ar = build_signed(past, org, n=104, owner="rep2")
    with rig.app.uow() as uow:
        invoices = {c: uow.invoices.for_contract(c)[0] for c in
                    (first.contract, second.contract, not_due.contract, other_ar.contract)}
        numbers = {c: i.number for c, i in invoices.items()}
        promised = (uow.now().date() + timedelta(days=7)).isoformat()
        collections.record_promise(invoices[second.contract].id, {"amount": "10000", "promised_on": promised},
                                   actor=org.actor("rep"), uow=uow)
        uow.commit()
    with rig.app.engine.connect() as conn:  # the expected total, summed by the database
        owed = conn.scalar(select(t.invoices.c.amount - t.invoices.c.paid_amount).where(
            t.invoices.c.contract_id == first.contract)) + conn.scalar(select(
                t.invoices.c.amount - t.invoices.c.paid_amount).where(t.invoices.c.contract_id == second.contract))
    run_jobs(rig.app)
    assert {r.payload["owner_id"] for r in outbox(rig, "CollectionsDigestDue")} == {org["rep"], org["rep2"]}
    assert outbox(rig, "InvoiceReminderDue")  # dunning rose today too: it rides in the digest
    sink = notifier(rig)

    deliver(rig, sink)
    run_jobs(rig.app)  # the job runs again the same day
    redeliver(rig)
    deliver(rig, sink)

    [dm] = posts(rig, "DU0REP")  # one message, not one per dunning step
    text = words(dm)
    assert f"Overdue collections on {utcnow().date().isoformat()}: 2 invoices, {money(owed)}" in text
    assert f"Total overdue: {money(owed)}" in text
    assert numbers[first.contract] in text and numbers[second.contract] in text
    assert numbers[not_due.contract] not in text and numbers[other_ar.contract] not in text
    first_line = next(line for line in text.splitlines() if numbers[first.contract] in line)
    assert "Customer 101 Ltd" in first_line and "days overdue" in first_line and "(raised today)" in first_line
    second_line = next(line for line in text.splitlines() if numbers[second.contract] in line)
    assert f"promised by {promised}" in second_line and "(raised today)" not in second_line  # the promise holds it
    assert len([k for k in notices_sent(rig) if k.startswith("slack:CollectionsDigestDue:")]) == 1  # rep2: no Slack


def test_topics_it_does_not_handle_post_nothing(rig):
    sink = notifier(rig)
    sink.handle("InvoiceReminderDue:1:1", "InvoiceReminderDue", {"invoice_id": 1, "owner_id": rig.org["rep"],
                                                                  "level": 1, "days_overdue": 3, "balance": "1",
                                                                  "currency": "CNY"})
    sink.handle("ApprovalReminderDue:1:1:1", "ApprovalReminderDue", {"approval_id": 1, "step_seq": 1, "level": 1,
                                                                      "hours_waiting": 30})
    assert rig.slack.of("chat.postMessage") == [] and rig.slack.of("conversations.open") == []
