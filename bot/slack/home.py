"""The App Home: my open deals by stage, my pending approvals, my overdue collections, quick actions,
and for managers their team's pipeline. Published on `app_home_opened` and again when outbox events
change what someone's Home shows (`HomeRefresher`, debounced per person).

Every Home is read with its viewer's own actor, so it shows exactly what RBAC lets them see.
Texts come from prompts/slack_home.*.yaml.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import blocks
from domain.actor import Actor, Channel
from domain.errors import LTCError
from domain.model.opportunities import OPEN_STAGES
from domain.model.vocab import Role
from domain.rbac import Scope, UseCase, management_chain
from domain.services import approvals as approval_svc
from domain.services import collections
from domain.services.approvals import ApprovalView
from domain.services.base import begin
from domain.services.collections import AgingLine
from prompts.messages import render
from tools.format import day, money
from tools.opportunities import stage_label

log = logging.getLogger("ltc.slack")

MAX_BLOCKS = 100  # Slack refuses a Home view with more
HEADER_LIMIT = 150  # plain_text in a header block
TOP_DEALS, MAX_APPROVALS, MAX_OVERDUE, MAX_REPS = 5, 10, 10, 20
POOL_LIMIT = 1000  # deals read per stage: a Home is a summary, not a report
QUICK_ACTIONS = ("new_lead", "new_opportunity", "build_quote", "record_payment")
OPEN_MODAL = "ltc_open_modal"


# -- what a Home shows (read with the viewer's actor) ----------------------------------------------

@dataclass(frozen=True)
class Deal:
    ref: str
    name: str
    owner_id: int
    amount: Decimal
    currency: str
    stage: str
    probability: int
    close: date | None

    @property
    def weighted(self) -> Decimal:
        return self.amount * self.probability / 100


@dataclass
class Totals:
    n: int = 0
    amount: dict[str, Decimal] = field(default_factory=dict)  # currency → sum
    weighted: dict[str, Decimal] = field(default_factory=dict)

    def add(self, deal: Deal) -> None:
        self.n += 1
        self.amount[deal.currency] = self.amount.get(deal.currency, Decimal(0)) + deal.amount
        self.weighted[deal.currency] = self.weighted.get(deal.currency, Decimal(0)) + deal.weighted


@dataclass
class TeamPipeline:
    total: Totals
    by_stage: dict[str, Totals]
    by_rep: list[tuple[str, Totals]]  # largest pipeline first


@dataclass
class HomeData:
    name: str
    locale: str
    now: datetime
    deals: list[Deal]  # open deals I own or hold a seat on
    open_leads: int
    approvals: list[ApprovalView]
    overdue: list[AgingLine]
    team: TeamPipeline | None


def _deal(opp) -> Deal:
    return Deal(ref=opp.ref, name=opp.name, owner_id=opp.owner_id, amount=opp.amount, currency=opp.currency,
                stage=opp.stage, probability=opp.probability, close=opp.expected_close_date)


def _by_stage(deals: Iterable[Deal]) -> dict[str, Totals]:
    out = {s.value: Totals() for s in OPEN_STAGES}
    for d in deals:
        out[d.stage].add(d)
    return {s: t for s, t in out.items() if t.n}


def _manages_team(scope: Scope) -> bool:
    # Sales managers and directors see their subtree's deals; someone who sees everything and has
    # reports gets the same view. Anyone else cannot see their reports' deals, so no team view.
    return scope.is_manager or (scope.sees_all and len(scope.subtree) > 1)


def _team(scope: Scope, pool: list[Deal], users: dict, locale: str) -> TeamPipeline:
    deals = [d for d in pool if d.owner_id in scope.subtree]
    per_owner: dict[int, Totals] = {}
    for d in deals:
        per_owner.setdefault(d.owner_id, Totals()).add(d)
    for uid in scope.subtree:  # a rep with nothing open is news too
        u = users.get(uid)
        if uid != scope.user_id and u is not None and u.active and Role.SALES_REP in u.roles:
            per_owner.setdefault(uid, Totals())
    total = Totals()
    for d in deals:
        total.add(d)
    by_rep = sorted(((users[uid].display_name(locale), t) for uid, t in per_owner.items()),
                    key=lambda rt: (-sum(rt[1].amount.values(), Decimal(0)), rt[0]))
    return TeamPipeline(total=total, by_stage=_by_stage(deals), by_rep=by_rep)


def read_home(uow, user_id: int) -> HomeData:
    """Everything one person's Home shows; raises PermissionDenied for a deactivated user."""
    actor = Actor(user_id, Channel.SLACK)
    ctx = begin(uow, actor, UseCase.VIEW_OPPORTUNITY)
    scope, locale = ctx.scope, ctx.user.locale
    pool: dict[int, Deal] = {}
    mine: list[Deal] = []
    for stage in OPEN_STAGES:  # open stages only: closed deals must not eat the read limit
        for owner in (None, user_id):  # my own deals even when I see more than the limit
            for opp in uow.opportunities.list(scope, stage=stage.value, owner_id=owner, limit=POOL_LIMIT):
                if opp.id in pool:
                    continue
                pool[opp.id] = _deal(opp)
                if opp.owner_id == user_id or user_id in opp.member_ids():
                    mine.append(pool[opp.id])
    users = {u.id: u for u in uow.users.all()}
    overdue = collections.aging_report(actor=actor, uow=uow, owner_id=user_id).lines
    return HomeData(
        name=ctx.user.display_name(locale), locale=locale, now=uow.now(),
        deals=sorted(mine, key=lambda d: (-d.amount, d.close or date.max, d.ref)),
        open_leads=uow.leads.open_counts([user_id])[user_id],
        approvals=approval_svc.list_my_approvals(actor=actor, uow=uow),
        overdue=[line for line in overdue if line.days_overdue > 0],  # sorted most overdue first
        team=_team(scope, list(pool.values()), users, locale) if _manages_team(scope) else None,
    )


