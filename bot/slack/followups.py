"""Field lists and follow-up buttons under a reply about one record (a lead, a deal, a quote).

A follow-up button names a tool and its arguments; a click runs that tool as the clicking user,
through the same runner as chat (so permissions, confirmations and errors behave the same), and
the answer goes in the thread.
"""
from __future__ import annotations

import json
import re

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import blocks
from prompts.messages import render
from tools import runner
from tools.format import money

FOLLOW_UP = "ltc_follow_up"
LEAD_OPEN = ("new", "contacted", "nurturing")

# tool that answered → the next steps offered: (label key, tool, argument name, where the ref is)
NEXT: dict[str, list[tuple[str, str, str, str]]] = {
    "create_lead": [("qualify", "qualify_lead", "lead", "lead"), ("convert", "convert_lead", "lead", "lead")],
    "update_lead": [("qualify", "qualify_lead", "lead", "lead"), ("convert", "convert_lead", "lead", "lead")],
    "qualify_lead": [("convert", "convert_lead", "lead", "lead")],
    "convert_lead": [("what_next", "what_next", "opportunity", "conversion.opportunity_ref")],
    "create_opportunity": [("what_next", "what_next", "opportunity", "deal"),
                           ("advance", "advance_stage", "opportunity", "deal")],
    "update_opportunity": [("what_next", "what_next", "opportunity", "deal")],
    "advance_stage": [("what_next", "what_next", "opportunity", "deal")],
    "generate_quote": [("submit_quote", "submit_quote", "quote", "quote")],
    "submit_quote": [("send_quote", "send_quote", "quote", "quote")],
}


def _ref(result: dict, path: str) -> str | None:
    value: object = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        value = value.get("ref")
    return value if isinstance(value, str) and value else None


def extra_blocks(outcome, locale: str) -> list[dict]:
    """Fields and buttons for an ok outcome about one record; nothing otherwise."""
    if outcome.status != "ok" or not outcome.result:
        return []
    out: list[dict] = []
    fields = _fields(outcome.result, locale)
    if fields:
        out.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                                                  for k, v in fields[:10]]})
    buttons = []
    for label, tool, arg, where in NEXT.get(outcome.tool, []):
        ref = _ref(outcome.result, where)
        if ref is None or not _offered(outcome.result, tool):
            continue
        value = json.dumps({"tool": tool, "args": {arg: ref}}, ensure_ascii=False)
        buttons.append({"type": "button", "action_id": f"{FOLLOW_UP}_{len(buttons)}", "value": value,
                        "text": {"type": "plain_text", "text": render(f"slack.next.{label}", locale, ref=ref)[:75]}})
    if buttons:
        out.append({"type": "actions", "elements": buttons[:5]})
    return out


def _offered(result: dict, tool: str) -> bool:
    """Only steps the record's state allows: no "qualify" on a converted lead, no "submit" twice."""
    lead, quote = result.get("lead") or {}, result.get("quote") or {}
    if tool == "qualify_lead" and lead:
        return lead.get("status") in LEAD_OPEN
    if tool == "convert_lead" and lead:
        return lead.get("status") == "qualified"
    if tool == "submit_quote":
        return quote.get("status") == "draft"
    if tool == "send_quote":
        return quote.get("status") == "approved"
    return True


def _fields(result: dict, locale: str) -> list[tuple[str, str]]:
    if isinstance(result.get("deal"), dict):
        d = result["deal"]
        return [(render("slack.field.deal", locale), f"{d['ref']} {d['name']}"),
                (render("slack.field.account", locale), d.get("account_name", "-")),
                (render("slack.field.stage", locale), render(f"tool.deal.stage.{d['stage']}", locale)),
                (render("slack.field.amount", locale), money(d["amount"], d["currency"])),
                (render("slack.field.close", locale), str(d.get("expected_close_date") or "-")),
                (render("slack.field.owner", locale), d.get("owner_name", "-"))]
    if isinstance(result.get("lead"), dict):
        x = result["lead"]
        return [(render("slack.field.lead", locale), f"{x['ref']} {x['company']}"),
                (render("slack.field.contact", locale), x.get("contact_name") or "-"),
                (render("slack.field.status", locale), x.get("status", "-")),
                (render("slack.field.source", locale), x.get("source", "-"))]
    if isinstance(result.get("quote"), dict):
        q = result["quote"]
        return [(render("slack.field.quote", locale), f"{q['ref']} v{q.get('version', 1)}"),
                (render("slack.field.deal", locale), f"{result.get('deal_ref', '')} {result.get('deal_name', '')}"),
                (render("slack.field.status", locale), q.get("status", "-")),
                (render("slack.field.amount", locale), money(q["total"], q["currency"]))]
    return []


def register_follow_ups(app: App, services, answered) -> None:
    """`answered(person, outcome, text, channel, thread_ts)` files the answer in the thread's memory."""
    def ack_now(ack: Ack) -> None:
        ack()

    def on_follow_up(body: dict, client: WebClient) -> None:
        user = (body.get("user") or {}).get("id")
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        person = services.identity.resolve(user, client)
        if person.user_id is None or not channel:
            if channel:
                client.chat_postEphemeral(channel=channel, user=user, text=blocks.onboarding_text(person.email))
            return
        step = json.loads(body["actions"][0]["value"])
        ctx = services.agent.tool_context(person.actor(), person.locale)
        outcome = runner.invoke(step["tool"], step["args"], ctx)  # as the clicker: RBAC decides, not the button
        proposals = [outcome.proposal] if outcome.proposal is not None else []
        text = outcome.proposal.summary if outcome.proposal is not None else outcome.text
        reply = blocks.reply_blocks("" if proposals else text, proposals, person.locale)
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text,
                                blocks=reply + extra_blocks(outcome, person.locale))
        answered(person, outcome, text, channel, thread_ts)

    app.action(re.compile(f"^{FOLLOW_UP}_\\d+$"))(ack=ack_now, lazy=[on_follow_up])
