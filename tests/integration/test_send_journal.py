"""The sender's record of jobs (shared/storage/send_jobs.py) and its group commit (Journal), on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import wait_until
from wapipe.shared.schemas.jobs import SendJob, encode_job, text_message
from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.send_jobs import Change
from wapipe.shared.storage.statements import execute_in
from wapipe.workers.sender import journal as journal_module
from wapipe.workers.sender.intake import new_job
from wapipe.workers.sender.journal import Journal
from wapipe.workers.storage import Transactions

HOLDER_OR_UNKNOWN = send_jobs.FAIL.only_from


def job(key: str) -> SendJob:
    return SendJob(
        idempotency_key=key, phone_number_id="1", to="16315551181", message=text_message("hi")
    )


@contextlib.asynccontextmanager
async def running(
    engine: AsyncEngine, unavailable: Counter | None = None
) -> AsyncIterator[Journal]:
    """A journal over the sender's transactions (on SQLite: in the database's thread), its
    group commit running."""
    transactions = Transactions(engine)
    journal = Journal(transactions, unavailable)
    runner = asyncio.create_task(journal.run())
    try:
        yield journal
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await transactions.close()


async def claimed(engine: AsyncEngine, *keys: str) -> None:
    async with engine.begin() as connection:
        assert (
            await send_jobs.claim(
                connection, [new_job(job(k), encode_job(job(k)), time.time()) for k in keys]
            )
            == {}
        )


async def test_a_key_is_claimed_once_and_its_record_comes_back_after(engine: AsyncEngine) -> None:
    await claimed(engine, "a")
    async with engine.begin() as connection:
        seen = await send_jobs.claim(
            connection,
            [
                new_job(job("a"), encode_job(job("a")), time.time()),
                new_job(job("b"), encode_job(job("b")), time.time()),
            ],
        )
    assert list(seen) == ["a"]
    assert seen["a"].state == send_jobs.QUEUED


async def test_of_two_holders_marking_one_job_one_may_send(engine: AsyncEngine) -> None:
    await claimed(engine, "a")
    async with engine.begin() as connection:
        first = await send_jobs.mark_sending(connection, ["a"], at=100.0)
    async with engine.begin() as connection:
        second = await send_jobs.mark_sending(connection, ["a"], at=200.0)
    assert (first, second) == ({"a"}, set())


async def test_a_mark_tried_again_after_a_lost_commit_finds_its_own_rows(
    engine: AsyncEngine,
) -> None:
    """The first commit happened but its answer was lost: the same mark (token ``at``) again
    counts the job as marked, where another holder's would not."""
    await claimed(engine, "a")
    async with engine.begin() as connection:
        await send_jobs.mark_sending(connection, ["a"], at=100.0)
    async with engine.begin() as connection:
        assert await send_jobs.mark_sending(connection, ["a"], at=100.0) == {"a"}


@pytest.mark.parametrize("others", [0, 1], ids=["alone", "in-a-group"])
async def test_a_change_tried_again_after_a_lost_commit_finds_its_own_rows(
    engine: AsyncEngine, others: int
) -> None:
    """As for a mark: the same change again (token 2.0) counts as moved, where another holder's
    would not; alone in its group (one UPDATE ... RETURNING) as in a group of several."""
    await claimed(engine, "a", "b")
    async with engine.begin() as connection:
        await send_jobs.mark_sending(connection, ["a", "b"], at=1.0)
    changes = [
        Change(key=k, state=send_jobs.ACCEPTED, at=2.0, only_from=frozenset({send_jobs.SENDING}))
        for k in ["a", "b"][: 1 + others]
    ]
    for token, moved in [(2.0, {"a", "b"}), (2.0, {"a", "b"}), (3.0, set())]:
        async with engine.begin() as connection:
            assert await send_jobs.change(connection, changes, token) == moved & {
                c.key for c in changes
            }


