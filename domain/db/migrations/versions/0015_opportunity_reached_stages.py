"""opportunities.reached_stages kept by triggers on stage_history

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22

A bit per stage a deal has a stage_history row for (qualify 1, initiated 2, solution 4, bid 8,
negotiate 16, won 32, lost 64, abandoned 128): the funnel counts the deals created in a period
that reached each stage from the opportunities alone (an index-only scan), instead of joining
every such deal's history (measured 130-160 ms → ~15 ms for the whole company at 1M deals).
Triggers on stage_history keep it exact in the writing transaction on SQLite and PostgreSQL;
the history stays the record (tests/integration/analytics_oracle.py counts from it).
The index ix_opportunities_created_at is rebuilt to carry the column (PostgreSQL INCLUDE).
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

STAGES = ("qualify", "initiated", "solution", "bid", "negotiate", "won", "lost", "abandoned")
INDEX_INCLUDE = ["owner_id", "id", "currency", "amount"]


def _bit(expr: str) -> str:
    whens = " ".join(f"WHEN '{s}' THEN {1 << i}" for i, s in enumerate(STAGES))
    return f"(CASE {expr} {whens} ELSE 0 END)"


def _recompute(deal: str) -> str:
    # Distinct powers of two summed = their OR (SQLite has no bit_or aggregate).
    return (f"UPDATE opportunities SET reached_stages = COALESCE((SELECT SUM(DISTINCT {_bit('h.to_stage')}) "
            f"FROM stage_history h WHERE h.opportunity_id = {deal}), 0) WHERE id = {deal}")


def _add(row: str) -> str:
    bit = _bit(f"{row}.to_stage")
    return (f"UPDATE opportunities SET reached_stages = reached_stages | {bit} "
            f"WHERE id = {row}.opportunity_id AND (reached_stages & {bit}) = 0")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # A plain ADD COLUMN (no batch rebuild), so SQLite keeps the pipeline rollup's triggers on opportunities.
    op.add_column('opportunities', sa.Column('reached_stages', sa.Integer(), server_default='0', nullable=False))
    if dialect == "postgresql":
        # History written between the backfill and the trigger would be in neither: writers wait.
        op.execute("LOCK TABLE stage_history IN SHARE ROW EXCLUSIVE MODE")
        op.execute(f"UPDATE opportunities o SET reached_stages = r.bits FROM "
                   f"(SELECT opportunity_id, bit_or({_bit('to_stage')}) AS bits FROM stage_history "
                   f"GROUP BY opportunity_id) r WHERE r.opportunity_id = o.id")
        op.execute(f"""
CREATE FUNCTION opportunity_reached_apply() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_add('NEW')};
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.opportunity_id = NEW.opportunity_id AND OLD.to_stage = NEW.to_stage THEN
    RETURN NULL;
  END IF;
  {_recompute('OLD.opportunity_id')};
  IF TG_OP = 'UPDATE' AND OLD.opportunity_id <> NEW.opportunity_id THEN
    {_recompute('NEW.opportunity_id')};
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql""")
        # Only the columns it reads: a backfill of other history columns must not run it on every row.
        op.execute("CREATE TRIGGER trg_opportunity_reached AFTER INSERT OR UPDATE OF opportunity_id, to_stage "
                   "OR DELETE ON stage_history FOR EACH ROW EXECUTE FUNCTION opportunity_reached_apply()")
        with op.get_context().autocommit_block():
            _rebuild_index([*INDEX_INCLUDE, "reached_stages"])
    else:
        op.execute(_recompute("opportunities.id").replace(" WHERE id = opportunities.id", ""))
        op.execute(f"CREATE TRIGGER trg_opportunity_reached_insert AFTER INSERT ON stage_history "
                   f"BEGIN {_add('NEW')}; END")
        op.execute(f"CREATE TRIGGER trg_opportunity_reached_delete AFTER DELETE ON stage_history "
                   f"BEGIN {_recompute('OLD.opportunity_id')}; END")
        op.execute(f"CREATE TRIGGER trg_opportunity_reached_update AFTER UPDATE OF opportunity_id, to_stage "
                   f"ON stage_history BEGIN {_recompute('OLD.opportunity_id')}; {_recompute('NEW.opportunity_id')}; END")


def _rebuild_index(include: list[str]) -> None:
    op.drop_index("ix_opportunities_created_at", table_name="opportunities", postgresql_concurrently=True,
                  if_exists=True)
    op.create_index("ix_opportunities_created_at", "opportunities", ["created_at"], unique=False,
                    postgresql_concurrently=True, postgresql_include=include)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_opportunity_reached ON stage_history")
        op.execute("DROP FUNCTION IF EXISTS opportunity_reached_apply()")
        with op.get_context().autocommit_block():
            _rebuild_index(INDEX_INCLUDE)
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS trg_opportunity_reached_{name}")
    # Plain DROP COLUMN (SQLite ≥ 3.35): no batch rebuild, the rollup triggers stay.
    op.execute("ALTER TABLE opportunities DROP COLUMN reached_stages")
