"""The App Home through the real stack: signed `app_home_opened` in, `views.publish` out; and the
outbox sink that republishes it when the data changes."""
from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

from slack_sdk import WebClient
from sqlalchemy import select, update

from bot.agent.runtime import Agent
from bot.slack.app import SlackServices
from bot.slack.home import HomeRefresher
from domain.db import tables as t
from domain.db.uow import utcnow
from domain.model.opportunities import OPEN_STAGES
from domain.services import approvals
from prompts.messages import render
from tests import builders
from tests.unit.conftest import build_signed
from tools.format import day, money

KINDS = {"new_lead", "new_opportunity", "build_quote", "record_payment"}


def _open_home(rig, slack_user: str, event_id: str) -> None:
    event = {"type": "app_home_opened", "user": slack_user, "channel": f"D{slack_user}", "tab": "home",
             "event_ts": "1700000100.000100"}
    assert rig.post_event(event, event_id=event_id).status_code == 200


def _views(rig, slack_user: str) -> list[dict]:
    views = []
    for call in rig.slack.of("views.publish"):
        if call.args["user_id"] == slack_user:
            view = call.args["view"]
            views.append(json.loads(view) if isinstance(view, str) else view)
    return views


def _home(rig, slack_user: str, event_id: str) -> dict:
    before = len(rig.slack.of("views.publish"))
    _open_home(rig, slack_user, event_id)
    rig.slack.wait_for("views.publish", before + 1)
    return _views(rig, slack_user)[-1]


def _text(view: dict) -> str:
    """Every word a person sees on the Home."""
    parts = []
    for block in view["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"]["text"] if isinstance(e.get("text"), dict) else e.get("text", "")
                  for e in block.get("elements", [])]
    return "\n".join(parts)


def _set_locale(rig, key: str, locale: str) -> None:
    with rig.app.uow() as uow:
        uow.users.get(rig.org[key]).locale = locale
        uow.commit()


def _deal_rows(rig) -> list:
    with rig.app.engine.connect() as conn:
        return conn.execute(select(t.opportunities.c.id, t.opportunities.c.owner_id, t.opportunities.c.amount,
                                   t.opportunities.c.probability, t.opportunities.c.stage)).all()


# -- what a rep sees -------------------------------------------------------------------------------

