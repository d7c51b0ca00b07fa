"""Outbox sink that coaches the iron triangle: each role's checklist on a stage change or gate request.

Notices go to a Notifier. The console prints them; Slack and WeCom post them in the deal's
thread or channel (their issues plug in a Notifier of their own).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from domain.model.vocab import GATE_KINDS, MemberRole
from domain.model.opportunities import OPEN_STAGES
from prompts.messages import render


@dataclass(frozen=True)
class Notice:
    key: str  # outbox key + recipient: the same notice is never posted twice
    opportunity_id: int
    user_id: int
    role: str
    lang: str
    text: str


class Notifier(Protocol):
    def notify(self, notice: Notice) -> None: ...


class RecordingNotifier:
    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self._seen: set[str] = set()

    def notify(self, notice: Notice) -> None:
        if notice.key not in self._seen:
            self._seen.add(notice.key)
            self.notices.append(notice)


class ChecklistNudger:
    """Sink for domain.outbox: turns OpportunityStageChanged / ApprovalRequested into notices."""

    def __init__(self, uow_factory: Callable, playbooks, notifier: Notifier) -> None:
        self.uow_factory = uow_factory
        self.playbooks = playbooks
        self.notifier = notifier

    def handle(self, key: str, topic: str, payload: dict) -> None:
        if topic == "OpportunityStageChanged" and payload["to_stage"] in {s.value for s in OPEN_STAGES}:
            self._nudge(key, payload["opportunity_id"], stage=payload["to_stage"], gate=None)
        elif topic == "ApprovalRequested" and payload["kind"] in {g.value for g in GATE_KINDS} \
                and payload["subject_type"] == "opportunity":
            self._nudge(key, payload["subject_id"], stage=None, gate=payload["kind"])

    def _nudge(self, key: str, opp_id: int, *, stage: str | None, gate: str | None) -> None:
        # Read side only: the sink runs after commit and changes nothing.
        with self.uow_factory() as uow:
            opp = uow.opportunities.get(opp_id)
            if opp is None:
                return
            seats = {"AR": opp.owner_id, "SR": opp.seat(MemberRole.SR), "FR": opp.seat(MemberRole.FR)}
            # Plain values only: the unit of work's objects expire when it closes.
            locales = {uid: user.locale for uid in seats.values()
                       if uid is not None and (user := uow.users.get(uid)) is not None and user.active}
            ref, name, current = opp.ref, opp.name, opp.stage
        for role, uid in seats.items():
            if uid not in locales:
                continue
            lang = locales[uid] if locales[uid] in ("en", "zh") else "en"
            items = self.playbooks.checklists(stage=stage, gate=gate, lang=lang).get(role, [])
            if not items:
                continue
            head = (render("nudge.gate_requested", lang, gate=gate, ref=ref, name=name, role=role) if gate
                    else render("nudge.stage_entered", lang, ref=ref, name=name, stage=current, role=role))
            body = "\n".join(render("nudge.item", lang, item=i) for i in items)
            self.notifier.notify(Notice(key=f"{key}:{role}:{uid}", opportunity_id=opp_id, user_id=uid, role=role,
                                        lang=lang, text=f"{head}\n{body}"))
