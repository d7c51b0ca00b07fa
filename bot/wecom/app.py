"""The WeCom app: encrypted callbacks in, the agent's answers out through the message API.

WeCom wants an answer to a callback within 5 s and retries when it gets none, so a callback is
only checked (signature, corp id), parsed and recorded as seen — MsgId for messages, TaskId +
EventKey for card clicks, sender + time for other events — and answered with an empty body at once;
the work runs on per-user lanes of a small thread pool and its answers go out through `message/send`. A retried
delivery is recorded already and skipped, on every replica (the record is in the database).

Who acts is always the callback's FromUserName (inside the signed, encrypted message), mapped to a
domain user by `wecom_userid`; an unknown userid is told politely, in Chinese first, and nothing
else happens. Conversation memory is per WeCom user.
"""
from __future__ import annotations

import logging
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot import charts
from bot.agent.runtime import Agent
from bot.context import AppContext
from bot.notice_log import NoticeLog
from bot.wecom import approvals, cards
from bot.wecom.api import WeComClient
from bot.wecom.crypto import WeComCrypto
from bot.wecom.identity import WeComIdentity, WeComPerson
from bot.wecom.inbound import Inbound, envelope, parse
from bot.wecom.messenger import Messenger
from domain.db import tables as t
from domain.db.upsert import insert_once
from domain.errors import LTCError
from domain.settings import Settings
from prompts.messages import render
from tools import runner

log = logging.getLogger("ltc.wecom")
NOT_TEXT = frozenset({"image", "voice", "video", "file", "location", "link"})
PROPOSAL_TEXT_LIMIT = 112  # longer proposal summaries are sent in full above their card


@dataclass
class WeComServices:
    app: AppContext
    agent: Agent
    client: WeComClient
    identity: WeComIdentity = field(init=False)
    messenger: Messenger = field(init=False)
    approval_cards: approvals.WeComApprovalCards = field(init=False)

    def __post_init__(self) -> None:
        self.identity = WeComIdentity(self.app)
        self.messenger = Messenger(self.client, markdown=self.app.settings.wecom_markdown)
        self.approval_cards = approvals.WeComApprovalCards(self)

    @classmethod
    def from_settings(cls, app: AppContext, agent: Agent | None = None) -> WeComServices:
        return cls(app, agent or Agent(app), WeComClient.from_settings(app.settings))

    def sinks(self) -> list:
        """The outbox sinks for WeCom: approval cards, and notices and deal news."""
        from bot.wecom.notify import WeComNotifier

        return [self.approval_cards, WeComNotifier(self)]


def first_time(engine, key: str) -> bool:
    return insert_once(engine, t.wecom_callbacks, ["dedup_key"],
                       {"dedup_key": key, "received_at": datetime.now(UTC).replace(tzinfo=None)})


