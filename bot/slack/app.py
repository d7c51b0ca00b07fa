"""The Bolt app: mentions and DMs go to the agent, Confirm / Cancel buttons run proposals.

Every listener acks at once and does the slow work in a lazy listener (Slack wants an answer in
3 s). Each event id is recorded in the database before any work, so retries and duplicate
deliveries run once. Who acts is always the Slack user of the payload, never text.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.agent.runtime import Agent
from bot.context import AppContext
from bot.slack import blocks, files, followups
from bot import deal_conversations as places
from bot.slack.approvals import ApprovalCards, register_approvals
from bot.slack.commands import register as register_ltc
from bot.slack.events import EventLog
from bot.slack.home import register_home
from bot.slack.identity import IdentityResolver, SlackPerson
from domain.errors import LTCError
from domain.settings import Settings
from prompts.messages import render
from tools import runner

log = logging.getLogger("ltc.slack")
WORKING = "eyes"  # the reaction that says "working on it"
MENTION = re.compile(r"<@[A-Z0-9]+>")  # "<@U0BOT> new lead ...": the agent reads the words, not the ping


@dataclass
class SlackServices:
    app: AppContext
    agent: Agent
    identity: IdentityResolver = field(init=False)
    events: EventLog = field(init=False)

    def __post_init__(self) -> None:
        self.identity = IdentityResolver(self.app)
        self.events = EventLog(self.app.engine)

    def sinks(self, client: WebClient) -> list:
        """The outbox sinks a Slack process runs: approval cards, notices, deal channels, App Home."""
        from bot.slack.deal_channels import DealChannels
        from bot.slack.home import HomeRefresher
        from bot.slack.notify import SlackNotifier

        return [ApprovalCards(self, client), SlackNotifier(self, client), DealChannels(self, client),
                HomeRefresher(self, client)]


def thread_key(channel: str, thread_ts: str) -> str:
    return f"slack:{channel}:{thread_ts}"


def create_app(settings: Settings, services: SlackServices, client: WebClient | None = None) -> App:
    if client is None:
        client = WebClient(token=settings.slack_bot_token)  # tests pass one pointed at a mock Web API
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    # Ack functions run inline, before the answer, so they never queue behind agent turns in the
    # listener pool; everything slow is a lazy listener (Bolt runs those after the answer).
    app = App(signing_secret=settings.slack_signing_secret, client=client,
              process_before_response=True)

    def ack_now(ack: Ack) -> None:
        ack()

    def on_mention(body: dict, event: dict, client: WebClient) -> None:
        _converse(services, body, event, client)

    def on_message(body: dict, event: dict, client: WebClient) -> None:
        # DMs only; channel messages reach us as app_mention. Bots (ourselves too) and edits are ignored.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        _converse(services, body, event, client)

    def on_confirm(body: dict, client: WebClient, respond) -> None:
        _decide(services, body, client, respond, confirm=True)

    def on_cancel(body: dict, client: WebClient, respond) -> None:
        _decide(services, body, client, respond, confirm=False)

    app.event("app_mention")(ack=ack_now, lazy=[on_mention])
    app.event("message")(ack=ack_now, lazy=[on_message])
    app.action(blocks.CONFIRM)(ack=ack_now, lazy=[on_confirm])
    app.action(blocks.CANCEL)(ack=ack_now, lazy=[on_cancel])
    register_ltc(app, services)
    register_home(app, services)
    register_approvals(app, services)
    followups.register_follow_ups(app, services, lambda *a: _answered(services, *a))
    return app


def _converse(services: SlackServices, body: dict, event: dict, client: WebClient) -> None:
    event_id = body.get("event_id")
    if event_id and not services.events.first_time(event_id):
        log.info("duplicate Slack event %s skipped", event_id)
        return
    channel, user = event.get("channel"), event.get("user")
    if not channel or not user:
        return
    ts = event.get("ts")
    thread_ts = event.get("thread_ts") or ts
    person = services.identity.resolve(user, client)
    if person.user_id is None:
        _onboard(client, event, person)
        return
    _react(client.reactions_add, channel, ts)
    try:
        result = services.agent.reply(actor=person.actor(), text=_strip_mentions(event.get("text", "")),
                                      thread_id=thread_key(channel, thread_ts))
    except LTCError as e:  # e.g. deactivated meanwhile: tell only them
        client.chat_postEphemeral(channel=channel, user=user, text=e.message, thread_ts=thread_ts)
        return
    finally:
        _react(client.reactions_remove, channel, ts)
    text = result.text
    for proposal in result.proposals:  # the buttons ask; the sentence asking would say it twice
        text = text.replace(render("confirm.ask", result.locale, summary=proposal.summary,
                                   minutes=proposal.minutes), "").strip()
    reply = blocks.reply_blocks(text, result.proposals, result.locale)
    if len(result.outcomes) == 1:  # one record answered: its fields and the next steps as buttons
        reply += followups.extra_blocks(result.outcomes[0], result.locale)
    client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text or result.text, blocks=reply)
    _remember_deals(services, [o.result for o in result.outcomes if o.status == "ok"], channel, thread_ts)
    files.post_charts(client, channel, thread_ts, result.charts)  # after the text; a failure only logs


def _answered(services: SlackServices, person: SlackPerson, outcome, text: str, channel: str,
              thread_ts: str | None) -> None:
    """A button's answer belongs to the thread's conversation: the agent remembers it, deals too."""
    if thread_ts:
        services.agent.remember(thread_key(channel, thread_ts), text, user_id=person.user_id)
        _remember_deals(services, [outcome.result] if outcome.status == "ok" else [], channel, thread_ts)


def _remember_deals(services: SlackServices, results: list, channel: str, thread_ts: str | None) -> None:
    """The deals worked on here: their approvals' outcomes are told in this thread."""
    if thread_ts:
        opp_ids = set().union(*(places.opportunity_ids(r) for r in results)) if results else set()
        places.remember(services.app.engine, "slack", opp_ids, places.Place(channel, thread_ts))


