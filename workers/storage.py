"""A worker's storage transaction: one per batch, a database outage reported as ``Unavailable``.

Which errors mean "down" rather than "this batch is bad": any failure to get a connection (it
happens before the batch is even looked at), and, once connected, a lost connection (OSError,
timeouts, SQLAlchemy's OperationalError, InterfaceError, or any DBAPI error that invalidated the
connection). SQLite's "database is locked" after the busy timeout is an
OperationalError too: another writer holds the file, wait for it. Constraint and data errors are
the batch's own fault and raise as they are, to be retried message by message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from workers.retry import Unavailable


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        connection = await engine.connect()
    except Exception as exc:
        raise Unavailable(_one_line(exc)) from exc
    try:
        async with connection.begin():
            yield connection
    except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
        raise Unavailable(_one_line(exc)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable(_one_line(exc)) from exc
        raise
    finally:
        await connection.close()


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
