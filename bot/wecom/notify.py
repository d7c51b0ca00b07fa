"""Outbox sink: people's notices (bot/notices.py) and deal news as WeCom messages, once each.

Notices (LeadAssigned, QuoteExpiring, DeliveryMilestoneDue, CollectionsDigestDue) go to their
recipient. Deal news (gate outcomes and stage moves; the ATI kickoff with each role's checklist)
goes to each of the deal's AR, SR and FR: WeCom has no per-deal channel here, so the triangle hears
it one by one. People without a `wecom_userid` are left to the other surfaces.

Each message is recorded in the NoticeLog only after WeCom accepted it, so a retried outbox message
sends only what is still missing. Permanent WeCom errors (bad agent, user not in the app's visible
range, invalid content …) are logged as errors and not retried; transient ones (busy, network,
tokens) are raised after the other recipients were served, so the outbox retries the message.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from bot.notice_log import NoticeLog
from bot import charts
from bot.notices import DEAL_TOPICS, DM_TOPICS, DealNews, Notice, NoticeBuilder
from bot.wecom.api import WeComApiError
from domain.actor import Channel
from prompts.messages import render

log = logging.getLogger("ltc.wecom")


def wecom_ids(app, user_ids: Iterable[int]) -> dict[int, str]:
    """Domain user id → WeCom userid, for active people WeCom knows."""
    with app.uow() as uow:
        users = (uow.users.get(uid) for uid in set(user_ids))
        return {u.id: u.wecom_userid for u in users if u is not None and u.active and u.wecom_userid}


def news_lines(news: DealNews) -> list[str]:
    lines = list(news.lines)
    if news.seats:
        lines += [f"{s.role}: {s.name}" for s in news.seats]
    for checklist in news.checklists:
        lines.append(render("card.checklist", news.lang, role=checklist.seat.role))
        lines += [f"☐ {item}" for item in checklist.items]
    return lines


class WeComNotifier:
    TOPICS = DM_TOPICS | DEAL_TOPICS

    def __init__(self, services) -> None:
        self.app = services.app
        self.send = services.messenger
        self.builder = NoticeBuilder(self.app, Channel.WECOM, self.app.playbooks)
        self.log = NoticeLog(self.app.engine, "wecom")

    def handle(self, key: str, topic: str, payload: dict) -> None:
        if topic in DM_TOPICS:
            notices = self.builder.notices(key, topic, payload)
            ids = wecom_ids(self.app, (n.user_id for n in notices))
            self._deliver([(n.key, ids.get(n.user_id), lambda uid, n=n: self._notice(uid, n)) for n in notices])
        elif topic in DEAL_TOPICS:
            news = self.builder.deal_news(key, topic, payload)
            if news is None:
                return
            seats = news.seats or self.builder.deal_seats(news.opportunity_id)
            ids = wecom_ids(self.app, (s.user_id for s in seats))
            lines = news_lines(news)
            self._deliver([(f"{key}:news:{s.user_id}", ids.get(s.user_id),
                            lambda uid: self.send.notice(uid, news.title, lines)) for s in seats])

    def _notice(self, userid: str, notice: Notice) -> None:
        self.send.notice(userid, notice.title, notice.lines)
        if notice.chart is not None:  # the digest's picture; a failure is logged, the text is out already
            charts.deliver([notice.chart], lambda chart, png: self.send.image(userid, png, charts.filename(chart)),
                           where=f"wecom:{userid}")

    def _deliver(self, items: list[tuple[str, str | None, Callable[[str], object]]]) -> None:
        retry: WeComApiError | None = None
        for key, userid, post in items:
            if userid is None or self.log.sent(key):
                continue
            try:
                post(userid)
            except WeComApiError as e:
                if not e.transient:
                    log.error("notice %s to %s not delivered (%s): fix the WeCom app or the user; not retried",
                              key, userid, e)
                    continue
                retry = retry or e  # the others still get theirs now; the outbox retries the rest
                continue
            self.log.record(key)
        if retry is not None:
            raise retry
