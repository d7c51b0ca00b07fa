"""WeCom userid → domain user, by the `wecom_userid` stored on the user (case-insensitive, as WeCom
matches userids). Known people are cached in-process; unknown ones are not, so adding their WeCom
id in LTC Copilot takes effect on their next message. A deactivated user counts as unknown.
"""
from __future__ import annotations

import threading
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
        self._cache: dict[str, WeComPerson] = {}
        self._lock = threading.Lock()

    def resolve(self, userid: str) -> WeComPerson:
        key = userid.lower()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        with self.app.uow() as uow:
            user = uow.users.by_wecom_id(userid)
            if user is None or not user.active:
                return WeComPerson(userid, None)
            person = WeComPerson(userid, user.id, user.locale if user.locale in ("en", "zh") else "zh",
                                 user.display_name())
        with self._lock:
            self._cache[key] = person
        return person

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
