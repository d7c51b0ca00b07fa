"""website lead capture forms

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22

Web forms (a public endpoint each, with its own secret) and the log of their submissions.
"""
from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_forms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=20), server_default='website', nullable=False),
    sa.Column('region', sa.String(length=50), server_default='', nullable=False),
    sa.Column('allowed_origins', sa.JSON(), nullable=False),
    sa.Column('redirect_url', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('(true)'), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('secret_rotated_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("source IN ('website', 'trade_show', 'referral', 'social', 'ad', 'partner', 'other')",
                       name=op.f('ck_web_forms_source_valid')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_web_forms_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_forms')),
    sa.UniqueConstraint('slug', name=op.f('uq_web_forms_slug'))
    )
    op.create_table('web_form_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_id', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('remote_hash', sa.String(length=32), nullable=True),
    sa.CheckConstraint("outcome IN ('created', 'merged', 'spam', 'rejected')",
                       name=op.f('ck_web_form_submissions_outcome_valid')),
    sa.CheckConstraint("outcome NOT IN ('created', 'merged') OR lead_id IS NOT NULL",
                       name=op.f('ck_web_form_submissions_lead_when_accepted')),
    sa.ForeignKeyConstraint(['form_id'], ['web_forms.id'], name=op.f('fk_web_form_submissions_form_id_web_forms'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_web_form_submissions_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_form_submissions'))
    )
    with op.batch_alter_table('web_form_submissions', schema=None) as batch_op:
        batch_op.create_index('ix_web_form_submissions_form_remote', ['form_id', 'remote_hash', 'received_at'],
                              unique=False)
        batch_op.create_index('ix_web_form_submissions_form_received', ['form_id', 'received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('web_form_submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_web_form_submissions_form_received')
        batch_op.drop_index('ix_web_form_submissions_form_remote')
    op.drop_table('web_form_submissions')
    op.drop_table('web_forms')
