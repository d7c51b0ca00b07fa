"""Domain events (outbox topics) → public webhook events: the type and a stable `data` object.

The data is read when the event is queued (just after the commit that made it) and stored with
the delivery, so retries and replays send the same bytes. Amounts are strings (exact decimals),
dates ISO 8601, every record carries its id and its human ref (OPP-00012, CT-2026-00001, ...).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from domain.db import tables as t

# Topics that map one to one; OpportunityStageChanged depends on the stage reached.
TOPICS = {
    "LeadCreated": "lead.created",
    "ContractSigned": "contract.signed",
    "OrderCreated": "order.created",
    "InvoiceIssued": "invoice.issued",
    "InvoiceVoided": "invoice.voided",
    "PaymentRecorded": "payment.recorded",
}
CLOSED_STAGES = {"won": "opportunity.won", "lost": "opportunity.lost", "abandoned": "opportunity.lost"}


def event_type(topic: str, payload: dict) -> str | None:
    """The public type of an outbox message, or None when webhooks do not publish it."""
    if topic == "OpportunityStageChanged":
        return CLOSED_STAGES.get(payload.get("to_stage", ""))
    return TOPICS.get(topic)


def event_id(outbox_key: str) -> str:
    """Stable per fact: the outbox key (e.g. InvoiceIssued:12) hashed, so every retry, replay and
    endpoint shares one id a receiver can de-duplicate on."""
    return "evt_" + hashlib.sha256(outbox_key.encode()).hexdigest()[:32]


def timestamp(value: datetime) -> str:
    """Naive UTC (the database's convention) as ISO 8601 with Z."""
    return value.replace(microsecond=0).isoformat() + "Z"


def envelope(uow, key: str, topic: str, payload: dict) -> dict[str, Any] | None:
    """The JSON body of the webhook, or None when the event is not published or its record is gone."""
    kind = event_type(topic, payload)
    if kind is None:
        return None
    data = BUILDERS[topic](uow, payload)
    if data is None:
        return None
    created = uow.session.execute(select(t.outbox.c.created_at).where(t.outbox.c.key == key)).scalar()
    return {"id": event_id(key), "type": kind, "created_at": timestamp(created or uow.now()), "data": data}


# --- shared parts ----------------------------------------------------------------------------------

def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _amount(text: str) -> str:
    """An amount from the event, as the books keep it: exactly two decimals."""
    return str(Decimal(text).quantize(Decimal("0.01")))


def _account(uow, account_id: int | None) -> dict | None:
    account = uow.accounts.get(account_id) if account_id else None
    return None if account is None else {"id": account.id, "ref": account.ref, "name": account.name}


def _person(uow, user_id: int | None) -> dict | None:
    user = uow.users.get(user_id) if user_id else None
    return None if user is None else {"id": user.id, "email": user.email, "name": user.name_en or user.email}


def _deal(uow, opportunity_id: int) -> dict:
    """The deal behind a contract: its ids, and its AR as the owner."""
    opp = uow.opportunities.get(opportunity_id)
    return {"opportunity_id": opp.id, "opportunity_ref": opp.ref, "owner": _person(uow, opp.owner_id)}


# --- one builder per topic ------------------------------------------------------------------------

def _opportunity(uow, p: dict) -> dict | None:
    opp = uow.opportunities.get(p["opportunity_id"])
    if opp is None:
        return None
    return {"opportunity_id": opp.id, "opportunity_ref": opp.ref, "name": opp.name, "stage": p["to_stage"],
            "from_stage": p["from_stage"], "amount": _text(opp.amount), "currency": opp.currency,
            "reason": opp.close_reason if p["to_stage"] != "won" else None,
            "account": _account(uow, opp.account_id), "owner": _person(uow, opp.owner_id)}


def _contract(uow, p: dict) -> dict | None:
    contract = uow.contracts.get(p["contract_id"])
    if contract is None:
        return None
    plan = [{"seq": m.seq, "label": m.label, "pct": _text(m.pct), "amount": _text(m.amount), "trigger": m.trigger,
             "due_date": _text(m.due_date)} for m in sorted(contract.milestones, key=lambda m: m.seq)]
    return {"contract_id": contract.id, "contract_ref": contract.ref, **_deal(uow, contract.opportunity_id),
            "value": _amount(p["value"]), "currency": p["currency"], "signed_at": _text(contract.signed_at),
            "payment_terms_days": contract.payment_terms_days, "payment_plan": plan,
            "account": _account(uow, contract.account_id)}


def _order(uow, p: dict) -> dict | None:
    order, contract = uow.orders.get(p["order_id"]), uow.contracts.get(p["contract_id"])
    if order is None or contract is None:
        return None
    milestones = [{"seq": m.seq, "name": m.name, "kind": m.kind, "planned_date": _text(m.planned_date),
                   "revenue_pct": _text(m.revenue_pct)} for m in sorted(order.milestones, key=lambda m: m.seq)]
    return {"order_id": order.id, "order_ref": order.ref, "contract_id": contract.id, "contract_ref": contract.ref,
            **_deal(uow, contract.opportunity_id), "value": _text(contract.value), "currency": contract.currency,
            "milestones": milestones, "account": _account(uow, contract.account_id)}


def _invoice(uow, p: dict) -> dict | None:
    invoice, contract = uow.invoices.get(p["invoice_id"]), uow.contracts.get(p["contract_id"])
    if invoice is None or contract is None:
        return None
    seq = next((m.seq for m in contract.milestones if m.id == invoice.milestone_id), None)
    data = {"invoice_id": invoice.id, "invoice_ref": invoice.ref, "contract_id": contract.id,
            "contract_ref": contract.ref, **_deal(uow, contract.opportunity_id), "milestone_seq": seq,
            "amount": _amount(p["amount"]), "currency": p["currency"], "issued_on": _text(invoice.issued_on),
            "due_on": _text(invoice.due_on), "account": _account(uow, invoice.account_id)}
    if "reason" in p:  # voided
        data.update(reason=p["reason"], voided_at=_text(invoice.voided_at))
    return data


def _payment(uow, p: dict) -> dict | None:
    payment = uow.payments.get(p["payment_id"])
    if payment is None:
        return None
    allocations = []
    for a in payment.allocations:
        invoice = uow.invoices.get(a.invoice_id)
        allocations.append({"invoice_id": a.invoice_id, "invoice_ref": invoice.ref if invoice else None,
                            "amount": _text(a.amount)})
    account = uow.accounts.get(payment.account_id)
    return {"payment_id": payment.id, "payment_ref": payment.ref, "amount": _amount(p["amount"]),
            "currency": p["currency"], "unapplied": _amount(p["unapplied"]), "received_on": _text(payment.received_on),
            "method": payment.method, "bank_ref": payment.bank_ref, "allocations": allocations,
            "account": _account(uow, payment.account_id), "owner": _person(uow, account.owner_id if account else None)}


def _lead(uow, p: dict) -> dict | None:
    lead = uow.leads.get(p["lead_id"])
    if lead is None:
        return None
    return {"lead_id": lead.id, "lead_ref": lead.ref, "source": p["source"], "company": lead.company,
            "contact_name": lead.contact_name, "email": lead.email, "phone": lead.phone, "region": lead.region,
            "budget": _text(lead.budget), "currency": lead.currency, "owner": _person(uow, lead.owner_id)}


BUILDERS: dict[str, Callable[[Any, dict], dict | None]] = {
    "OpportunityStageChanged": _opportunity,
    "LeadCreated": _lead,
    "ContractSigned": _contract,
    "OrderCreated": _order,
    "InvoiceIssued": _invoice,
    "InvoiceVoided": _invoice,
    "PaymentRecorded": _payment,
}
