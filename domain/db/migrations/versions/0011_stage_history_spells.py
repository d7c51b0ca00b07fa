"""stage history: each row records the spell it ends

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22

Two columns on `stage_history`, written by the domain with each row (Opportunity.move_to):

* `spell_us`: microseconds since the deal's previous row in (changed_at, id) order, i.e. the
  spell in `from_stage` this row ends; NULL on a deal's first row. The spells that ended in a
  period are then a range of changed_at (cycle time) instead of a window function over every
  touched deal's history, and an integer sorts fast for the median (measured ~2× the speed of
  computing date_part of the difference per row).
* `history_started_at`: the changed_at of the deal's first row (days to win from the won row).

The backfill computes both with window functions over the rows already there, in batches of
deals; it only fills rows whose `history_started_at` is NULL (the domain always sets it), so it
is safe to run again and needs no lock: a row the domain appends meanwhile carries its own values
and does not change its predecessors'. PostgreSQL then vacuums the table (every row was
rewritten: index-only scans need the visibility map) and builds the indexes CONCURRENTLY, as 0010.
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 50_000  # deals per UPDATE (~200k rows at 1M deals)

# (name, key columns, INCLUDE columns (PostgreSQL), partial-index predicate): as domain/db/tables.py.
INDEXES = [
    ("ix_stage_history_spells", ["from_stage", "changed_at"], ["spell_us", "opportunity_id"], "spell_us IS NOT NULL"),
    ("ix_stage_history_won", ["changed_at"], ["opportunity_id", "history_started_at"], "to_stage = 'won'"),
]


def _us(dialect: str, column: str) -> str:
    """A timestamp in microseconds since the epoch, exactly."""
    if dialect == "postgresql":
        return f"(extract(epoch FROM {column}) * 1000000)::bigint"  # numeric: exact
    # SQLite keeps the text 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy writes all six digits, or no
    # fraction at all: '' casts to 0). julianday is a float of days, ~50 µs short of exact today.
    return f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"


def _backfill_sql(dialect: str) -> str:
    return f"""
UPDATE stage_history SET spell_us = {_us(dialect, 'w.changed_at')} - {_us(dialect, 'w.entered')},
                         history_started_at = w.started
FROM (SELECT id, changed_at,
             lag(changed_at) OVER (PARTITION BY opportunity_id ORDER BY changed_at, id) AS entered,
             min(changed_at) OVER (PARTITION BY opportunity_id) AS started
        FROM stage_history WHERE opportunity_id >= :lo AND opportunity_id < :hi) AS w
WHERE stage_history.id = w.id AND stage_history.history_started_at IS NULL
"""


def _backfill(bind) -> None:
    lo, top = bind.execute(sa.text("SELECT min(opportunity_id), max(opportunity_id) FROM stage_history "
                                   "WHERE history_started_at IS NULL")).one()
    if lo is None:
        return
    while lo <= top:
        bind.execute(sa.text(_backfill_sql(bind.dialect.name)), {"lo": lo, "hi": lo + BATCH})
        lo += BATCH


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # IF NOT EXISTS: a run interrupted after the columns were committed can simply run again.
        op.execute("ALTER TABLE stage_history ADD COLUMN IF NOT EXISTS spell_us BIGINT, "
                   "ADD COLUMN IF NOT EXISTS history_started_at TIMESTAMP WITHOUT TIME ZONE")
        _backfill(bind)
        with op.get_context().autocommit_block():
            op.execute("VACUUM (ANALYZE) stage_history")
            for name, cols, include, where in INDEXES:
                op.drop_index(name, table_name="stage_history", postgresql_concurrently=True, if_exists=True)
                op.create_index(name, "stage_history", cols, unique=False, postgresql_concurrently=True,
                                postgresql_include=include, postgresql_where=sa.text(where))
        return
    with op.batch_alter_table("stage_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spell_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("history_started_at", sa.DateTime(), nullable=True))
    _backfill(bind)
    with op.batch_alter_table("stage_history", schema=None) as batch_op:
        for name, cols, _include, where in INDEXES:
            batch_op.create_index(name, cols, unique=False, sqlite_where=sa.text(where))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, *_ in reversed(INDEXES):
                op.drop_index(name, table_name="stage_history", postgresql_concurrently=True, if_exists=True)
        op.drop_column("stage_history", "history_started_at")
        op.drop_column("stage_history", "spell_us")
        return
    with op.batch_alter_table("stage_history", schema=None) as batch_op:
        for name, *_ in reversed(INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_column("history_started_at")
        batch_op.drop_column("spell_us")