def _decide(services: SlackServices, body: dict, client: WebClient, respond, *, confirm: bool) -> None:
    user = (body.get("user") or {}).get("id")  # who clicked, from the signed payload
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    message = body.get("message") or {}
    ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))
    actions = body.get("actions") or []
    if not user or not channel or not actions:
        return
    token = actions[0].get("value", "")
    person = services.identity.resolve(user, client)
    if person.user_id is None:
        client.chat_postEphemeral(channel=channel, user=user, text=blocks.onboarding_text(person.email))
        return
    ctx = services.agent.tool_context(person.actor(), person.locale)
    outcome = runner.confirm(token, ctx) if confirm else runner.cancel(token, ctx)
    thread_ts = message.get("thread_ts") or message.get("ts")
    if outcome.status == "error":  # not theirs, expired or already used: only the clicker sees why
        client.chat_postEphemeral(channel=channel, user=user, text=outcome.text, thread_ts=thread_ts)
        return
    _answered(services, person, outcome, outcome.text, channel, thread_ts)  # first: decisions are told here
    if ephemeral:  # an ephemeral message (a /ltc answer) has no ts to update: replace it via response_url
        respond(text=outcome.text, blocks=[blocks.text_section(outcome.text)], replace_original=True)
    else:
        client.chat_update(channel=channel, ts=message.get("ts"), text=outcome.text,
                           blocks=[blocks.text_section(outcome.text)])


def _onboard(client: WebClient, event: dict, person: SlackPerson) -> None:
    text = blocks.onboarding_text(person.email)
    if event.get("channel_type") == "im":
        client.chat_postMessage(channel=event["channel"], text=text)
    else:
        client.chat_postEphemeral(channel=event["channel"], user=person.slack_user_id, text=text)


def _react(call, channel: str, ts: str | None) -> None:
    if not ts:
        return
    try:
        call(channel=channel, timestamp=ts, name=WORKING)
    except SlackApiError as e:  # a missing reaction must never cost the reply
        log.info("reaction %s failed: %s", WORKING, e.response.get("error"))


def _strip_mentions(text: str) -> str:
    return MENTION.sub("", text).strip()
