"""receivables: the deal owner on invoices and allocations

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22

Receivables belong to the owner of the deal behind their contract (DEFINITIONS.md). Reading that
owner through contracts → opportunities for every open invoice cost most of aging, collection rate
and period over period at 1M deals; so the owner is copied where the questions read:

* ``invoices.owner_id`` = the owner of the contract's deal;
* ``payment_allocations.owner_id`` = its invoice's owner_id, and ``payment_allocations.collected_on``
  = its payment's received_on while that payment is confirmed (NULL otherwise): the day the money
  counts as collected.

Database triggers keep both exact inside the writing transaction, on SQLite and PostgreSQL alike,
whatever writes the rows (the ORM, the analytics fixture, datagen's COPY, a hand-made UPDATE):
an insert computes them; a deal's owner, a contract's deal, an invoice's contract, a payment's
status or date changing moves them along; a direct write to the copies is put back. The migration
fills the rows already there, under a lock on PostgreSQL so that no write slips between the
backfill and the triggers, then builds the covering indexes CONCURRENTLY and vacuums the two
tables (index-only scans need the visibility map the backfill cleared).

A later migration that rebuilds one of these tables on SQLite (Alembic batch mode copies it)
drops its triggers: it must create them again (tests/integration/test_receivables_owner.py checks
that they exist at head).
"""
from alembic import op
import sqlalchemy as sa

from domain.db.index_ops import create_indexes, drop_indexes

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# (name, table, key columns, INCLUDE columns (PostgreSQL), partial-index predicate): as in tables.py.
# Each question reads a narrow covering index: keyed by date for everyone's numbers, by owner then
# date for a team's or a rep's (a few owners' ranges instead of every owner's rows).
INDEXES = [
    # Open balances per AR by due date (aging).
    ("ix_invoices_owner_open", "invoices", ["owner_id", "due_on"], ["currency", "amount", "paid_amount", "issued_on"],
     "status <> 'void' AND amount > paid_amount"),
    # Issued in a window (DSO's 90 days, invoiced in a period).
    ("ix_invoices_issued_owner", "invoices", ["issued_on"], ["owner_id", "currency", "amount"], "status <> 'void'"),
    ("ix_invoices_owner_issued", "invoices", ["owner_id", "issued_on"], ["currency", "amount"], "status <> 'void'"),
    # Due in a period (collection rate).
    ("ix_invoices_due_owner", "invoices", ["due_on"], ["owner_id", "currency", "amount", "paid_amount"],
     "status <> 'void'"),
    ("ix_invoices_owner_due", "invoices", ["owner_id", "due_on"], ["currency", "amount", "paid_amount"],
     "status <> 'void'"),
    # Collected in a period (period over period).
    ("ix_payment_allocations_collected_on", "payment_allocations", ["collected_on"], ["owner_id", "currency", "amount"],
     None),
    ("ix_payment_allocations_owner_collected", "payment_allocations", ["owner_id", "collected_on"],
     ["currency", "amount"], None),
]

# The owner of an invoice's deal, from its contract (`row` = NEW or the table name).
_DEAL_OWNER = ("SELECT o.owner_id FROM contracts c JOIN opportunities o ON o.id = c.opportunity_id "
               "WHERE c.id = {row}.contract_id")
_COLLECTED_ON = "SELECT CASE WHEN p.status = 'confirmed' THEN p.received_on END FROM payments p WHERE p.id = {row}.payment_id"
_INVOICE_OWNER = "SELECT i.owner_id FROM invoices i WHERE i.id = {row}.invoice_id"

