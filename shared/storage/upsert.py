"""INSERT ... ON CONFLICT for the backend at hand: SQLite and PostgreSQL spell it alike."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: Dialect, table: Table) -> Any:
    """``table``'s insert with ``on_conflict_do_nothing``/``_do_update`` and ``.excluded``."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
