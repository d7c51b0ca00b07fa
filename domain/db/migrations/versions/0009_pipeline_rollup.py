"""pipeline rollup kept by triggers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22

One row per (owner, stage, currency, region, month) with the count, amount and weighted amount
of the opportunities in it. Triggers on `opportunities` keep it exact inside the writing
transaction, on SQLite and PostgreSQL alike; the migration fills it from the rows already there.

A later migration that rebuilds `opportunities` on SQLite (Alembic batch mode copies the table)
drops these triggers: it must create them again (tests/integration/test_migrations.py checks that
they exist at head).
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

OPEN = "('qualify', 'initiated', 'solution', 'bid', 'negotiate')"
COLS = "owner_id, stage, currency, region, month, n, amount, weighted"
KEY = "owner_id, stage, currency, region, month"


def _month(dialect: str, row: str) -> str:
    """The rollup month of a row (`row` = NEW, OLD or the table name)."""
    if dialect == "postgresql":
        return (f"CASE WHEN {row}.stage IN {OPEN} THEN COALESCE(to_char({row}.expected_close_date, 'YYYY-MM'), '') "
                f"ELSE to_char({row}.stage_changed_at, 'YYYY-MM') END")
    return (f"CASE WHEN {row}.stage IN {OPEN} THEN COALESCE(strftime('%Y-%m', {row}.expected_close_date), '') "
            f"ELSE strftime('%Y-%m', {row}.stage_changed_at) END")


def _add(dialect: str) -> str:
    return (f"INSERT INTO pipeline_rollup ({COLS}) VALUES (NEW.owner_id, NEW.stage, NEW.currency, NEW.region, "
            f"{_month(dialect, 'NEW')}, 1, NEW.amount, NEW.amount * NEW.probability / 100.0) "
            f"ON CONFLICT ({KEY}) DO UPDATE SET n = pipeline_rollup.n + 1, "
            f"amount = pipeline_rollup.amount + excluded.amount, weighted = pipeline_rollup.weighted + excluded.weighted")


def _remove(dialect: str) -> str:
    return ("UPDATE pipeline_rollup SET n = n - 1, amount = amount - OLD.amount, "
            "weighted = weighted - OLD.amount * OLD.probability / 100.0 "
            "WHERE owner_id = OLD.owner_id AND stage = OLD.stage AND currency = OLD.currency "
            f"AND region = OLD.region AND month = {_month(dialect, 'OLD')}")


# Only these columns move a deal between rollup rows or change its sums.
WATCHED = ("owner_id", "stage", "currency", "region", "amount", "probability", "expected_close_date",
           "stage_changed_at")


def upgrade() -> None:
    op.create_table(
        'pipeline_rollup',
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('region', sa.String(length=50), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column('weighted', sa.Numeric(precision=24, scale=4), nullable=False),
        sa.PrimaryKeyConstraint('owner_id', 'stage', 'currency', 'region', 'month', name=op.f('pk_pipeline_rollup')),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Writers wait until the trigger exists: a deal committed between the backfill and the
        # trigger would otherwise be in neither, and the rollup short for good.
        op.execute("LOCK TABLE opportunities IN SHARE ROW EXCLUSIVE MODE")
    op.execute(f"INSERT INTO pipeline_rollup ({COLS}) SELECT owner_id, stage, currency, region, "
               f"{_month(dialect, 'opportunities')}, count(*), sum(amount), sum(amount * probability / 100.0) "
               f"FROM opportunities GROUP BY 1, 2, 3, 4, 5")
    if dialect == "postgresql":
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
        op.execute(f"""
CREATE FUNCTION pipeline_rollup_apply() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    -- Lock the old and the new rollup rows in key order, so two moves in opposite directions
    -- between the same rows wait for each other instead of deadlocking.
    PERFORM 1 FROM pipeline_rollup
     WHERE (owner_id, stage, currency, region, month) IN
           ((OLD.owner_id, OLD.stage, OLD.currency, OLD.region, {_month(dialect, 'OLD')}),
            (NEW.owner_id, NEW.stage, NEW.currency, NEW.region, {_month(dialect, 'NEW')}))
     ORDER BY owner_id, stage, currency, region, month FOR UPDATE;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    {_remove(dialect)};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {_add(dialect)};
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER trg_pipeline_rollup AFTER INSERT OR UPDATE OR DELETE ON opportunities "
                   "FOR EACH ROW EXECUTE FUNCTION pipeline_rollup_apply()")
    else:
        op.execute(f"CREATE TRIGGER trg_pipeline_rollup_insert AFTER INSERT ON opportunities BEGIN {_add(dialect)}; END")
        op.execute(f"CREATE TRIGGER trg_pipeline_rollup_delete AFTER DELETE ON opportunities BEGIN {_remove(dialect)}; END")
        op.execute(f"CREATE TRIGGER trg_pipeline_rollup_update AFTER UPDATE OF {', '.join(WATCHED)} ON opportunities "
                   f"BEGIN {_remove(dialect)}; {_add(dialect)}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_pipeline_rollup ON opportunities")
        op.execute("DROP FUNCTION IF EXISTS pipeline_rollup_apply()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_pipeline_rollup_{name}")
    op.drop_table('pipeline_rollup')
