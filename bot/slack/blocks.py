"""Block Kit for the agent's replies and proposals. Texts come from prompts/slack.*.yaml."""
from __future__ import annotations

import re

from prompts.messages import render

SECTION_LIMIT = 2900  # Slack refuses section texts over 3000 characters
TABLE_RULE = re.compile(r"^-+( +-+)+\s*$", re.MULTILINE)  # the dashed rule under tools.format.table headers
CONFIRM, CANCEL = "ltc_confirm", "ltc_cancel"


def has_table(text: str) -> bool:
    return bool(TABLE_RULE.search(text))


def text_section(text: str) -> dict:
    body = text[:SECTION_LIMIT]
    if has_table(body):
        body = f"```{body}```"  # monospace keeps the columns aligned
    return {"type": "section", "text": {"type": "mrkdwn", "text": body}}


def proposal_blocks(proposal, locale: str) -> list[dict]:
    return [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*{render('slack.proposal_title', locale)}*\n{proposal.summary}"}},
        {"type": "actions", "block_id": f"ltc_proposal_{proposal.id}", "elements": [
            {"type": "button", "action_id": CONFIRM, "style": "primary", "value": proposal.token,
             "text": {"type": "plain_text", "text": render("slack.confirm_button", locale)}},
            {"type": "button", "action_id": CANCEL, "value": proposal.token,
             "text": {"type": "plain_text", "text": render("slack.cancel_button", locale)}},
        ]},
    ]


def reply_blocks(text: str, proposals, locale: str) -> list[dict]:
    blocks = [text_section(text)] if text.strip() else []
    for proposal in proposals:
        blocks.extend(proposal_blocks(proposal, locale))
    return blocks


def onboarding_text(email: str | None) -> str:
    """Nobody knows this person's language yet: both, Chinese first."""
    return "\n\n".join(render("slack.onboarding", lang, email=email or render("slack.unknown_email", lang))
                       for lang in ("zh", "en"))
