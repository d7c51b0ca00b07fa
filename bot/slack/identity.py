"""Slack user id → domain user: the remembered `slack_user_id`, else the Slack profile's email.

A match by email is remembered on the user (audited, as the system user) so the next message
needs no Web API call. Answers are cached in-process; unknown people are not cached, so adding
them in LTC Copilot takes effect on their next message.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from domain.actor import Actor, Channel
from domain.errors import LTCError
from domain.services import users

log = logging.getLogger("ltc.slack")


@dataclass(frozen=True)
class SlackPerson:
    slack_user_id: str
    user_id: int | None  # None: not a person in LTC Copilot
    email: str | None = None
    locale: str = "zh"

    def actor(self) -> Actor:
        assert self.user_id is not None
        return Actor(self.user_id, Channel.SLACK, via_agent=True)


class IdentityResolver:
    def __init__(self, app) -> None:
        self.app = app
        self._cache: dict[str, SlackPerson] = {}
        self._lock = threading.Lock()

    def resolve(self, slack_user_id: str, client: WebClient) -> SlackPerson:
        with self._lock:
            hit = self._cache.get(slack_user_id)
        if hit is not None:
            return hit
        person = self._lookup(slack_user_id, client)
        if person.user_id is not None:
            with self._lock:
                self._cache[slack_user_id] = person
        return person

    def _lookup(self, slack_user_id: str, client: WebClient) -> SlackPerson:
        with self.app.uow() as uow:
            user = uow.users.by_slack_id(slack_user_id)
            if user is not None and user.active:
                return SlackPerson(slack_user_id, user.id, user.email, user.locale)
        email = self._email(slack_user_id, client)
        if not email:
            return SlackPerson(slack_user_id, None)
        system = self.app.system_actor(Channel.SLACK)  # before the unit of work: one at a time on SQLite
        with self.app.uow() as uow:
            user = uow.users.by_email(email)
            if user is None or not user.active:
                return SlackPerson(slack_user_id, None, email)
            try:
                users.link_slack_user(user.id, slack_user_id, actor=system, uow=uow)
                uow.commit()
            except LTCError as e:  # e.g. the Slack id is already someone else's: map, do not relink
                log.warning("could not remember Slack id %s for %s: %s", slack_user_id, email, e.message)
            return SlackPerson(slack_user_id, user.id, user.email, user.locale)

    @staticmethod
    def _email(slack_user_id: str, client: WebClient) -> str | None:
        try:
            info = client.users_info(user=slack_user_id)
        except SlackApiError as e:
            log.warning("users.info failed for %s: %s", slack_user_id, e.response.get("error"))
            return None
        user = info.get("user") or {}
        if user.get("is_bot") or user.get("deleted"):
            return None
        return (user.get("profile") or {}).get("email")
