"""Who acts, through which channel: every service call carries one."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Channel(StrEnum):
    SLACK = "slack"
    WECOM = "wecom"
    API = "api"
    CLI = "cli"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    user_id: int
    channel: Channel = Channel.CLI
    via_agent: bool = False
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def __post_init__(self) -> None:
        # Accept plain strings from edges, keep one spelling inside.
        object.__setattr__(self, "channel", Channel(self.channel))
