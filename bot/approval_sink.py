"""What every chat surface does with approval events; each surface only says how to post and update.

An approval request (or a later step opening) posts a card to each person who may decide it and
records it in `chat_cards`; a decision, cancellation or expiry updates every recorded card and
tells the requester; reminder events nudge the approvers, then escalate to their managers. Each
requester notice and nudge is delivered once per surface (NoticeLog), after its post succeeded.

A surface subclass sets SURFACE and CHAT_ID (the users column with the person's id there) and
implements `post_card`, `update_card`, `tell` and `nudge_on_card`.
"""
from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select, update

from bot.approval_cards import ApprovalCard, CardSource, build_card, load, outcome_text, step_text
from bot.notice_log import NoticeLog
from domain.db import tables as t
from domain.db.upsert import insert_once
from domain.db.uow import utcnow
from prompts.messages import render
from tools.approvals import kind_label, subject_text

log = logging.getLogger("ltc.chat")
FINAL = ("approved", "rejected", "expired", "cancelled")
TOPICS = frozenset({"ApprovalRequested", "ApprovalStepOpened", "ApprovalDecided", "ApprovalClosed",
                    "ApprovalReminderDue"})


@dataclasses.dataclass(frozen=True)
class Person:
    user_id: int
    chat_id: str | None  # their id on this surface; None = not on it
    locale: str
    manager_id: int | None


@dataclasses.dataclass(frozen=True)
class PostedCard:
    user_id: int
    channel: str
    message_id: str
    response_code: str | None = None


