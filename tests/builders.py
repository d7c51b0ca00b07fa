"""A small standard organisation and deal builders, through the real services.

Works with any unit-of-work factory (in-memory fake or SQLAlchemy), so unit tests, integration
tests and benchmarks share one picture of the company:

    director (east) ── sales_manager ── rep, rep2
                     ├─ solution_manager (SR), fulfillment_manager (FR)
    director_w (west) ── sales_manager_w ── rep_w
    finance, legal, sales_ops, admin (no manager)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from domain.actor import Actor
from domain.model.quotes import Quote
from domain.policy_defaults import SYSTEM_EMAIL, seed_policies
from domain.services import approvals, contracts, leads, opportunities, quotes, users


@dataclass
class Org:
    ids: dict[str, int]

    def actor(self, name: str, channel: str = "cli", via_agent: bool = False) -> Actor:
        return Actor(self.ids[name], channel, via_agent)

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


PEOPLE = [
    # key, role, region, manager key, team key
    ("director", "director", "east", None, "east"),
    ("manager", "sales_manager", "east", "director", "east"),
    ("rep", "sales_rep", "east", "manager", "east"),
    ("rep2", "sales_rep", "east", "manager", "east"),
    ("sr", "solution_manager", "east", "director", None),
    ("fr", "fulfillment_manager", "east", "director", None),
    ("director_w", "director", "west", None, "west"),
    ("manager_w", "sales_manager", "west", "director_w", "west"),
    ("rep_w", "sales_rep", "west", "manager_w", "west"),
    ("finance", "finance", "east", None, None),
    ("legal", "legal", "east", None, None),
    ("sales_ops", "sales_ops", "east", None, None),
    ("admin", "admin", "east", None, None),
]


def build_org(uow_factory: Callable, *, prefix: str = "") -> Org:
    """Seed policies and the standard organisation. `prefix` keeps emails unique per call."""
    with uow_factory() as uow:
        seed_policies(uow)
        uow.commit()
        system = uow.users.by_email(SYSTEM_EMAIL).id
    sys_actor = Actor(system, "system")
    ids: dict[str, int] = {"system": system}
    with uow_factory() as uow:
        teams = {
            "east": users.create_team({"name": f"{prefix}East", "region": "east"}, actor=sys_actor, uow=uow),
            "west": users.create_team({"name": f"{prefix}West", "region": "west"}, actor=sys_actor, uow=uow),
        }
        for key, role, region, manager, team in PEOPLE:
            view = users.create_user({
                "email": f"{prefix}{key}@example.com", "name_en": key.replace("_", " ").title(),
                "roles": [role], "region": region, "manager_id": ids.get(manager) if manager else None,
                "team_id": teams[team] if team else None,
            }, actor=sys_actor, uow=uow)
            ids[key] = view.id
        users.add_assignment_rule({"priority": 1, "team_id": teams["east"], "region": "east",
                                   "max_open_leads": 3}, actor=sys_actor, uow=uow)
        users.add_assignment_rule({"priority": 2, "team_id": teams["west"], "region": "west"},
                                  actor=sys_actor, uow=uow)
        uow.commit()
    ids.update({f"team_{k}": v for k, v in teams.items()})
    return Org(ids)


def make_deal(uow_factory: Callable, org: Org, *, n: int = 1, amount: str = "500000",
              triangle: bool = True, prefix: str = "", owner: str = "rep", region: str = "east") -> int:
    """A converted lead → opportunity in stage qualify, owned by `owner`, with need and budget."""
    rep = org.actor(owner)
    tag = prefix if owner == "rep" else f"{prefix}{owner} "  # distinct customers per owner
    with uow_factory() as uow:
        lead = leads.create_lead({
            "source": "referral", "company": f"{tag}Customer {n} Ltd", "contact_name": f"{tag}Contact {n}",
            "email": f"{prefix}c{n}@{owner}-customer{n}.example", "need": "A plant-wide MES upgrade in two waves",
            "budget": amount, "region": region, "timeline": "within_3_months", "authority": "decision_maker",
            "owner_id": org[owner],
        }, actor=rep, uow=uow)
        leads.qualify_lead(lead.id, actor=rep, uow=uow)
        conv = leads.convert_lead(lead.id, {"amount": amount}, actor=rep, uow=uow)
        if triangle:
            opportunities.assign_iron_triangle(conv.opportunity_id, sr_id=org["sr"], fr_id=org["fr"],
                                               actor=rep, uow=uow)
        uow.commit()
    return conv.opportunity_id


def approve_quote(uow_factory: Callable, opp_id: int) -> None:
    """A bare approved quote row that satisfies ATB's precondition (when the deal has none yet);
    tests of CPQ itself build real quotes through domain.services.quotes."""
    with uow_factory() as uow:
        if uow.quotes.has_approved(opp_id):
            return
        version = max((x.version for x in uow.quotes.for_opportunity(opp_id)), default=0) + 1
        opp = uow.opportunities.get(opp_id)
        uow.quotes.add(Quote(opportunity_id=opp_id, version=version, status="approved",
                             total=opp.amount if opp.amount > 0 else Decimal("1"), currency=opp.currency,
                             created_at=uow.now()))
        uow.commit()


def run_gate(uow_factory: Callable, org: Org, opp_id: int, kind: str, deciders: list[str]) -> None:
    with uow_factory() as uow:
        req = approvals.request_gate(opp_id, kind, actor=org.actor("rep"), uow=uow)
        uow.commit()
    for who in deciders:
        with uow_factory() as uow:
            approvals.decide_approval(req.id, "approve", actor=org.actor(who), uow=uow)
            uow.commit()


def contract_under_review(uow_factory: Callable, org: Org, opp_id: int) -> int:
    """What ATC needs from the AR: the approved quote sent and accepted, its contract drafted and submitted."""
    with uow_factory() as uow:
        existing = uow.contracts.for_opportunity(opp_id)
        if existing is not None and existing.status == "under_review":
            return existing.id
    rep = org.actor("rep")
    with uow_factory() as uow:
        contract = uow.contracts.for_opportunity(opp_id)
        if contract is None:
            quote = next(x for x in reversed(uow.quotes.for_opportunity(opp_id))
                         if x.status in ("approved", "sent", "accepted"))
            if quote.status == "approved":
                quotes.send_quote(quote.id, actor=rep, uow=uow)
            if quote.status == "sent":
                quotes.accept_quote(quote.id, actor=rep, uow=uow)
            contract = contracts.create_contract({"quote_id": quote.id}, actor=rep, uow=uow)
        contracts.submit_contract(contract.id, actor=rep, uow=uow)
        uow.commit()
    return contract.id


def to_contract_review(uow_factory: Callable, org: Org, *, n: int = 1) -> tuple[int, int]:
    """A new deal taken through ATI, solution review and ATB to negotiate, its contract under review:
    (deal id, contract id). Still open, so the domain may reassign it."""
    seed_catalog(uow_factory, org)  # the quote needs the catalog
    deal = make_deal(uow_factory, org, n=n)
    to_negotiate(uow_factory, org, deal)
    return deal, contract_under_review(uow_factory, org, deal)


def to_negotiate(uow_factory: Callable, org: Org, opp_id: int, *, signed_off: bool = False) -> None:
    """qualify → negotiate through ATI, solution review and ATB, with the notes each gate needs."""
    run_gate(uow_factory, org, opp_id, "ATI", ["manager"])
    with uow_factory() as uow:
        opportunities.record_solution(opp_id, "Cloud MES with edge gateways", actor=org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp_id, "Two waves, 6 months, local partner", actor=org.actor("fr"), uow=uow)
        uow.commit()
    run_gate(uow_factory, org, opp_id, "solution_review", ["manager"])
    approve_quote(uow_factory, opp_id)
    run_gate(uow_factory, org, opp_id, "ATB", ["manager", "director"])
    with uow_factory() as uow:
        opportunities.advance_stage(opp_id, actor=org.actor("rep"), uow=uow)
        if signed_off:
            opportunities.sign_off_deliverability(opp_id, actor=org.actor("fr"), uow=uow)
        uow.commit()


def full_cycle(uow_factory: Callable, org: Org, opp_id: int) -> None:
    """qualify → won through every gate, with the notes each gate needs (ATC signs the contract)."""
    to_negotiate(uow_factory, org, opp_id, signed_off=True)
    contract_under_review(uow_factory, org, opp_id)
    run_gate(uow_factory, org, opp_id, "ATC", ["director", "finance"])


def seed_catalog(uow_factory: Callable, org: Org) -> None:
    """One licence product on an east CNY price book (list 1,000, cost 300, floor 500); once per database."""
    from domain.services import catalog

    with uow_factory() as uow:
        if uow.catalog.product_by_sku("MES-LIC") is not None:
            return
        admin = org.actor("admin")
        catalog.create_product({"sku": "MES-LIC", "name_en": "MES licence", "name_zh": "MES许可", "unit": "seat",
                                "cost": "300", "floor_price": "500"}, actor=admin, uow=uow)
        catalog.create_price_book({"name": "East CNY", "region": "east", "currency": "CNY",
                                   "prices": {"MES-LIC": "1000"}}, actor=admin, uow=uow)
        uow.commit()


def lead_to_cash(uow_factory: Callable, org: Org, opp_id: int, *, seats: int = 1000) -> int:
    """A deal from make_deal all the way to a closed contract, one unit of work per use case.

    Gates; a 25 % quote approved by director then finance; ATB; ATC signing the contract (30/60/10);
    an order with delivery and final acceptance; invoices on triggers; three payments (the AR
    proposes one, the last overpays); reconciliation clean; contract closed; incentive split.
    Returns the contract id.
    """
    from domain.services import delivery, incentives, payments, reconciliation

    def call(fn, *args, **kwargs):
        with uow_factory() as uow:
            result = fn(*args, uow=uow, **kwargs)
            uow.commit()
        return result

    rep, fr, finance = org.actor("rep"), org.actor("fr"), org.actor("finance")
    run_gate(uow_factory, org, opp_id, "ATI", ["manager"])
    with uow_factory() as uow:
        opportunities.record_solution(opp_id, "Cloud MES with edge gateways", actor=org.actor("sr"), uow=uow)
        opportunities.record_delivery_plan(opp_id, "Two waves, 6 months, local partner", actor=fr, uow=uow)
        uow.commit()
    run_gate(uow_factory, org, opp_id, "solution_review", ["manager"])
    quote = call(quotes.create_quote, opp_id,
                 {"lines": [{"product": "MES-LIC", "quantity": str(seats), "discount_pct": "25"}]}, actor=rep)
    quote = call(quotes.submit_quote, quote.id, actor=rep)
    for who in ("director", "finance"):
        call(approvals.decide_approval, quote.approval_id, "approve", actor=org.actor(who))
    run_gate(uow_factory, org, opp_id, "ATB", ["manager", "director"])
    with uow_factory() as uow:
        opportunities.advance_stage(opp_id, actor=rep, uow=uow)
        opportunities.sign_off_deliverability(opp_id, actor=fr, uow=uow)
        uow.commit()
    contract_id = contract_under_review(uow_factory, org, opp_id)
    run_gate(uow_factory, org, opp_id, "ATC", ["director", "finance"])
    with uow_factory() as uow:
        today = uow.now().date().isoformat()
    order = call(delivery.create_order, contract_id, {"milestones": [
        {"name": "Install", "planned_date": today},
        {"name": "Final acceptance", "kind": "final_acceptance", "planned_date": today}]}, actor=fr)
    for seq in (1, 2):
        call(delivery.mark_delivered, order.id, seq, actor=fr)
        call(delivery.accept_milestone, order.id, seq, {"certificate_ref": f"CERT-{contract_id}-{seq}"}, actor=fr)
    with uow_factory() as uow:
        balances = [i.balance for i in uow.invoices.for_contract(contract_id)]
    tag = f"{contract_id}-{opp_id}"
    base = {"contract_id": contract_id, "currency": "CNY", "received_on": today}
    call(payments.record_payment, {**base, "amount": str(balances[0]), "bank_ref": f"B1-{tag}"}, actor=finance)
    proposed = call(payments.propose_payment, {**base, "amount": str(balances[1]), "bank_ref": f"B2-{tag}"},
                    actor=rep)
    call(payments.confirm_payment, proposed.id, actor=finance)
    call(payments.record_payment, {**base, "amount": str(balances[2] + 100), "bank_ref": f"B3-{tag}"},
         actor=finance)
    assert call(reconciliation.reconcile_contract, contract_id, actor=finance).clean
    call(contracts.close_contract, contract_id, actor=finance)
    call(incentives.incentive_split, contract_id, actor=org.actor("manager"))
    return contract_id
