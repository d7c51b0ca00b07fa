"""/ltc, the new-lead shortcut and the four modals through the real FastAPI + Bolt stack.

Signed slash commands and view submissions go in; the mock Web API records what the app sends out.
The rep (U0REP) works in Chinese, the default; the manager (U0MGR) is switched to English where a test
reads English labels.
"""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from bot.slack import modals
from domain.db import tables as t
from prompts.messages import names, render
from tests import builders


# -- signed requests -------------------------------------------------------------------------------

def command(rig, user: str, text: str, *, channel: str = "C0SALES"):
    """A slash command as Slack sends it (form-encoded); the response_url points at the mock."""
    return rig.post_form({"token": "x", "team_id": "T0LTC", "api_app_id": "A0LTC", "command": "/ltc",
                            "text": text, "user_id": user, "channel_id": channel, "trigger_id": "13345.98.abc",
                            "response_url": f"{rig.slack.base_url}respond"})


def submit(rig, user: str, kind: str, values: dict):
    """A view_submission of the modal `kind`; values: block id → element state (see typed / picked / day)."""
    payload = {"type": "view_submission", "team": {"id": "T0LTC"}, "user": {"id": user}, "api_app_id": "A0LTC",
               "token": "x", "trigger_id": "1.2.3",
               "view": {"id": "V0MODAL", "type": "modal", "callback_id": f"ltc_modal_{kind}", "hash": "h1",
                        "private_metadata": "",
                        "state": {"values": {block: {block: state} for block, state in values.items()}}}}
    return rig.post_form({"payload": json.dumps(payload)})


def shortcut(rig, user: str, callback_id: str):
    payload = {"type": "shortcut", "team": {"id": "T0LTC"}, "user": {"id": user}, "api_app_id": "A0LTC",
               "token": "x", "callback_id": callback_id, "trigger_id": "1.2.4", "action_ts": str(time.time())}
    return rig.post_form({"payload": json.dumps(payload)})


def typed(value: str | None) -> dict:
    return {"type": "plain_text_input", "value": value}


def picked(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}}}


def day(value: str) -> dict:
    return {"type": "datepicker", "selected_date": value}


# -- helpers -----------------------------------------------------------------------------------------

def _count(rig, table, *where) -> int:
    with rig.app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _settle(seconds: float = 0.5) -> None:
    """Give threads that should NOT call Slack the time to prove it."""
    time.sleep(seconds)


def _in_english(rig, key: str = "manager") -> None:
    with rig.app.uow() as uow:
        uow.users.get(rig.org[key]).locale = "en"
        uow.commit()


