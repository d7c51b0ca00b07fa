"""stage history: each row records the spell it ends

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22

Reserved: filled in by the work on issue 8's scale aim.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
