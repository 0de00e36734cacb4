"""A worker's transactions (workers/storage.py ``Transactions``): on SQLite a whole transaction in
the database's thread over a plain sqlite3 connection, elsewhere SQLAlchemy's; the same effects
and the same errors on both."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from functools import partial

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import inbound_text_row
from wapipe.shared.storage import customers
from wapipe.shared.storage.account import AccountEventRow, store_account_events
from wapipe.shared.storage.media import FAILED, STORED, MediaRow, record_media, stored_media
from wapipe.shared.storage.messages import InboundRow, mark_handled, store_inbound, unhandled
from wapipe.shared.storage.statements import Connection
from wapipe.workers.retry import Unavailable
from wapipe.workers.storage import Transactions


@pytest.fixture
async def transactions(engine: AsyncEngine) -> AsyncIterator[Transactions]:
    opened = Transactions(engine)
    try:
        yield opened
    finally:
        await opened.close()


def inbound(wamid: str) -> InboundRow:
    return inbound_text_row(wamid, sender="15550001")


async def test_what_a_transaction_writes_is_committed_and_read_back(
    transactions: Transactions, engine: AsyncEngine
) -> None:
    async def store(connection: Connection) -> set[str]:
        return await store_inbound(connection, [inbound("w1"), inbound("w2")], [])

    assert await transactions.run(store) == {"w1", "w2"}
    assert await transactions.run(store) == set()  # a repeat inserts nothing
    await transactions.run(lambda connection: mark_handled(connection, ["w1"], 2.0))

    async def waiting(connection: Connection) -> set[str]:
        return await unhandled(connection, ["w1", "w2"])

    assert await transactions.run(waiting) == {"w2"}
    async with engine.connect() as connection:  # the engine's own connections see it too
        assert await unhandled(connection, ["w1", "w2"]) == {"w2"}


async def test_a_transaction_that_raises_leaves_nothing_behind(
    transactions: Transactions,
) -> None:
    async def fails_after_writing(connection: Connection) -> None:
        await store_inbound(connection, [inbound("w1")], [])
        raise ValueError("the handler's bug")

    with pytest.raises(ValueError, match="bug"):
        await transactions.run(fails_after_writing)

    async def store(connection: Connection) -> set[str]:
        return await store_inbound(connection, [inbound("w1")], [])

    assert await transactions.run(store) == {"w1"}  # rolled back: new again


async def test_a_merge_of_customers_runs_its_statement_with_its_values(
    transactions: Transactions, engine: AsyncEngine
) -> None:
    async def link(connection: Connection) -> None:
        await customers.link(connection, [frozenset({"15550001"}), frozenset({"US.1"})], 1.0)
        # One person after all: the two customers merged (an UPDATE ... IN (...), compiled).
        await customers.link(connection, [frozenset({"15550001", "US.1"})], 2.0)

    await transactions.run(link)
    async with engine.connect() as connection:
        assert await customers.identities_of(connection, "US.1") == {"15550001", "US.1"}


async def test_the_data_at_fault_is_raised_and_anything_else_is_an_outage(
    transactions: Transactions,
) -> None:
    async def twice(connection: Connection) -> None:
        for _ in range(2):  # no ON CONFLICT: the second breaks the key
            await connection.exec_driver_sql(
                "INSERT INTO conversations (id, first_seen_at) VALUES ('c1', 1.0)"
            )

    async def no_table(connection: Connection) -> None:
        await connection.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match=r"(?i)unique|duplicate") as raised:
        await transactions.run(twice)
    assert not isinstance(raised.value, Unavailable)
    with pytest.raises(Unavailable):
        await transactions.run(no_table)

    async def store(connection: Connection) -> set[str]:
        return await store_inbound(connection, [inbound("w1")], [])

    assert await transactions.run(store) == {"w1"}  # and it goes on afterwards


async def test_work_that_waits_for_anything_but_its_statements_is_refused_on_sqlite(
    transactions: Transactions, database_url: str
) -> None:
    async def waits(connection: Connection) -> None:
        await asyncio.sleep(0)

    if database_url.startswith("sqlite"):
        with pytest.raises(RuntimeError, match="awaited something other"):
            await transactions.run(waits)
    else:
        await transactions.run(waits)  # SQLAlchemy's transaction, on the event loop


async def test_a_connection_left_in_a_transaction_is_replaced_on_sqlite(
    transactions: Transactions, database_url: str
) -> None:
    """A rollback that failed leaves the thread's connection in a transaction, where every
    BEGIN after fails: that try is an outage, and the next runs on a fresh connection."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLAlchemy's pool replaces its connections itself")

    async def look(connection: Connection) -> set[str]:
        return await unhandled(connection, ["w1"])

    assert await transactions.run(look) == set()
    thread, opened = transactions._thread, transactions._connection
    assert thread is not None
    assert opened is not None
    driver = opened.driver_connection
    assert driver is not None
    # What a failed rollback leaves: a transaction open on the connection.
    await asyncio.get_running_loop().run_in_executor(thread, driver.execute, "BEGIN")
    with pytest.raises(Unavailable, match="within a transaction"):
        await transactions.run(look)
    assert await transactions.run(look) == set()


