"""receivables: the deal owner on invoices and allocations

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22

Reserved: filled in by the work on issue 8's scale aim.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
