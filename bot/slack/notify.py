"""Outbox sink: each person's notices (bot/notices.py) as a Slack DM, in their language, once.

Topics: LeadAssigned (the new owner), QuoteExpiring (the deal's AR), DeliveryMilestoneDue (FR and
AR), CollectionsDigestDue (the AR, one digest a day that also carries the day's dunning steps;
InvoiceReminderDue gets no DM of its own). People without a `slack_user_id` are left to the other
surfaces.

Delivery: conversations.open → chat.postMessage; a notice is recorded in the NoticeLog only after
its post succeeded, so a retried outbox message posts only what is still missing. Slack errors:
permanent ones (missing scope, bad token, user gone, blocks refused …) cannot be cured by a retry
and are logged as errors; anything else (rate limited after the SDK's retries, Slack 5xx, network)
is raised after the other recipients were served, so the outbox retries the message.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.notice_log import NoticeLog
from bot.notices import DM_TOPICS, Notice, NoticeBuilder
from bot.slack.files import post_charts
from bot.slack.blocks import SECTION_LIMIT
from domain.actor import Channel

log = logging.getLogger("ltc.slack")

HEADER_LIMIT = 150  # plain_text in a header block
MAX_BLOCKS = 50  # per message

# Errors a retry cannot cure: the workspace, token, scopes or recipient must change first.
PERMANENT = frozenset({
    "missing_scope", "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "not_allowed_token_type", "restricted_action", "team_access_not_granted",
    "ekm_access_denied", "org_login_required", "method_deprecated", "channel_not_found", "is_archived",
    "not_in_channel", "user_not_found", "user_disabled", "user_not_visible", "users_not_found",
    "cannot_dm_bot", "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_name",
    "invalid_name_specials", "invalid_name_maxlength", "invalid_name_required", "invalid_name_punctuation",
    "name_taken", "cant_invite", "cant_invite_self", "user_is_restricted", "ura_max_channels",
})


def slack_error(e: SlackApiError) -> str:
    data = getattr(e.response, "data", None)
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else f"http {e.response.status_code}"


def is_permanent(e: SlackApiError) -> bool:
    return slack_error(e) in PERMANENT


def esc(text: str) -> str:
    """Names people typed must not turn into Slack markup (mentions, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sections(lines: Iterable[str]) -> list[dict]:
    """mrkdwn sections of whole lines, each within Slack's section limit."""
    out: list[dict] = []
    chunk = ""
    for line in lines:
        line = line[:SECTION_LIMIT]
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            out.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    return out


def header(title: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": title[:HEADER_LIMIT], "emoji": True}}


def notice_blocks(notice: Notice) -> list[dict]:
    return [header(notice.title), *sections(esc(line) for line in notice.lines)][:MAX_BLOCKS]


def notice_text(notice: Notice) -> str:
    """The fallback text (notifications, screen readers): the title and the first lines."""
    return esc("\n".join([notice.title, *notice.lines]))[:SECTION_LIMIT]


def slack_ids(app, user_ids: Iterable[int]) -> dict[int, str]:
    """Domain user id → Slack user id, for active people Slack knows."""
    with app.uow() as uow:
        users = (uow.users.get(uid) for uid in set(user_ids))
        return {u.id: u.slack_user_id for u in users if u is not None and u.active and u.slack_user_id}


class SlackNotifier:
    """`handle(key, topic, payload)`: an outbox sink for the topics in TOPICS."""

    TOPICS = DM_TOPICS

    def __init__(self, services, client: WebClient) -> None:
        self.app = services.app
        self.client = client
        self.builder = NoticeBuilder(self.app, Channel.SLACK)
        self.log = NoticeLog(self.app.engine, "slack")

    def handle(self, key: str, topic: str, payload: dict) -> None:
        if topic not in self.TOPICS:
            return
        notices = self.builder.notices(key, topic, payload)
        if not notices:
            return
        ids = slack_ids(self.app, (n.user_id for n in notices))
        retry: SlackApiError | None = None
        for notice in notices:
            slack_user = ids.get(notice.user_id)
            if slack_user is None or self.log.sent(notice.key):
                continue
            try:
                self.post(slack_user, notice)
            except SlackApiError as e:
                if is_permanent(e):
                    log.error("notice %s to %s not delivered (%s): fix the Slack app or the user, it is not retried",
                              notice.key, slack_user, slack_error(e))
                    continue
                retry = retry or e  # the others still get theirs now; the outbox retries the rest
                continue
            self.log.record(notice.key)
        if retry is not None:
            raise retry

    def post(self, slack_user: str, notice: Notice) -> None:
        channel = self.client.conversations_open(users=slack_user)["channel"]["id"]
        self.client.chat_postMessage(channel=channel, text=notice_text(notice), blocks=notice_blocks(notice),
                                     unfurl_links=False, unfurl_media=False)
        if notice.chart is not None:  # the digest's picture; a failure is logged, the text is out already
            post_charts(self.client, channel, None, [notice.chart])
