"""/ltc: help, a modal by name (/ltc lead | opp | quote | payment, 线索 | 商机 | 报价 | 回款), else a quick
command for the agent, answered so that only the caller sees it.

The modal opens in the ack function, right after ack(): its trigger_id is good for 3 s only. Help and
quick commands run in the lazy listener (the agent may take a while). Both start together, so each
one checks the text and leaves the other's case alone.
"""
from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import blocks, modal_views, modals
from domain.errors import LTCError
from prompts.messages import render

log = logging.getLogger("ltc.slack")
COMMAND = "/ltc"
MODAL_WORDS = {
    "lead": "new_lead", "线索": "new_lead",
    "opp": "new_opportunity", "opportunity": "new_opportunity", "deal": "new_opportunity", "商机": "new_opportunity",
    "quote": "build_quote", "报价": "build_quote",
    "payment": "record_payment", "回款": "record_payment",
}
HELP_WORDS = {"", "help", "?", "帮助"}


def modal_kind(text: str) -> str | None:
    """The modal a bare word asks for; `/ltc quote OPP-12: 3 x …` is a quick command, not a form."""
    return MODAL_WORDS.get(text.strip().lower())


def register(app: App, services) -> None:
    """/ltc and everything its help and forms need (the modals' button, shortcut and submissions)."""
    modals.register(app, services)

    def on_command_ack(ack: Ack, body: dict, client: WebClient, respond) -> None:
        ack()
        kind = modal_kind(body.get("text") or "")
        if kind:
            modals.open_modal(services, client, kind, user=body["user_id"], trigger_id=body["trigger_id"],
                              channel=body.get("channel_id"), respond=respond)

    def on_command(body: dict, client: WebClient, respond) -> None:
        if not modal_kind(body.get("text") or ""):
            answer(services, body, client, respond)

    app.command(COMMAND)(ack=on_command_ack, lazy=[on_command])


def answer(services, body: dict, client: WebClient, respond) -> None:
    user, text = body["user_id"], (body.get("text") or "").strip()
    person = services.identity.resolve(user, client)
    if person.user_id is None:
        modals.onboard(client, person, channel=body.get("channel_id"), respond=respond)
        return
    if text.lower() in HELP_WORDS:
        _tell(client, body, respond, render("slack.ltc.help", person.locale), help_blocks(person.locale))
        return
    try:
        result = services.agent.reply(actor=person.actor(), text=text, thread_id=f"slack:cmd:{user}")
    except LTCError as e:  # e.g. deactivated meanwhile
        _tell(client, body, respond, e.message)
        return
    reply = result.text
    for proposal in result.proposals:  # the buttons ask; the sentence asking would say it twice
        reply = reply.replace(render("confirm.ask", result.locale, summary=proposal.summary,
                                     minutes=proposal.minutes), "").strip()
    _tell(client, body, respond, reply or result.text, blocks.reply_blocks(reply, result.proposals, result.locale))


def help_blocks(locale: str) -> list[dict]:
    buttons = [{"type": "button", "action_id": modals.OPEN_MODAL, "value": kind,
                "text": {"type": "plain_text", "text": render(f"slack.modals.title.{kind}", locale)}}
               for kind in modal_views.KINDS]
    return [blocks.text_section(render("slack.ltc.help", locale)),
            {"type": "actions", "block_id": "ltc_help_forms", "elements": buttons}]


def _tell(client: WebClient, body: dict, respond, text: str, blocks_: list[dict] | None = None) -> None:
    """Only the caller sees it: through the command's response_url (works in any conversation, the
    bot need not be a member), else an ephemeral message in the command's channel."""
    if respond is not None:
        respond(text=text, blocks=blocks_ or None, response_type="ephemeral")
    else:
        client.chat_postEphemeral(channel=body["channel_id"], user=body["user_id"], text=text, blocks=blocks_ or None)
