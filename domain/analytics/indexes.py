"""Indexes for the analytics questions (migration 0010), attached to the schema's tables.

Measured on 1M opportunities (tests/benchmarks/bench_analytics.py). Most are covering
(PostgreSQL INCLUDE) so a question reads a narrow index instead of wide rows: index-only scans
need the table vacuumed, which autovacuum does. SQLite gets the same keys without INCLUDE.
Imported by domain/db/tables.py so the model and the migrated database agree.
"""
from __future__ import annotations

from sqlalchemy import Index, text

from domain.db import tables as t

_OPEN = "stage IN ('qualify', 'initiated', 'solution', 'bid', 'negotiate')"
_CLOSED = "stage IN ('won', 'lost', 'abandoned')"


def _where(sql: str) -> dict:
    return {"postgresql_where": text(sql), "sqlite_where": text(sql)}


o, sh, ld, inv, ar = t.opportunities, t.stage_history, t.leads, t.invoices, t.approval_requests

ANALYTICS_INDEXES = (
    # Open deals of a scope (stuck and top deals, the product pipeline's deals): a third of the table.
    Index("ix_opportunities_open_owner", o.c.owner_id, o.c.stage,
          postgresql_include=["id", "currency", "amount", "probability", "expected_close_date", "stage_changed_at"],
          **_where(_OPEN)),
    # Deals closed in a period (reconciliation, days to win): a range of close times.
    Index("ix_opportunities_closed_at", o.c.stage_changed_at,
          postgresql_include=["owner_id", "stage", "id", "currency", "amount"], **_where(_CLOSED)),
    # Deals created in a period (funnel cohort and the stages it reached, new pipeline); 0015 added reached_stages.
    Index("ix_opportunities_created_at", o.c.created_at,
          postgresql_include=["owner_id", "id", "currency", "amount", "reached_stages"]),
    # A scope's deals by owner without their wide rows (receivables and stage changes joined to their AR).
    Index("ix_opportunities_owner_deal", o.c.owner_id, postgresql_include=["id"]),
    # Leads created in a period (funnel).
    Index("ix_leads_created_at", ld.c.created_at, postgresql_include=["owner_id", "status"]),
    # Stage changes in a period (cycle time: spells that ended in it).
    Index("ix_stage_history_changed_at", sh.c.changed_at, postgresql_include=["opportunity_id", "id"]),
    # A deal's history in order with its stages (spells, funnel steps) from the index alone.
    Index("ix_stage_history_opportunity_order", sh.c.opportunity_id, sh.c.changed_at, sh.c.id,
          postgresql_include=["to_stage"]),
    # Current quote of a deal (highest version not superseded) and its lines (pipeline by product).
    Index("ix_quotes_current", t.quotes.c.opportunity_id, t.quotes.c.version,
          postgresql_include=["id", "currency"], **_where("status <> 'superseded'")),
    Index("ix_quote_lines_quote_cover", t.quote_lines.c.quote_id,
          postgresql_include=["product_id", "quantity", "list_price", "discount_pct"]),
    # Receivables: open balances (aging), issued in a window (DSO, invoiced), due in a period (collection).
    Index("ix_invoices_open", inv.c.contract_id,
          postgresql_include=["due_on", "issued_on", "amount", "paid_amount", "currency"],
          **_where("status <> 'void' AND amount > paid_amount")),
    Index("ix_invoices_issued_on", inv.c.issued_on, postgresql_include=["contract_id", "amount", "currency"],
          **_where("status <> 'void'")),
    Index("ix_invoices_due_on", inv.c.due_on, postgresql_include=["contract_id", "amount", "paid_amount", "currency"],
          **_where("status <> 'void'")),
    # Money received in a period (collected) and what it paid.
    Index("ix_payments_received_on", t.payments.c.received_on, postgresql_include=["id"],
          **_where("status = 'confirmed'")),
    Index("ix_payment_allocations_payment_cover", t.payment_allocations.c.payment_id,
          postgresql_include=["invoice_id", "currency", "amount"]),
    # Gates: what waits per requester, what was decided in a period.
    Index("ix_approval_requests_pending_requester", ar.c.requested_by, postgresql_include=["kind", "created_at"],
          **_where("status = 'pending'")),
    Index("ix_approval_requests_closed_at", ar.c.closed_at,
          postgresql_include=["requested_by", "kind", "status", "created_at"]),
)

# Migration 0014: open deals by amount within a currency (the largest first without a sort), and by
# their last stage change (the few that moved recently, for stuck deals).
OPEN_DEAL_INDEXES = (
    Index("ix_opportunities_open_amount", o.c.currency, o.c.amount, o.c.id,
          postgresql_include=["owner_id", "expected_close_date", "stage_changed_at"], **_where(_OPEN)),
    Index("ix_opportunities_open_moved", o.c.stage_changed_at,
          postgresql_include=["owner_id", "currency", "amount", "expected_close_date"], **_where(_OPEN)),
)

# Migration 0020: one period's rollup rows (forecast, win rate, a quarter's pipeline) without the rest.
ROLLUP_INDEXES = (
    Index("ix_pipeline_rollup_month", t.pipeline_rollup.c.month, t.pipeline_rollup.c.stage,
          postgresql_include=["owner_id", "currency", "n", "amount", "weighted"]),
)