class WeComApp:
    def __init__(self, settings: Settings, services: WeComServices, *, workers: int = 4) -> None:
        self.settings = settings
        self.services = services
        self.crypto = WeComCrypto(settings.wecom_token, settings.wecom_encoding_aes_key, settings.wecom_corp_id)
        # One lane (a single thread) per user hash: a person's messages run in the order they came,
        # so their conversation and a reason after a Reject press never race; people run in parallel.
        self.lanes = [ThreadPoolExecutor(1, thread_name_prefix=f"ltc-wecom-{i}") for i in range(workers)]
        self._running: set[Future] = set()
        self._lock = threading.Lock()
        self.welcomes = NoticeLog(services.app.engine, "wecom")

    # -- the endpoint's two calls (fast: check, record, hand over) -----------------------------------

    def verify_url(self, params: dict[str, str]) -> str:
        return self.crypto.verify_url(params.get("msg_signature"), params.get("timestamp"), params.get("nonce"),
                                      params.get("echostr"))

    def receive(self, params: dict[str, str], body: bytes) -> Inbound | None:
        """Check and take in one callback; the work is queued. None when it was a repeat delivery."""
        xml = self.crypto.open(params.get("msg_signature"), params.get("timestamp"), params.get("nonce"),
                               envelope(body))
        message = parse(xml)
        if not first_time(self.services.app.engine, message.dedup_key()):
            log.info("repeated WeCom callback %s skipped", message.dedup_key())
            return None
        lane = self.lanes[zlib.crc32(message.from_user.lower().encode()) % len(self.lanes)]
        future = lane.submit(self._work, message)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._done)
        return message

    def _done(self, future: Future) -> None:
        with self._lock:
            self._running.discard(future)

    def wait(self, timeout: float = 30.0) -> None:
        """Until the queued work is done (tests, shutdown)."""
        with self._lock:
            running = list(self._running)
        for future in running:
            future.result(timeout=timeout)

    def close(self) -> None:
        for lane in self.lanes:
            lane.shutdown(wait=True, cancel_futures=False)

    def _work(self, message: Inbound) -> None:
        try:
            self.handle(message)
        except Exception:  # a failure must be logged, never lost in the pool
            log.exception("WeCom %s from %s failed", message.msg_type, message.from_user)
            raise

    # -- the work --------------------------------------------------------------------------------

    def handle(self, message: Inbound) -> None:
        person = self.services.identity.resolve(message.from_user)
        if message.msg_type == "event" and message.event == "enter_agent":
            self.welcome(person)
            return
        if message.msg_type == "event" and not message.is_card_click:
            return  # subscribe, location reports …: nothing to say
        if person.user_id is None:
            self.refuse(person)
            return
        if message.is_card_click:
            self.on_click(person, message)
        elif message.msg_type == "text":
            self.on_text(person, message.content)
        elif message.msg_type in NOT_TEXT:
            self.services.messenger.text(person.userid, render("wecom.not_text", person.locale))

    def refuse(self, person: WeComPerson) -> None:
        """Unknown here: say so, Chinese first (they have no language with us yet)."""
        text = "\n\n".join(render("wecom.unknown_user", lang, userid=person.userid) for lang in ("zh", "en"))
        self.services.messenger.text(person.userid, text)

    def welcome(self, person: WeComPerson) -> None:
        """Opening the app: a greeting (or the refusal), at most once a day per person."""
        key = f"welcome:{person.userid.lower()}:{datetime.now(UTC).date().isoformat()}"
        if self.welcomes.sent(key):
            return
        if person.user_id is None:
            self.refuse(person)
        else:
            self.services.messenger.text(person.userid, render("wecom.welcome", person.locale, name=person.name))
        self.welcomes.record(key)

    def on_text(self, person: WeComPerson, text: str) -> None:
        services = self.services
        if approvals.answer_reason(services, person, text):
            return
        try:
            result = services.agent.reply(actor=person.actor(), text=text.strip(),
                                          thread_id=f"wecom:{person.userid.lower()}")
        except LTCError as e:  # e.g. deactivated meanwhile
            services.messenger.text(person.userid, e.message)
            return
        reply = result.text
        for proposal in result.proposals:  # the card asks; the sentence asking would say it twice
            reply = reply.replace(render("confirm.ask", result.locale, summary=proposal.summary,
                                         minutes=proposal.minutes), "").strip()
        if reply:
            services.messenger.text(person.userid, reply)
        for proposal in result.proposals:
            if len(proposal.summary) > PROPOSAL_TEXT_LIMIT:
                services.messenger.text(person.userid, proposal.summary)
            services.messenger.card(person.userid, cards.proposal_card(
                proposal.summary, proposal.token, result.locale, task=cards.task_id("prop")))
        charts.deliver(result.charts, lambda chart, png: services.messenger.image(person.userid, png,
                                                                                   charts.filename(chart)),
                       where=f"wecom:{person.userid}")  # after the text; a failure only logs

    def on_click(self, person: WeComPerson, message: Inbound) -> None:
        action, value = cards.parse_key(message.event_key)
        if action in cards.OUTCOME_OF and value.isdigit():
            approvals.on_click(self.services, person, action, int(value), message.response_code)
        elif action in (cards.CONFIRM, cards.CANCEL) and value:
            self.on_proposal(person, message, value, confirm=action == cards.CONFIRM)
        else:
            log.warning("unknown WeCom card key %r from %s", message.event_key, person.userid)

    def on_proposal(self, person: WeComPerson, message: Inbound, token: str, *, confirm: bool) -> None:
        services = self.services
        ctx = services.agent.tool_context(person.actor(), person.locale)
        outcome = runner.confirm(token, ctx) if confirm else runner.cancel(token, ctx)
        if outcome.status != "error":
            services.agent.remember(f"wecom:{person.userid.lower()}", outcome.text, user_id=person.user_id)
        if message.response_code and message.task_id:  # close the card: its buttons have done their work
            replace = ("closed" if outcome.status == "error" else "confirmed" if confirm else "cancelled")
            card = cards.closed(cards.proposal_card(outcome.text, token, person.locale, task=message.task_id),
                                render(f"wecom.replace.{replace}", person.locale))
            try:
                services.client.update_card([person.userid], message.response_code, card)
            except Exception as e:  # the answer below still tells them
                log.warning("could not close proposal card %s: %s", message.task_id, e)
        services.messenger.text(person.userid, outcome.text)
