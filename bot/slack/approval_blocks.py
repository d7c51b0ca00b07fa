"""Block Kit for approval cards and the comment modal. Words come from prompts/cards.*.yaml."""
from __future__ import annotations

import json

from bot.approval_cards import ApprovalCard
from prompts.messages import render

APPROVE, REJECT, REVISE = "ltc_approve", "ltc_reject", "ltc_revise"
OUTCOME_OF = {APPROVE: "approve", REJECT: "reject", REVISE: "revise"}
COMMENT_MODAL = "ltc_approval_comment"
COMMENT_BLOCK, COMMENT_INPUT = "comment", "comment_text"


def card_blocks(card: ApprovalCard, *, can_decide: bool, note: str | None = None,
                waiting: str | None = None) -> list[dict]:
    """The card; buttons only while it is open and for someone who may decide it."""
    lang = card.lang
    blocks: list[dict] = []
    if note:  # a reminder or escalation sits on top of the card
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": note[:2900]}})
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": card.title[:150]}})
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{value}"[:2000]} for label, value in card.facts[:10]]
    blocks.append({"type": "section", "fields": fields})
    for role, items in card.checklist:
        body = "\n".join(f"☐ {item}" for item in items)
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*{render('card.checklist', lang, role=role)}*\n{body}"[:2900]}})
    if card.outcome:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": card.outcome[:2900]}})
    elif waiting:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": waiting}]})
    if card.is_open and can_decide:
        value = str(card.approval_id)
        blocks.append({"type": "actions", "block_id": f"ltc_approval_{card.approval_id}", "elements": [
            _button(APPROVE, render("card.approve", lang), value, "primary"),
            _button(REJECT, render("card.reject", lang), value, "danger"),
            _button(REVISE, render("card.revise", lang), value, None),
        ]})
    return blocks


def card_text(card: ApprovalCard) -> str:
    """The notification text (and what screen readers say)."""
    facts = " · ".join(value for _label, value in card.facts[:3])
    return f"{card.title}: {facts}" + (f"\n{card.outcome}" if card.outcome else "")


def comment_modal(approval_id: int, ref: str, outcome: str, lang: str, origin: dict) -> dict:
    """Reject and Request changes need a reason; the modal asks for it before anything is recorded."""
    return {
        "type": "modal", "callback_id": COMMENT_MODAL,
        "private_metadata": json.dumps({"approval_id": approval_id, "outcome": outcome, **origin}),
        "title": {"type": "plain_text", "text": render("card.comment_title", lang)[:24]},
        "submit": {"type": "plain_text", "text": render("card.comment_submit", lang)[:24]},
        "close": {"type": "plain_text", "text": render("card.comment_cancel", lang)[:24]},
        "blocks": [{
            "type": "input", "block_id": COMMENT_BLOCK, "optional": outcome == "approve",
            "label": {"type": "plain_text", "text": render(f"card.comment_label_{outcome}", lang, ref=ref)[:2000]},
            "hint": {"type": "plain_text", "text": render("card.comment_hint", lang)},
            "element": {"type": "plain_text_input", "action_id": COMMENT_INPUT, "multiline": True,
                        "max_length": 2000},
        }],
    }


def _button(action_id: str, text: str, value: str, style: str | None) -> dict:
    button = {"type": "button", "action_id": action_id, "value": value,
              "text": {"type": "plain_text", "text": text[:75]}}
    if style:
        button["style"] = style
    return button
