"""Which triggers a table has at head: a later SQLite batch rebuild of a table drops them silently."""
from __future__ import annotations

from sqlalchemy import text

from domain.db.engine import make_engine


def assert_triggers_at_head(db_url: str, pg: dict[str, set[str]], sqlite: dict[str, set[str]]) -> None:
    """Every table of the dialect's map holds at least those triggers."""
    engine = make_engine(db_url)
    expected = pg if engine.dialect.name == "postgresql" else sqlite
    try:
        with engine.connect() as conn:
            for table, wanted in expected.items():
                if engine.dialect.name == "postgresql":
                    names = set(conn.scalars(text(f"SELECT tgname FROM pg_trigger WHERE tgrelid = '{table}'::regclass "
                                                  "AND NOT tgisinternal")))
                else:
                    names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                                  "AND tbl_name = :t"), {"t": table}))
                assert wanted <= names, table
    finally:
        engine.dispose()
