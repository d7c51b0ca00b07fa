"""WeCom userid → domain user, by the `wecom_userid` stored on the user (case-insensitive, as WeCom
matches userids). Looked up on every message (one indexed read), never cached: a userid moved to
someone else by `ltc link` in another process must act as the new person at once. A deactivated
user counts as unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.actor import Actor, Channel


@dataclass(frozen=True)
class WeComPerson:
    userid: str
    user_id: int | None  # None: not a person in LTC Copilot
    locale: str = "zh"
    name: str = ""

    def actor(self) -> Actor:
        assert self.user_id is not None
        return Actor(self.user_id, Channel.WECOM, via_agent=True)


class WeComIdentity:
    def __init__(self, app) -> None:
        self.app = app

    def resolve(self, userid: str) -> WeComPerson:
        with self.app.uow() as uow:
            user = uow.users.by_wecom_id(userid)
            if user is None or not user.active:
                return WeComPerson(userid, None)
            return WeComPerson(userid, user.id, user.locale if user.locale in ("en", "zh") else "zh",
                               user.display_name())