class ApprovalCardSink:
    SURFACE = ""
    CHAT_ID = ""
    TOPICS = TOPICS

    def __init__(self, app) -> None:
        self.app = app
        self.notices = NoticeLog(app.engine, self.SURFACE)

    # -- what a surface implements ----------------------------------------------------------------

    def post_card(self, person: Person, card: ApprovalCard, note: str | None) -> PostedCard:
        raise NotImplementedError

    def update_card(self, posted: PostedCard, card: ApprovalCard, waiting: str | None) -> None:
        raise NotImplementedError

    def tell(self, person: Person, text: str, opportunity_id: int | None) -> None:
        """Tell the requester how their request ended (where the deal was worked, else directly)."""
        raise NotImplementedError

    def nudge_on_card(self, person: Person, posted: PostedCard, text: str) -> None:
        raise NotImplementedError

    def is_permanent(self, error: Exception) -> bool:
        """An error a retry cannot cure (the recipient or the app must change first)."""
        return False

    # -- outbox sink ------------------------------------------------------------------------------

    def handle(self, key: str, topic: str, payload: dict) -> None:
        if topic not in self.TOPICS:
            return
        source = load(self.app, payload["approval_id"])
        if topic in ("ApprovalRequested", "ApprovalStepOpened"):
            self.post_cards(source)
        if topic in ("ApprovalStepOpened", "ApprovalDecided", "ApprovalClosed"):
            self.refresh(source)
        if topic in ("ApprovalDecided", "ApprovalClosed") and source.view.status in FINAL:
            self.tell_requester(key, source)
        if topic == "ApprovalReminderDue" and source.view.status == "pending" \
                and payload["step_seq"] == source.view.current_step:
            if payload["level"] == 1:
                self.remind(key, source, payload["hours_waiting"])
            else:
                self.escalate(key, source, payload["hours_waiting"])

    def post_cards(self, source: CardSource, *, note_for: dict[int, str] | None = None,
                   to: list[int] | None = None) -> None:
        """A card to each eligible approver (or `to`) who is on this surface and has none yet."""
        posted = self.cards(source.view.id)
        for person in self.people(to if to is not None else source.view.eligible_approver_ids):
            if person.chat_id is None or person.user_id in posted:
                continue
            card = build_card(source, person.locale, self.app.playbooks())
            try:
                card_posted = self.post_card(person, card, (note_for or {}).get(person.user_id))
            except Exception as e:
                if not self.is_permanent(e):
                    raise  # the outbox retries; the cards already posted are recorded and not sent twice
                log.error("approval card %s not delivered to user %s on %s (%s): not retried",
                          card.ref, person.user_id, self.SURFACE, e)
                continue
            self.record_card(source.view.id, card_posted)
            posted[person.user_id] = card_posted

    def refresh(self, source: CardSource) -> None:
        """Bring every posted card of the request up to date (buttons only for who may decide now)."""
        view = source.view
        for posted in self.cards(view.id).values():
            people = self.people([posted.user_id])
            lang = people[0].locale if people else "en"
            card = build_card(source, lang, self.app.playbooks())
            waiting = step_text(view, lang) if view.status == "pending" else None
            self.update_card(posted, card, waiting)

    def tell_requester(self, key: str, source: CardSource) -> None:
        view = source.view
        requester = self.people([view.requested_by])
        if not requester or requester[0].chat_id is None:
            return
        person = requester[0]
        notice_key = f"{key}:requester:{person.user_id}"
        if self.notices.sent(notice_key):
            return
        lang = person.locale
        self.tell(person, render("card.told_requester", lang, ref=view.ref, kind=kind_label(view.kind, lang),
                                 subject=subject_text(view), outcome=outcome_text(view, lang)),
                  source.opportunity_id)
        self.notices.record(notice_key)  # after the post: a failure above lets the outbox retry

    def remind(self, key: str, source: CardSource, hours: int) -> None:
        view = source.view
        for person in self.people(view.eligible_approver_ids):
            self._nudge(f"{key}:{person.user_id}", source, person, render(
                "card.reminder", person.locale, ref=view.ref, hours=hours,
                kind=kind_label(view.kind, person.locale), subject=subject_text(view)))

    def escalate(self, key: str, source: CardSource, hours: int) -> None:
        """To the approvers' managers (who are not approvers themselves), with the card."""
        view = source.view
        approvers = self.people(view.eligible_approver_ids)
        waiting_for = ", ".join(source.names.get(p.user_id, "?") for p in approvers)
        managers = {p.manager_id for p in approvers if p.manager_id is not None} - set(view.eligible_approver_ids)
        for manager in self.people(managers):
            self._nudge(f"{key}:{manager.user_id}", source, manager, render(
                "card.escalation", manager.locale, ref=view.ref, kind=kind_label(view.kind, manager.locale),
                subject=subject_text(view), hours=hours, who=waiting_for))

    def _nudge(self, notice_key: str, source: CardSource, person: Person, text: str) -> None:
        """Beside their card when they have one; else a card headed by the nudge."""
        if person.chat_id is None or self.notices.sent(notice_key):
            return
        cards = self.cards(source.view.id)
        if person.user_id in cards:
            self.nudge_on_card(person, cards[person.user_id], text)
        else:
            self.post_cards(source, note_for={person.user_id: text}, to=[person.user_id])
        self.notices.record(notice_key)

    # -- storage ----------------------------------------------------------------------------------

    def cards(self, approval_id: int) -> dict[int, PostedCard]:
        c = t.chat_cards.c
        with self.app.engine.connect() as conn:
            rows = conn.execute(select(c.user_id, c.channel, c.message_id, c.response_code).where(
                c.surface == self.SURFACE, c.approval_id == approval_id)).all()
        return {r.user_id: PostedCard(r.user_id, r.channel, r.message_id, r.response_code) for r in rows}

    def record_card(self, approval_id: int, posted: PostedCard) -> None:
        insert_once(self.app.engine, t.chat_cards, ["surface", "approval_id", "user_id"],
                    {"surface": self.SURFACE, "approval_id": approval_id, "user_id": posted.user_id,
                     "channel": posted.channel, "message_id": posted.message_id,
                     "response_code": posted.response_code, "posted_at": utcnow()})

    def set_response_code(self, approval_id: int, user_id: int, code: str | None, *, spent: str | None = None) -> bool:
        """Store the card's next update code; with `spent`, only if that code is still the stored one
        (two updates racing for one code: one wins, the other knows it lost)."""
        c = t.chat_cards.c
        query = update(t.chat_cards).where(c.surface == self.SURFACE, c.approval_id == approval_id,
                                           c.user_id == user_id)
        if spent is not None:
            query = query.where(c.response_code == spent)
        with self.app.engine.begin() as conn:
            return conn.execute(query.values(response_code=code)).rowcount == 1

    def people(self, user_ids) -> list[Person]:
        ids = sorted(set(user_ids))
        if not ids:
            return []
        c = t.users.c
        chat = c[self.CHAT_ID]
        with self.app.engine.connect() as conn:
            rows = conn.execute(select(c.id, chat.label("chat_id"), c.locale, c.manager_id, c.active)
                                .where(c.id.in_(ids))).all()
        return [Person(r.id, r.chat_id, r.locale if r.locale in ("en", "zh") else "en", r.manager_id)
                for r in rows if r.active]