PG_FUNCTIONS = {
    # BEFORE INSERT / UPDATE OF contract_id, owner_id ON invoices. The contract is locked first (FOR
    # SHARE), the owner read after by a statement of its own: a deal reassigned concurrently locks its
    # contract before moving the invoices, so it has either moved this one or committed its new owner
    # (a join locking only the contract would still read the owner of the snapshot before the wait).
    "receivables_invoice_owner": f"""
BEGIN
  PERFORM 1 FROM contracts WHERE id = NEW.contract_id FOR SHARE;
  {_DEAL_OWNER.format(row='NEW').replace('SELECT o.owner_id', 'SELECT o.owner_id INTO NEW.owner_id')};
  RETURN NEW;
END""",
    # AFTER UPDATE OF contract_id, owner_id ON invoices (owner changed): the invoice's allocations follow.
    # (OF contract_id too: a change made by the BEFORE trigger does not fire triggers OF owner_id.)
    "receivables_invoice_owner_moved": """
BEGIN
  UPDATE payment_allocations SET owner_id = NEW.owner_id WHERE invoice_id = NEW.id;
  RETURN NULL;
END""",
    # BEFORE INSERT / UPDATE OF invoice_id, payment_id, owner_id, collected_on ON payment_allocations.
    "receivables_allocation_owner": f"""
BEGIN
  {_INVOICE_OWNER.format(row='NEW').replace('SELECT i.owner_id', 'SELECT i.owner_id INTO NEW.owner_id')} FOR SHARE OF i;
  {_COLLECTED_ON.format(row='NEW').replace(' END FROM', ' END INTO NEW.collected_on FROM')} FOR SHARE OF p;
  RETURN NEW;
END""",
    # AFTER UPDATE OF owner_id ON opportunities (changed): the deal's invoices follow (and theirs
    # allocations, by the invoice trigger). Contract first, as every writer of invoices locks it.
    "receivables_deal_owner_moved": """
BEGIN
  PERFORM 1 FROM contracts WHERE opportunity_id = NEW.id ORDER BY id FOR NO KEY UPDATE;
  UPDATE invoices SET owner_id = NEW.owner_id
   WHERE contract_id IN (SELECT id FROM contracts WHERE opportunity_id = NEW.id);
  RETURN NULL;
END""",
    # AFTER UPDATE OF opportunity_id ON contracts (changed): its invoices take the new deal's owner.
    "receivables_contract_deal_moved": """
BEGIN
  UPDATE invoices SET owner_id = (SELECT owner_id FROM opportunities WHERE id = NEW.opportunity_id)
   WHERE contract_id = NEW.id;
  RETURN NULL;
END""",
    # AFTER UPDATE OF status, received_on ON payments (changed): when its money counts as collected.
    "receivables_payment_collected_on": """
BEGIN
  UPDATE payment_allocations SET collected_on = CASE WHEN NEW.status = 'confirmed' THEN NEW.received_on END
   WHERE payment_id = NEW.id;
  RETURN NULL;
END""",
}

# (trigger, table, timing and events, WHEN condition or None, function)
PG_TRIGGERS = [
    ("trg_invoices_owner", "invoices", "BEFORE INSERT OR UPDATE OF contract_id, owner_id", None,
     "receivables_invoice_owner"),
    ("trg_invoices_owner_moved", "invoices", "AFTER UPDATE OF contract_id, owner_id",
     "OLD.owner_id IS DISTINCT FROM NEW.owner_id", "receivables_invoice_owner_moved"),
    ("trg_payment_allocations_owner", "payment_allocations",
     "BEFORE INSERT OR UPDATE OF invoice_id, payment_id, owner_id, collected_on", None,
     "receivables_allocation_owner"),
    ("trg_opportunities_receivables_owner", "opportunities", "AFTER UPDATE OF owner_id",
     "OLD.owner_id IS DISTINCT FROM NEW.owner_id", "receivables_deal_owner_moved"),
    ("trg_contracts_receivables_owner", "contracts", "AFTER UPDATE OF opportunity_id",
     "OLD.opportunity_id IS DISTINCT FROM NEW.opportunity_id", "receivables_contract_deal_moved"),
    ("trg_payments_collected_on", "payments", "AFTER UPDATE OF status, received_on",
     "OLD.status IS DISTINCT FROM NEW.status OR OLD.received_on IS DISTINCT FROM NEW.received_on",
     "receivables_payment_collected_on"),
]

# SQLite: a BEFORE trigger cannot change NEW, so AFTER triggers write the row again. Each UPDATE
# only writes a value that differs, so even with recursive_triggers on the chain ends.
_SQLITE_INVOICE_FIX = (f"UPDATE invoices SET owner_id = ({_DEAL_OWNER.format(row='NEW')}) WHERE id = NEW.id "
                       f"AND owner_id IS NOT ({_DEAL_OWNER.format(row='NEW')})")
_SQLITE_ALLOCATION_FIX = (
    f"UPDATE payment_allocations SET owner_id = ({_INVOICE_OWNER.format(row='NEW')}), "
    f"collected_on = ({_COLLECTED_ON.format(row='NEW')}) WHERE id = NEW.id "
    f"AND (owner_id IS NOT ({_INVOICE_OWNER.format(row='NEW')}) OR collected_on IS NOT ({_COLLECTED_ON.format(row='NEW')}))")
