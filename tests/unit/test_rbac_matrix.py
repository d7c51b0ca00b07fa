"""Who may do what: every role × every use case against a hand-written matrix, then row-level rules.

The matrix tests the role rule. Each case puts the acting user where the row-level rules let them
in (their own lead/deal, their subtree, their seat on the deal, a step of their role), so a DENY
can only come from the role rule — and it must say so ("needs one of the roles").
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest

from domain.actor import Actor
from domain.errors import Conflict, LTCError, PermissionDenied, ValidationFailed
from domain.model.vocab import Role
from domain.rbac import UseCase
from domain.services import (accounts, activities, approvals, audit_trail, billing, catalog, collections, contracts,
                             delivery, incentives, leads, next_steps, opportunities, payments, quotes,
                             reconciliation, revenue, users, confirmations, search)
from domain.services import payment_status
from domain.services.base import begin
from tests import builders
from tests.unit.conftest import _gate, accept_the_quote, drive_to, new_deal, run_in

MODULES = (accounts, activities, approvals, audit_trail, catalog, leads, next_steps, opportunities, quotes, users,
           contracts, delivery, billing, payments, collections, revenue, reconciliation, incentives,
           confirmations, search, payment_status)

# One user of the standard org per role.
WHO = {"sales_rep": "rep", "solution_manager": "sr", "fulfillment_manager": "fr", "sales_manager": "manager",
       "director": "director", "finance": "finance", "legal": "legal", "sales_ops": "sales_ops", "admin": "admin"}
COLUMNS = ["sales_rep", "solution_manager", "fulfillment_manager", "sales_manager", "director", "finance",
           "legal", "sales_ops", "admin"]

MATRIX_TEXT = """
use case                 rep sr  fr  mgr dir fin leg ops adm
create_lead              A   D   D   A   A   D   D   A   A
update_lead              A   D   D   A   A   D   D   A   A
assign_lead              D   D   D   A   A   D   D   A   A
change_lead_status       A   D   D   A   A   D   D   A   A
qualify_lead             A   D   D   A   A   D   D   A   A
disqualify_lead          A   D   D   A   A   D   D   A   A
convert_lead             A   D   D   A   A   D   D   A   A
get_lead                 A   D   D   A   A   D   D   A   A
list_leads               A   D   D   A   A   D   D   A   A
log_activity             A   A   A   A   A   D   D   A   A
create_account           A   D   D   A   A   D   D   A   A
update_account           A   D   D   A   A   D   D   A   A
add_contact              A   A   D   A   A   D   D   A   A
account_360              A   A   A   A   A   A   A   A   A
list_accounts            A   A   A   A   A   A   A   A   A
create_opportunity       A   D   D   A   A   D   D   D   A
update_opportunity       A   D   D   A   A   D   D   A   A
assign_iron_triangle     A   D   D   A   A   D   D   A   A
add_member               A   D   D   A   A   D   D   A   A
record_solution          D   A   D   D   D   D   D   D   A
record_delivery_plan     D   D   A   D   D   D   D   D   A
sign_off_deliverability  D   D   A   D   D   D   D   D   D
advance_stage            A   D   D   A   A   D   D   D   A
close_opportunity        A   D   D   A   A   D   D   D   A
request_gate             A   D   D   A   A   D   D   A   A
decide_approval          D   D   D   A   A   A   A   D   A
cancel_approval          A   D   D   A   A   D   D   A   A
get_opportunity          A   A   A   A   A   A   A   A   A
list_opportunities       A   A   A   A   A   A   A   A   A
get_approval             A   A   A   A   A   A   A   A   A
approvals_for            A   A   A   A   A   A   A   A   A
list_my_approvals        A   A   A   A   A   A   A   A   A
list_users               A   A   A   A   A   A   A   A   A
create_user              D   D   D   D   D   D   D   D   A
create_team              D   D   D   D   D   D   D   D   A
set_team_manager         D   D   D   D   D   D   D   D   A
add_assignment_rule      D   D   D   D   D   D   D   D   A
link_slack_user          D   D   D   D   D   D   D   D   A
link_wecom_user          D   D   D   D   D   D   D   D   A
expire_approvals         D   D   D   D   D   D   D   D   A
next_steps               A   A   A   A   A   A   A   A   A
audit_trail              A   A   A   A   A   A   A   A   A
create_product           D   D   D   D   D   D   D   A   A
create_price_book        D   D   D   D   D   D   D   A   A
list_products            A   A   A   A   A   A   A   A   A
discount_policy          A   A   A   A   A   A   A   A   A
create_quote             A   A   D   A   A   D   D   D   A
update_quote             A   A   D   A   A   D   D   D   A
submit_quote             A   A   D   A   A   D   D   D   A
send_quote               A   D   D   A   A   D   D   D   A
accept_quote             A   D   D   A   A   D   D   D   A
get_quote                A   A   A   A   A   A   A   A   A
list_quotes              A   A   A   A   A   A   A   A   A
expire_quotes            D   D   D   D   D   A   D   A   A
create_contract          A   D   D   A   A   D   D   A   A
update_contract          A   D   D   A   A   D   D   A   A
submit_contract          A   D   D   A   A   D   D   A   A
withdraw_contract        A   D   D   A   A   D   D   A   A
request_change_order     A   D   D   A   A   D   D   A   A
close_contract           D   D   D   D   D   A   D   D   D
get_contract             A   A   A   A   A   A   A   A   A
contract_for_opportunity A   A   A   A   A   A   A   A   A
list_contracts           A   A   A   A   A   A   A   A   A
create_order             D   D   A   D   D   D   D   A   A
mark_delivered           D   D   A   D   D   D   D   A   A
accept_milestone         D   D   A   D   D   D   D   A   A
get_order                A   A   A   A   A   A   A   A   A
order_for_contract       A   A   A   A   A   A   A   A   A
issue_invoice            D   D   D   D   D   A   D   D   D
bill_due_milestones      D   D   D   D   D   A   D   A   A
void_invoice             D   D   D   D   D   A   D   D   D
get_invoice              A   A   A   A   A   A   A   A   A
list_invoices            A   A   A   A   A   A   A   A   A
record_payment           D   D   D   D   D   A   D   D   D
propose_payment          A   D   D   A   A   D   D   D   D
confirm_payment          D   D   D   D   D   A   D   D   D
reject_payment           D   D   D   D   D   A   D   D   D
allocate_payment         D   D   D   D   D   A   D   D   D
get_payment              A   A   A   A   A   A   A   A   A
payments_for_account     A   A   A   A   A   A   A   A   A
aging_report             A   A   A   A   A   A   A   A   A
record_promise           A   D   D   A   A   A   D   D   D
run_dunning              D   D   D   D   D   A   D   A   A
revenue_schedule         A   A   A   A   A   A   A   A   A
reconcile_contract       A   A   A   A   A   A   A   A   A
reconcile_opportunity    A   A   A   A   A   A   A   A   A
record_contribution      D   D   D   A   A   D   D   A   A
propose_action           A   A   A   A   A   A   A   A   A
confirm_action           A   A   A   A   A   A   A   A   A
cancel_action            A   A   A   A   A   A   A   A   A
search_records           A   A   A   A   A   A   A   A   A
incentive_split          A   A   A   A   A   A   A   A   A
payment_status           A   A   A   A   A   A   A   A   A
"""


def _parse(text: str) -> dict[tuple[str, str], bool]:
    rows = [line.split() for line in text.strip().splitlines()[1:]]
    return {(r[0], role): mark == "A" for r in rows for role, mark in zip(COLUMNS, r[1:], strict=True)}


MATRIX = _parse(MATRIX_TEXT)
CASE_NAMES = sorted({case for case, _ in MATRIX})

QUOTE_CASES = ("create_quote", "update_quote", "submit_quote", "send_quote", "accept_quote", "get_quote",
               "list_quotes")

# Allowed by role and row, yet refused for a business reason the case cannot avoid.
BUSINESS_REFUSALS = {
    # A manager asking ATI for their own rep's deal: the only sales manager in the chain is the
    # requester, and requesters never decide (four eyes), so nobody could decide step 1.
    ("request_gate", "sales_manager"): ValidationFailed,
    # Likewise a director asking for a change order: its first step needs a director in the deal
    # owner's chain other than the requester, and there is only one.
    ("request_change_order", "director"): ValidationFailed,
}


@dataclass
class Env:
    run: object
    org: object
    uow_factory: object
    store: object
    role: str
    ids: dict = field(default_factory=dict)

    @property
    def actor(self):
        return self.org.actor(WHO[self.role])

    @property
    def today(self) -> date:
        return self.store.clock.current.date()

    def call(self, fn, *args, **kwargs):
        return self.run(fn, *args, actor=self.actor, **kwargs)


def _common(run, org, uow_factory, store) -> dict:
    """A deal of rep (SR sr, FR fr, finance and legal on the deal team), its account, a lead of rep."""
    rep = org.actor("rep")
    opp = new_deal(uow_factory, org, n=1)
    for member in ("finance", "legal"):
        run(opportunities.add_member, opp, org[member], member, actor=rep)
    lead = run(leads.create_lead, {"source": "ad", "company": "Lead Target Co", "contact_name": "Sun Li",
                                   "region": "east", "need": "spare parts portal"}, actor=rep)
    return {"opp": opp, "account": store.get("opportunities", opp).account_id, "lead": lead.id}


# The contract-side cases need the deal further along: each names the state it starts from.
# States are built once per session (fixture `cached`) and copied per test.
L2C_STATE = {
    "create_contract": "quote_accepted",
    "update_contract": "contract_draft", "submit_contract": "contract_draft",
    "withdraw_contract": "contract_under_review",
    "issue_invoice": "voided",
    "mark_delivered": "executing", "get_order": "executing", "order_for_contract": "executing",
    "accept_milestone": "delivered",
    "confirm_payment": "proposed", "reject_payment": "proposed", "get_payment": "proposed",
    "payments_for_account": "proposed",
    "allocate_payment": "credit",
    "close_contract": "closable",
    **{case: "signed" for case in (
        "request_change_order", "get_contract", "contract_for_opportunity", "list_contracts", "create_order",
        "bill_due_milestones", "void_invoice", "get_invoice", "list_invoices", "record_payment", "propose_payment",
        "aging_report", "record_promise", "run_dunning", "revenue_schedule", "reconcile_contract",
        "reconcile_opportunity", "record_contribution", "incentive_split", "expire_quotes", "payment_status")},
}
_AFTER = {"contract_under_review": "contract_draft", "signed": "contract_under_review", "voided": "signed",
          "executing": "signed", "delivered": "executing", "proposed": "signed", "credit": "signed",
          "closable": "executing"}


def _build_state(uow_factory, org, state: str) -> dict:
    """The common setup, then the deal taken to `state` through the real services."""
    def run(fn, *args, **kwargs):
        return run_in(uow_factory, fn, *args, **kwargs)

    store = uow_factory().store  # the fake unit of work's committed tables, for reading ids
    ids = _common(run, org, uow_factory, store)
    opp, rep, fr, finance = ids["opp"], org.actor("rep"), org.actor("fr"), org.actor("finance")
    chain = [state]
    while chain[-1] in _AFTER:
        chain.append(_AFTER[chain[-1]])
    today = store.clock.current.date().isoformat()
    for step in reversed(chain):
        if step == "quote_accepted":
            builders.approve_quote(uow_factory, opp)
            ids["quote"] = accept_the_quote(uow_factory, org, opp)
        elif step == "contract_draft":
            drive_to(uow_factory, org, opp, "negotiate")
            run(opportunities.sign_off_deliverability, opp, actor=fr)
            ids["quote"] = accept_the_quote(uow_factory, org, opp)
            ids["contract"] = run(contracts.create_contract, {"quote_id": ids["quote"]}, actor=rep).id
        elif step == "contract_under_review":
            run(contracts.submit_contract, ids["contract"], actor=rep)
        elif step == "signed":
            _gate(uow_factory, org, opp, "ATC", ["director", "finance"], "rep")
            ids["invoice"] = store.rows("invoices")[0].id  # the advance, issued on signing
        elif step == "voided":
            run(billing.void_invoice, ids["invoice"], {"reason": "wrong purchase order number"}, actor=finance)
        elif step == "executing":
            ids["order"] = run(delivery.create_order, ids["contract"], {"milestones": [
                {"name": "Install", "planned_date": today},
                {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}, actor=fr).id
        elif step == "delivered":
            run(delivery.mark_delivered, ids["order"], 1, actor=fr)
        elif step == "proposed":
            ids["payment"] = run(payments.propose_payment, {"contract_id": ids["contract"], "amount": "1000",
                                                             "currency": "CNY", "received_on": today,
                                                             "bank_ref": "BANK-P1"}, actor=rep).id
        elif step == "credit":  # 100,000 of 150,000 on the advance, 50,000 left as credit
            ids["payment"] = run(payments.record_payment, {
                "contract_id": ids["contract"], "amount": "150000", "currency": "CNY", "received_on": today,
                "bank_ref": "BANK-C1", "allocations": [{"invoice_id": ids["invoice"], "amount": "100000"}]},
                actor=finance).id
        elif step == "closable":
            for seq in (1, 2):
                run(delivery.mark_delivered, ids["order"], seq, actor=fr)
                run(delivery.accept_milestone, ids["order"], seq, {"certificate_ref": f"CERT-{seq}"}, actor=fr)
            run(payments.record_payment, {"contract_id": ids["contract"], "amount": "500000", "currency": "CNY",
                                          "received_on": today, "bank_ref": "BANK-ALL"}, actor=finance)
    return ids


def _setup(run, org, uow_factory, store, role: str, case: str, cached=None) -> Env:
    env = Env(run, org, uow_factory, store, role)
    if case in L2C_STATE:
        state = L2C_STATE[case]
        env.ids.update(cached(("rbac", state), lambda f: _build_state(f, org, state)))
        return env
    env.ids.update(_common(run, org, uow_factory, store))
    opp, rep = env.ids["opp"], org.actor("rep")
    lead = env.ids["lead"]
    if case == "convert_lead":
        run(leads.qualify_lead, lead, actor=rep)
    if case == "sign_off_deliverability":
        run(opportunities.record_delivery_plan, opp, "Two waves", actor=org.actor("fr"))
    if case == "advance_stage":
        drive_to(uow_factory, org, opp, "bid")
    if case in ("cancel_approval", "get_approval"):
        env.ids["approval"] = run(approvals.request_gate, opp, "ATI", actor=rep).id
    if case in QUOTE_CASES or case in ("create_product", "create_price_book"):
        admin = org.actor("admin")
        run(catalog.create_product, {"sku": "RTR-X", "name_en": "Router X", "name_zh": "路由器X",
                                     "cost": "40", "floor_price": "60"}, actor=admin)
        if case != "create_product":
            run(catalog.create_price_book, {"name": "East", "region": "east", "prices": {"RTR-X": "100"}},
                actor=admin)
    if case in QUOTE_CASES and case != "create_quote":
        env.ids["quote"] = run(quotes.create_quote, opp, {"lines": [{"product": "RTR-X", "quantity": "3"}]},
                               actor=rep).id
        if case in ("send_quote", "accept_quote"):
            run(quotes.submit_quote, env.ids["quote"], actor=rep)  # 0 % off: approved at once
        if case == "accept_quote":
            run(quotes.send_quote, env.ids["quote"], actor=rep)
    if case == "decide_approval":  # a request whose one step is for the acting user's role
        with uow_factory() as uow:
            ctx = begin(uow, rep, UseCase.VIEW_OPPORTUNITY)
            env.ids["approval"] = approvals.open_request(
                uow, ctx, kind="discount", subject_type="opportunity", subject_id=opp, title="discount 12%",
                steps=[{"role": role, "scope": "any"}], context={}).id
            uow.commit()
    return env


_PROPOSAL = {"tool": "decide_approval", "args": {"approval": "APR-00001"}, "summary": "approve APR-00001"}

CASES = {
    "create_lead": lambda e: e.call(leads.create_lead, {"source": "website", "company": "Fresh Co",
                                                        "contact_name": "Qian Yu", "region": "east"}),
    "update_lead": lambda e: e.call(leads.update_lead, e.ids["lead"], {"need": "spare parts portal with SSO"}),
    "assign_lead": lambda e: e.call(leads.assign_lead, e.ids["lead"], e.org["rep2"]),
    "change_lead_status": lambda e: e.call(leads.change_lead_status, e.ids["lead"], "contacted"),
    "qualify_lead": lambda e: e.call(leads.qualify_lead, e.ids["lead"]),
    "disqualify_lead": lambda e: e.call(leads.disqualify_lead, e.ids["lead"], "no budget"),
    "convert_lead": lambda e: e.call(leads.convert_lead, e.ids["lead"]),
    "get_lead": lambda e: e.call(leads.get_lead, e.ids["lead"]),
    "list_leads": lambda e: e.call(leads.list_leads),
    "log_activity": lambda e: e.call(activities.log_activity, {"kind": "call", "subject": "kick-off",
                                                               "opportunity_id": e.ids["opp"]}),
    "create_account": lambda e: e.call(accounts.create_account, {"name": "Brand New Co", "owner_id": e.org["rep"]}),
    "update_account": lambda e: e.call(accounts.update_account, e.ids["account"], {"industry": "steel"}),
    "add_contact": lambda e: e.call(accounts.add_contact, e.ids["account"], {"name": "Zhao Min"}),
    "account_360": lambda e: e.call(accounts.account_360, e.ids["account"]),
    "list_accounts": lambda e: e.call(accounts.list_accounts),
    "create_opportunity": lambda e: e.call(opportunities.create_opportunity, {
        "name": "Upsell", "account_id": e.ids["account"], "amount": "1000", "owner_id": e.org["rep"]}),
    "update_opportunity": lambda e: e.call(opportunities.update_opportunity, e.ids["opp"], {"next_step": "call CFO"}),
    "assign_iron_triangle": lambda e: e.call(opportunities.assign_iron_triangle, e.ids["opp"], sr_id=e.org["sr"]),
    "add_member": lambda e: e.call(opportunities.add_member, e.ids["opp"], e.org["sr"], "presales"),
    "record_solution": lambda e: e.call(opportunities.record_solution, e.ids["opp"], "Cloud MES"),
    "record_delivery_plan": lambda e: e.call(opportunities.record_delivery_plan, e.ids["opp"], "Two waves"),
    "sign_off_deliverability": lambda e: e.call(opportunities.sign_off_deliverability, e.ids["opp"]),
    "advance_stage": lambda e: e.call(opportunities.advance_stage, e.ids["opp"]),
    "close_opportunity": lambda e: e.call(opportunities.close_opportunity, e.ids["opp"], "lost", "price"),
    "request_gate": lambda e: e.call(approvals.request_gate, e.ids["opp"], "ATI"),
    "decide_approval": lambda e: e.call(approvals.decide_approval, e.ids["approval"], "approve"),
    "cancel_approval": lambda e: e.call(approvals.cancel_approval, e.ids["approval"]),
    "get_opportunity": lambda e: e.call(opportunities.get_opportunity, e.ids["opp"]),
    "list_opportunities": lambda e: e.call(opportunities.list_opportunities),
    "get_approval": lambda e: e.call(approvals.get_approval, e.ids["approval"]),
    "approvals_for": lambda e: e.call(approvals.approvals_for, e.ids["opp"]),
    "list_my_approvals": lambda e: e.call(approvals.list_my_approvals),
    "list_users": lambda e: e.call(users.list_users),
    "create_user": lambda e: e.call(users.create_user, {"email": "new@example.com", "name_en": "New",
                                                        "roles": ["sales_rep"]}),
    "create_team": lambda e: e.call(users.create_team, {"name": "North", "region": "north"}),
    "set_team_manager": lambda e: e.call(users.set_team_manager, e.org["team_west"], e.org["manager_w"]),
    "add_assignment_rule": lambda e: e.call(users.add_assignment_rule, {"priority": 5, "team_id": e.org["team_west"]}),
    "link_slack_user": lambda e: e.call(users.link_slack_user, e.org["rep_w"], "U0RBAC"),
    "link_wecom_user": lambda e: e.call(users.link_wecom_user, e.org["rep_w"], "RbacWeCom"),
    "expire_approvals": lambda e: e.call(approvals.expire_approvals),
    "next_steps": lambda e: e.call(next_steps.next_steps, e.ids["opp"]),
    "audit_trail": lambda e: e.call(audit_trail.audit_trail, "opportunity", e.ids["opp"]),
    "create_product": lambda e: e.call(catalog.create_product, {"sku": "SVC-1", "name_en": "Day",
                                                                "name_zh": "人天", "cost": "1", "floor_price": "1"}),
    "create_price_book": lambda e: e.call(catalog.create_price_book, {"name": "West", "region": "west",
                                                                      "prices": {"RTR-X": "100"}}),
    "list_products": lambda e: e.call(catalog.list_products),
    "discount_policy": lambda e: e.call(catalog.discount_policy, discount_pct=Decimal("15"), amount=Decimal("1000")),
    "create_quote": lambda e: e.call(quotes.create_quote, e.ids["opp"],
                                     {"lines": [{"product": "RTR-X", "quantity": "1"}]}),
    "update_quote": lambda e: e.call(quotes.update_quote, e.ids["quote"],
                                     {"lines": [{"product": "RTR-X", "quantity": "2"}]}),
    "submit_quote": lambda e: e.call(quotes.submit_quote, e.ids["quote"]),
    "send_quote": lambda e: e.call(quotes.send_quote, e.ids["quote"]),
    "accept_quote": lambda e: e.call(quotes.accept_quote, e.ids["quote"]),
    "get_quote": lambda e: e.call(quotes.get_quote, e.ids["quote"]),
    "list_quotes": lambda e: e.call(quotes.list_quotes, e.ids["opp"]),
    "expire_quotes": lambda e: e.call(quotes.expire_quotes),
    "create_contract": lambda e: e.call(contracts.create_contract, {"quote_id": e.ids["quote"]}),
    "update_contract": lambda e: e.call(contracts.update_contract, e.ids["contract"], {"payment_terms_days": 45}),
    "submit_contract": lambda e: e.call(contracts.submit_contract, e.ids["contract"]),
    "withdraw_contract": lambda e: e.call(contracts.withdraw_contract, e.ids["contract"]),
    "request_change_order": lambda e: e.call(contracts.request_change_order, e.ids["contract"], {
        "reason": "customer moves money to final acceptance", "milestones": [
            {"label": "Advance", "pct": "30", "trigger": "signing"},
            {"label": "Delivery", "pct": "50", "trigger": "delivery_acceptance"},
            {"label": "Final acceptance", "pct": "20", "trigger": "final_acceptance"}]}),
    "close_contract": lambda e: e.call(contracts.close_contract, e.ids["contract"]),
    "get_contract": lambda e: e.call(contracts.get_contract, e.ids["contract"]),
    "contract_for_opportunity": lambda e: e.call(contracts.contract_for_opportunity, e.ids["opp"]),
    "list_contracts": lambda e: e.call(contracts.list_contracts),
    "create_order": lambda e: e.call(delivery.create_order, e.ids["contract"], {"milestones": [
        {"name": "Install", "planned_date": e.today.isoformat()}]}),
    "mark_delivered": lambda e: e.call(delivery.mark_delivered, e.ids["order"], 1),
    "accept_milestone": lambda e: e.call(delivery.accept_milestone, e.ids["order"], 1, {"certificate_ref": "C-1"}),
    "get_order": lambda e: e.call(delivery.get_order, e.ids["order"]),
    "order_for_contract": lambda e: e.call(delivery.order_for_contract, e.ids["contract"]),
    "issue_invoice": lambda e: e.call(billing.issue_invoice, e.ids["contract"], {"seq": 1}),
    "bill_due_milestones": lambda e: e.call(billing.bill_due_milestones),
    "void_invoice": lambda e: e.call(billing.void_invoice, e.ids["invoice"], {"reason": "wrong purchase order"}),
    "get_invoice": lambda e: e.call(billing.get_invoice, e.ids["invoice"]),
    "list_invoices": lambda e: e.call(billing.list_invoices, e.ids["contract"]),
    "record_payment": lambda e: e.call(payments.record_payment, {
        "contract_id": e.ids["contract"], "amount": "1000", "currency": "CNY",
        "received_on": e.today.isoformat(), "bank_ref": "BANK-R1"}),
    "propose_payment": lambda e: e.call(payments.propose_payment, {
        "contract_id": e.ids["contract"], "amount": "1000", "currency": "CNY",
        "received_on": e.today.isoformat(), "bank_ref": "BANK-R2"}),
    "confirm_payment": lambda e: e.call(payments.confirm_payment, e.ids["payment"]),
    "reject_payment": lambda e: e.call(payments.reject_payment, e.ids["payment"], "not on the statement"),
    "allocate_payment": lambda e: e.call(payments.allocate_payment, e.ids["payment"]),
    "get_payment": lambda e: e.call(payments.get_payment, e.ids["payment"]),
    "payments_for_account": lambda e: e.call(payments.payments_for_account, e.ids["account"]),
    "aging_report": lambda e: e.call(collections.aging_report),
    "record_promise": lambda e: e.call(collections.record_promise, e.ids["invoice"], {
        "amount": "1000", "promised_on": (e.today + timedelta(days=10)).isoformat()}),
    "run_dunning": lambda e: e.call(collections.run_dunning),
    "revenue_schedule": lambda e: e.call(revenue.revenue_schedule, e.ids["contract"]),
    "reconcile_contract": lambda e: e.call(reconciliation.reconcile_contract, e.ids["contract"]),
    "reconcile_opportunity": lambda e: e.call(reconciliation.reconcile_opportunity, e.ids["opp"]),
    "record_contribution": lambda e: e.call(incentives.record_contribution, e.ids["contract"], {
        "role": "SR", "shares": [{"user_id": e.org["sr"], "share_pct": "100"}]}),
    "incentive_split": lambda e: e.call(incentives.incentive_split, e.ids["contract"]),
    "propose_action": lambda e: e.call(confirmations.propose_action, _PROPOSAL),
    "confirm_action": lambda e: e.call(confirmations.confirm_action,
                                       e.call(confirmations.propose_action, _PROPOSAL).token),
    "cancel_action": lambda e: e.call(confirmations.cancel_action,
                                      e.call(confirmations.propose_action, _PROPOSAL).token),
    "search_records": lambda e: e.call(search.search_records, "Lead Target"),
    "payment_status": lambda e: e.call(payment_status.payment_status, contract=e.ids["contract"]),
}

# What an allowed read must show: the thing the case set up, so an empty answer cannot pass.
READS = {
    "get_contract": lambda e, r: r.id == e.ids["contract"],
    "contract_for_opportunity": lambda e, r: r.id == e.ids["contract"],
    "list_contracts": lambda e, r: e.ids["contract"] in {v.id for v in r},
    "get_order": lambda e, r: r.id == e.ids["order"],
    "order_for_contract": lambda e, r: r.id == e.ids["order"],
    "get_invoice": lambda e, r: r.id == e.ids["invoice"],
    "list_invoices": lambda e, r: e.ids["invoice"] in {v.id for v in r},
    "get_payment": lambda e, r: r.id == e.ids["payment"],
    "payments_for_account": lambda e, r: e.ids["payment"] in {v.id for v in r},
    "aging_report": lambda e, r: e.ids["invoice"] in {x.invoice_id for x in r.lines},
    "revenue_schedule": lambda e, r: r.value > 0,
    "reconcile_contract": lambda e, r: r.opportunity_id == e.ids["opp"],
    "reconcile_opportunity": lambda e, r: r.contract_number is not None,
    "confirm_action": lambda e, r: r.status == "confirmed" and r.tool == "decide_approval",
    "cancel_action": lambda e, r: r.status == "cancelled",
    "propose_action": lambda e, r: len(r.token) >= 20,
    "incentive_split": lambda e, r: r.contract_value > 0,
    "payment_status": lambda e, r: r.kind == "contract" and r.invoiced > 0 and len(r.open_invoices) == 1,
    "discount_policy": lambda e, r: len(r.bands) >= 3 and r.band is not None and r.band.approver_roles,
}


def test_the_matrix_covers_every_role_and_every_public_use_case():
    assert set(COLUMNS) == {r.value for r in Role} and set(WHO) == set(COLUMNS)
    public = {name for module in MODULES
              for name, fn in vars(module).items()
              if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_")
              and "actor" in inspect.signature(fn).parameters}
    assert public == set(CASES) == set(CASE_NAMES)


@pytest.mark.parametrize("role", COLUMNS)
@pytest.mark.parametrize("case", CASE_NAMES)
def test_role_permission_matrix(case, role, run, org, uow_factory, store, cached):
    env = _setup(run, org, uow_factory, store, role, case, cached)
    writes = {t: store.count(t) for t in ("audit", "outbox")}
    try:
        result = CASES[case](env)
    except PermissionDenied as e:
        assert not MATRIX[(case, role)], f"{role} was refused {case}: {e.message}"
        assert "needs one of the roles" in e.message and role not in e.allowed
        assert {t: store.count(t) for t in writes} == writes
        return
    except LTCError as e:
        assert MATRIX[(case, role)], f"{role} got {type(e).__name__} instead of PermissionDenied for {case}"
        assert isinstance(e, BUSINESS_REFUSALS.get((case, role), ())), f"{case} as {role}: {e.message}"
        return
    assert MATRIX[(case, role)], f"{role} may not {case}, yet it ran"
    assert (case, role) not in BUSINESS_REFUSALS
    if case in ("get_opportunity", "list_opportunities", "list_leads", "get_lead"):
        found = [result] if not isinstance(result, list) else result
        assert {v.id for v in found} >= {env.ids["lead" if "lead" in case else "opp"]}
    if case in READS:
        assert READS[case](env, result), f"{case} as {role} does not show what was set up"


def test_unknown_and_deactivated_users_may_do_nothing(run, org, uow_factory, store):
    with pytest.raises(PermissionDenied, match="Unknown user"):
        run(opportunities.list_opportunities, actor=Actor(9999))
    with uow_factory() as uow:
        uow.users.get(org["admin"]).active = False
        uow.commit()
    with pytest.raises(PermissionDenied, match="deactivated"):
        run(users.list_users, actor=org.actor("admin"))


# --- row-level rules --------------------------------------------------------------------------------

def _lead(run, org, owner: str, n: int) -> int:
    return run(leads.create_lead, {"source": "website", "company": f"Row Co {n}", "contact_name": f"Person {n}",
                                   "region": "east", "owner_id": org[owner]}, actor=org.actor(owner)).id


def _visible_opps(run, org, who) -> set[int]:
    return {v.id for v in run(opportunities.list_opportunities, actor=org.actor(who))}


def test_a_rep_cannot_see_another_reps_deal_or_lead(run, org, uow_factory, store):
    mine, theirs = new_deal(uow_factory, org, owner="rep", n=1), new_deal(uow_factory, org, owner="rep2", n=2)
    lead = _lead(run, org, "rep2", 3)
    rep = org.actor("rep")
    with pytest.raises(PermissionDenied) as err:
        run(opportunities.get_opportunity, theirs, actor=rep)
    assert "not one of your deals" in err.value.message
    with pytest.raises(PermissionDenied) as err:
        run(leads.get_lead, lead, actor=rep)
    assert "outside your team" in err.value.message
    for call in (lambda: run(opportunities.update_opportunity, theirs, {"next_step": "x"}, actor=rep),
                 lambda: run(opportunities.close_opportunity, theirs, "lost", "x", actor=rep),
                 lambda: run(leads.update_lead, lead, {"need": "x"}, actor=rep),
                 lambda: run(leads.disqualify_lead, lead, "x", actor=rep)):
        with pytest.raises(PermissionDenied):
            call()
    assert _visible_opps(run, org, "rep") == {mine}
    assert lead not in {v.id for v in run(leads.list_leads, actor=rep)}
    assert lead in {v.id for v in run(leads.list_leads, actor=org.actor("rep2"))}


def test_a_manager_sees_their_subtree_but_not_another_region(run, org, uow_factory):
    east1, east2 = new_deal(uow_factory, org, owner="rep", n=1), new_deal(uow_factory, org, owner="rep2", n=2)
    # without a triangle: the east SR/FR (in the east director's subtree) would bring it into view
    west = new_deal(uow_factory, org, owner="rep_w", n=3, region="west", triangle=False)
    west_lead, east_lead = _lead(run, org, "rep_w", 4), _lead(run, org, "rep2", 5)
    assert _visible_opps(run, org, "manager") == {east1, east2}
    assert _visible_opps(run, org, "director") == {east1, east2}
    assert _visible_opps(run, org, "manager_w") == {west}
    assert _visible_opps(run, org, "director_w") == {west}
    with pytest.raises(PermissionDenied):
        run(opportunities.get_opportunity, west, actor=org.actor("manager"))
    with pytest.raises(PermissionDenied):
        run(leads.get_lead, west_lead, actor=org.actor("manager"))
    with pytest.raises(PermissionDenied):
        run(opportunities.get_opportunity, east1, actor=org.actor("director_w"))
    assert {v.id for v in run(leads.list_leads, actor=org.actor("manager"))} >= {east_lead}
    assert west_lead not in {v.id for v in run(leads.list_leads, actor=org.actor("manager"))}
    run(opportunities.update_opportunity, east2, {"next_step": "demo"}, actor=org.actor("manager"))


def test_finance_and_legal_see_their_functions_stages_admin_and_ops_see_all(deal, run, org):
    by_stage = {s: deal(s) for s in ("qualify", "initiated", "solution", "bid", "negotiate", "won", "lost")}
    expect = {"finance": {"bid", "negotiate", "won"}, "legal": {"negotiate", "won"},
              "admin": set(by_stage), "sales_ops": set(by_stage)}
    for who, stages in expect.items():
        assert _visible_opps(run, org, who) == {by_stage[s] for s in stages}, who
        for stage, opp_id in by_stage.items():
            if stage in stages:
                assert run(opportunities.get_opportunity, opp_id, actor=org.actor(who)).stage == stage
            else:
                with pytest.raises(PermissionDenied):
                    run(opportunities.get_opportunity, opp_id, actor=org.actor(who))


def test_sr_and_fr_see_the_deals_they_serve_on(run, org, uow_factory):
    staffed = new_deal(uow_factory, org, n=1)
    bare = new_deal(uow_factory, org, n=2, triangle=False)
    for who in ("sr", "fr"):
        assert _visible_opps(run, org, who) == {staffed}
        with pytest.raises(PermissionDenied):
            run(opportunities.get_opportunity, bare, actor=org.actor(who))
    run(opportunities.assign_iron_triangle, bare, sr_id=org["sr"], actor=org.actor("rep"))
    assert _visible_opps(run, org, "sr") == {staffed, bare}
    assert _visible_opps(run, org, "fr") == {staffed}
    with pytest.raises(PermissionDenied):
        run(opportunities.record_delivery_plan, bare, "plan", actor=org.actor("fr"))
    helper = new_deal(uow_factory, org, n=3, triangle=False)
    run(opportunities.add_member, helper, org["sr"], "presales", actor=org.actor("rep"))
    assert helper in _visible_opps(run, org, "sr")
    with pytest.raises(PermissionDenied, match="SR may record"):  # on the team, not in the SR seat
        run(opportunities.record_solution, helper, "idea", actor=org.actor("sr"))


def test_accounts_follow_the_deal_team_and_finance_sees_customer_master_data(run, org, uow_factory, store):
    east = new_deal(uow_factory, org, owner="rep", n=1)
    west = new_deal(uow_factory, org, owner="rep_w", n=2, region="west")
    east_acc, west_acc = (store.get("opportunities", o).account_id for o in (east, west))
    with pytest.raises(PermissionDenied):
        run(accounts.account_360, west_acc, actor=org.actor("rep"))
    with pytest.raises(PermissionDenied):
        run(accounts.add_contact, west_acc, {"name": "Spy"}, actor=org.actor("rep"))
    assert {a.id for a in run(accounts.list_accounts, actor=org.actor("rep"))} == {east_acc}
    assert {a.id for a in run(accounts.list_accounts, actor=org.actor("sr"))} == {east_acc, west_acc}
    assert {a.id for a in run(accounts.list_accounts, actor=org.actor("finance"))} == {east_acc, west_acc}
    assert run(accounts.account_360, west_acc, actor=org.actor("legal")).opportunities == []  # deals stay hidden


def test_activities_cannot_target_a_deal_or_lead_out_of_sight(run, org, uow_factory, store):
    west = new_deal(uow_factory, org, owner="rep_w", n=2, region="west")
    west_lead = _lead(run, org, "rep_w", 9)
    before = store.count("activities")
    for target in ({"opportunity_id": west}, {"lead_id": west_lead},
                   {"account_id": store.get("opportunities", west).account_id}):
        with pytest.raises(PermissionDenied):
            run(activities.log_activity, {"kind": "call", "subject": "peek", **target}, actor=org.actor("rep"))
    assert store.count("activities") == before


def test_an_activity_cannot_be_attached_to_a_contact_of_an_account_out_of_sight(run, org, uow_factory, store):
    west = new_deal(uow_factory, org, owner="rep_w", n=2, region="west")
    west_contact = next(c for c in store.rows("contacts")
                        if c.account_id == store.get("opportunities", west).account_id)
    own_lead = _lead(run, org, "rep", 8)
    before = store.count("activities")
    try:
        run(activities.log_activity, {"kind": "call", "subject": "peek", "lead_id": own_lead,
                                      "contact_id": west_contact.id}, actor=org.actor("rep"))
    except (PermissionDenied, ValidationFailed):
        pass
    assert store.count("activities") == before


def test_a_duplicate_of_a_lead_out_of_sight_does_not_reveal_it(run, org, store):
    hidden = run(leads.create_lead, {"source": "referral", "company": "Secret Deal Co", "contact_name": "Ma Lin",
                                     "email": "ma.lin@secret.example", "region": "west", "need": "Confidential",
                                     "budget": "900000", "notes": "CFO is unhappy with vendor X"},
                 actor=org.actor("rep_w"))
    with pytest.raises(PermissionDenied):
        run(leads.get_lead, hidden.id, actor=org.actor("rep"))
    audits = store.count("audit")
    try:
        view = run(leads.create_lead, {"source": "website", "company": "Another Co", "contact_name": "Someone",
                                       "email": "MA.LIN@secret.example"}, actor=org.actor("rep"))
    except (Conflict, PermissionDenied) as e:
        assert hidden.ref in e.message  # says a duplicate exists, without its content
    else:
        assert view.created is False
        assert (view.need, view.budget, view.notes, view.phone) == (None, None, None, None)
    assert store.count("audit") == audits
