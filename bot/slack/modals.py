"""The four /ltc modals: opened by the `ltc_open_modal` button, the `ltc_new_lead` shortcut or /ltc lead …;
their submissions run one tool each.

A submission is checked AND run inside the ack: Slack shows inline errors only in the ack's answer
(`response_action: errors`), so bad input, and a tool error that names a field, stay on the form and
nothing is written. The tools take milliseconds and nothing slow (agent, playbook search) is touched.
The DM with the result is sent after ack() in the same function: it needs the outcome, and Bolt
answers once the function returns (process_before_response=True), so two quick Web API calls sit
inside Slack's 3 s; nothing slow runs here.
"""
from __future__ import annotations

import logging
import re
from decimal import Decimal

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.agent.offline import numbers
from bot.slack import blocks, modal_views
from bot.slack.identity import SlackPerson
from domain.actor import Actor, Channel
from domain.errors import LTCError
from domain.services import billing, catalog, contracts
from prompts.messages import render
from tools import runner
from tools.context import ToolContext
from tools.errors import from_domain
from tools.resolve import number

log = logging.getLogger("ltc.slack")
OPEN_MODAL, NEW_LEAD_SHORTCUT = "ltc_open_modal", "ltc_new_lead"
TOOLS = {"new_lead": "create_lead", "new_opportunity": "create_opportunity", "build_quote": "generate_quote",
         "record_payment": "record_payment"}
KIND_OF = {modal_views.callback_id(kind): kind for kind in modal_views.KINDS}
LINE_FIELD = re.compile(r"^lines\.(\d+)\.(product|quantity|discount_pct)")
PERCENT = re.compile(r"^(\d{1,3}(?:\.\d+)?)\s*%?$")
ERROR_LIMIT = 500  # an inline error is a line under the field, not a report


def register(app: App, services) -> None:
    def on_open(ack: Ack, body: dict, client: WebClient, respond) -> None:
        ack()  # then open at once: the trigger_id is good for 3 s
        kind = ((body.get("actions") or [{}])[0]).get("value")
        if kind in modal_views.KINDS:
            open_modal(services, client, kind, user=body["user"]["id"], trigger_id=body["trigger_id"],
                       channel=(body.get("channel") or {}).get("id"), respond=respond)

    def on_shortcut(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        open_modal(services, client, "new_lead", user=body["user"]["id"], trigger_id=body["trigger_id"])

    def on_submit(ack: Ack, body: dict, view: dict, client: WebClient) -> None:
        submit(services, ack, body, view, client)

    app.action(OPEN_MODAL)(on_open)
    app.shortcut(NEW_LEAD_SHORTCUT)(on_shortcut)
    for callback in KIND_OF:
        app.view(callback)(on_submit)


# -- opening ------------------------------------------------------------------------------------

def open_modal(services, client: WebClient, kind: str, *, user: str, trigger_id: str, channel: str | None = None,
               respond=None) -> None:
    person = services.identity.resolve(user, client)
    if person.user_id is None:
        onboard(client, person, channel=channel, respond=respond)
        return
    products = _products(services, person) if kind == "build_quote" else []
    client.views_open(trigger_id=trigger_id, view=modal_views.view(kind, person.locale, products=products))


def _products(services, person: SlackPerson) -> list[tuple[str, str]]:
    try:
        with services.app.uow() as uow:
            found = catalog.list_products(actor=_actor(person), uow=uow)
    except LTCError:  # may not see the catalog: the form asks for a typed product instead
        return []
    zh = person.locale == "zh"
    return [(p.sku, f"{p.sku} · {p.name_zh if zh and p.name_zh else p.name_en}") for p in found]


# -- submitting ---------------------------------------------------------------------------------

def submit(services, ack: Ack, body: dict, view: dict, client: WebClient) -> None:
    user = body["user"]["id"]  # who submits, from the signed payload
    person = services.identity.resolve(user, client)
    if person.user_id is None:
        ack()
        onboard(client, person)
        return
    kind, locale = KIND_OF[view["callback_id"]], person.locale
    args, rows, errors = read_form(kind, (view.get("state") or {}).get("values") or {}, locale)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    ctx = tool_context(services, person)
    outcome, errors = _run(kind, args, rows, ctx)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    ack()  # closes the modal; the result goes to the user's DM
    proposals = [outcome.proposal] if outcome.proposal else []
    # Next to Confirm / Cancel the "please confirm" sentence would say it twice: the buttons ask.
    dm(client, user, outcome.text, blocks.reply_blocks("" if proposals else outcome.text, proposals, locale))


def tool_context(services, person: SlackPerson) -> ToolContext:
    """Like Agent.tool_context but without the playbook search: loading it can take seconds, which the
    3 s ack cannot spare, and no form tool reads it."""
    settings = services.app.settings
    return ToolContext(actor=_actor(person), uow=services.app.uow, locale=person.locale,
                       confirm_tools=frozenset(settings.confirm_tools),
                       confirm_ttl_minutes=settings.confirmation_ttl_minutes,
                       approval_ttl_hours=settings.approval_ttl_hours)


def _actor(person: SlackPerson) -> Actor:
    return Actor(person.user_id, Channel.SLACK)  # a person filling a form, not the agent


def _run(kind: str, args: dict, rows: list[int], ctx: ToolContext):
    """The tool's outcome, or the inline errors when it refused (on the block its error names)."""
    if kind == "record_payment" and args.get("contract"):
        try:
            args["contract"] = _contract_of_invoice(args["contract"], ctx)
        except LTCError as e:
            return None, {"contract": _short(from_domain(e, ctx.locale).text_in(ctx.locale))}
    outcome = runner.invoke(TOOLS[kind], args, ctx)
    if outcome.status != "error":
        return outcome, {}
    return outcome, {block_for(kind, outcome.error.field if outcome.error else None, rows): _short(outcome.text)}


def _contract_of_invoice(text: str, ctx: ToolContext) -> str:
    """The payment tool takes a contract or a deal; an invoice number stands for the contract it bills."""
    canon = number(text)
    if canon is None or not canon.startswith("INV-"):
        return text
    with ctx.uow() as uow:
        invoice = billing.get_invoice(canon, actor=ctx.actor, uow=uow)
        return contracts.get_contract(invoice.contract_id, actor=ctx.actor, uow=uow).number


def block_for(kind: str, field: str | None, rows: list[int]) -> str:
    """The block showing a tool error: the field it names (quote line i → that line's row), else the first."""
    ids = block_ids(kind)
    m = LINE_FIELD.match(field or "")
    if m and int(m.group(1)) < len(rows):
        return f"{m.group(2)}_{rows[int(m.group(1))]}"
    head = (field or "").split(".")[0]
    if head == "lines":
        return "product_1"
    return head if head in ids else ids[0]


def block_ids(kind: str) -> list[str]:
    return [b["block_id"] for b in modal_views.view(kind, "en")["blocks"]]


def _short(text: str) -> str:
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT - 1] + "…"