def _action_ids(blocks: list[dict]) -> list[tuple[str, str]]:
    return [(e["action_id"], e.get("value")) for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _dm(rig, user: str) -> dict:
    """The one message posted to the user's DM (conversations.open answers D<user>)."""
    posts = [c.args for c in rig.slack.wait_for("chat.postMessage") if c.args["channel"] == f"D{user}"]
    assert len(posts) == 1, posts
    return posts[0]


@pytest.fixture
def deal(rig) -> int:
    builders.seed_catalog(rig.app.uow, rig.org)
    return builders.make_deal(rig.app.uow, rig.org)


@pytest.fixture
def signed(rig, deal) -> tuple[str, str]:
    """The deal won and its contract signed: (contract number, the invoice issued on signing)."""
    builders.full_cycle(rig.app.uow, rig.org, deal)
    with rig.app.uow() as uow:
        contract = uow.contracts.for_opportunity(deal)
        return contract.number, uow.invoices.for_contract(contract.id)[0].number


# -- /ltc --------------------------------------------------------------------------------------------

def test_ltc_help_answers_only_the_caller_with_commands_and_form_buttons(rig):
    _in_english(rig)
    assert command(rig, "U0MGR", "help").status_code == 200
    answer = rig.slack.wait_for("respond")[0].args
    assert answer["response_type"] == "ephemeral"
    assert "/ltc my deals" in answer["text"] and "/ltc payment" in answer["text"]
    assert _action_ids(answer["blocks"]) == [("ltc_open_modal", "new_lead"), ("ltc_open_modal", "new_opportunity"),
                                             ("ltc_open_modal", "build_quote"), ("ltc_open_modal", "record_payment")]
    assert rig.slack.of("views.open") == []


def test_bare_ltc_shows_the_help_in_the_users_language(rig):
    command(rig, "U0REP", "")
    answer = rig.slack.wait_for("respond")[0].args
    assert answer["text"] == render("slack.ltc.help", "zh")
    buttons = [e["text"]["text"] for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["新建线索", "新建商机", "制作报价", "登记回款"]


@pytest.mark.parametrize("word, callback", [
    ("lead", "ltc_modal_new_lead"), ("opp", "ltc_modal_new_opportunity"),
    ("报价", "ltc_modal_build_quote"), ("回款", "ltc_modal_record_payment")])
def test_ltc_with_a_form_name_opens_that_modal_with_the_trigger_id(rig, word, callback):
    assert command(rig, "U0REP", word).status_code == 200
    opened = rig.slack.wait_for("views.open")[0].args
    assert opened["trigger_id"] == "13345.98.abc" and opened["view"]["callback_id"] == callback
    _settle()
    assert rig.slack.of("respond") == []  # the lazy listener leaves form names alone


def test_the_new_lead_modal_has_the_fields_and_sources_in_the_users_language(rig):
    _in_english(rig)
    command(rig, "U0MGR", "lead")
    view = rig.slack.wait_for("views.open")[0].args["view"]
    assert view["title"]["text"] == "New lead"
    by_id = {b["block_id"]: b for b in view["blocks"]}
    assert list(by_id) == ["company", "contact_name", "email", "phone", "source", "notes"]
    assert [by_id[b]["optional"] for b in by_id] == [False, False, True, True, True, True]
    sources = [o["value"] for o in by_id["source"]["element"]["options"]]
    assert "trade_show" in sources and by_id["source"]["element"]["options"][1]["text"]["text"] == "Trade show"


def test_a_quick_command_runs_through_the_agent_and_answers_ephemerally(rig):
    command(rig, "U0REP", "my leads")
    answer = rig.slack.wait_for("respond")[0].args
    assert answer["response_type"] == "ephemeral" and answer["text"].strip()
    assert rig.slack.of("chat.postMessage") == [] and rig.slack.of("views.open") == []


def test_a_quick_command_that_proposes_a_payment_answers_with_confirm_and_cancel(rig, signed):
    contract, _ = signed
    command(rig, "U0REP", f"payment 300k for {contract} ref BOC-0009")
    answer = rig.slack.wait_for("respond")[0].args
    assert answer["response_type"] == "ephemeral"
    assert [a for a, _ in _action_ids(answer["blocks"])] == ["ltc_confirm", "ltc_cancel"]
    assert _count(rig, t.payments) == 0


def test_an_unknown_user_gets_onboarding_and_no_modal(rig):
    command(rig, "U0NOBODY", "lead")
    answer = rig.slack.wait_for("respond")[0].args
    assert "stranger@elsewhere.example" in answer["text"] and answer["response_type"] == "ephemeral"
    command(rig, "U0NOBODY", "my deals")
    assert "stranger@elsewhere.example" in rig.slack.wait_for("respond", 2)[1].args["text"]
    _settle()
    assert rig.slack.of("views.open") == []


# -- opening forms from buttons and the shortcut ----------------------------------------------------

def test_the_open_modal_button_opens_the_quote_form_with_the_catalog(rig, deal):
    rig.click("U0REP", "ltc_open_modal", "build_quote", channel="C0SALES", message_ts="1.1", thread_ts="1.1")
    view = rig.slack.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == "ltc_modal_build_quote"
    product = next(b for b in view["blocks"] if b["block_id"] == "product_1")
    assert product["element"]["type"] == "static_select"
    assert [o["value"] for o in product["element"]["options"]] == ["MES-LIC"]
    assert "MES许可" in product["element"]["options"][0]["text"]["text"]
    assert [b["block_id"] for b in view["blocks"]][-3:] == ["product_5", "quantity_5", "discount_pct_5"]


def test_the_global_shortcut_opens_the_new_lead_form(rig):
    assert shortcut(rig, "U0REP", "ltc_new_lead").status_code == 200
    assert rig.slack.wait_for("views.open")[0].args["view"]["callback_id"] == "ltc_modal_new_lead"


def test_the_shortcut_for_an_unknown_user_sends_onboarding_by_dm_and_no_modal(rig):
    shortcut(rig, "U0NOBODY", "ltc_new_lead")
    assert "stranger@elsewhere.example" in _dm(rig, "U0NOBODY")["text"]
    assert rig.slack.of("views.open") == []


# -- submissions ------------------------------------------------------------------------------------

def test_a_new_lead_submission_creates_the_lead_and_dms_the_result(rig):
    response = submit(rig, "U0REP", "new_lead", {
        "company": typed("Acme Robotics"), "contact_name": typed("Li Wei"), "email": typed("li.wei@acme.example"),
        "phone": typed(None), "source": picked("trade_show"), "notes": typed("met at the Hannover fair")})
    assert response.status_code == 200 and response.content in (b"", b"{}")  # closes the modal
    with rig.app.engine.connect() as conn:
        row = conn.execute(select(t.leads).where(t.leads.c.company == "Acme Robotics")).one()
    assert (row.contact_name, row.email, row.source, row.owner_id is not None) == \
        ("Li Wei", "li.wei@acme.example", "trade_show", True)
    post = _dm(rig, "U0REP")
    assert "Acme Robotics" in post["text"] and post["blocks"][0]["type"] == "section"


def test_missing_required_fields_are_shown_inline(rig):
    response = submit(rig, "U0REP", "new_lead", {"company": typed("  "), "contact_name": typed(None)})
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"company", "contact_name"}
    assert body["errors"]["company"] == render("slack.modals.error.required", "zh")


@pytest.mark.parametrize("amount", ["abc", "-5", "0"])
def test_a_bad_amount_is_refused_inline_and_nothing_is_written(rig, deal, amount):
    _in_english(rig, "rep")
    opps, audits = _count(rig, t.opportunities), _count(rig, t.audit_log)
    response = submit(rig, "U0REP", "new_opportunity", {
        "account": typed("Customer 1 Ltd"), "name": typed("Phase 2"), "amount": typed(amount),
        "currency": picked("CNY"), "expected_close_date": day("2030-06-30")})
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors",
                               "errors": {"amount": render("slack.modals.error.amount", "en")}}
    _settle()
    assert (_count(rig, t.opportunities), _count(rig, t.audit_log)) == (opps, audits)
    assert rig.slack.of("chat.postMessage") == []


