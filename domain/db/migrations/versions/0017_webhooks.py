"""outbound webhooks: endpoints and deliveries

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22

Reserved: filled in by the work on issue 9 (integration API).
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
