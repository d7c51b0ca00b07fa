"""monthly rollups of deals and receivables kept by triggers

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22

Period over period (DEFINITIONS.md §11) compares whole months, quarters or years; at 1M deals
summing the deals created, the invoices issued and the allocations collected in two periods cost
most of the question. Two rollups keyed by (month, owner, currency) answer it from a few thousand rows:

* ``deal_monthly_rollup``: per month of ``created_at``: created_n, created_amount (new pipeline);
  per month of the close time (``stage_changed_at``) of won and lost deals: won_n, won_amount, lost_n.
* ``receivables_monthly``: invoiced = Σ amount of non-void invoices per month of ``issued_on``;
  collected = Σ amount of payment allocations per month of ``collected_on`` (NULL while the payment is
  not confirmed: not collected). Both per the ``owner_id`` copies of migration 0013; a row whose
  owner_id is NULL adds nothing (0013's triggers never leave one).

Every trigger adds what a row contributes after the change and takes away what it contributed before
(computed from that row's own OLD and NEW images only, never from other tables): the sums of all
changes telescope to the contribution of the rows as they finally are, whatever order the triggers of
one change fire in (0013's owner copies are written by other triggers, before or after these).

PostgreSQL: statement-level triggers with transition tables: one aggregated upsert per statement
(a COPY of 700k invoices is one statement), rows in key order. Receivables writers first take an
advisory gate per owner they touch, in owner order, held until commit: a deal reassignment moves
its invoices and allocations in several statements (one per invoice), and two reassignments in
opposite directions would otherwise lock the rows of both owners in crossing orders.
SQLite: row triggers (one writer at a time) doing the same upserts.

Rows netting to zero stay (as pipeline_rollup's). The migration fills both tables from the rows
already there, under a lock on PostgreSQL so that no write slips between the backfill and the
triggers. A later migration that rebuilds one of these tables on SQLite (batch mode) drops its
triggers: it must create them again (tests/integration/test_monthly_rollups.py checks they exist).
"""
from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

KEY = "month, owner_id, currency"
DEAL_SUMS = ("created_n", "created_amount", "won_n", "won_amount", "lost_n")
RECEIVABLE_SUMS = ("invoiced", "collected")
GATE_SPACE = 19  # pg_advisory_xact_lock(19, owner_id): a receivables writer's gate per owner
# Only these columns change what a row contributes.
DEAL_WATCHED = ("owner_id", "currency", "amount", "created_at", "stage", "stage_changed_at")
INVOICE_WATCHED = ("owner_id", "currency", "amount", "status", "issued_on")
ALLOCATION_WATCHED = ("owner_id", "currency", "amount", "collected_on")
TABLES = ("opportunities", "invoices", "payment_allocations")


def _month(dialect: str, column: str) -> str:
    return f"to_char({column}, 'YYYY-MM')" if dialect == "postgresql" else f"strftime('%Y-%m', {column})"


def _select(values: list[str], sums: tuple[str, ...]) -> str:
    """SELECT values AS month, owner_id, currency, *sums (SQLite has no column list on a derived table)."""
    return "SELECT " + ", ".join(f"{v} AS {n}" for v, n in zip(values, ("month", "owner_id", "currency", *sums)))


def _deal_rows(dialect: str, src: str, sign: str = "") -> list[str]:
    """SELECTs of (month, owner_id, currency, *DEAL_SUMS) that the deals of `src` contribute (× sign)."""
    won = f"CASE WHEN {src}.stage = 'won' THEN {sign}1 ELSE 0 END"
    return [
        _select([_month(dialect, f"{src}.created_at"), f"{src}.owner_id", f"{src}.currency", f"{sign}1",
                 f"{sign}{src}.amount", "0", "0", "0"], DEAL_SUMS) + f" FROM {src}",
        _select([_month(dialect, f"{src}.stage_changed_at"), f"{src}.owner_id", f"{src}.currency", "0", "0", won,
                 f"{won} * {src}.amount", f"CASE WHEN {src}.stage = 'lost' THEN {sign}1 ELSE 0 END"], DEAL_SUMS)
        + f" FROM {src} WHERE {src}.stage IN ('won', 'lost')",
    ]


def _invoice_rows(dialect: str, src: str, sign: str = "") -> str:
    return (_select([_month(dialect, f"{src}.issued_on"), f"{src}.owner_id", f"{src}.currency", f"{sign}{src}.amount",
                     "0"], RECEIVABLE_SUMS)
            + f" FROM {src} WHERE {src}.status <> 'void' AND {src}.owner_id IS NOT NULL")


def _allocation_rows(dialect: str, src: str, sign: str = "") -> str:
    return (_select([_month(dialect, f"{src}.collected_on"), f"{src}.owner_id", f"{src}.currency", "0",
                     f"{sign}{src}.amount"], RECEIVABLE_SUMS)
            + f" FROM {src} WHERE {src}.collected_on IS NOT NULL AND {src}.owner_id IS NOT NULL")