SQLITE_TRIGGERS = [
    ("trg_invoices_owner_insert", "AFTER INSERT ON invoices", None, [_SQLITE_INVOICE_FIX]),
    ("trg_invoices_owner_update", "AFTER UPDATE OF contract_id, owner_id ON invoices", None, [
        _SQLITE_INVOICE_FIX,
        "UPDATE payment_allocations SET owner_id = (SELECT owner_id FROM invoices WHERE id = NEW.id) "
        "WHERE invoice_id = NEW.id AND owner_id IS NOT (SELECT owner_id FROM invoices WHERE id = NEW.id)"]),
    ("trg_payment_allocations_owner_insert", "AFTER INSERT ON payment_allocations", None, [_SQLITE_ALLOCATION_FIX]),
    ("trg_payment_allocations_owner_update",
     "AFTER UPDATE OF invoice_id, payment_id, owner_id, collected_on ON payment_allocations", None,
     [_SQLITE_ALLOCATION_FIX]),
    ("trg_opportunities_receivables_owner", "AFTER UPDATE OF owner_id ON opportunities",
     "OLD.owner_id IS NOT NEW.owner_id", [
         "UPDATE invoices SET owner_id = NEW.owner_id "
         "WHERE contract_id IN (SELECT id FROM contracts WHERE opportunity_id = NEW.id)"]),
    ("trg_contracts_receivables_owner", "AFTER UPDATE OF opportunity_id ON contracts",
     "OLD.opportunity_id IS NOT NEW.opportunity_id", [
         "UPDATE invoices SET owner_id = (SELECT owner_id FROM opportunities WHERE id = NEW.opportunity_id) "
         "WHERE contract_id = NEW.id"]),
    ("trg_payments_collected_on", "AFTER UPDATE OF status, received_on ON payments",
     "OLD.status IS NOT NEW.status OR OLD.received_on IS NOT NEW.received_on", [
         "UPDATE payment_allocations SET collected_on = CASE WHEN NEW.status = 'confirmed' THEN NEW.received_on END "
         "WHERE payment_id = NEW.id"]),
]

LOCKED = "opportunities, contracts, invoices, payments, payment_allocations"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Writers wait until the triggers exist: an invoice or allocation committed between the
        # backfill and its trigger would otherwise keep a NULL owner for good.
        op.execute(f"LOCK TABLE {LOCKED} IN SHARE ROW EXCLUSIVE MODE")
    op.add_column('invoices', sa.Column('owner_id', sa.Integer(), nullable=True))
    op.add_column('payment_allocations', sa.Column('owner_id', sa.Integer(), nullable=True))
    op.add_column('payment_allocations', sa.Column('collected_on', sa.Date(), nullable=True))
    if dialect == "postgresql":
        op.execute("UPDATE invoices i SET owner_id = o.owner_id FROM contracts c JOIN opportunities o "
                   "ON o.id = c.opportunity_id WHERE c.id = i.contract_id")
        op.execute("UPDATE payment_allocations a SET owner_id = i.owner_id, "
                   "collected_on = CASE WHEN p.status = 'confirmed' THEN p.received_on END "
                   "FROM invoices i, payments p WHERE i.id = a.invoice_id AND p.id = a.payment_id")
        for name, body in PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$\n{body}\n$$ LANGUAGE plpgsql")
        for trigger, table, events, when, function in PG_TRIGGERS:
            condition = f" WHEN ({when})" if when else ""
            op.execute(f"CREATE TRIGGER {trigger} {events} ON {table} FOR EACH ROW{condition} "
                       f"EXECUTE FUNCTION {function}()")
        # VACUUM cannot run in a transaction block: this commits the work above (the triggers exist
        # from here on); the backfill left every page without its all-visible bit.
        with op.get_context().autocommit_block():
            op.execute("VACUUM (ANALYZE) invoices, payment_allocations")
        create_indexes(op, INDEXES)
        return
    op.execute(f"UPDATE invoices SET owner_id = ({_DEAL_OWNER.format(row='invoices')})")
    op.execute(f"UPDATE payment_allocations SET owner_id = ({_INVOICE_OWNER.format(row='payment_allocations')}), "
               f"collected_on = ({_COLLECTED_ON.format(row='payment_allocations')})")
    for trigger, events, when, statements in SQLITE_TRIGGERS:
        condition = f" WHEN {when}" if when else ""
        op.execute(f"CREATE TRIGGER {trigger} {events} FOR EACH ROW{condition} BEGIN "
                   + " ".join(f"{s};" for s in statements) + " END")
    create_indexes(op, INDEXES)


def downgrade() -> None:
    drop_indexes(op, INDEXES)
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table, *_ in reversed(PG_TRIGGERS):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for name in reversed(PG_FUNCTIONS):
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for trigger, *_ in reversed(SQLITE_TRIGGERS):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_column('payment_allocations', 'collected_on')
    op.drop_column('payment_allocations', 'owner_id')
    op.drop_column('invoices', 'owner_id')
