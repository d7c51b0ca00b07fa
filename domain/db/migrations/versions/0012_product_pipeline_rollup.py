"""product pipeline rollup kept by triggers

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22

The open pipeline by product (DEFINITIONS.md, pipeline by product) without reading every quote:

* `product_pipeline_deals`: one row per open deal and product of its current quote (the highest
  version not superseded): Σ quantity × list_price × (1 − discount_pct/100) of those lines in the
  quote's currency, and that × probability / 100. A deal without a current quote has one row with
  product_id 0 and its own amount and currency (shown under "—"). Owner and month of the expected
  close date ("" when none) come along: scoped askers sum these rows.
* `product_pipeline_rollup`: the same summed per (stripe, product, currency, month), stripe =
  owner_id % 16, n = deals: the whole company's answer from ~28k rows at 1M deals (16 ms). The
  stripes let writers of different owners' deals in one month go on side by side (see the gates).

Triggers on opportunities, quotes and quote_lines "refresh" the deal they touch: its rows are
recomputed from the tables; the rollup loses the old rows and gains the new ones. A refresh is
idempotent and sees the tables as they are, so the order of statements, rows and cascades does not
matter, only that the last change of a deal is followed by a refresh (every row trigger is). On
PostgreSQL a refresh first locks the deal's opportunity row (two writers of one deal take turns),
returns early when nothing changed, then takes the advisory "gates" of the deal's (stripe, month)
pairs in order: a writer owns those rollup rows until it commits, so two transactions that each
refresh a deal several times (supersede, insert the new version, its lines) never deadlock on them.
Rollup rows that fall to n = 0 are deleted.

A later migration that rebuilds one of these tables on SQLite (batch mode) drops its triggers: it must
create them again (tests/integration/test_product_rollup.py checks that they exist at head).
Bulk loads (tests/benchmarks/datagen.py on PostgreSQL) disable the triggers and call `backfill`.
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

STRIPES = 16
OPEN = "('qualify', 'initiated', 'solution', 'bid', 'negotiate')"
DEAL_COLS = "opportunity_id, product_id, owner_id, currency, month, amount, weighted"
KEY = "stripe, product_id, currency, month"
ROLLUP_COLS = f"{KEY}, n, amount, weighted"
NET = "l.quantity * l.list_price * (1 - l.discount_pct * 0.01)"
# Only these columns change what a deal adds (amount and currency only while it has no quote).
OPP_WATCHED = ("owner_id", "stage", "currency", "amount", "probability", "expected_close_date")
QUOTE_WATCHED = ("opportunity_id", "version", "currency")
LINE_WATCHED = ("quote_id", "product_id", "quantity", "list_price", "discount_pct")
TABLES = ("opportunities", "quotes", "quote_lines")
GATE_SPACE = 12  # pg_advisory_xact_lock(12, stripe * 1000000 + yyyymm): this migration's gates


def _month(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"COALESCE(to_char({column}, 'YYYY-MM'), '')"
    return f"COALESCE(strftime('%Y-%m', {column}), '')"


def _rows_of(dialect: str, where: str) -> str:
    """The rows (DEAL_COLS) of the open deals `o` matching `where`, computed from the tables."""
    month = _month(dialect, "o.expected_close_date")
    return (f"SELECT o.id, l.product_id, o.owner_id, q.currency, {month}, sum({NET}), "
            f"sum({NET} * o.probability * 0.01) "
            "FROM opportunities o JOIN quotes q ON q.id = (SELECT c.id FROM quotes c WHERE c.opportunity_id = o.id "
            "AND c.status <> 'superseded' ORDER BY c.version DESC LIMIT 1) "
            "JOIN quote_lines l ON l.quote_id = q.id "
            f"WHERE {where} AND o.stage IN {OPEN} GROUP BY o.id, l.product_id, o.owner_id, q.currency, {month} "
            f"UNION ALL SELECT o.id, 0, o.owner_id, o.currency, {month}, o.amount, o.amount * o.probability * 0.01 "
            f"FROM opportunities o WHERE {where} AND o.stage IN {OPEN} AND NOT EXISTS (SELECT 1 FROM quotes c "
            "WHERE c.opportunity_id = o.id AND c.status <> 'superseded')")


def backfill(execute, dialect: str) -> None:
    """Fill both tables from the rows there (empty tables; writers kept out by the caller)."""
    execute(f"INSERT INTO product_pipeline_deals ({DEAL_COLS}) SELECT * FROM ({_rows_of(dialect, 'true')}) x "
            "ORDER BY 3, 1")
    execute(f"INSERT INTO product_pipeline_rollup ({ROLLUP_COLS}) SELECT owner_id % {STRIPES}, product_id, currency, "
            "month, count(*), sum(amount), sum(weighted) FROM product_pipeline_deals GROUP BY 1, 2, 3, 4")


# ---------------------------------------------------------------------------------------- PostgreSQL

PG_FUNCTIONS = f"""
CREATE FUNCTION product_pipeline_of(deal integer)
RETURNS TABLE (opportunity_id integer, product_id integer, owner_id integer, currency varchar, month text,
               amount numeric, weighted numeric) AS $$
  {_rows_of("postgresql", "o.id = deal")}
