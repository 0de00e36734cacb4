"""A worker's storage transaction: one per batch, a database outage reported as ``Unavailable``.

``transaction(engine)`` is SQLAlchemy's, over the async drivers. ``Transactions(engine).run(work)``
runs a whole transaction at once: on SQLite in a thread of its own over the standard library's
driver, one hop between threads a transaction where aiosqlite takes three or four a statement
(each waking its thread, then the event loop: most of a small batch's CPU, results/cost.md);
elsewhere through ``transaction``.

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

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import asyncpg
import sqlalchemy
from sqlalchemy import CursorResult, Dialect, Executable
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wapipe.shared.storage.database import plain_sqlite_engine
from wapipe.shared.storage.statements import Connection
from wapipe.workers.retry import Unavailable

T = TypeVar("T")
Work = Callable[[Connection], Coroutine[Any, Any, T]]

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


class Transactions:
    """``await transactions.run(work)``: ``work(connection)`` in one transaction, committed when
    it returns, rolled back if it raises (an outage raised as ``Unavailable``). ``work`` only
    runs statements: on SQLite it runs in the database's thread, where an await that would
    wait for anything else raises."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._plain = plain_sqlite_engine(engine)
        self._thread: ThreadPoolExecutor | None = None
        if self._plain is not None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="wapipe-sqlite")
            # A handler dropped unclosed (tests) lets its thread go.
            weakref.finalize(self, self._thread.shutdown, wait=False)

    async def run(self, work: Work[T]) -> T:
        if self._plain is None or self._thread is None:
            async with transaction(self._engine) as connection:
                return await work(connection)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, _in_thread, self._plain, work
            )
        except (OSError, TimeoutError) as exc:
            raise Unavailable(_one_line(exc)) from exc
        except DBAPIError as exc:
            if is_outage(exc):
                raise Unavailable(_one_line(exc)) from exc
            raise

    async def close(self) -> None:
        if self._plain is not None and self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._plain.dispose)
            self._thread.shutdown()


def _in_thread(engine: sqlalchemy.Engine, work: Work[T]) -> T:
    with engine.begin() as connection:  # BEGIN IMMEDIATE (shared/storage/database.py)
        coroutine = work(_Plain(connection))
        try:
            coroutine.send(None)
        except StopIteration as done:
            result: T = done.value
            return result
        coroutine.close()
        raise RuntimeError("a storage transaction awaited something other than its statements")


class _Plain:
    """A plain connection behind the face the stores use: its awaits return at once."""

    def __init__(self, connection: sqlalchemy.Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> CursorResult[Any]:
        return self._connection.exec_driver_sql(statement, parameters)

    async def execute(self, statement: Executable) -> CursorResult[Any]:
        return self._connection.execute(statement)


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