def _summed(rows: list[str], sums: tuple[str, ...]) -> str:
    """The rows grouped by key, without the groups that add nothing, in key order."""
    cols = ", ".join(f"sum(x.{s}) AS {s}" for s in sums)
    return (f"SELECT x.month, x.owner_id, x.currency, {cols} FROM ("
            + " UNION ALL ".join(rows)
            + ") AS x GROUP BY 1, 2, 3 "
            f"HAVING {' OR '.join(f'sum(x.{s}) <> 0' for s in sums)} ORDER BY 1, 2, 3")


def backfill(execute, dialect: str) -> None:
    """Fill both tables from the rows there (empty tables; writers kept out by the caller)."""
    execute(f"INSERT INTO deal_monthly_rollup ({KEY}, {', '.join(DEAL_SUMS)}) "
            f"{_summed(_deal_rows(dialect, 'opportunities'), DEAL_SUMS)}")
    execute(f"INSERT INTO receivables_monthly ({KEY}, {', '.join(RECEIVABLE_SUMS)}) "
            f"{_summed([_invoice_rows(dialect, 'invoices'), _allocation_rows(dialect, 'payment_allocations')], RECEIVABLE_SUMS)}")


# ---------------------------------------------------------------------------------------- PostgreSQL

def _upsert(table: str, sums: tuple[str, ...], source: str) -> str:
    return (f"INSERT INTO {table} AS r ({KEY}, {', '.join(sums)}) {source} "
            f"ON CONFLICT ({KEY}) DO UPDATE SET " + ", ".join(f"{s} = r.{s} + excluded.{s}" for s in sums))


def _pg_deal_function() -> str:
    def apply(rows: list[str]) -> str:
        return _upsert("deal_monthly_rollup", DEAL_SUMS, _summed(rows, DEAL_SUMS))

    return f"""
CREATE FUNCTION deal_monthly_rollup_apply() RETURNS trigger AS $$
BEGIN
  -- One upsert per statement: the statement's rows summed per key, in key order (two writers moving
  -- deals between the same rows in opposite directions lock them in the same order).
  IF TG_OP = 'INSERT' THEN
    {apply(_deal_rows('postgresql', 'new_rows'))};
  ELSIF TG_OP = 'UPDATE' THEN
    {apply(_deal_rows('postgresql', 'new_rows') + _deal_rows('postgresql', 'old_rows', '-'))};
  ELSE
    {apply(_deal_rows('postgresql', 'old_rows', '-'))};
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql"""


def _pg_receivables_function(name: str, rows) -> str:
    def apply(parts: list[str]) -> str:
        return (f"SELECT array_agg(ROW(d.*)::receivables_monthly ORDER BY d.month, d.owner_id, d.currency) INTO delta "
                f"FROM ({_summed(parts, RECEIVABLE_SUMS)}) d")

    return f"""
CREATE FUNCTION {name}() RETURNS trigger AS $$
DECLARE
  delta receivables_monthly[];
  gate integer;
BEGIN
  IF TG_OP = 'INSERT' THEN
    {apply([rows('new_rows')])};
  ELSIF TG_OP = 'UPDATE' THEN
    {apply([rows('new_rows'), rows('old_rows', '-')])};
  ELSE
    {apply([rows('old_rows', '-')])};
  END IF;
  IF delta IS NULL THEN
    RETURN NULL;  -- nothing counted changed (a payment applied to an invoice, a dunning level …)
  END IF;
  -- The gate of every owner touched, in order, held until commit: a reassignment moves the rows of two
  -- owners in several statements; two in opposite directions take turns instead of deadlocking.
  FOR gate IN SELECT DISTINCT g.owner_id FROM unnest(delta) g ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock({GATE_SPACE}, gate);
  END LOOP;
  {_upsert("receivables_monthly", RECEIVABLE_SUMS,
           "SELECT * FROM unnest(delta) u ORDER BY u.month, u.owner_id, u.currency")};
  RETURN NULL;
END
$$ LANGUAGE plpgsql"""


PG_FUNCTIONS = {
    "deal_monthly_rollup_apply": ("opportunities", _pg_deal_function),
    "receivables_monthly_invoices": ("invoices", lambda: _pg_receivables_function(
        "receivables_monthly_invoices", lambda src, sign="": _invoice_rows("postgresql", src, sign))),
    "receivables_monthly_allocations": ("payment_allocations", lambda: _pg_receivables_function(
        "receivables_monthly_allocations", lambda src, sign="": _allocation_rows("postgresql", src, sign))),
}
# A trigger with transition tables has one event (PostgreSQL's rule): three per table.
PG_EVENTS = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
             "delete": "OLD TABLE AS old_rows"}