$$ LANGUAGE sql STABLE;

CREATE FUNCTION product_pipeline_refresh(deal integer) RETURNS void AS $$
DECLARE
  new_rows product_pipeline_deals[];
  old_rows product_pipeline_deals[];
  gate integer;
  zs integer[]; zp integer[]; zc text[]; zm text[];
BEGIN
  IF deal IS NULL THEN
    RETURN;
  END IF;
  -- Two writers of one deal take turns (the application locks the deal first anyway); the second
  -- one then sees the first one's rows.
  PERFORM 1 FROM opportunities WHERE id = deal FOR NO KEY UPDATE;
  -- Computed once (planning that query costs more than running it).
  SELECT array_agg(ROW({", ".join(f"f.{c}" for c in DEAL_COLS.split(", "))})::product_pipeline_deals
                   ORDER BY f.product_id)
    INTO new_rows FROM product_pipeline_of(deal) f;
  SELECT array_agg(d ORDER BY d.product_id) INTO old_rows FROM product_pipeline_deals d WHERE d.opportunity_id = deal;
  IF new_rows IS NOT DISTINCT FROM old_rows THEN
    RETURN;  -- nothing this deal adds has changed (a second line of the same insert, a draft approved …)
  END IF;
  -- The gates of the deal's rows, in order: one writer at a time per (stripe, month) owns its rollup
  -- rows until it commits. Rows locked in key order would only keep one refresh from deadlocking
  -- another; a transaction refreshes a deal several times (a new quote: the version, then its lines),
  -- and two such transactions crossing on two products would deadlock. A gate covers all of a
  -- deal's rows: its first refresh takes it, the next ones hold it already.
  FOR gate IN SELECT DISTINCT k.owner_id % {STRIPES} * 1000000
                              + COALESCE(replace(NULLIF(k.month, ''), '-', '')::integer, 0)
                FROM (SELECT * FROM unnest(new_rows) UNION ALL SELECT * FROM unnest(old_rows)) k
               ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock({GATE_SPACE}, gate);
  END LOOP;
  DELETE FROM product_pipeline_deals d WHERE d.opportunity_id = deal;
  WITH delta AS (SELECT x.owner_id % {STRIPES} AS stripe, x.product_id, x.currency, x.month, sum(x.n) AS n,
                        sum(x.amount) AS amount, sum(x.weighted) AS weighted
                   FROM (SELECT f.owner_id, f.product_id, f.currency, f.month, 1 AS n, f.amount, f.weighted
                           FROM unnest(new_rows) f
                         UNION ALL
                         SELECT g.owner_id, g.product_id, g.currency, g.month, -1, -g.amount, -g.weighted
                           FROM unnest(old_rows) g) x
                  GROUP BY 1, 2, 3, 4),
       up AS (INSERT INTO product_pipeline_rollup AS r ({ROLLUP_COLS})
              SELECT * FROM delta WHERE delta.n <> 0 OR delta.amount <> 0 OR delta.weighted <> 0
               ORDER BY 1, 2, 3, 4
              ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + excluded.n, amount = r.amount + excluded.amount,
                                                weighted = r.weighted + excluded.weighted
              RETURNING r.stripe, r.product_id, r.currency, r.month, r.n)
  SELECT array_agg(up.stripe), array_agg(up.product_id), array_agg(up.currency), array_agg(up.month)
    INTO zs, zp, zc, zm FROM up WHERE up.n = 0;
  INSERT INTO product_pipeline_deals SELECT * FROM unnest(new_rows);
  IF zs IS NOT NULL THEN
    DELETE FROM product_pipeline_rollup r USING unnest(zs, zp, zc, zm) AS z(s, p, c, m)
     WHERE r.stripe = z.s AND r.product_id = z.p AND r.currency = z.c AND r.month = z.m AND r.n = 0;
  END IF;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION product_pipeline_opportunity() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NOT ({" OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in OPP_WATCHED)}) THEN
    RETURN NULL;
  END IF;
  PERFORM product_pipeline_refresh(CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION product_pipeline_quote() RETURNS trigger AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    IF TG_OP = 'UPDATE' AND NOT ({" OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in QUOTE_WATCHED)}
                                 OR (OLD.status = 'superseded') <> (NEW.status = 'superseded')) THEN
      RETURN NULL;
    END IF;
    PERFORM product_pipeline_refresh(OLD.opportunity_id);
  END IF;
  IF TG_OP = 'INSERT' OR NEW.opportunity_id <> OLD.opportunity_id THEN
    PERFORM product_pipeline_refresh(NEW.opportunity_id);
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION product_pipeline_line() RETURNS trigger AS $$
DECLARE
  old_deal integer;
  new_deal integer;
BEGIN
  IF TG_OP = 'UPDATE' AND NOT ({" OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in LINE_WATCHED)}) THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- NULL when the quote itself is gone (a cascade): its own trigger refreshes the deal.
    SELECT q.opportunity_id INTO old_deal FROM quotes q WHERE q.id = OLD.quote_id;
    PERFORM product_pipeline_refresh(old_deal);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT q.opportunity_id INTO new_deal FROM quotes q WHERE q.id = NEW.quote_id;
    IF new_deal IS DISTINCT FROM old_deal THEN
      PERFORM product_pipeline_refresh(new_deal);
    END IF;
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER trg_product_pipeline AFTER INSERT OR UPDATE OR DELETE ON opportunities
  FOR EACH ROW EXECUTE FUNCTION product_pipeline_opportunity();
CREATE TRIGGER trg_product_pipeline AFTER INSERT OR UPDATE OR DELETE ON quotes
  FOR EACH ROW EXECUTE FUNCTION product_pipeline_quote();
CREATE TRIGGER trg_product_pipeline AFTER INSERT OR UPDATE OR DELETE ON quote_lines
  FOR EACH ROW EXECUTE FUNCTION product_pipeline_line();
"""

PG_FUNCTION_NAMES = ("product_pipeline_opportunity()", "product_pipeline_quote()", "product_pipeline_line()",
                     "product_pipeline_refresh(integer)", "product_pipeline_of(integer)")

# -------------------------------------------------------------------------------------------- SQLite


def _sqlite_refresh(deal: str) -> str:
    """The statements of a trigger body refreshing the deal `deal` (an expression; NULL: nothing)."""
    r = "product_pipeline_rollup"  # no alias for the target of an UPDATE in a trigger
    key = (f"{r}.stripe = d.owner_id % {STRIPES} AND {r}.product_id = d.product_id AND {r}.currency = d.currency "
           f"AND {r}.month = d.month")
    return (f"UPDATE {r} SET n = {r}.n - 1, amount = {r}.amount - d.amount, weighted = {r}.weighted - d.weighted "
            f"FROM product_pipeline_deals AS d WHERE d.opportunity_id = {deal} AND {key}; "
            f"DELETE FROM product_pipeline_rollup WHERE n = 0 AND ({KEY}) IN (SELECT owner_id % {STRIPES}, "
            f"product_id, currency, month FROM product_pipeline_deals WHERE opportunity_id = {deal}); "
            f"DELETE FROM product_pipeline_deals WHERE opportunity_id = {deal}; "
            f"INSERT INTO product_pipeline_deals ({DEAL_COLS}) {_rows_of('sqlite', f'o.id = {deal}')}; "
            f"INSERT INTO product_pipeline_rollup ({ROLLUP_COLS}) SELECT owner_id % {STRIPES}, product_id, currency, "
            f"month, 1, amount, weighted FROM product_pipeline_deals WHERE opportunity_id = {deal} "
            f"ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1, amount = amount + excluded.amount, "
            "weighted = weighted + excluded.weighted;")


def _changed(columns) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


def _line_deal(row: str) -> str:
    return f"(SELECT opportunity_id FROM quotes WHERE id = {row}.quote_id)"


SQLITE_TRIGGERS = {
    "trg_product_pipeline_opportunities_insert": f"AFTER INSERT ON opportunities BEGIN {_sqlite_refresh('NEW.id')} END",
    "trg_product_pipeline_opportunities_update":
        f"AFTER UPDATE OF {', '.join(OPP_WATCHED)} ON opportunities WHEN {_changed(OPP_WATCHED)} "
        f"BEGIN {_sqlite_refresh('NEW.id')} END",
    "trg_product_pipeline_opportunities_delete": f"AFTER DELETE ON opportunities BEGIN {_sqlite_refresh('OLD.id')} END",
    "trg_product_pipeline_quotes_insert":
        f"AFTER INSERT ON quotes BEGIN {_sqlite_refresh('NEW.opportunity_id')} END",
    "trg_product_pipeline_quotes_update":
        f"AFTER UPDATE OF {', '.join(QUOTE_WATCHED)}, status ON quotes WHEN {_changed(QUOTE_WATCHED)} "
        "OR (OLD.status = 'superseded') <> (NEW.status = 'superseded') "
        f"BEGIN {_sqlite_refresh('OLD.opportunity_id')} "
        f"{_sqlite_refresh('(CASE WHEN NEW.opportunity_id <> OLD.opportunity_id THEN NEW.opportunity_id END)')} END",
    "trg_product_pipeline_quotes_delete":
        f"AFTER DELETE ON quotes BEGIN {_sqlite_refresh('OLD.opportunity_id')} END",
    "trg_product_pipeline_quote_lines_insert":
        f"AFTER INSERT ON quote_lines BEGIN {_sqlite_refresh(_line_deal('NEW'))} END",
    "trg_product_pipeline_quote_lines_update":
        f"AFTER UPDATE OF {', '.join(LINE_WATCHED)} ON quote_lines WHEN {_changed(LINE_WATCHED)} "
        f"BEGIN {_sqlite_refresh(_line_deal('OLD'))} "
        f"{_sqlite_refresh(f'(SELECT opportunity_id FROM quotes WHERE id = NEW.quote_id AND NEW.quote_id <> OLD.quote_id)')} END",
    "trg_product_pipeline_quote_lines_delete":
        f"AFTER DELETE ON quote_lines BEGIN {_sqlite_refresh(_line_deal('OLD'))} END",
}


def upgrade() -> None:
    money = dict(precision=32, scale=8)
    op.create_table(
        'product_pipeline_deals',
        sa.Column('opportunity_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('amount', sa.Numeric(**money), nullable=False),
        sa.Column('weighted', sa.Numeric(precision=34, scale=10), nullable=False),
        sa.PrimaryKeyConstraint('opportunity_id', 'product_id', name=op.f('pk_product_pipeline_deals')),
    )
    op.create_index('ix_product_pipeline_deals_owner_id', 'product_pipeline_deals', ['owner_id'])
    op.create_table(
        'product_pipeline_rollup',
        sa.Column('stripe', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(**money), nullable=False),
        sa.Column('weighted', sa.Numeric(precision=34, scale=10), nullable=False),
        sa.PrimaryKeyConstraint('stripe', 'product_id', 'currency', 'month', name=op.f('pk_product_pipeline_rollup')),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Writers wait until the triggers exist: a change committed between the backfill and the
        # triggers would otherwise be in neither, and the rollup wrong for good.
        op.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    backfill(op.execute, dialect)
    if dialect == "postgresql":
        op.execute(PG_FUNCTIONS)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS trg_product_pipeline ON {table}")
        for fn in PG_FUNCTION_NAMES:
            op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('product_pipeline_rollup')
    op.drop_index('ix_product_pipeline_deals_owner_id', table_name='product_pipeline_deals')
    op.drop_table('product_pipeline_deals')
