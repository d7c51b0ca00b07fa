"""Approval cards in Slack: a DM card per eligible approver, decided with a button.

- `ApprovalCards` is an outbox sink. A request (or a later step opening) posts a card to each
  person who may decide it and records it in `chat_cards`; a decision, cancellation or expiry
  updates every recorded card in place and tells the requester in the deal's thread. Reminder
  events nudge the approvers under their card, then escalate to their managers.
- The buttons decide as the Slack user of the signed payload. Approve decides at once; Reject and
  Request changes first ask for the reason in a modal. A click on a card that is already decided
  or expired is answered privately, and that card is brought up to date.
"""
from __future__ import annotations

import dataclasses
import json
import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot import deal_conversations as places
from bot.approval_cards import CardSource, build_card, load, outcome_text, step_text
from bot.notice_log import NoticeLog
from bot.slack import approval_blocks as ab
from bot.slack.blocks import onboarding_text
from domain.db import tables as t
from domain.db.upsert import insert_once
from domain.db.uow import utcnow
from prompts.messages import render
from tools import runner
from tools.approvals import kind_label, subject_text

log = logging.getLogger("ltc.slack")
SURFACE = "slack"
FINAL = ("approved", "rejected", "expired", "cancelled")


@dataclasses.dataclass(frozen=True)
class Person:
    user_id: int
    slack_id: str | None
    locale: str
    manager_id: int | None


class ApprovalCards:
    TOPICS = frozenset({"ApprovalRequested", "ApprovalStepOpened", "ApprovalDecided", "ApprovalClosed",
                        "ApprovalReminderDue"})

    def __init__(self, services, client: WebClient) -> None:
        self.services = services
        self.app = services.app
        self.client = client
        self.notices = NoticeLog(self.app.engine, SURFACE)

    # -- outbox sink ----------------------------------------------------------------------------

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
        """A card to each eligible approver (or `to`) who has Slack and has none yet."""
        people = self._people(to if to is not None else source.view.eligible_approver_ids)
        posted = self._cards(source.view.id)
        for person in people:
            if person.slack_id is None or person.user_id in posted:
                continue
            card = build_card(source, person.locale, self.app.playbooks())
            note = (note_for or {}).get(person.user_id)
            dm = self.client.conversations_open(users=person.slack_id)["channel"]["id"]
            reply = self.client.chat_postMessage(
                channel=dm, text=card_text_with(card, note),
                blocks=ab.card_blocks(card, can_decide=person.user_id in card.eligible_ids, note=note))
            self._record_card(source.view.id, person.user_id, dm, reply["ts"])

    def refresh(self, source: CardSource) -> None:
        """Bring every posted card of the request up to date (buttons only for who may decide now)."""
        view = source.view
        for user_id, (channel, ts) in self._cards(view.id).items():
            person = self._people([user_id])
            lang = person[0].locale if person else "en"
            card = build_card(source, lang, self.app.playbooks())
            waiting = step_text(view, lang) if view.status == "pending" else None
            try:
                self.client.chat_update(channel=channel, ts=ts, text=card_text_with(card, None),
                                        blocks=ab.card_blocks(card, can_decide=user_id in card.eligible_ids,
                                                              waiting=waiting))
            except SlackApiError as e:  # a deleted DM or message must not hold back the other cards
                log.warning("could not update card %s for user %s: %s", view.ref, user_id,
                            e.response.get("error"))

    def tell_requester(self, key: str, source: CardSource) -> None:
        """In the thread where the deal was worked; else its channel; else a DM."""
        view = source.view
        requester = self._people([view.requested_by])
        if not requester or requester[0].slack_id is None:
            return
        person = requester[0]
        notice_key = f"{key}:requester:{person.user_id}"
        if self.notices.sent(notice_key):
            return
        lang = person.locale
        text = render("card.told_requester", lang, ref=view.ref, kind=kind_label(view.kind, lang),
                      subject=subject_text(view), outcome=outcome_text(view, lang))
        place = (places.find(self.app.engine, SURFACE, source.opportunity_id, "thread")
                 or places.find(self.app.engine, SURFACE, source.opportunity_id, "channel"))
        if place is not None:
            self.client.chat_postMessage(channel=place.channel, thread_ts=place.thread_ts,
                                         text=f"<@{person.slack_id}> {text}")
        else:
            dm = self.client.conversations_open(users=person.slack_id)["channel"]["id"]
            self.client.chat_postMessage(channel=dm, text=text)
        self.notices.record(notice_key)  # after the post: a failure above lets the outbox retry

    def remind(self, key: str, source: CardSource, hours: int) -> None:
        view = source.view
        for person in self._people(view.eligible_approver_ids):
            self._nudge(f"{key}:{person.user_id}", source, person, render(
                "card.reminder", person.locale, ref=view.ref, hours=hours,
                kind=kind_label(view.kind, person.locale), subject=subject_text(view)))

    def escalate(self, key: str, source: CardSource, hours: int) -> None:
        """To the approvers' managers (who are not approvers themselves), with the card."""
        view = source.view
        approvers = self._people(view.eligible_approver_ids)
        waiting_for = ", ".join(source.names.get(p.user_id, "?") for p in approvers)
        managers = {p.manager_id for p in approvers if p.manager_id is not None} - set(view.eligible_approver_ids)
        for manager in self._people(managers):
            self._nudge(f"{key}:{manager.user_id}", source, manager, render(
                "card.escalation", manager.locale, ref=view.ref, kind=kind_label(view.kind, manager.locale),
                subject=subject_text(view), hours=hours, who=waiting_for))

    def _nudge(self, notice_key: str, source: CardSource, person: Person, text: str) -> None:
        """Under their card when they have one (broadcast, so the DM shows it); else a card headed by it."""
        if person.slack_id is None or self.notices.sent(notice_key):
            return
        cards = self._cards(source.view.id)
        if person.user_id in cards:
            channel, ts = cards[person.user_id]
            self.client.chat_postMessage(channel=channel, thread_ts=ts, reply_broadcast=True, text=text)
        else:
            self.post_cards(source, note_for={person.user_id: text}, to=[person.user_id])
        self.notices.record(notice_key)

    # -- storage --------------------------------------------------------------------------------

    def _cards(self, approval_id: int) -> dict[int, tuple[str, str]]:
        c = t.chat_cards.c
        with self.app.engine.connect() as conn:
            rows = conn.execute(select(c.user_id, c.channel, c.message_id).where(
                c.surface == SURFACE, c.approval_id == approval_id)).all()
        return {r.user_id: (r.channel, r.message_id) for r in rows}

    def _record_card(self, approval_id: int, user_id: int, channel: str, ts: str) -> None:
        insert_once(self.app.engine, t.chat_cards, ["surface", "approval_id", "user_id"],
                    {"surface": SURFACE, "approval_id": approval_id, "user_id": user_id, "channel": channel,
                     "message_id": ts, "posted_at": utcnow()})

    def _people(self, user_ids) -> list[Person]:
        ids = sorted(set(user_ids))
        if not ids:
            return []
        c = t.users.c
        with self.app.engine.connect() as conn:
            rows = conn.execute(select(c.id, c.slack_user_id, c.locale, c.manager_id, c.active)
                                .where(c.id.in_(ids))).all()
        return [Person(r.id, r.slack_user_id, r.locale if r.locale in ("en", "zh") else "en", r.manager_id)
                for r in rows if r.active]


