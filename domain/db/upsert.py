"""INSERT … ON CONFLICT for the two databases we run on (SQLite and PostgreSQL).

One place chooses the dialect's insert; `insert_once` is the claim used by every "seen once"
record (Slack event ids, chat notices, approval cards, deal channels).
"""
from __future__ import annotations

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect_name: str):
    """The dialect's `insert` construct, which has `on_conflict_do_nothing/do_update`."""
    return postgresql.insert if dialect_name == "postgresql" else sqlite.insert


def insert_once(engine: Engine, table: Table, index_elements: list[str], row: dict) -> bool:
    """Insert `row` unless its key exists; True only for the call whose insert won.

    RETURNING tells the winner: psycopg reports no rowcount for ON CONFLICT DO NOTHING.
    """
    stmt = (insert_for(engine.dialect.name)(table).values(**row)
            .on_conflict_do_nothing(index_elements=index_elements)
            .returning(table.c[index_elements[0]]))
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None