def test_a_new_opportunity_reads_amounts_as_people_write_them(rig, deal):
    response = submit(rig, "U0REP", "new_opportunity", {
        "account": typed("Customer 1 Ltd"), "name": typed("Phase 2"), "amount": typed("200万"),
        "currency": picked("CNY"), "expected_close_date": day("2030-06-30")})
    assert response.content in (b"", b"{}")
    with rig.app.engine.connect() as conn:
        row = conn.execute(select(t.opportunities).where(t.opportunities.c.name == "Phase 2")).one()
    assert (str(row.amount.normalize()), str(row.expected_close_date)) == ("2E+6", "2030-06-30")
    assert "Phase 2" in _dm(rig, "U0REP")["text"]


def test_a_tool_error_that_names_a_field_is_shown_on_that_block(rig, deal):
    opps = _count(rig, t.opportunities)
    response = submit(rig, "U0REP", "new_opportunity", {
        "account": typed("Nobody Such Corp"), "name": typed("Phase 2"), "amount": typed("1,200,000")})
    errors = response.json()["errors"]
    assert list(errors) == ["account"] and errors["account"]
    assert _count(rig, t.opportunities) == opps


def test_a_build_quote_submission_creates_the_quote_with_its_lines(rig, deal):
    response = submit(rig, "U0REP", "build_quote", {
        "opportunity": typed(f"OPP-{deal:05d}"),
        "product_1": picked("MES-LIC"), "quantity_1": typed("10"), "discount_pct_1": typed("5%"),
        "product_3": picked("MES-LIC"), "quantity_3": typed("2"), "discount_pct_3": typed(None)})
    assert response.content in (b"", b"{}"), response.content
    with rig.app.engine.connect() as conn:
        quote = conn.execute(select(t.quotes).where(t.quotes.c.opportunity_id == deal)).one()
        lines = conn.execute(select(t.quote_lines.c.quantity, t.quote_lines.c.discount_pct)
                             .where(t.quote_lines.c.quote_id == quote.id)
                             .order_by(t.quote_lines.c.position)).all()
    assert [(int(q), int(d)) for q, d in lines] == [(10, 5), (2, 0)]
    assert f"Q-{quote.id:05d}" in _dm(rig, "U0REP")["text"]