# -- Block Kit ---------------------------------------------------------------------------------

def _esc(text: str) -> str:
    """User-entered names must not turn into Slack markup (mentions, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:blocks.SECTION_LIMIT]}}


def _fields(texts: list[str]) -> dict:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": t[:2000]} for t in texts[:10]]}


def _amounts(sums: dict[str, Decimal]) -> str:
    """One figure per currency: sums in different currencies are never added up."""
    return " + ".join(money(v, c) for c, v in sorted(sums.items())) or money(0)


def _lines(lines: list[str], limit: int, locale: str) -> str:
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append(render("slack_home.more", locale, n=len(lines) - limit))
    return "\n".join(shown)


def _age(created: datetime, now: datetime, locale: str) -> str:
    minutes = max(0, int((now - created).total_seconds() // 60))
    if minutes < 60:
        return render("slack_home.age_minutes", locale, n=minutes)
    if minutes < 48 * 60:
        return render("slack_home.age_hours", locale, n=minutes // 60)
    return render("slack_home.age_days", locale, n=minutes // (24 * 60))


def quick_actions(locale: str) -> list[dict]:
    # One actions block per button: Slack wants action ids unique within a block, and the shared
    # contract gives every quick action the same id (`ltc_open_modal`) with the modal kind as value.
    return [_section(render("slack_home.quick_title", locale))] + [
        {"type": "actions", "block_id": f"ltc_home_quick_{kind}", "elements": [
            {"type": "button", "action_id": OPEN_MODAL, "value": kind,
             "text": {"type": "plain_text", "text": render(f"slack_home.button.{kind}", locale)[:75]}}]}
        for kind in QUICK_ACTIONS]


def _deal_blocks(data: HomeData) -> list[dict]:
    lang = data.locale
    total = Totals()
    for d in data.deals:
        total.add(d)
    head = [render("slack_home.deals_title", lang),
            render("slack_home.deals_total", lang, n=total.n, amount=_amounts(total.amount)) if total.n
            else render("slack_home.deals_none", lang),
            render("slack_home.open_leads", lang, n=data.open_leads)]
    out = [_section("\n".join(head))]
    if data.deals:
        out.append(_fields([render("slack_home.stage_field", lang, stage=stage_label(s, lang), n=t.n,
                                   amount=_amounts(t.amount)) for s, t in _by_stage(data.deals).items()]))
        lines = [render("slack_home.deal_line", lang, ref=d.ref, name=_esc(d.name), amount=money(d.amount, d.currency),
                        stage=stage_label(d.stage, lang), close=day(d.close)) for d in data.deals]
        out.append(_section(render("slack_home.top_deals", lang) + "\n" + _lines(lines, TOP_DEALS, lang)))
    return out


def _approval_blocks(data: HomeData) -> list[dict]:
    lang = data.locale
    lines = [render("slack_home.approval_line", lang, ref=a.ref, title=_esc(a.title[:120]),
                    requester=_esc(a.requested_by_name), age=_age(a.created_at, data.now, lang))
             for a in data.approvals]
    body = _lines(lines, MAX_APPROVALS, lang) if lines else render("slack_home.approvals_none", lang)
    return [_section(render("slack_home.approvals_title", lang) + "\n" + body)]


def _collection_blocks(data: HomeData) -> list[dict]:
    lang = data.locale
    head = render("slack_home.collections_title", lang)
    if not data.overdue:
        return [_section(head + "\n" + render("slack_home.collections_none", lang))]
    owed: dict[str, Decimal] = {}
    for line in data.overdue:
        owed[line.currency] = owed.get(line.currency, Decimal(0)) + line.balance
    lines = [render("slack_home.collection_line", lang, invoice=x.invoice_number, account=_esc(x.account_name),
                    balance=money(x.balance, x.currency), days=x.days_overdue, due=day(x.due_on))
             for x in data.overdue]
    total = render("slack_home.collections_total", lang, n=len(data.overdue), amount=_amounts(owed))
    return [_section(f"{head}\n{total}\n{_lines(lines, MAX_OVERDUE, lang)}")]


def _team_blocks(team: TeamPipeline, lang: str) -> list[dict]:
    head = render("slack_home.team_title", lang)
    if not team.total.n and not team.by_rep:
        return [_section(head + "\n" + render("slack_home.team_none", lang))]
    total = (render("slack_home.team_total", lang, n=team.total.n, amount=_amounts(team.total.amount),
                    weighted=_amounts(team.total.weighted)) if team.total.n
             else render("slack_home.team_none", lang))
    out = [_section(f"{head}\n{total}")]
    if team.by_stage:
        out.append(_fields([render("slack_home.team_stage_field", lang, stage=stage_label(s, lang), n=t.n,
                                   amount=_amounts(t.amount), weighted=_amounts(t.weighted))
                            for s, t in team.by_stage.items()]))
    lines = [render("slack_home.team_rep_line", lang, name=_esc(name), n=t.n, amount=_amounts(t.amount),
                    weighted=_amounts(t.weighted)) for name, t in team.by_rep]
    if lines:
        out.append(_section(render("slack_home.team_by_rep", lang) + "\n" + _lines(lines, MAX_REPS, lang)))
    return out


def home_blocks(data: HomeData) -> list[dict]:
    lang = data.locale
    divider = {"type": "divider"}
    out = [{"type": "header", "text": {"type": "plain_text",
                                       "text": render("slack_home.title", lang, name=data.name)[:HEADER_LIMIT]}},
           {"type": "context", "elements": [{"type": "mrkdwn", "text": render(
               "slack_home.updated", lang, when=data.now.strftime("%Y-%m-%d %H:%M"))}]},
           *quick_actions(lang), divider, *_deal_blocks(data), divider, *_approval_blocks(data),
           divider, *_collection_blocks(data)]
    if data.team is not None:
        out += [divider, *_team_blocks(data.team, lang)]
    return out[:MAX_BLOCKS]


def home_view(app, user_id: int) -> dict:
    with app.uow() as uow:
        data = read_home(uow, user_id)
    return {"type": "home", "blocks": home_blocks(data)}


def onboarding_view(email: str | None) -> dict:
    """An unknown person: who to ask, and no data."""
    return {"type": "home", "blocks": [_section(blocks.onboarding_text(email))]}


def publish(client: WebClient, slack_user_id: str, view: dict) -> bool:
    try:
        client.views_publish(user_id=slack_user_id, view=view)
        return True
    except SlackApiError as e:  # e.g. the person left the workspace: their Home is not worth a retry storm
        log.warning("views.publish for %s failed: %s", slack_user_id, e.response.get("error"))
        return False


def register_home(app: App, services) -> None:
    def ack_now(ack: Ack) -> None:
        ack()

    def on_home_opened(body: dict, event: dict, client: WebClient) -> None:
        if event.get("tab", "home") != "home":  # the Messages tab is the DM conversation
            return
        event_id, user = body.get("event_id"), event.get("user")
        if not user or (event_id and not services.events.first_time(event_id)):
            return
        person = services.identity.resolve(user, client)  # who looks: the signed payload's user, never text
        view = onboarding_view(person.email)
        if person.user_id is not None:
            try:
                view = home_view(services.app, person.user_id)
            except LTCError as e:  # deactivated since the identity was cached: no data
                log.info("Home for %s not shown: %s", user, e.message)
        publish(client, user, view)

    app.event("app_home_opened")(ack=ack_now, lazy=[on_home_opened])


# -- republish on change (an outbox sink) ----------------------------------------------------------

# Finds the people whose Home shows the deals of an account, whatever their scope: routing only,
# each Home is then read with its own viewer's actor.
_ROUTING = Scope(user_id=0, roles=frozenset(), subtree=frozenset(), sees_all=True, stages=frozenset())


def _deal_people(uow, opp_id: int | None) -> set[int]:
    """Whose Home shows the deal: its AR and seats (my deals) and the AR's managers (team pipeline)."""
    opp = uow.opportunities.get(opp_id) if opp_id else None
    if opp is None:
        return set()
    return {opp.owner_id, *opp.member_ids(), *management_chain(opp.owner_id, uow.users.managers())}