def card_text_with(card, note: str | None) -> str:
    return f"{note}\n{ab.card_text(card)}" if note else ab.card_text(card)


# -- buttons and the comment modal ----------------------------------------------------------------

def register_approvals(app: App, services) -> None:
    cards = lambda client: ApprovalCards(services, client)  # noqa: E731 (a client per request)

    def ack_now(ack: Ack) -> None:
        ack()

    def on_approve(body: dict, client: WebClient) -> None:
        origin = _origin(body)
        _decide(services, cards(client), client, body["user"]["id"], int(body["actions"][0]["value"]),
                "approve", None, origin)

    def ask_reason(ack: Ack, body: dict, client: WebClient) -> None:
        # The trigger id lives 3 s: open the modal here, in the ack path.
        ack()
        action = body["actions"][0]
        approval_id = int(action["value"])
        person = services.identity.resolve(body["user"]["id"], client)
        lang = person.locale if person.user_id else "en"
        ref = f"APR-{approval_id:05d}"
        client.views_open(trigger_id=body["trigger_id"],
                          view=ab.comment_modal(approval_id, ref, ab.OUTCOME_OF[action["action_id"]], lang,
                                                _origin(body)))

    def check_comment(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        meta, comment = _comment_of(view)
        if meta.get("outcome") in ("reject", "revise") and not comment:
            person = services.identity.resolve(body["user"]["id"], client)
            ack(response_action="errors",
                errors={ab.COMMENT_BLOCK: render("card.comment_required", person.locale or "en")})
            return
        ack()

    def decide_with_comment(body: dict, client: WebClient) -> None:
        meta, comment = _comment_of(body.get("view") or {})
        if meta.get("outcome") in ("reject", "revise") and not comment:
            return  # the modal stayed open with the error: nothing to decide
        _decide(services, cards(client), client, body["user"]["id"], int(meta["approval_id"]), meta["outcome"],
                comment, meta)

    app.action(ab.APPROVE)(ack=ack_now, lazy=[on_approve])
    app.action(ab.REJECT)(ask_reason)
    app.action(ab.REVISE)(ask_reason)
    app.view(ab.COMMENT_MODAL)(ack=check_comment, lazy=[decide_with_comment])


def _comment_of(view: dict) -> tuple[dict, str | None]:
    meta = json.loads(view.get("private_metadata") or "{}")
    values = ((view.get("state") or {}).get("values") or {}).get(ab.COMMENT_BLOCK) or {}
    return meta, (values.get(ab.COMMENT_INPUT, {}).get("value") or "").strip() or None


def _origin(body: dict) -> dict:
    """Where the clicked card is, so the answer lands beside it."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return {"channel": channel, "ts": container.get("message_ts") or (body.get("message") or {}).get("ts")}


def _decide(services, cards: ApprovalCards, client: WebClient, slack_user: str, approval_id: int,
            outcome: str, comment: str | None, origin: dict) -> None:
    person = services.identity.resolve(slack_user, client)
    channel = origin.get("channel")
    if person.user_id is None:
        if channel:
            client.chat_postEphemeral(channel=channel, user=slack_user, text=onboarding_text(person.email))
        return
    # The click is the human's decision: no second "are you sure" proposal.
    ctx = dataclasses.replace(services.agent.tool_context(person.actor(), person.locale), confirm_tools=frozenset())
    result = runner.invoke("decide_approval", {"approval": str(approval_id), "decision": outcome,
                                               "comment": comment}, ctx)
    if channel:
        client.chat_postEphemeral(channel=channel, user=slack_user, text=result.text)
    # Update every copy now; the outbox will do it again, idempotently, after the commit.
    cards.refresh(load(services.app, approval_id))
