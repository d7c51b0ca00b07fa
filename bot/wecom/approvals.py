"""Approval cards on WeCom: a button_interaction card per eligible approver, decided with a click.

Posting, refreshing, telling the requester and reminding are shared with Slack (bot/approval_sink.py);
this module says how WeCom does each. WeCom updates a card only with a response code, and each code
works once: the send returns one and every click brings a fresh one. The card row keeps the latest
unused code; an update first claims it (so two updaters never spend one code twice, and an updater
that finds it claimed leaves the card to the one at work). A card whose
code is spent cannot change any more: when its request ends, its holder is told in a message instead.
A card whose holder may still decide is left as it is (its buttons still work; no code is spent).

Approve decides at once as the clicking userid. Reject and Request changes need a reason, and WeCom
cards have no text field: the click asks for it, and the person's next message is the reason
(`approval_reason_prompts`, one open question per person, `wecom_reason_minutes` long).
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

from sqlalchemy import delete, select

from bot.approval_cards import build_card, load, outcome_text
from bot.approval_sink import ApprovalCardSink, Person, PostedCard
from bot.wecom import cards
from bot.wecom.api import WeComApiError
from domain.db import tables as t
from domain.db.upsert import insert_for
from domain.db.uow import utcnow
from prompts.messages import render
from tools import runner

log = logging.getLogger("ltc.wecom")
SURFACE = "wecom"
UPDATING = "~updating"  # stands in for a claimed code while its update is under way (never a real code)


class WeComApprovalCards(ApprovalCardSink):
    SURFACE = SURFACE
    CHAT_ID = "wecom_userid"

    def __init__(self, services) -> None:
        super().__init__(services.app)
        self.services = services
        self.send = services.messenger

    def post_card(self, person: Person, card, note: str | None) -> PostedCard:
        details = cards.details_text(card, note)
        if details:  # what the card cannot hold, just above it
            self.send.text(person.chat_id, details, rich=True)
        task = cards.task_id(f"apr{card.approval_id}")
        sent = self.send.card(person.chat_id, cards.approval_card(
            card, task=task, can_decide=person.user_id in card.eligible_ids, note=note))
        return PostedCard(person.user_id, person.chat_id, task, sent.get("response_code"))

    def update_card(self, posted: PostedCard, card, waiting: str | None) -> None:
        can_decide = card.is_open and posted.user_id in card.eligible_ids
        if can_decide:
            return  # nothing they need changed: keep the code for when it ends
        code = posted.response_code
        shown = f"card-end:{card.approval_id}:{card.status}:{posted.user_id}"  # they know how it ended
        if code == UPDATING or (not card.is_open and self.notices.sent(shown)):
            return  # another updater is at it, or it is done
        if code and self.set_response_code(card.approval_id, posted.user_id, UPDATING, spent=code):
            try:
                self.services.client.update_card([posted.channel], code, cards.approval_card(
                    card, task=posted.message_id, can_decide=False, waiting=waiting))
                if not card.is_open:
                    self.notices.record(shown)
                    return
            except WeComApiError as e:  # e.g. the code's 72 hours are over
                log.warning("could not update card %s for user %s: %s", card.ref, posted.user_id, e)
            finally:  # the code is spent (or useless) either way; a click meanwhile brought a new one
                self.set_response_code(card.approval_id, posted.user_id, None, spent=UPDATING)
            if card.is_open:
                # Other updaters left the card to us meanwhile: if the request ended since we read it,
                # the card (code spent now) cannot show it, so say it in a message.
                now = build_card(load(self.app, card.approval_id), card.lang)
                if not now.is_open:
                    self.update_card(dataclasses.replace(posted, response_code=None), now, None)
                return
        elif code:
            return  # another updater claimed this code just now and brings the card up to date
        if not card.is_open and self.notices.record(shown):  # claimed first: one message, whoever races
            self.send.text(posted.channel, render("wecom.card_update_failed", card.lang, ref=card.ref,
                                                  outcome=card.outcome or ""))

    def tell(self, person: Person, text: str, opportunity_id: int | None) -> None:
        self.send.text(person.chat_id, text)

    def nudge_on_card(self, person: Person, posted: PostedCard, text: str) -> None:
        self.send.text(person.chat_id, text)  # no threads on WeCom: the nudge names the request

    def is_permanent(self, error: Exception) -> bool:
        return isinstance(error, WeComApiError) and not error.transient

    def remember_click(self, approval_id: int, user_id: int, response_code: str | None) -> None:
        """A click brings a fresh code for the clicker's card: the next update uses it."""
        if response_code:
            self.set_response_code(approval_id, user_id, response_code)