def _approval_people(uow, approval_id: int) -> set[int]:
    """The requester, whoever decided, and everyone holding a role one of its steps needs: a superset
    of who had it (or now has it) among their pending approvals."""
    request = uow.approvals.get(approval_id)
    if request is None:
        return set()
    roles = {Role(s.role) for s in request.steps}
    return ({request.requested_by, *(d.decider_id for d in request.decisions)}
            | {u.id for u in uow.users.all() if u.roles & roles})


def _lead_people(uow, payload: dict) -> set[int]:
    lead = uow.leads.get(payload["lead_id"])
    return {x for x in (payload.get("owner_id"), lead.owner_id if lead else None) if x is not None}


def _account_people(uow, payload: dict) -> set[int]:
    deals = uow.opportunities.list(_ROUTING, account_id=payload["account_id"], limit=POOL_LIMIT)
    return {opp.owner_id for opp in deals}  # overdue collections are the AR's


def _deal_topic(uow, payload: dict) -> set[int]:
    named = {payload.get(k) for k in ("owner_id", "ar_id", "sr_id", "fr_id")} - {None}
    return _deal_people(uow, payload.get("opportunity_id")) | named


# Topic → the people whose Home it changes (payloads as in domain/model/events.py).
ROUTES: dict[str, Callable[[object, dict], set[int]]] = {
    "OpportunityCreated": _deal_topic,
    "OpportunityStageChanged": _deal_topic,
    "IronTriangleAssigned": _deal_topic,
    "GatePassed": _deal_topic,
    "GateRejected": _deal_topic,
    "QuoteStatusChanged": _deal_topic,
    "ContractSigned": _deal_topic,
    "ApprovalRequested": lambda uow, p: _approval_people(uow, p["approval_id"]),
    "ApprovalStepOpened": lambda uow, p: _approval_people(uow, p["approval_id"]),
    "ApprovalDecided": lambda uow, p: _approval_people(uow, p["approval_id"]),
    "ApprovalClosed": lambda uow, p: _approval_people(uow, p["approval_id"]),
    "LeadCreated": _lead_people,
    "LeadAssigned": _lead_people,
    "LeadStatusChanged": _lead_people,
    "LeadConverted": _lead_people,
    "PaymentRecorded": _account_people,
    "InvoiceReminderDue": lambda uow, p: {p["owner_id"]},
}


