"""The one place that knows SQLite and PostgreSQL spell upserts differently."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(conn: Connection, table: Table):
    """An INSERT that supports `.on_conflict_do_nothing()` / `.on_conflict_do_update()`."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def chunks(items: list, size: int = 900):
    """Split IN-lists: SQLite caps bound parameters per statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