# -- decisions by click ---------------------------------------------------------------------------

def decide(services, person, approval_id: int, outcome: str, comment: str | None) -> None:
    """Decide as the clicking person; tell them; bring every card up to date."""
    ctx = dataclasses.replace(services.agent.tool_context(person.actor(), person.locale),
                              confirm_tools=frozenset())  # the click is the human's decision
    result = runner.invoke("decide_approval", {"approval": str(approval_id), "decision": outcome,
                                               "comment": comment}, ctx)
    services.messenger.text(person.userid, result.text)
    services.approval_cards.refresh(load(services.app, approval_id))


def on_click(services, person, action: str, approval_id: int, response_code: str | None) -> None:
    sink = services.approval_cards
    sink.remember_click(approval_id, person.user_id, response_code)
    source = load(services.app, approval_id)
    view = source.view
    if view.status != "pending":  # decided or expired meanwhile: say how it ended, show it on the card
        services.messenger.text(person.userid, render("wecom.card_update_failed", person.locale, ref=view.ref,
                                                      outcome=outcome_text(view, person.locale)))
        sink.refresh(source)
        return
    outcome = cards.OUTCOME_OF[action]
    if outcome == "approve":
        decide(services, person, approval_id, "approve", None)
        return
    if person.user_id not in view.eligible_approver_ids:  # asking would swallow their next message
        deciders = ", ".join(source.names.get(uid, "?") for uid in view.eligible_approver_ids)
        services.messenger.text(person.userid, render("wecom.not_your_decision", person.locale, ref=view.ref,
                                                      who=deciders or "-"))
        return
    ReasonPrompts(services.app).ask(person.userid, approval_id, outcome)
    services.messenger.text(person.userid, render(f"wecom.reason_ask.{outcome}", person.locale, ref=view.ref,
                                                  minutes=services.app.settings.wecom_reason_minutes))


def answer_reason(services, person, text: str) -> bool:
    """The person's message answers their open Reject / Request changes question: True when it did."""
    prompt = ReasonPrompts(services.app).take(person.userid)
    if prompt is None:
        return False
    approval_id, outcome = prompt
    words = {w.strip().lower() for w in render("wecom.cancel_words", person.locale).split("|")}
    if text.strip().lower().strip("。.!！ ") in words:
        ref = load(services.app, approval_id).view.ref
        services.messenger.text(person.userid, render("wecom.reason_dropped", person.locale, ref=ref))
        return True
    decide(services, person, approval_id, outcome, text.strip())
    return True


class ReasonPrompts:
    def __init__(self, app) -> None:
        self.app = app

    def ask(self, userid: str, approval_id: int, outcome: str) -> None:
        """Open (or replace) the person's question: the latest click is what they mean."""
        row = {"surface": SURFACE, "chat_user": userid.lower(), "approval_id": approval_id, "outcome": outcome,
               "expires_at": utcnow() + timedelta(minutes=self.app.settings.wecom_reason_minutes)}
        stmt = insert_for(self.app.engine.dialect.name)(t.approval_reason_prompts).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["surface", "chat_user"],
                                          set_={k: row[k] for k in ("approval_id", "outcome", "expires_at")})
        with self.app.engine.begin() as conn:
            conn.execute(stmt)

    def take(self, userid: str) -> tuple[int, str] | None:
        """Claim the open question (once: a delete that two messages cannot both win), unless expired."""
        c = t.approval_reason_prompts.c
        where = (c.surface == SURFACE, c.chat_user == userid.lower())
        with self.app.engine.begin() as conn:
            row = conn.execute(select(c.approval_id, c.outcome, c.expires_at).where(*where)).first()
            if row is None or conn.execute(delete(t.approval_reason_prompts).where(*where)).rowcount != 1:
                return None
        return (row.approval_id, row.outcome) if row.expires_at > utcnow() else None
