"""Opening the database named by ``WAPIPE_DATABASE_URL``, and bringing its schema up to date.

One URL chooses the backend (DESIGN.md, Storage):

- empty (the default): a SQLite file, ``./var/wapipe.db``;
- ``sqlite:///path/to/file.db``: a SQLite file elsewhere;
- ``postgresql://user@host:5432/name`` (or ``postgres://``): PostgreSQL.

Both go through SQLAlchemy's asyncio engine: aiosqlite for SQLite, asyncpg for PostgreSQL;
except, on SQLite, the workers' batch transactions and the sender's journal, which run whole in
a thread of their own over the standard library's driver (``plain_sqlite_engine``,
workers/storage.py).

SQLite is set up for several worker processes writing one file: WAL (readers never wait for the
writer), ``synchronous=FULL`` (a committed batch survives a power cut: workers ack after commit),
a busy timeout (a writer waits its turn instead of failing), and ``BEGIN IMMEDIATE`` (a
transaction takes the write lock when it starts, so two writers never deadlock upgrading a read
lock).

Migrations are Alembic's (the SQLAlchemy project's own tool: one schema rendered per backend,
transactional DDL on both, a version table the tools agree on). ``migrate()`` runs them under a
lock, so workers starting together may all call it: the first upgrades, the others find it done.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wapipe.shared.settings import SettingsError

DEFAULT_SQLITE_PATH: Final = Path("var") / "wapipe.db"
MIGRATIONS: Final = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
# Any constant will do: every wapipe process migrating one PostgreSQL database takes this lock.
MIGRATION_LOCK_ID: Final = 0x7761706970650001

_DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES: Final = {"postgres": "postgresql"}


class DatabaseUrlError(SettingsError):
    """WAPIPE_DATABASE_URL names no database wapipe can use."""


class DatabaseUnreachable(Exception):
    """The database did not answer, or refused us, at start-up."""


def resolve_url(database_url: str) -> URL:
    """The SQLAlchemy URL, with its asyncio driver, for a ``WAPIPE_DATABASE_URL`` value."""
    if not database_url:
        return make_url(f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH.resolve()}")
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise DatabaseUrlError(f"WAPIPE_DATABASE_URL: not a URL: {database_url!r}") from None
    backend = url.get_backend_name()
    backend = _ALIASES.get(backend, backend)
    if backend not in _DRIVERS:
        raise DatabaseUrlError(
            f"WAPIPE_DATABASE_URL: {backend!r} is not supported; use sqlite:/// or postgresql://"
        )
    if backend == "sqlite" and not url.database:
        raise DatabaseUrlError("WAPIPE_DATABASE_URL: name the SQLite file (sqlite:///path.db)")
    return url.set(drivername=_DRIVERS[backend])


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_engine(database_url: str, *, pool_size: int = 4) -> AsyncEngine:
    url = resolve_url(database_url)
    if not is_sqlite(url):
        return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def plain_sqlite_engine(engine: AsyncEngine) -> sqlalchemy.Engine | None:
    """For a SQLite ``engine``, one on the same file through the standard library's driver,
    set up the same way, for a thread that runs whole transactions (workers/storage.py);
    None for another backend."""
    if not is_sqlite(engine.url):
        return None
    plain = sqlalchemy.create_engine(
        engine.url.set(drivername="sqlite+pysqlite"),
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},  # made in one thread, disposed in another
    )
    event.listen(plain, "connect", _configure_sqlite)
    event.listen(plain, "begin", _begin_immediate)
    return plain


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions out of the driver's hands: SQLAlchemy's "begin" event starts them.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "synchronous=FULL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """WAL, once per file (it stays set). Switching needs the file to itself and does not wait
    on the busy timeout: while other processes start on a new file, try again briefly."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:  # the driver's OperationalError, as SQLAlchemy adapts it
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # blocks the loop, only while processes race on a new file


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def open_database(database_url: str, *, pool_size: int = 4) -> AsyncIterator[AsyncEngine]:
    """An engine whose schema is up to date, disposed of on exit."""
    engine = create_engine(database_url, pool_size=pool_size)
    try:
        try:
            await migrate(engine)
        except (OSError, DBAPIError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseUnreachable(f"{type(reason).__name__}: {reason}") from exc
        yield engine
    finally:
        await engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision``; safe to call from many processes at once."""
    async with engine.begin() as connection:
        if not is_sqlite(engine.url):  # SQLite's BEGIN IMMEDIATE is the lock there
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
        await connection.run_sync(_upgrade, revision)


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