def test_a_rep_opening_home_sees_their_open_deals_by_stage_in_english_with_quick_actions(rig):
    _set_locale(rig, "rep", "en")
    big = builders.make_deal(rig.app.uow, rig.org, n=1, amount="500000")
    small = builders.make_deal(rig.app.uow, rig.org, n=2, amount="300000")
    other = builders.make_deal(rig.app.uow, rig.org, n=3, amount="900000", owner="rep2")

    view = _home(rig, "U0REP", "EvHome1")

    assert view["type"] == "home" and 0 < len(view["blocks"]) <= 100
    text = _text(view)
    assert "My open deals by stage" in text and "2 open deals · ¥800,000" in text
    assert f"OPP-{big:05d}" in text and f"OPP-{small:05d}" in text and f"OPP-{other:05d}" not in text
    assert text.index(f"OPP-{big:05d}") < text.index(f"OPP-{small:05d}")  # largest first
    assert "*qualify*\n2 · ¥800,000" in text
    assert "Nothing is waiting for your decision." in text and "None of your invoices is overdue." in text
    assert "Team pipeline" not in text  # a rep has no team
    buttons = [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {b["value"] for b in buttons} == KINDS and {b["action_id"] for b in buttons} == {"ltc_open_modal"}
    for block in view["blocks"]:
        assert len(block.get("text", {}).get("text", "")) <= 3000 and len(block.get("fields", [])) <= 10


def test_a_rep_with_nothing_open_is_told_so_in_chinese(rig):
    view = _home(rig, "U0REP", "EvHomeEmpty")
    text = _text(view)
    for empty in ("您目前没有在手商机。", "目前没有待您审批的事项。", "您名下没有逾期发票。"):
        assert empty in text
    assert "OPP-" not in text


def test_an_unknown_person_gets_the_onboarding_home_and_no_data(rig):
    builders.make_deal(rig.app.uow, rig.org, n=1)
    view = _home(rig, "U0NOBODY", "EvHomeStranger")
    text = _text(view)
    assert "stranger@elsewhere.example" in text and "LTC Copilot" in text
    assert "OPP-" not in text and not any(b["type"] == "actions" for b in view["blocks"])


def test_the_messages_tab_publishes_nothing(rig):
    event = {"type": "app_home_opened", "user": "U0REP", "channel": "DU0REP", "tab": "messages",
             "event_ts": "1700000100.000200"}
    assert rig.post_event(event, event_id="EvHomeMessages").status_code == 200
    _home(rig, "U0MGR", "EvHomeAfter")  # a later event is processed, so the first one had its turn
    assert _views(rig, "U0REP") == []


def test_an_overdue_invoice_shows_in_the_ars_home_with_its_days_overdue(rig):
    _set_locale(rig, "rep", "en")
    deal = build_signed(rig.app.uow, rig.org, n=1)
    due = utcnow().date() - timedelta(days=12)  # the Home counts days in UTC
    with rig.app.engine.begin() as conn:  # the customer let the advance invoice slip 12 days
        conn.execute(update(t.invoices).where(t.invoices.c.contract_id == deal.contract).values(
            issued_on=due - timedelta(days=30), due_on=due))
        [(number, balance)] = conn.execute(select(t.invoices.c.number, t.invoices.c.amount)
                                           .where(t.invoices.c.contract_id == deal.contract)).all()

    text = _text(_home(rig, "U0REP", "EvHomeOverdue"))

    assert f"1 overdue invoices · {money(Decimal(str(balance)))}" in text
    assert f"`{number}` " in text and f"12 days overdue (due {day(due)})" in text
    assert f"OPP-{deal.opp:05d}" not in text  # won: no longer an open deal
    assert "您名下没有逾期发票。" in _text(_home(rig, "U0MGR", "EvHomeOverdueMgr"))  # the AR's, not the manager's


# -- managers and approvers ----------------------------------------------------------------------

def test_a_manager_sees_the_team_pipeline_equal_to_the_database_and_a_rep_does_not(rig):
    first = builders.make_deal(rig.app.uow, rig.org, n=1, amount="500000")
    builders.make_deal(rig.app.uow, rig.org, n=2, amount="120000.50")
    builders.make_deal(rig.app.uow, rig.org, n=3, amount="300000", owner="rep2")
    builders.make_deal(rig.app.uow, rig.org, n=4, amount="777000", owner="rep_w", region="west")  # not theirs
    builders.run_gate(rig.app.uow, rig.org, first, "ATI", ["manager"])  # initiated: another probability

    view = _home(rig, "U0MGR", "EvHomeMgr")

    team = {rig.org["manager"], rig.org["rep"], rig.org["rep2"]}  # the manager and their reports
    open_values = {s.value for s in OPEN_STAGES}
    rows = [r for r in _deal_rows(rig) if r.owner_id in team and r.stage in open_values]
    assert {r.stage for r in rows} == {"qualify", "initiated"}

    def total(rs) -> tuple[int, str, str]:
        amount = sum((Decimal(str(r.amount)) for r in rs), Decimal(0))
        weighted = sum((Decimal(str(r.amount)) * r.probability / 100 for r in rs), Decimal(0))
        return len(rs), money(amount), money(weighted)

    text = _text(view)
    n, amount, weighted = total(rows)
    assert n == 3 and render("slack_home.team_total", "zh", n=n, amount=amount, weighted=weighted) in text
    for key, name in (("rep", "Rep"), ("rep2", "Rep2")):
        n, amount, weighted = total([r for r in rows if r.owner_id == rig.org[key]])
        assert render("slack_home.team_rep_line", "zh", name=name, n=n, amount=amount, weighted=weighted) in text
    for stage, label in (("qualify", "验证"), ("initiated", "已立项")):
        n, amount, weighted = total([r for r in rows if r.stage == stage])
        assert render("slack_home.team_stage_field", "zh", stage=label, n=n, amount=amount,
                      weighted=weighted) in text
    assert "Rep W" not in text and money(Decimal("777000")) not in text
    assert "团队商机管道" in text and len(view["blocks"]) <= 100

    assert "团队商机管道" not in _text(_home(rig, "U0REP", "EvHomeRepNoTeam"))


def test_a_pending_approval_shows_in_the_approvers_home_not_the_requesters(rig):
    opp = builders.make_deal(rig.app.uow, rig.org, n=1)
    with rig.app.uow() as uow:
        request = approvals.request_gate(opp, "ATI", actor=rig.org.actor("rep"), uow=uow)
        uow.commit()

    text = _text(_home(rig, "U0MGR", "EvHomeApprover"))
    assert f"`{request.ref}` {request.title} · 申请人 Rep · 已等待 0 分钟" in text

    rep_text = _text(_home(rig, "U0REP", "EvHomeRequester"))
    assert request.ref not in rep_text and "目前没有待您审批的事项。" in rep_text


# -- republished on change ---------------------------------------------------------------------------

def _refresher(rig, debounce: float) -> HomeRefresher:
    client = WebClient(token="xoxb-test", base_url=rig.slack.base_url)
    return HomeRefresher(SlackServices(rig.app, Agent(rig.app)), client, debounce_seconds=debounce)


def _outbox(rig, topic: str) -> list[tuple[str, str, dict]]:
    with rig.app.engine.connect() as conn:
        rows = conn.execute(select(t.outbox.c.key, t.outbox.c.topic, t.outbox.c.payload)
                            .where(t.outbox.c.topic == topic).order_by(t.outbox.c.id)).all()
    return [(r.key, r.topic, r.payload) for r in rows]


def test_a_stage_change_republishes_the_owners_and_their_managers_home(rig):
    _set_locale(rig, "rep", "en")
    opp = builders.make_deal(rig.app.uow, rig.org, n=1)
    builders.run_gate(rig.app.uow, rig.org, opp, "ATI", ["manager"])
    [message] = _outbox(rig, "OpportunityStageChanged")
    refresher = _refresher(rig, debounce=5)

    refresher.handle(*message)

    assert {c.args["user_id"] for c in rig.slack.of("views.publish")} == {"U0REP", "U0MGR"}  # linked users only
    [rep_view] = _views(rig, "U0REP")
    assert f"`OPP-{opp:05d}`" in _text(rep_view) and "*initiated*\n1 · ¥500,000" in _text(rep_view)
    assert "团队商机管道" in _text(_views(rig, "U0MGR")[0])
    refresher.handle("Unrelated:1", "RevenueRecognised", {"contract_id": 1, "entry_id": 1, "amount": "1"})
    assert len(rig.slack.of("views.publish")) == 2


def test_a_burst_of_changes_publishes_once_now_and_once_after_the_window_with_the_last_change(rig):
    _set_locale(rig, "rep", "en")
    opp = builders.make_deal(rig.app.uow, rig.org, n=1)
    builders.run_gate(rig.app.uow, rig.org, opp, "ATI", ["manager"])
    [message] = _outbox(rig, "OpportunityStageChanged")
    refresher = _refresher(rig, debounce=0.6)

    refresher.handle(*message)
    late = builders.make_deal(rig.app.uow, rig.org, n=2, amount="250000")  # changes within the window
    for key, topic, payload in _outbox(rig, "OpportunityCreated"):
        refresher.handle(key, topic, payload)
    refresher.handle(*message)  # at least once: the same message again

    assert len(_views(rig, "U0REP")) == 1  # debounced: only the leading publish so far
    rig.slack.wait_for("views.publish", 4)  # the trailing publishes (rep and manager)
    time.sleep(0.8)  # a window later nothing else is pending
    views = _views(rig, "U0REP")
    assert len(views) == 2 and f"OPP-{late:05d}" in _text(views[-1]) and f"OPP-{late:05d}" not in _text(views[0])
    assert len(_views(rig, "U0MGR")) == 2
    refresher.close()
