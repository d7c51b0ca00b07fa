"""Outbox sink: the deal's iron-triangle channel (only when `settings.slack_deal_channels`).

Topics: GatePassed of kind ATI opens the channel (or attaches the one already stored in
`deal_conversations`), invites the AR, SR and FR who have Slack ids, and posts a header with each
role's checklist for the new stage. Then, when the deal has a channel, OpportunityStageChanged is
posted there (a passed gate with the move it caused, one post), and GateRejected with its reason.

Channels are private: deal terms are for the triangle, as RBAC has it (scopes: groups:write,
chat:write). Names are `<prefix><opp ref>-<ascii slug>`, lowercase, at most 80 characters; a taken
name gets a numeric suffix. The channel is stored right after it was created, so a retry attaches
it instead of creating another. Each post is recorded in the NoticeLog after it succeeded.
Slack errors: as in bot/slack/notify.py, permanent ones are logged as errors, others are raised so
the outbox retries the message.
"""
from __future__ import annotations

import logging
import re
import unicodedata

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import deal_conversations as places
from bot.notice_log import NoticeLog
from bot.notices import DEAL_TOPICS, DealNews, NoticeBuilder
from bot.slack.notify import MAX_BLOCKS, esc, header, is_permanent, sections, slack_error, slack_ids
from domain.actor import Channel
from prompts.messages import render

log = logging.getLogger("ltc.slack")

NAME_LIMIT = 80  # Slack channel names
NAME_TRIES = 20  # name, name-2 … name-20
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")  # Slack: lowercase letters, digits, hyphens, underscores
SURFACE, KIND = "slack", "channel"


def _clean(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"-{2,}", "-", _NOT_ALLOWED.sub("-", ascii_text.lower())).strip("-_")


def channel_name(prefix: str, ref: str, name: str, n: int = 1) -> str:
    """`deal-opp-00012-acme-mes-upgrade`; n > 1 adds `-n` (a taken name). A Chinese name leaves the ref only."""
    head = _clean(f"{prefix}{ref}") or _clean(ref)
    slug = _clean(name)
    base = f"{head}-{slug}" if slug else head
    suffix = f"-{n}" if n > 1 else ""
    return base[:NAME_LIMIT - len(suffix)].rstrip("-_") + suffix


class DealChannels:
    """`handle(key, topic, payload)`: an outbox sink for the topics in TOPICS."""

    TOPICS = DEAL_TOPICS

    def __init__(self, services, client: WebClient) -> None:
        self.app = services.app
        self.client = client
        self.builder = NoticeBuilder(self.app, Channel.SLACK, playbooks=self.app.playbooks)
        self.log = NoticeLog(self.app.engine, SURFACE)

    def handle(self, key: str, topic: str, payload: dict) -> None:
        if topic not in self.TOPICS or not self.app.settings.slack_deal_channels:
            return
        kickoff = topic == "GatePassed" and payload.get("kind") == "ATI"
        post_key = f"{key}:channel"
        found = places.find(self.app.engine, SURFACE, payload["opportunity_id"], KIND)
        channel = found.channel if found else None
        if not kickoff and (channel is None or self.log.sent(post_key)):
            return  # no channel (no ATI yet, or the setting came later): nothing to post in
        news = self.builder.deal_news(key, topic, payload)
        if news is None:
            return
        try:
            if kickoff:
                channel = channel or self._create(news)
                self._invite(channel, news)
            if not self.log.sent(post_key):
                self._post(channel, news)
                self.log.record(post_key)
        except SlackApiError as e:
            if not is_permanent(e):
                raise  # the outbox retries: the stored channel and recorded posts are not repeated
            log.error("deal channel for %s: %s failed (%s); fix the Slack app, it is not retried",
                      news.ref, key, slack_error(e))

    def _create(self, news: DealNews) -> str:
        prefix = self.app.settings.slack_channel_prefix
        for n in range(1, NAME_TRIES + 1):
            try:
                created = self.client.conversations_create(name=channel_name(prefix, news.ref, news.name, n),
                                                           is_private=True)
                break
            except SlackApiError as e:
                if slack_error(e) != "name_taken" or n == NAME_TRIES:
                    raise
        return places.claim(self.app.engine, SURFACE, news.opportunity_id, places.Place(created["channel"]["id"]),
                            KIND).channel

    def _invite(self, channel: str, news: DealNews) -> None:
        ids = slack_ids(self.app, (s.user_id for s in news.seats))
        users = sorted(set(ids.values()))
        if not users:
            return
        try:
            # force: invite the ones who can join even when another cannot
            self.client.conversations_invite(channel=channel, users=",".join(users), force=True)
        except SlackApiError as e:
            if slack_error(e) == "already_in_channel":
                return
            if not is_permanent(e):
                raise
            # e.g. a guest account: the channel and its header are still worth having
            log.error("inviting %s to %s failed (%s)", users, channel, slack_error(e))

    def _post(self, channel: str, news: DealNews) -> None:
        blocks = [header(news.title), *sections(esc(line) for line in news.lines)]
        if news.seats:
            ids = slack_ids(self.app, (s.user_id for s in news.seats))
            who = {s.user_id: (f"<@{ids[s.user_id]}>" if s.user_id in ids else esc(s.name)) for s in news.seats}
            team = " · ".join(f"{s.role} {who[s.user_id]}" for s in news.seats)
            blocks += sections([render("notices.kickoff.team", news.lang, team=team)])
            for c in news.checklists:
                title = render("notices.kickoff.checklist", news.lang, role=c.seat.role, name=who[c.seat.user_id])
                blocks += sections([f"*{title}*", *(f"• {esc(item)}" for item in c.items)])
        text = esc("\n".join([news.title, *news.lines]))
        self.client.chat_postMessage(channel=channel, text=text[:3000], blocks=blocks[:MAX_BLOCKS],
                                     unfurl_links=False, unfurl_media=False)