def pg_triggers() -> list[tuple[str, str, str, str]]:
    """(trigger, table, CREATE TRIGGER clauses, function)."""
    return [(f"trg_monthly_rollup_{event}", table, f"AFTER {event.upper()} ON {table} REFERENCING {tables}", function)
            for function, (table, _) in PG_FUNCTIONS.items() for event, tables in PG_EVENTS.items()]


# -------------------------------------------------------------------------------------------- SQLite

def _sqlite_add(table: str, sums: tuple[str, ...], select: str) -> str:
    """An upsert adding one row's contribution (`select`: a SELECT … WHERE …, no FROM)."""
    return (f"INSERT INTO {table} ({KEY}, {', '.join(sums)}) {select} ON CONFLICT ({KEY}) DO UPDATE SET "
            + ", ".join(f"{s} = {table}.{s} + excluded.{s}" for s in sums) + ";")


def _sqlite_deal(row: str, sign: str) -> str:
    m = _month("sqlite", f"{row}.stage_changed_at")
    won = f"CASE WHEN {row}.stage = 'won' THEN {sign}1 ELSE 0 END"
    return (_sqlite_add("deal_monthly_rollup", DEAL_SUMS,
                        f"SELECT {_month('sqlite', f'{row}.created_at')}, {row}.owner_id, {row}.currency, {sign}1, "
                        f"{sign}{row}.amount, 0, 0, 0 WHERE 1")
            + " " + _sqlite_add("deal_monthly_rollup", DEAL_SUMS,
                                f"SELECT {m}, {row}.owner_id, {row}.currency, 0, 0, {won}, {won} * {row}.amount, "
                                f"CASE WHEN {row}.stage = 'lost' THEN {sign}1 ELSE 0 END "
                                f"WHERE {row}.stage IN ('won', 'lost')"))


def _sqlite_invoice(row: str, sign: str) -> str:
    return _sqlite_add("receivables_monthly", RECEIVABLE_SUMS,
                       f"SELECT {_month('sqlite', f'{row}.issued_on')}, {row}.owner_id, {row}.currency, "
                       f"{sign}{row}.amount, 0 WHERE {row}.status <> 'void' AND {row}.owner_id IS NOT NULL")


def _sqlite_allocation(row: str, sign: str) -> str:
    return _sqlite_add("receivables_monthly", RECEIVABLE_SUMS,
                       f"SELECT {_month('sqlite', f'{row}.collected_on')}, {row}.owner_id, {row}.currency, 0, "
                       f"{sign}{row}.amount WHERE {row}.collected_on IS NOT NULL AND {row}.owner_id IS NOT NULL")


def _changed(columns) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


def sqlite_triggers() -> dict[str, str]:
    out = {}
    for short, table, add, watched in (("deal", "opportunities", _sqlite_deal, DEAL_WATCHED),
                                       ("invoice", "invoices", _sqlite_invoice, INVOICE_WATCHED),
                                       ("allocation", "payment_allocations", _sqlite_allocation, ALLOCATION_WATCHED)):
        out[f"trg_monthly_rollup_{short}_insert"] = f"AFTER INSERT ON {table} BEGIN {add('NEW', '')} END"
        out[f"trg_monthly_rollup_{short}_update"] = (
            f"AFTER UPDATE OF {', '.join(watched)} ON {table} WHEN {_changed(watched)} "
            f"BEGIN {add('OLD', '-')} {add('NEW', '')} END")
        out[f"trg_monthly_rollup_{short}_delete"] = f"AFTER DELETE ON {table} BEGIN {add('OLD', '-')} END"
    return out


def upgrade() -> None:
    op.create_table(
        'deal_monthly_rollup',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('created_n', sa.Integer(), nullable=False),
        sa.Column('created_amount', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column('won_n', sa.Integer(), nullable=False),
        sa.Column('won_amount', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column('lost_n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('month', 'owner_id', 'currency', name=op.f('pk_deal_monthly_rollup')),
    )
    op.create_table(
        'receivables_monthly',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('invoiced', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column('collected', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.PrimaryKeyConstraint('month', 'owner_id', 'currency', name=op.f('pk_receivables_monthly')),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Writers wait until the triggers exist: a row committed between the backfill and its trigger
        # would otherwise be in neither, and the rollup wrong for good.
        op.execute(f"LOCK TABLE {', '.join(TABLES)} IN SHARE ROW EXCLUSIVE MODE")
    backfill(op.execute, dialect)
    if dialect == "postgresql":
        for _, make in PG_FUNCTIONS.values():
            op.execute(make())
        for trigger, table, clause, function in pg_triggers():
            op.execute(f"CREATE TRIGGER {trigger} {clause} FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION {function}()")
        op.execute("ANALYZE deal_monthly_rollup, receivables_monthly")  # planned from the first question on
    else:
        for name, body in sqlite_triggers().items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table, _, _ in pg_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    else:
        for name in sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('receivables_monthly')
    op.drop_table('deal_monthly_rollup')
