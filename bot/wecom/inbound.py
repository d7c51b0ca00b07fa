"""Callback XML → what arrived. The envelope is read before its signature is checked, so it is
parsed with defusedxml (no entities, no DTDs): an unauthenticated body must not cost us anything.
"""
from __future__ import annotations

from dataclasses import dataclass

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from domain.errors import ValidationFailed

MAX_BODY = 64 * 1024  # a WeCom callback is a few hundred bytes; anything this big is not one


@dataclass(frozen=True)
class Inbound:
    from_user: str
    create_time: int
    msg_type: str
    content: str = ""
    msg_id: str | None = None
    event: str | None = None
    event_key: str = ""
    task_id: str | None = None
    card_type: str | None = None
    response_code: str | None = None
    agent_id: str | None = None

    @property
    def is_card_click(self) -> bool:
        return self.msg_type == "event" and self.event == "template_card_event"

    def dedup_key(self) -> str:
        """What makes a delivery the same one again: WeCom retries unanswered callbacks."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        if self.is_card_click:  # the response code is new on every press and the same on WeCom's retries
            return f"card:{self.task_id}:{self.event_key}:{self.response_code or self.create_time}"[:200]
        return f"event:{self.from_user}:{self.create_time}:{self.event}:{self.event_key}"[:200]


def _root(xml: bytes):
    if len(xml) > MAX_BODY:
        raise ValidationFailed("callback body too large")
    try:
        return ElementTree.fromstring(xml, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException) as e:
        raise ValidationFailed(f"callback body is not acceptable XML: {e}") from None


def envelope(xml: bytes) -> str:
    """The Encrypt field of a POSTed callback."""
    encrypt = (_root(xml).findtext("Encrypt") or "").strip()
    if not encrypt:
        raise ValidationFailed("callback body has no Encrypt field")
    return encrypt


def parse(xml: bytes) -> Inbound:
    root = _root(xml)

    def text(tag: str) -> str | None:
        value = root.findtext(tag)
        return value.strip() if value is not None else None

    sender, msg_type = text("FromUserName"), text("MsgType")
    if not sender or not msg_type:
        raise ValidationFailed("callback message has no FromUserName or MsgType")
    try:
        created = int(text("CreateTime") or 0)
    except ValueError:
        created = 0
    return Inbound(from_user=sender, create_time=created, msg_type=msg_type,
                   content=root.findtext("Content") or "", msg_id=text("MsgId") or None,
                   event=text("Event"), event_key=text("EventKey") or "", task_id=text("TaskId"),
                   card_type=text("CardType"), response_code=text("ResponseCode"), agent_id=text("AgentID"))
