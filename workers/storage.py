"""A worker's storage transaction: one per batch, a database outage reported as ``Unavailable``.

``transaction(engine)`` is SQLAlchemy's, over the async drivers. ``Transactions(engine).run(work)``
runs a whole transaction at once: on SQLite in a thread of its own over the standard library's
driver, one hop between threads a transaction where aiosqlite takes three or four a statement
(each waking its thread, then the event loop: most of a small batch's CPU, results/cost.md), and
no SQLAlchemy between the statements and the driver; elsewhere through ``transaction``.

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
import contextlib
import sqlite3
import threading
import weakref
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, Final, TypeVar

import asyncpg
from sqlalchemy import ClauseElement, Dialect, Executable, PoolProxiedConnection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

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
    it returns, rolled back if it raises (an outage raised as ``Unavailable``).

    On SQLite, ``work`` runs in the database's own thread over a plain sqlite3 connection
    (opened and set up as the engine's are: shared/storage/database.py), its statements sent
    to the driver as they are: ``work`` only runs statements (an await that would wait for
    anything else raises), and reads values as the driver gives them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._plain = plain_sqlite_engine(engine)
        self._thread: ThreadPoolExecutor | None = None
        self._connection: PoolProxiedConnection | None = None  # the thread's, once opened
        self._closed = False
        if self._plain is not None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="wapipe-sqlite")
            # A handler dropped unclosed (tests) lets its thread go.
            weakref.finalize(self, self._thread.shutdown, wait=False)

    async def run(self, work: Work[T]) -> T:
        if self._closed:
            raise Unavailable("shutting down: the transactions are closed")
        if self._thread is None:
            async with transaction(self._engine) as connection:
                return await work(connection)
        abandoned = threading.Event()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._thread, self._in_thread, work, abandoned
            )
        except asyncio.CancelledError:
            # Its caller is gone (shutdown): the thread rolls it back unless its COMMIT has
            # begun, as SQLAlchemy's transaction would (a send's mark must not outlive its send;
            # one committed just then is as after a crash right after the commit).
            abandoned.set()
            raise
        except (OSError, TimeoutError) as exc:
            raise Unavailable(_one_line(exc)) from exc
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError):
                raise  # the data's fault (as is_outage, below)
            raise Unavailable(_one_line(exc)) from exc
        except DBAPIError as exc:  # opening the connection
            if is_outage(exc):
                raise Unavailable(_one_line(exc)) from exc
            raise

    async def close(self) -> None:
        """Close the thread's connection, after the transaction running in it if one is (later
        runs are refused as an outage: the caller's work waits, unacked); once."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
            self._thread.shutdown()

    def _in_thread(self, work: Work[T], abandoned: threading.Event) -> T:
        assert self._plain is not None
        if abandoned.is_set():
            raise _Abandoned
        if self._connection is None:
            self._connection = self._plain.raw_connection()
        connection = self._connection.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        try:
            connection.execute("BEGIN IMMEDIATE")  # the write lock first (database.py says why)
            if abandoned.is_set():  # cancelled while BEGIN waited for another process's lock
                raise _Abandoned
            result = _to_end(work(_Plain(connection, self._plain.dialect)))
            if abandoned.is_set():
                raise _Abandoned
            connection.commit()
        except BaseException as exc:
            # A fresh connection for the next try after the database's own error, or when the
            # rollback failed: one left in a transaction would refuse every BEGIN after it.
            broken = isinstance(exc, sqlite3.Error) and not isinstance(
                exc, sqlite3.IntegrityError | sqlite3.DataError
            )
            if connection.in_transaction:
                try:
                    connection.rollback()
                except sqlite3.Error:
                    broken = True
            if broken:
                self._close()
            raise
        return result

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None
        if self._plain is not None:
            self._plain.dispose()


class _Abandoned(Exception):
    """A transaction whose caller was cancelled: rolled back, its result wanted by nobody."""


def _to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine none of whose awaits waits."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("a storage transaction awaited something other than its statements")


class _Plain:
    """A sqlite3 connection behind the face the stores use (statements.Connection)."""

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> _Rows:
        if isinstance(parameters, list):  # many rows (statements.execute_many)
            return _Rows(self._connection.executemany(statement, parameters))
        return _Rows(self._connection.execute(statement, parameters or ()))

    async def execute(self, statement: Executable) -> _Rows:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a statement SQLAlchemy compiles: {statement!r}")
        compiled = statement.compile(
            dialect=self._dialect, compile_kwargs={"render_postcompile": True}
        )
        assert isinstance(compiled, SQLCompiler)
        values = tuple(compiled.params[name] for name in compiled.positiontup or ())
        return await self.exec_driver_sql(compiled.string, values)


class _Rows:
    """A statement's rows, read at once (as SQLAlchemy's buffered results are)."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        described = cursor.description
        self._names = tuple(column[0] for column in described) if described else ()
        self._rows: list[tuple[Any, ...]] = cursor.fetchall() if described else []

    def all(self) -> list[Any]:
        row = _row_type(self._names)
        return [row._make(values) for values in self._rows]

    def scalars(self) -> list[Any]:
        return [values[0] for values in self._rows]


@lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> type[Any]:
    """Rows read by column name, as SQLAlchemy's are (``row.wamid``)."""
    return namedtuple("Row", names, rename=True)


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
