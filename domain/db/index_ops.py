"""Creating and dropping lists of indexes in migrations (0010, 0014): CONCURRENTLY on PostgreSQL."""
from __future__ import annotations

import sqlalchemy as sa

# (name, table, key columns, INCLUDE columns (PostgreSQL), partial-index predicate or None)
IndexSpec = tuple[str, str, list[str], list[str], str | None]


def _options(include, where) -> dict:
    options = {"postgresql_include": include}
    if where:
        options.update(postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    return options


def create_indexes(op, indexes: list[IndexSpec]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # CONCURRENTLY cannot run in a transaction block. An index of the same name can only be the
        # leftover of an interrupted run (possibly INVALID): rebuild it.
        with op.get_context().autocommit_block():
            for name, table, cols, include, where in indexes:
                op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
                op.create_index(name, table, cols, unique=False, postgresql_concurrently=True,
                                **_options(include, where))
        return
    for name, table, cols, include, where in indexes:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, cols, unique=False, **_options(include, where))


def drop_indexes(op, indexes: list[IndexSpec]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, table, *_ in reversed(indexes):
                op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        return
    for name, table, *_ in reversed(indexes):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