async def test_a_change_applies_only_from_its_states(engine: AsyncEngine) -> None:
    await claimed(engine, "a", "b")
    accepted = frozenset({send_jobs.SENDING})
    async with engine.begin() as connection:
        await send_jobs.mark_sending(connection, ["a"], at=1.0)
        moved = await send_jobs.change(
            connection,
            [
                Change(key="a", state=send_jobs.ACCEPTED, at=2.0, wamid="w1", only_from=accepted),
                Change(key="b", state=send_jobs.ACCEPTED, at=2.0, wamid="w2", only_from=accepted),
            ],
            token=2.0,
        )
        records = await send_jobs.records(connection, ["a", "b"])
    assert moved == {"a"}
    assert (records["a"].state, records["a"].wamid) == (send_jobs.ACCEPTED, "w1")
    assert (records["b"].state, records["b"].wamid) == (send_jobs.QUEUED, None)


async def test_the_journal_commits_a_group_and_one_bad_write_fails_alone(
    engine: AsyncEngine,
) -> None:
    keys = [f"k{n}" for n in range(5)]
    await claimed(engine, *keys)
    async with running(engine) as journal:
        marks = await asyncio.gather(*(journal.mark_sending(k) for k in keys))
        assert marks == [True] * 5
        now = time.time()
        writes = [
            journal.write(
                Change(
                    key=k,
                    state=send_jobs.FAILED,
                    at=now,
                    error_code=2**70 if k == "k2" else 131026,  # k2: no integer column holds it
                    error_title="undeliverable",
                    only_from=HOLDER_OR_UNKNOWN,
                )
            )
            for k in keys
        ]
        results = await asyncio.gather(*writes, return_exceptions=True)
    assert [r is True for r in results] == [True, True, False, True, True]
    assert isinstance(results[2], Exception)
    async with engine.connect() as connection:
        records = await send_jobs.records(connection, keys)
    assert [records[k].state for k in keys] == ["failed", "failed", "sending", "failed", "failed"]


async def test_a_statement_run_without_one_of_its_values_is_refused(engine: AsyncEngine) -> None:
    """statements.execute_in binds the caller's values by name: one left out is an error, as
    in SQLAlchemy's execute, never a NULL that matches nothing."""
    async with engine.connect() as connection:
        with pytest.raises(TypeError, match="no value for at"):
            await execute_in(connection, send_jobs._MOVED, ["k1"])
        moved = await execute_in(connection, send_jobs._MOVED, ["k1"], at=1.0)
        assert list(moved.scalars()) == []


async def test_a_job_finished_alone_is_read_back_by_the_journal(engine: AsyncEngine) -> None:
    """``finish`` and ``record``, each a transaction of its own (a redelivered job found
    ``sending``: its outcome lost)."""
    await claimed(engine, "a")
    async with running(engine) as journal:
        assert await journal.mark_sending("a")
        await journal.finish(send_jobs.LOSE("a", 5.0))
        await journal.finish(send_jobs.ACCEPT("missing", 5.0))  # no such job: nothing moves
        record = await journal.record("a")
        assert await journal.record("missing") is None
    assert record is not None
    assert (record.state, record.updated_at, record.attempts) == (send_jobs.UNKNOWN, 5.0, 1)


async def test_an_outage_in_a_group_commit_is_waited_out_and_the_mark_keeps_its_token(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database away while a group of marks commits (its table gone: an outage, as a lost
    connection is): the group waits, each try counted, and commits once it is back, with the
    mark token it took before (a first commit whose answer was lost is then found as its own)."""
    monkeypatch.setattr(journal_module, "OUTAGE_RETRY_S", 0.05)
    registry = CollectorRegistry()
    unavailable = Counter("unavailable", "tries that found the database down", registry=registry)
    await claimed(engine, "a", "b")
    async with running(engine, unavailable) as journal:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("ALTER TABLE send_jobs RENAME TO send_jobs_away")
        marks = asyncio.gather(journal.mark_sending("a"), journal.mark_sending("b"))
        await wait_until(lambda: (registry.get_sample_value("unavailable_total") or 0) >= 2)
        back = time.time()
        async with engine.begin() as connection:
            await connection.exec_driver_sql("ALTER TABLE send_jobs_away RENAME TO send_jobs")
        assert list(await marks) == [True, True]
    async with engine.connect() as connection:
        records = await send_jobs.records(connection, ["a", "b"])
    assert {r.state for r in records.values()} == {send_jobs.SENDING}
    assert all(r.updated_at < back for r in records.values())  # the token from before
