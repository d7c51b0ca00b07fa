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

from bot import deal_conversations as places
from bot.approval_cards import load
from bot.approval_sink import ApprovalCardSink, Person, PostedCard
from bot.slack import approval_blocks as ab
from bot.slack.blocks import onboarding_text
from prompts.messages import render
from tools import runner

log = logging.getLogger("ltc.slack")
SURFACE = "slack"


class ApprovalCards(ApprovalCardSink):
    """Slack: a DM per approver; updates with chat.update; nudges in the card's thread (broadcast)."""

    SURFACE = SURFACE
    CHAT_ID = "slack_user_id"

    def __init__(self, services, client: WebClient) -> None:
        super().__init__(services.app)
        self.services = services
        self.client = client

    def post_card(self, person: Person, card, note: str | None) -> PostedCard:
        dm = self.client.conversations_open(users=person.chat_id)["channel"]["id"]
        reply = self.client.chat_postMessage(
            channel=dm, text=card_text_with(card, note),
            blocks=ab.card_blocks(card, can_decide=person.user_id in card.eligible_ids, note=note))
        return PostedCard(person.user_id, dm, reply["ts"])

    def update_card(self, posted: PostedCard, card, waiting: str | None) -> None:
        try:
            self.client.chat_update(channel=posted.channel, ts=posted.message_id, text=card_text_with(card, None),
                                    blocks=ab.card_blocks(card, can_decide=posted.user_id in card.eligible_ids,
                                                          waiting=waiting))
        except SlackApiError as e:  # a deleted DM or message must not hold back the other cards
            log.warning("could not update card %s for user %s: %s", card.ref, posted.user_id,
                        e.response.get("error"))

    def tell(self, person: Person, text: str, opportunity_id: int | None) -> None:
        """In the thread where the deal was worked; else its channel; else a DM."""
        place = (places.find(self.app.engine, SURFACE, opportunity_id, "thread")
                 or places.find(self.app.engine, SURFACE, opportunity_id, "channel"))
        if place is not None:
            self.client.chat_postMessage(channel=place.channel, thread_ts=place.thread_ts,
                                         text=f"<@{person.chat_id}> {text}")
        else:
            dm = self.client.conversations_open(users=person.chat_id)["channel"]["id"]
            self.client.chat_postMessage(channel=dm, text=text)

    def nudge_on_card(self, person: Person, posted: PostedCard, text: str) -> None:
        self.client.chat_postMessage(channel=posted.channel, thread_ts=posted.message_id, reply_broadcast=True,
                                     text=text)


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
