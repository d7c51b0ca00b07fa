"""analytics indexes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22

Covering and partial indexes for the analytics questions (domain/analytics/indexes.py), measured
with tests/benchmarks/bench_analytics.py on 1M opportunities. PostgreSQL builds them CONCURRENTLY
outside the migration's transaction, so a live database keeps taking writes while they build.
"""
from alembic import op

from domain.db.index_ops import create_indexes, drop_indexes

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OPEN = "stage IN ('qualify', 'initiated', 'solution', 'bid', 'negotiate')"
CLOSED = "stage IN ('won', 'lost', 'abandoned')"

# (name, table, key columns, INCLUDE columns (PostgreSQL), partial-index predicate)
INDEXES = [
    ("ix_opportunities_open_owner", "opportunities", ["owner_id", "stage"],
     ["id", "currency", "amount", "probability", "expected_close_date", "stage_changed_at"], OPEN),
    ("ix_opportunities_closed_at", "opportunities", ["stage_changed_at"],
     ["owner_id", "stage", "id", "currency", "amount"], CLOSED),
    ("ix_opportunities_created_at", "opportunities", ["created_at"], ["owner_id", "id", "currency", "amount"], None),
    ("ix_opportunities_owner_deal", "opportunities", ["owner_id"], ["id"], None),
    ("ix_leads_created_at", "leads", ["created_at"], ["owner_id", "status"], None),
    ("ix_stage_history_changed_at", "stage_history", ["changed_at"], ["opportunity_id", "id"], None),
    ("ix_stage_history_opportunity_order", "stage_history", ["opportunity_id", "changed_at", "id"], ["to_stage"], None),
    ("ix_quotes_current", "quotes", ["opportunity_id", "version"], ["id", "currency"], "status <> 'superseded'"),
    ("ix_quote_lines_quote_cover", "quote_lines", ["quote_id"],
     ["product_id", "quantity", "list_price", "discount_pct"], None),
    ("ix_invoices_open", "invoices", ["contract_id"], ["due_on", "issued_on", "amount", "paid_amount", "currency"],
     "status <> 'void' AND amount > paid_amount"),
    ("ix_invoices_issued_on", "invoices", ["issued_on"], ["contract_id", "amount", "currency"], "status <> 'void'"),
    ("ix_invoices_due_on", "invoices", ["due_on"], ["contract_id", "amount", "paid_amount", "currency"],
     "status <> 'void'"),
    ("ix_payments_received_on", "payments", ["received_on"], ["id"], "status = 'confirmed'"),
    ("ix_payment_allocations_payment_cover", "payment_allocations", ["payment_id"], ["invoice_id", "currency", "amount"],
     None),
    ("ix_approval_requests_pending_requester", "approval_requests", ["requested_by"], ["kind", "created_at"],
     "status = 'pending'"),
    ("ix_approval_requests_closed_at", "approval_requests", ["closed_at"],
     ["requested_by", "kind", "status", "created_at"], None),
]


def upgrade() -> None:
    create_indexes(op, INDEXES)


def downgrade() -> None:
    drop_indexes(op, INDEXES)
