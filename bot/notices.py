"""Outbox events → what people are told: notices for one person (DMs) and news for a deal's
conversation (its iron-triangle channel). Surface-agnostic: Slack and WeCom render the same
`Notice` / `DealNews` in their own format.

A notice is read with its recipient's own actor, so it shows only what RBAC lets them see, in
their language. Deal news is read with the system actor (the channel is the whole triangle's) and
worded in the AR's language. One decision makes one post: a passed gate is told with the stage
change it caused (OpportunityStageChanged carries its approval), GatePassed itself makes news only
for ATI (the kickoff, which also tells the move to initiated); GateRejected carries the reason.
Facts that went stale between the event and its delivery (a lead reassigned, a quote already sent
on, a milestone done, invoices paid) give no notice. Texts come from prompts/notices.*.yaml.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from bot import digest
from domain.actor import Actor, Channel
from domain.errors import LTCError
from domain.model.opportunities import OPEN_STAGES
from domain.model.vocab import MemberRole
from domain.services import collections, delivery, leads, opportunities, quotes
from domain.services.audit_trail import audit_trail
from prompts.messages import render
from tools.format import day, money

log = logging.getLogger("ltc.notices")

LANGS = ("en", "zh")
MAX_INVOICES = 25  # a digest lists the most overdue first; the totals always cover all of them
MAX_TEXT = 300  # free text people typed (a lead's need), cut so a notice stays a notice
SEATS = ("AR", "SR", "FR")

# Topics that notify people directly, and topics that make news in a deal's conversation.
# InvoiceReminderDue (a dunning level raised) is deliberately absent: the same daily run raises the
# AR's CollectionsDigestDue, whose list marks the invoices raised that day, so the AR hears once.
DM_TOPICS = frozenset({"LeadAssigned", "QuoteExpiring", "DeliveryMilestoneDue", "CollectionsDigestDue",
                       "PipelineDigestDue"})
DEAL_TOPICS = frozenset({"GatePassed", "GateRejected", "OpportunityStageChanged"})


@dataclass(frozen=True)
class Notice:
    key: str  # outbox key + recipient: each surface delivers it once
    topic: str
    user_id: int
    lang: str
    title: str
    lines: tuple[str, ...]
    opportunity_id: int | None = None
    chart: object | None = None  # tools.charts.Chart: surfaces post it as a picture under the text


@dataclass(frozen=True)
class Seat:
    role: str  # AR / SR / FR
    user_id: int
    name: str


@dataclass(frozen=True)
class RoleChecklist:
    seat: Seat
    items: tuple[str, ...]


@dataclass(frozen=True)
class DealNews:
    key: str  # the outbox key: one post per event and conversation
    topic: str
    opportunity_id: int
    ref: str
    name: str
    lang: str
    title: str
    lines: tuple[str, ...]
    seats: tuple[Seat, ...] = ()
    checklists: tuple[RoleChecklist, ...] = ()  # the kickoff's per-role checklists for the stage


def lang_of(locale: str | None) -> str:
    return locale if locale in LANGS else "en"


def _cut(text: str | None, limit: int = MAX_TEXT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _amounts(sums: dict[str, Decimal]) -> str:
    """One figure per currency: amounts in different currencies are never added up."""
    return " + ".join(money(v, c) for c, v in sorted(sums.items()))


class NoticeBuilder:
    """Reads what an outbox event means for people. `channel` is the surface the reads are made for."""

    def __init__(self, app, channel: Channel | str, playbooks: Callable[[], object | None] | None = None) -> None:
        self.app = app
        self.channel = Channel(channel)
        self.playbooks = playbooks or (lambda: None)
        self._system: Actor | None = None

    # -- notices for people ---------------------------------------------------------------------

    def notices(self, key: str, topic: str, payload: dict) -> list[Notice]:
        build = {"LeadAssigned": self._lead_assigned, "QuoteExpiring": self._quote_expiring,
                 "DeliveryMilestoneDue": self._milestone_due, "CollectionsDigestDue": self._digest,
                 "PipelineDigestDue": self._pipeline_digest}.get(topic)
        if build is None:
            return []
        with self.app.uow() as uow:  # read only: never committed
            return build(uow, key, topic, payload)

    def _actor(self, user_id: int) -> Actor:
        return Actor(user_id, self.channel)

    def _reader(self, uow, user_id: int | None):
        """The recipient as a user, or None when they cannot be told (unknown, deactivated)."""
        user = uow.users.get(user_id) if user_id else None
        return user if user is not None and user.active else None

    def _lead_assigned(self, uow, key: str, topic: str, p: dict) -> list[Notice]:
        owner = self._reader(uow, p.get("owner_id"))
        if owner is None:
            return []
        actor = self._actor(owner.id)
        try:
            lead = leads.get_lead(p["lead_id"], actor=actor, uow=uow)
            by = self._assigned_by(uow, actor, p)
        except LTCError as e:
            log.info("%s: no notice for user %s: %s", key, owner.id, e.message)
            return []
        if lead.owner_id != owner.id or by == owner.id:  # reassigned since, or they took it themselves
            return []
        lang = lang_of(owner.locale)
        contact = ", ".join(x for x in (lead.contact_name, lead.title, lead.email, lead.phone) if x)
        lines = [render("notices.lead.contact", lang, contact=contact),
                 render("notices.lead.source", lang, source=render(f"notices.source.{lead.source}", lang))]
        if lead.score:
            lines.append(render("notices.lead.score", lang, score=lead.score))
        if lead.budget:
            lines.append(render("notices.lead.budget", lang, amount=money(lead.budget, lead.currency)))
        if lead.need:
            lines.append(render("notices.lead.need", lang, need=_cut(lead.need)))
        lines.append(render("notices.lead.next", lang, ref=lead.ref, contact=lead.contact_name))
        return [Notice(key=f"{key}:{owner.id}", topic=topic, user_id=owner.id, lang=lang,
                       title=render("notices.lead.title", lang, ref=lead.ref, company=lead.company),
                       lines=tuple(lines), opportunity_id=None)]

    @staticmethod
    def _assigned_by(uow, actor: Actor, p: dict) -> int | None:
        """Who made this assignment: the lead's creation (seq 1) or the audited re-assignment (seq = its id)."""
        entries = audit_trail("lead", p["lead_id"], actor=actor, uow=uow)
        entry = next((e for e in entries if e.id == p["seq"] and e.action == "assign"), None)
        if entry is None and p["seq"] == 1:
            entry = next((e for e in entries if e.action == "create"), None)
        return entry.actor_id if entry else None

    def _quote_expiring(self, uow, key: str, topic: str, p: dict) -> list[Notice]:
        opp = uow.opportunities.get(p["opportunity_id"])
        owner = self._reader(uow, opp.owner_id if opp else None)  # the deal's AR now
        if owner is None:
            return []
        actor = self._actor(owner.id)
        try:
            quote = quotes.get_quote(p["quote_id"], actor=actor, uow=uow)
            deal = opportunities.get_opportunity(p["opportunity_id"], actor=actor, uow=uow)
        except LTCError as e:
            log.info("%s: no notice for user %s: %s", key, owner.id, e.message)
            return []
        days = (quote.valid_until - uow.now().date()).days if quote.valid_until else -1
        if quote.status not in ("approved", "sent") or day(quote.valid_until) != p["valid_until"] or days < 0:
            return []  # sent on, accepted, superseded, re-dated or lapsed meanwhile
        lang = lang_of(owner.locale)
        title = (render("notices.quote.title_today", lang, ref=quote.ref) if days == 0
                 else render("notices.quote.title", lang, ref=quote.ref, days=days))
        lines = (render("notices.deal", lang, ref=deal.ref, name=deal.name, account=deal.account_name),
                 render("notices.quote.amount", lang, amount=money(quote.total, quote.currency),
                        discount=f"{quote.discount_pct.normalize():f}"),
                 render("notices.quote.valid_until", lang, date=day(quote.valid_until), days=days),
                 render(f"notices.quote.next.{quote.status}", lang, ref=quote.ref))
        return [Notice(key=f"{key}:{owner.id}", topic=topic, user_id=owner.id, lang=lang, title=title,
                       lines=lines, opportunity_id=deal.id)]

    def _milestone_due(self, uow, key: str, topic: str, p: dict) -> list[Notice]:
        opp = uow.opportunities.get(p["opportunity_id"])
        if opp is None:
            return []
        roles = {uid: "FR" for uid in sorted(opp.member_ids(MemberRole.FR))}
        roles.setdefault(opp.owner_id, "AR")  # one notice when the AR also holds the FR seat
        today = uow.now().date()
        out = []
        for uid, role in roles.items():
            user = self._reader(uow, uid)
            if user is None:
                continue
            actor = self._actor(uid)
            try:
                order = delivery.get_order(p["order_id"], actor=actor, uow=uow)
                deal = opportunities.get_opportunity(opp.id, actor=actor, uow=uow)
            except LTCError as e:
                log.info("%s: no notice for user %s: %s", key, uid, e.message)
                continue
            m = next((x for x in order.milestones if x.seq == p["seq"]), None)
            if m is None or m.status != "planned" or day(m.planned_date) != p["planned_date"]:
                return []  # done or re-planned meanwhile: nobody needs the reminder
            lang = lang_of(user.locale)
            days = (m.planned_date - today).days
            when = ("late" if days < 0 else "today" if days == 0 else "due")
            title = render(f"notices.milestone.title_{when}", lang, order=order.number, seq=m.seq, name=m.name,
                           days=abs(days))
            lines = (render("notices.deal", lang, ref=deal.ref, name=deal.name, account=deal.account_name),
                     render("notices.milestone.order", lang, order=order.number, contract=order.contract_number),
                     render(f"notices.milestone.kind.{m.kind}", lang, seq=m.seq, name=m.name),
                     render("notices.milestone.planned", lang, date=day(m.planned_date)),
                     render(f"notices.milestone.next.{role}", lang, order=order.number, seq=m.seq))
            out.append(Notice(key=f"{key}:{uid}", topic=topic, user_id=uid, lang=lang, title=title, lines=lines,
                              opportunity_id=opp.id))
        return out

    def _pipeline_digest(self, uow, key: str, topic: str, p: dict) -> list[Notice]:
        manager = self._reader(uow, p["manager_id"])
        if manager is None:
            return []
        lang = lang_of(manager.locale)
        built = digest.build(uow, self._actor(manager.id), lang, p["week"])
        if built is None:
            return []
        title, lines, chart = built
        return [Notice(key=f"{key}:{manager.id}", topic=topic, user_id=manager.id, lang=lang, title=title,
                       lines=lines, chart=chart)]

    def _digest(self, uow, key: str, topic: str, p: dict) -> list[Notice]:
        owner = self._reader(uow, p["owner_id"])
        if owner is None:
            return []
        on = date.fromisoformat(p["on"])
        try:
            report = collections.aging_report(actor=self._actor(owner.id), uow=uow, as_of=on, owner_id=owner.id)
        except LTCError as e:
            log.info("%s: no digest for user %s: %s", key, owner.id, e.message)
            return []
        overdue = [x for x in report.lines if x.days_overdue > 0]  # most overdue first
        if not overdue:
            return []  # paid meanwhile
        lang = lang_of(owner.locale)
        totals: dict[str, Decimal] = {}
        for x in overdue:
            totals[x.currency] = totals.get(x.currency, Decimal(0)) + x.balance
        lines = [self._invoice_line(uow, x, on, lang) for x in overdue[:MAX_INVOICES]]
        if len(overdue) > MAX_INVOICES:
            lines.append(render("notices.digest.more", lang, n=len(overdue) - MAX_INVOICES))
        lines += [render("notices.digest.total", lang, amount=money(v, c)) for c, v in sorted(totals.items())]
        lines.append(render("notices.digest.next", lang))
        return [Notice(key=f"{key}:{owner.id}", topic=topic, user_id=owner.id, lang=lang,
                       title=render("notices.digest.title", lang, n=len(overdue), amount=_amounts(totals),
                                    date=day(on)),
                       lines=tuple(lines))]

    @staticmethod
    def _invoice_line(uow, x, on: date, lang: str) -> str:
        invoice = uow.invoices.get(x.invoice_id)
        level = (render(f"tool.cash.dunning.{x.dunning_level}", lang) if x.dunning_level
                 else render("notices.digest.no_dunning", lang))
        if invoice is not None and invoice.last_dunned_on == on and x.dunning_level:
            level = render("notices.digest.raised_today", lang, level=level)  # today's dunning step
        return render("notices.digest.line", lang, invoice=x.invoice_number, customer=x.account_name,
                      balance=money(x.balance, x.currency), days=x.days_overdue, dunning=level,
                      promise=_promise(x.promise, lang))

    # -- news for a deal's conversation ---------------------------------------------------------

    def system(self) -> Actor:
        if self._system is None:
            self._system = self.app.system_actor(self.channel)
        return self._system

    def deal_news(self, key: str, topic: str, payload: dict) -> DealNews | None:
        if topic not in DEAL_TOPICS:
            return None
        actor = self.system()
        with self.app.uow() as uow:
            try:
                deal = opportunities.get_opportunity(payload["opportunity_id"], actor=actor, uow=uow)
            except LTCError as e:
                log.info("%s: no deal news: %s", key, e.message)
                return None
            owner = uow.users.get(deal.owner_id)
            lang = lang_of(owner.locale if owner else None)
            seats = self._seats(uow, deal, lang)
            approval = uow.approvals.get(payload["approval_id"]) if payload.get("approval_id") else None
            # plain values only: the unit of work's objects expire when it closes
            apr, decided_gate = (approval.ref, approval.kind) if approval else ("-", None)
        stage = render(f"tool.deal.stage.{deal.stage}", lang)
        head = render("notices.deal", lang, ref=deal.ref, name=deal.name, account=deal.account_name)
        if topic == "OpportunityStageChanged":
            if decided_gate == "ATI":
                return None  # the kickoff (GatePassed ATI) tells this move, with the team and checklists
            src, dst = (render(f"tool.deal.stage.{payload[k]}", lang) for k in ("from_stage", "to_stage"))
            if decided_gate:  # a gate passed: its outcome and the move are one post
                gate = render(f"tool.approval.kind.{decided_gate}", lang)
                title = render("notices.deal.gate_passed", lang, gate=gate, ref=deal.ref, name=deal.name)
            else:
                title = render("notices.deal.stage_title", lang, ref=deal.ref, name=deal.name, src=src, dst=dst)
            move = render("notices.deal.stage_line_approval" if decided_gate else "notices.deal.stage_line", lang,
                          src=src, dst=dst, approval=apr)
            lines = [head, move, render("notices.deal.probability", lang, p=deal.probability)]
            if deal.close_reason and payload["to_stage"] not in {s.value for s in OPEN_STAGES}:
                lines.append(render("notices.deal.close_reason", lang, reason=_cut(deal.close_reason)))
            return DealNews(key, topic, deal.id, deal.ref, deal.name, lang, title, tuple(lines))
        if topic == "GateRejected":
            gate = render(f"tool.approval.kind.{payload['kind']}", lang)
            title = render("notices.deal.gate_rejected", lang, gate=gate, ref=deal.ref, name=deal.name)
            lines = (head, render("notices.deal.reason", lang, reason=_cut(payload.get("reason")) or "-"),
                     render("notices.deal.approval", lang, approval=apr, stage=stage),
                     render("notices.deal.rejected_next", lang))
            return DealNews(key, topic, deal.id, deal.ref, deal.name, lang, title, lines)
        if payload["kind"] != "ATI":
            return None  # the stage change of the same decision says it (one post, not two)
        return self._kickoff(key, topic, deal, seats, lang, head, apr, stage)

    def deal_seats(self, opportunity_id: int) -> tuple[Seat, ...]:
        """The deal's AR, SR and FR (active people), for surfaces that tell them one by one."""
        with self.app.uow() as uow:
            try:
                deal = opportunities.get_opportunity(opportunity_id, actor=self.system(), uow=uow)
            except LTCError:
                return ()
            return self._seats(uow, deal, "en")

    @staticmethod
    def _seats(uow, deal, lang: str) -> tuple[Seat, ...]:
        out = []
        for m in deal.members:  # the AR first (the owner), then the deal's SR and FR seats
            if m.role in SEATS and not any(s.role == m.role for s in out):
                user = uow.users.get(m.user_id)
                if user is not None and user.active:
                    out.append(Seat(m.role, m.user_id, user.display_name(lang)))
        return tuple(out)

    def _kickoff(self, key, topic, deal, seats, lang, head, apr, stage) -> DealNews:
        """ATI passed: the triangle's channel opens with who is who and each role's checklist for the stage."""
        title = render("notices.kickoff.title", lang, ref=deal.ref, name=deal.name)
        lines = [head, render("notices.kickoff.facts", lang, amount=money(deal.amount, deal.currency), stage=stage,
                              approval=apr)]
        missing = [r for r in SEATS if not any(s.role == r for s in seats)]
        if missing:
            lines.append(render("notices.kickoff.seat_missing", lang, roles=", ".join(missing)))
        checklists: list[RoleChecklist] = []
        if deal.stage in {s.value for s in OPEN_STAGES}:
            index = self.playbooks()
            per_role = index.checklists(stage=deal.stage, gate=None, lang=lang) if index is not None else {}
            checklists = [RoleChecklist(s, tuple(per_role[s.role])) for s in seats if per_role.get(s.role)]
            if index is None:
                lines.append(render("notices.kickoff.no_index", lang))
            elif not checklists:
                lines.append(render("notices.kickoff.no_checklist", lang, stage=stage))
        return DealNews(key, topic, deal.id, deal.ref, deal.name, lang, title, tuple(lines), seats=seats,
                        checklists=tuple(checklists))


def _promise(text: str | None, lang: str) -> str:
    """The aging report words a promise 'open until 2026-12-01', 'kept' or 'broken'."""
    if not text:
        return render("notices.digest.no_promise", lang)
    if text.startswith("open until "):
        return render("tool.cash.promise.open", lang, on=text.removeprefix("open until "))
    return render(f"tool.cash.promise.{text}", lang)