# -- reading the form ---------------------------------------------------------------------------

def read_form(kind: str, values: dict, locale: str) -> tuple[dict, list[int], dict[str, str]]:
    """The tool's raw arguments, the quote rows used (for error placement) and inline errors by block."""
    form = {block: _value(actions) for block, actions in values.items()}
    errors: dict[str, str] = {}
    args: dict = {}
    rows: list[int] = []
    required = {"new_lead": ("company", "contact_name"), "new_opportunity": ("account", "name", "amount"),
                "build_quote": ("opportunity",), "record_payment": ("amount", "bank_ref")}[kind]
    for block in required:
        if not form.get(block):
            errors[block] = render("slack.modals.error.required", locale)
    if kind == "build_quote":
        args["opportunity"] = form.get("opportunity")
        args["lines"], rows = _lines(form, errors, locale)
    else:
        args.update({k: v for k, v in form.items() if v})
        if form.get("amount"):
            _amount(form["amount"], args, errors, locale)
    if kind == "record_payment" and not (form.get("contract") or form.get("account")):
        errors["contract"] = render("slack.modals.error.payer", locale)
    return args, rows, errors


def _value(actions: dict) -> str | None:
    element = next(iter(actions.values()), None) or {}
    raw = element.get("value") or element.get("selected_date") or (element.get("selected_option") or {}).get("value")
    return (raw.strip() or None) if isinstance(raw, str) else None


def _amount(raw: str, args: dict, errors: dict, locale: str) -> None:
    parsed = numbers.amount(raw)  # 1,200,000 · 2M · 200万 · $300k; None for 0, negatives and words
    if parsed is None:
        errors["amount"] = render("slack.modals.error.amount", locale)
        return
    args["amount"] = parsed.value
    if parsed.currency:  # "$300k" says USD louder than the currency picker's default
        args["currency"] = parsed.currency


def _lines(form: dict, errors: dict, locale: str) -> tuple[list[dict], list[int]]:
    lines, rows = [], []
    for n in range(1, modal_views.QUOTE_ROWS + 1):
        product, qty, disc = (form.get(f"{f}_{n}") for f in ("product", "quantity", "discount_pct"))
        if not (product or qty or disc):
            continue
        if not product:
            errors[f"product_{n}"] = render("slack.modals.error.product", locale)
        quantity = numbers.amount(qty or "")
        if quantity is None or quantity.currency:
            errors[f"quantity_{n}"] = render("slack.modals.error.quantity" if qty else "slack.modals.error.required",
                                             locale)
        discount = _discount(disc) if disc else "0"
        if discount is None:
            errors[f"discount_pct_{n}"] = render("slack.modals.error.discount", locale)
        if product and quantity is not None and discount is not None:
            lines.append({"product": product, "quantity": quantity.value, "discount_pct": discount})
            rows.append(n)
    if not lines and not any(k.startswith(("product_", "quantity_", "discount_pct_")) for k in errors):
        errors["product_1"] = render("slack.modals.error.required", locale)
    return lines, rows


def _discount(raw: str) -> str | None:
    """'15', '15%', '12.5' or the Chinese 九折 / 八五折 → percent off, from 0 to 100; else None."""
    m = PERCENT.match(raw.strip())
    if m:
        value = Decimal(m.group(1))
        return numbers.plain(value) if value <= 100 else None
    return numbers.discount(raw)


# -- answering ----------------------------------------------------------------------------------

def dm(client: WebClient, user: str, text: str, blocks_: list[dict] | None = None) -> None:
    channel = client.conversations_open(users=user)["channel"]["id"]
    client.chat_postMessage(channel=channel, text=text, blocks=blocks_ or None)


def onboard(client: WebClient, person: SlackPerson, *, channel: str | None = None, respond=None) -> None:
    """An unknown person: the onboarding text only they see (no modal, no data)."""
    text = blocks.onboarding_text(person.email)
    try:
        if respond is not None:
            respond(text=text, response_type="ephemeral", replace_original=False)
        elif channel:
            client.chat_postEphemeral(channel=channel, user=person.slack_user_id, text=text)
        else:  # a shortcut or App Home: no conversation to answer in
            dm(client, person.slack_user_id, text)
    except SlackApiError as e:
        log.info("onboarding %s failed: %s", person.slack_user_id, e.response.get("error"))