def test_quote_line_errors_land_on_the_line_that_has_them(rig, deal):
    quotes = _count(rig, t.quotes)
    bad = submit(rig, "U0REP", "build_quote", {
        "opportunity": typed(f"OPP-{deal:05d}"), "product_1": picked("MES-LIC"), "quantity_1": typed("0"),
        "product_2": picked("MES-LIC"), "quantity_2": typed("3"), "discount_pct_2": typed("120")})
    assert set(bad.json()["errors"]) == {"quantity_1", "discount_pct_2"}
    unknown = submit(rig, "U0REP", "build_quote", {
        "opportunity": typed(f"OPP-{deal:05d}"), "quantity_1": typed("3"),
        "product_4": typed("NO-SUCH-SKU"), "quantity_4": typed("3")})
    assert set(unknown.json()["errors"]) == {"product_1"}  # a quantity without a product
    refused = submit(rig, "U0REP", "build_quote", {
        "opportunity": typed(f"OPP-{deal:05d}"), "product_2": typed("NO-SUCH-SKU"), "quantity_2": typed("3")})
    assert list(refused.json()["errors"]) == ["product_2"]  # the tool's lines.0.product is row 2 here
    assert _count(rig, t.quotes) == quotes


def test_a_record_payment_submission_proposes_and_dms_confirm_and_cancel(rig, signed):
    _, invoice = signed  # an invoice number stands for the contract it bills
    response = submit(rig, "U0REP", "record_payment", {
        "contract": typed(invoice), "amount": typed("300k"), "currency": picked("CNY"),
        "received_on": day("2025-03-12"), "bank_ref": typed("BOC-20250312-0098")})
    assert response.content in (b"", b"{}"), response.content
    post = _dm(rig, "U0REP")
    assert [a for a, _ in _action_ids(post["blocks"])] == ["ltc_confirm", "ltc_cancel"]
    assert "BOC-20250312-0098" in json.dumps(post["blocks"], ensure_ascii=False)
    assert _count(rig, t.payments) == 0  # nothing until the user confirms
    token = _action_ids(post["blocks"])[0][1]
    rig.click("U0REP", "ltc_confirm", token, channel="DU0REP", message_ts="1.2", thread_ts="1.2")
    rig.slack.wait_for("chat.update")
    assert _count(rig, t.payments, t.payments.c.bank_ref == "BOC-20250312-0098") == 1


def test_a_payment_needs_a_payer_and_a_known_invoice(rig, deal):
    no_payer = submit(rig, "U0REP", "record_payment", {"amount": typed("300k"), "bank_ref": typed("BOC-1")})
    assert list(no_payer.json()["errors"]) == ["contract"]
    unknown_invoice = submit(rig, "U0REP", "record_payment", {
        "contract": typed("INV-2026-00099"), "amount": typed("300k"), "bank_ref": typed("BOC-1")})
    assert list(unknown_invoice.json()["errors"]) == ["contract"]
    _settle()
    assert rig.slack.of("chat.postMessage") == []


def test_a_submission_from_an_unknown_user_writes_nothing(rig):
    leads = _count(rig, t.leads)
    response = submit(rig, "U0NOBODY", "new_lead", {"company": typed("Sneaky Ltd"), "contact_name": typed("Eve")})
    assert response.status_code == 200
    assert "stranger@elsewhere.example" in _dm(rig, "U0NOBODY")["text"]
    assert _count(rig, t.leads) == leads


# -- the form reader on its own ---------------------------------------------------------------------

@pytest.mark.parametrize("raw, value", [("1,200,000", "1200000"), ("2M", "2000000"), ("200万", "2000000")])
def test_amounts_are_read_as_people_write_them(raw, value):
    values = {"amount": {"amount": typed(raw)}, "bank_ref": {"bank_ref": typed("B-1")},
              "account": {"account": typed("A")}}
    args, _, errors = modals.read_form("record_payment", values, "en")
    assert errors == {} and args["amount"] == value


@pytest.mark.parametrize("raw, pct", [("15", "15"), ("12.5%", "12.5"), ("九折", "10"), ("100", "100")])
def test_discounts_accept_percent_and_zhe(raw, pct):
    values = {"opportunity": {"opportunity": typed("OPP-1")}, "product_1": {"product_1": typed("X")},
              "quantity_1": {"quantity_1": typed("1")}, "discount_pct_1": {"discount_pct_1": typed(raw)}}
    args, rows, errors = modals.read_form("build_quote", values, "en")
    assert errors == {} and rows == [1] and args["lines"][0]["discount_pct"] == pct


def test_every_modal_text_exists_in_both_languages():
    mine = {n for n in names("en") if n.startswith(("slack.modals.", "slack.ltc."))}
    assert mine and mine <= names("zh")
