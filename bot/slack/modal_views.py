"""Block Kit for the four /ltc modals. Block ids are the tool's argument names (quote lines: `product_1`,
`quantity_1`, `discount_pct_1`, …), so an error that names a field lands on its block.
Texts come from prompts/slack_modals.*.yaml."""
from __future__ import annotations

from domain.model.vocab import LeadSource
from prompts.messages import render

KINDS = ("new_lead", "new_opportunity", "build_quote", "record_payment")
QUOTE_ROWS = 5
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "GBP", "JPY")
MAX_OPTIONS = 100  # Slack's limit for a static_select; a bigger catalog is typed instead
OPTION_TEXT = 75


def callback_id(kind: str) -> str:
    return f"ltc_modal_{kind}"


def _plain(text: str, limit: int = 150) -> dict:
    return {"type": "plain_text", "text": text[:limit]}


def _input(block_id: str, label: str, element: dict, *, optional: bool) -> dict:
    element = {**element, "action_id": block_id}
    return {"type": "input", "block_id": block_id, "optional": optional, "label": _plain(label, 2000),
            "element": element}


def text(block_id: str, locale: str, *, label: str | None = None, optional: bool = False, hint: str | None = None,
         multiline: bool = False) -> dict:
    element: dict = {"type": "plain_text_input", "multiline": multiline}
    if hint:
        element["placeholder"] = _plain(render(f"slack.modals.hint.{hint}", locale))
    return _input(block_id, label or render(f"slack.modals.field.{block_id}", locale), element, optional=optional)


def select(block_id: str, label: str, options: list[tuple[str, str]], locale: str, *, optional: bool,
           initial: str | None = None) -> dict:
    opts = [{"text": _plain(name, OPTION_TEXT), "value": value} for value, name in options]
    element: dict = {"type": "static_select", "options": opts,
                     "placeholder": _plain(render("slack.modals.pick", locale))}
    chosen = next((o for o in opts if o["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return _input(block_id, label, element, optional=optional)


def datepicker(block_id: str, locale: str) -> dict:
    return _input(block_id, render(f"slack.modals.field.{block_id}", locale), {"type": "datepicker"}, optional=True)


def currency(locale: str) -> dict:
    return select("currency", render("slack.modals.field.currency", locale), [(c, c) for c in CURRENCIES], locale,
                  optional=True, initial="CNY")


def _modal(kind: str, locale: str, blocks: list[dict]) -> dict:
    return {"type": "modal", "callback_id": callback_id(kind),
            "title": _plain(render(f"slack.modals.title.{kind}", locale), 24),
            "submit": _plain(render("slack.modals.submit", locale), 24),
            "close": _plain(render("slack.modals.close", locale), 24), "blocks": blocks}


def new_lead(locale: str) -> list[dict]:
    sources = [(s.value, render(f"slack.modals.source.{s.value}", locale)) for s in LeadSource]
    return [text("company", locale), text("contact_name", locale),
            text("email", locale, optional=True), text("phone", locale, optional=True),
            select("source", render("slack.modals.field.source", locale), sources, locale, optional=True),
            text("notes", locale, optional=True, multiline=True)]


def new_opportunity(locale: str) -> list[dict]:
    return [text("account", locale, hint="account"), text("name", locale), text("amount", locale, hint="amount"),
            currency(locale), datepicker("expected_close_date", locale)]


def build_quote(locale: str, products: list[tuple[str, str]]) -> list[dict]:
    """Products as (sku, label): a pick-list when the catalog fits one, else typed SKU or name."""
    blocks = [text("opportunity", locale, hint="opportunity")]
    for n in range(1, QUOTE_ROWS + 1):
        optional = n > 1  # the first line is required; the others only when filled
        product_label = render("slack.modals.field.product", locale, n=n)
        if 0 < len(products) <= MAX_OPTIONS:
            blocks.append(select(f"product_{n}", product_label, products, locale, optional=optional))
        else:
            blocks.append(text(f"product_{n}", locale, label=product_label, optional=optional, hint="product"))
        blocks.append(text(f"quantity_{n}", locale, label=render("slack.modals.field.quantity", locale, n=n),
                           optional=optional, hint="quantity"))
        blocks.append(text(f"discount_pct_{n}", locale, optional=True, hint="discount_pct",
                           label=render("slack.modals.field.discount_pct", locale, n=n)))
    return blocks


def record_payment(locale: str) -> list[dict]:
    return [text("contract", locale, optional=True, hint="contract"),
            text("account", locale, label=render("slack.modals.field.payer", locale), optional=True, hint="account"),
            text("amount", locale, hint="amount"), currency(locale), datepicker("received_on", locale),
            text("bank_ref", locale, hint="bank_ref")]


def view(kind: str, locale: str, *, products: list[tuple[str, str]] = ()) -> dict:
    if kind == "build_quote":
        blocks = build_quote(locale, list(products))
    else:
        build = {"new_lead": new_lead, "new_opportunity": new_opportunity, "record_payment": record_payment}[kind]
        blocks = build(locale)
    return _modal(kind, locale, blocks)