class HomeRefresher:
    """Outbox sink: republish the Home of everyone an event concerns, at most once per person per
    `debounce_seconds`.

    Debounce: the first change publishes at once (leading edge); a change within the window schedules
    one trailing publish (threading.Timer) at the window's end, and further changes meanwhile ride on
    it. The trailing publish reads the data when it fires, so the last change is always shown.
    Publishing twice is harmless, so at-least-once delivery needs no key bookkeeping here.
    """

    def __init__(self, services, client: WebClient, *, debounce_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.client = client
        self.debounce_seconds = debounce_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # Slack user id → when their Home was last published
        self._trailing: dict[str, threading.Timer] = {}
        self._publishing: dict[str, threading.Lock] = {}  # one publish per person at a time, in order

    TOPICS = frozenset(ROUTES)

    def handle(self, key: str, topic: str, payload: dict) -> None:
        route = ROUTES.get(topic)
        if route is None:
            return
        with self.services.app.uow() as uow:
            people = route(uow, payload)
            users = {u.id: u for u in uow.users.all()}
            targets = {users[uid].slack_user_id: uid for uid in people
                       if uid in users and users[uid].active and users[uid].slack_user_id}
        for slack_user_id, user_id in sorted(targets.items()):
            self.refresh(slack_user_id, user_id)

    def refresh(self, slack_user_id: str, user_id: int) -> None:
        with self._lock:
            if slack_user_id in self._trailing:
                return  # the scheduled publish will read this change too
            wait = self._last.get(slack_user_id, float("-inf")) + self.debounce_seconds - self.clock()
            if wait > 0:
                timer = threading.Timer(wait, self._fire, args=(slack_user_id, user_id))
                timer.daemon = True
                self._trailing[slack_user_id] = timer
                timer.start()
                return
            self._last[slack_user_id] = self.clock()
        self._publish(slack_user_id, user_id)

    def _fire(self, slack_user_id: str, user_id: int) -> None:
        with self._lock:
            self._trailing.pop(slack_user_id, None)
            self._last[slack_user_id] = self.clock()
        self._publish(slack_user_id, user_id)

    def _publish(self, slack_user_id: str, user_id: int) -> None:
        with self._lock:
            gate = self._publishing.setdefault(slack_user_id, threading.Lock())
        with gate:  # the later publish reads later data, so it also lands last
            try:
                view = home_view(self.services.app, user_id)
            except LTCError as e:  # deactivated meanwhile: leave their Home alone
                log.info("Home for %s not refreshed: %s", slack_user_id, e.message)
                return
            publish(self.client, slack_user_id, view)

    def close(self) -> None:
        """Cancel trailing publishes (shutdown)."""
        with self._lock:
            timers, self._trailing = list(self._trailing.values()), {}
        for timer in timers:
            timer.cancel()
