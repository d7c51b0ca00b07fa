"""analytics indexes: open deals by amount and by last stage change; rollup storage

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22

Top and stuck deals read each currency's largest open deals from an index ordered by amount, instead
of sorting every candidate; stuck deals count the open deals that moved recently (few) and take
them from the open pipeline. Measured with tests/benchmarks/bench_analytics.py on 1M opportunities.

On PostgreSQL the pipeline rollup's pages keep 30% free: a trigger updates a rollup row on every deal
write, and with room on the page the new version stays there (a HOT update, no index entry), so the
table does not swell between vacuums (a generated 1M-deal history left it at 78 MB instead of 13 MB).
"""
from alembic import op

from domain.db.index_ops import create_indexes, drop_indexes

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

OPEN = "stage IN ('qualify', 'initiated', 'solution', 'bid', 'negotiate')"

INDEXES = [
    ("ix_opportunities_open_amount", "opportunities", ["currency", "amount", "id"],
     ["owner_id", "expected_close_date", "stage_changed_at"], OPEN),
    ("ix_opportunities_open_moved", "opportunities", ["stage_changed_at"],
     ["owner_id", "currency", "amount", "expected_close_date"], OPEN),
]


ROLLUP_STORAGE = "fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE pipeline_rollup SET ({ROLLUP_STORAGE})")
    create_indexes(op, INDEXES)


def downgrade() -> None:
    drop_indexes(op, INDEXES)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE pipeline_rollup RESET (fillfactor, autovacuum_vacuum_scale_factor)")
