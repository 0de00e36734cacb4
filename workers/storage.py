"""A worker's storage transaction: one per batch, a database outage reported as ``Unavailable``.

"Down" (wait, count no attempt) or "this batch is bad" (retry message by message, then dead-letter)?

- failing to get a connection at all: down, whatever the error (it comes before any data);
- a connection lost midway (SQLAlchemy marks it invalidated): down;
- PostgreSQL says by SQLSTATE: classes 08 (connection), 40 (deadlock, serialization failure:
  the batch is fine, run it again), 53 (out of disk or memory), 57 (shutting down, failing over),
  58 (system error) and 25006 (read-only, during a failover) are down; the rest (22 data, 23
  constraints, ...) are the batch's fault;
- without a SQLSTATE: SQLite's OperationalError (locked past the busy timeout, disk I/O) and a
  driver's InterfaceError are down, except asyncpg's DataError, a value the driver could not
  encode: the batch's fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from workers.retry import Unavailable

TRANSIENT_CLASSES: Final = frozenset({"08", "40", "53", "57", "58"})
TRANSIENT_STATES: Final = frozenset({"25006"})


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        connection = await engine.connect()
    except Exception as exc:
        raise Unavailable(_one_line(exc)) from exc
    try:
        async with connection.begin():
            yield connection
    except (OSError, TimeoutError) as exc:
        raise Unavailable(_one_line(exc)) from exc
    except DBAPIError as exc:
        if is_outage(exc):
            raise Unavailable(_one_line(exc)) from exc
        raise
    finally:
        await connection.close()


def is_outage(error: DBAPIError) -> bool:
    """True when the database, not the data, is at fault."""
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if state:
        return state[:2] in TRANSIENT_CLASSES or state in TRANSIENT_STATES
    if isinstance(error.orig.__cause__ if error.orig else None, asyncpg.exceptions.DataError):
        return False
    return isinstance(error, OperationalError | InterfaceError)


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
