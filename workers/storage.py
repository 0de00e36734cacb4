"""A worker's storage transaction: one per batch, a database outage reported as ``Unavailable``.

"Down" (wait, count no attempt) or "this batch is bad" (retry message by message, then
dead-letter)? Only what the data itself causes is the batch's fault: PostgreSQL's SQLSTATE
classes 22 (data exception) and 23 (integrity constraint), SQLAlchemy's DataError and
IntegrityError, and asyncpg's DataError (a value the driver could not encode). Everything else
is waited out: a lost or refused connection, deadlocks and serialization failures (class 40: the
batch is fine, run it again), disk full, failovers, but also a missing table or a privilege
revoked. A queue that stops moving (and the ``storage_unavailable`` metric) raises the alarm;
a queue emptied into its dead-letter queue would lose nothing, but hide the cause.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wapipe.workers.retry import Unavailable

DATA_CLASSES: Final = frozenset({"22", "23"})


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
    """True unless the data, not the database, is at fault."""
    if error.connection_invalidated:
        return True
    state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if state:
        return state[:2] not in DATA_CLASSES
    if isinstance(error.orig.__cause__ if error.orig else None, asyncpg.exceptions.DataError):
        return False
    return not isinstance(error, DataError | IntegrityError)


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