async def test_a_transaction_whose_caller_is_cancelled_is_rolled_back_on_sqlite(
    transactions: Transactions, database_url: str
) -> None:
    """Cancelled (a shutdown), the caller is gone before the thread's work ends: that work must
    not commit after it (a send's mark outliving its send would fail a job that never left)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLAlchemy's transaction, on the event loop, rolls back when cancelled")
    running, go_on = threading.Event(), threading.Event()

    async def store_then_wait(connection: Connection) -> set[str]:
        stored = await store_inbound(connection, [inbound("w1")], [])
        running.set()
        go_on.wait(10)  # the thread's work still going when its caller is cancelled
        return stored

    run = asyncio.create_task(transactions.run(store_then_wait))
    assert await asyncio.to_thread(running.wait, 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    go_on.set()

    async def store(connection: Connection) -> set[str]:
        return await store_inbound(connection, [inbound("w1")], [])

    assert await transactions.run(store) == {"w1"}  # rolled back: new again


async def test_closed_transactions_refuse_work_as_an_outage(engine: AsyncEngine) -> None:
    """A run after ``close`` (a task outliving the shutdown) is an outage its caller waits out,
    not an error that would dead-letter its batch; a second close does nothing."""
    transactions = Transactions(engine)

    async def look(connection: Connection) -> set[str]:
        return await unhandled(connection, ["w1"])

    assert await transactions.run(look) == set()
    await transactions.close()
    await transactions.close()
    with pytest.raises(Unavailable, match="closed"):
        await transactions.run(look)


async def test_the_media_and_account_stores_run_in_a_transaction_on_either_backend(
    transactions: Transactions,
) -> None:
    """The media and account workers' stores over the same face (statements.Connection)."""
    stored = MediaRow(
        media_id="m1", wamid="w1", state=STORED, mime_type="image/jpeg", file_name="a.jpg",
        sha256="ab", size_bytes=3, location="media/m1", error=None, attempts=1, updated_at=2.0,
    )  # fmt: skip
    failed = MediaRow(
        media_id="m2", wamid="w2", state=FAILED, mime_type=None, file_name=None, sha256=None,
        size_bytes=None, location=None, error="gone", attempts=3, updated_at=3.0,
    )  # fmt: skip
    await transactions.run(partial(record_media, rows=[stored, failed]))
    found = await transactions.run(partial(stored_media, media_ids={"m1", "m2", "m3"}))
    assert found == {"m1": stored}  # every column read back, the failed one left out
    # ... as the type written (Structs compare 3 == 3.0 equal)
    types = [type(value) for value in msgspec.structs.astuple(found["m1"])]
    assert types == [type(value) for value in msgspec.structs.astuple(stored)]

    event = AccountEventRow(
        key="k1", field="account_update", waba_id="waba", phone_number_id=None,
        entry_time=1, received_at=1.0, stored_at=1.0, payload="{}",
    )  # fmt: skip
    store = partial(store_account_events, events=[event], templates=[], phone_numbers=[])
    assert await transactions.run(store) == {"k1"}
    assert await transactions.run(store) == set()  # a repeat stores nothing
