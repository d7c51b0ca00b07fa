"""WeCom template cards (模板卡片, button_interaction) for approvals and for confirmations.

A button's `key` comes back as the click's EventKey: `ltc_approve:<approval id>`, `ltc_reject:…`,
`ltc_revise:…`, `ltc_confirm:<token>`, `ltc_cancel:<token>`. A card that can no longer be acted on
keeps its buttons greyed out with `replace_text` saying why (WeCom's way to close a card).

WeCom shows at most 6 label/value rows; the card carries the subject in the title's description
and the next six facts, and whatever does not fit (the rest of the facts, the gate's checklist)
goes in a details message sent just before the card, so the content is the same as on Slack.
Lengths follow WeCom's advice (title 36, description 44, row label 10 and value 30 characters).
"""
from __future__ import annotations

import secrets

from bot.approval_cards import ApprovalCard
from prompts.messages import render

APPROVE, REJECT, REVISE = "ltc_approve", "ltc_reject", "ltc_revise"
CONFIRM, CANCEL = "ltc_confirm", "ltc_cancel"
OUTCOME_OF = {APPROVE: "approve", REJECT: "reject", REVISE: "revise"}
ROWS = 6
BLUE, GREY, RED, YELLOW = 1, 2, 3, 4  # WeCom button styles


def cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def task_id(prefix: str) -> str:
    """Unique per app (WeCom refuses a task id twice): letters, digits, _ - @ only, ≤ 128 bytes."""
    return f"{prefix}-{secrets.token_hex(6)}"


def parse_key(key: str) -> tuple[str, str]:
    action, _, value = (key or "").partition(":")
    return action, value


def _end_state(card: ApprovalCard) -> str:
    if card.status == "rejected" and card.outcome and card.outcome.startswith(render("card.status.revise", card.lang)):
        return "revise"
    return {"cancelled": "cancelled_request"}.get(card.status, card.status)


def approval_card(card: ApprovalCard, *, task: str, can_decide: bool, note: str | None = None,
                  waiting: str | None = None) -> dict:
    lang = card.lang
    subject, *facts = card.facts
    value = str(card.approval_id)
    data = {
        "card_type": "button_interaction",
        "source": {"desc": render("wecom.source", lang), "desc_color": 1},
        "main_title": {"title": cut(card.title, 36), "desc": cut(subject[1], 44)},
        "horizontal_content_list": [{"keyname": cut(label, 10), "value": cut(text, 30)}
                                    for label, text in facts[:ROWS]],
        "task_id": task,
        "button_list": [{"text": render("card.approve", lang), "style": BLUE, "key": f"{APPROVE}:{value}"},
                        {"text": render("card.revise", lang), "style": YELLOW, "key": f"{REVISE}:{value}"},
                        {"text": render("card.reject", lang), "style": RED, "key": f"{REJECT}:{value}"}],
    }
    sub = card.outcome or waiting or note
    if sub:
        data["sub_title_text"] = cut(sub, 112)
    if not card.is_open:
        data["replace_text"] = render(f"wecom.replace.{_end_state(card)}", lang)
    elif not can_decide:
        data["replace_text"] = render("wecom.replace.waiting" if waiting else "wecom.replace.not_yours", lang)
    return data


def details_text(card: ApprovalCard, note: str | None = None) -> str | None:
    """What the card cannot hold: the facts past the sixth row and the checklist per role."""
    lines = [note] if note else []
    extra = card.facts[1 + ROWS:]
    if extra or card.checklist:
        lines.append(render("wecom.card_details", card.lang, ref=card.ref))
        lines += [f"{label}：{text}" if card.lang == "zh" else f"{label}: {text}" for label, text in extra]
        for role, items in card.checklist:
            lines.append(render("card.checklist", card.lang, role=role))
            lines += [f"☐ {item}" for item in items]
    return "\n".join(lines) if lines else None


def proposal_card(summary: str, token: str, lang: str, *, task: str) -> dict:
    return {
        "card_type": "button_interaction",
        "source": {"desc": render("wecom.source", lang), "desc_color": 1},
        "main_title": {"title": render("wecom.proposal_title", lang)},
        "sub_title_text": cut(summary, 112),
        "task_id": task,
        "button_list": [{"text": render("wecom.confirm_button", lang), "style": BLUE, "key": f"{CONFIRM}:{token}"},
                        {"text": render("wecom.cancel_button", lang), "style": GREY, "key": f"{CANCEL}:{token}"}],
    }


def closed(card: dict, replace: str, sub: str | None = None) -> dict:
    """The same card with its buttons greyed out and `replace` on them."""
    data = dict(card, replace_text=replace)
    if sub:
        data["sub_title_text"] = cut(sub, 112)
    return data
