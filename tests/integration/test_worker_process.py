"""``wapipe worker status`` as a real process: killed mid-batch, it loses and doubles nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.helpers import drain, free_port, status_webhook, wait_until
from tests.integration.worker_support import count, metric, publish_bodies, queue_depth
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import (
    create_engine,
    current_revision,
    head_revision,
    open_database,
)

STATUSES = ("sent", "delivered", "read")


@asynccontextmanager
async def worker_process(
    settings: Settings, database_url: str, log: Path, kind: str = "status"
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``wapipe worker <kind>`` as a process of its own, and its metrics' URL; killed at the
    end if it still runs."""
    port = free_port()
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": settings.amqp_url,
        "WAPIPE_DATABASE_URL": database_url,
        "WAPIPE_METRICS_PORT": str(port),
        "WAPIPE_WORKER_BATCH_SIZE": "100",
        "WAPIPE_LOG_FORMAT": "json",
    }
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wapipe", "worker", kind, env=env, stderr=output
        )
    try:
        yield process, f"http://127.0.0.1:{port}/metrics"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_worker_killed_mid_batch_then_restarted_stores_every_event_once(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    messages = 1000
    # Every message's three statuses, read first, then the lot again: 6,000 events, 3,000 keys.
    bodies = [
        status_webhook(f"wamid.K{number}", status)
        for status in reversed(STATUSES)
        for number in range(messages)
    ]
    events = await publish_bodies(settings.amqp_url, bodies + bodies)
    keys = {event.message_id for event in events}
    log = tmp_path / "worker.log"

    async with open_database(database_url) as engine:
        async with worker_process(settings, database_url, log) as (process, metrics):

            async def midway() -> bool:
                consumed = await metric(metrics, "wapipe_worker_consumed_total") or 0
                return consumed > 0 and await count(engine, schema.statuses) > 0

            await wait_until(midway, timeout=30, step=0.005)
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
        stored_before_restart = await count(engine, schema.statuses)
        assert stored_before_restart < len(keys), "the kill came too late to prove anything"

        async with worker_process(settings, database_url, log) as (process, metrics):

            async def drained() -> bool:
                ready, _ = await queue_depth(settings.amqp_url, "wa.status")
                return ready == 0 and await count(engine, schema.statuses) == len(keys)

            await wait_until(drained, timeout=60)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0

        async with engine.connect() as connection:
            stored = set((await connection.execute(select(schema.statuses.c.key))).scalars())
            states = (await connection.execute(select(schema.messages.c.status))).scalars().all()
    assert stored == keys
    assert len(states) == messages
    assert set(states) == {"read"}
    # Nothing was at fault: nothing was dead-lettered, by the worker or by the broker.
    assert await drain(settings.amqp_url, "wa.status.dlq") == []


async def test_a_worker_waiting_for_the_broker_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",  # nobody listens
        "WAPIPE_DATABASE_URL": f"sqlite:///{tmp_path / 'wapipe.db'}",
        "WAPIPE_METRICS_PORT": str(free_port()),
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wapipe", "worker", "status", env=env, stderr=output
        )
    try:
        await wait_until(lambda: "broker unreachable" in log.read_text(), timeout=20)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_worker_says_clearly_when_the_database_is_unusable(tmp_path: Path) -> None:
    for database_url, code, says in (
        (f"postgresql://postgres@127.0.0.1:{free_port()}/wapipe", 3, "cannot use the database"),
        ("mysql://localhost/wapipe", 3, "WAPIPE_DATABASE_URL: 'mysql' is not supported"),
    ):
        env = {**os.environ, "WAPIPE_DATABASE_URL": database_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wapipe",
            "worker",
            "status",
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == code
        assert says in stderr.decode()


async def test_wapipe_migrate_brings_a_new_database_to_the_latest_schema(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {**os.environ, "WAPIPE_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wapipe", "migrate", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_a_worker_killed_inside_its_transaction_leaves_no_trace_and_loses_nothing(
    settings: Settings, postgres_url: str, tmp_path: Path
) -> None:
    """Deterministic: the first batch's transaction is held on a row lock when the kill comes."""
    bodies = [status_webhook(f"wamid.T{n}", status) for status in STATUSES for n in range(300)]
    events = await publish_bodies(settings.amqp_url, bodies)
    keys = {event.message_id for event in events}
    database = make_url(postgres_url).database
    dsn = postgres_url.replace("postgresql://", "postgres://", 1)
    holder = await asyncpg.connect(dsn)
    try:
        # The message row the first batch must update, locked by someone else.
        await holder.execute("INSERT INTO messages (wamid, direction) VALUES ('wamid.T0', 'out')")
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM messages WHERE wamid = 'wamid.T0' FOR UPDATE")
        log = tmp_path / "worker.log"
        async with open_database(postgres_url) as engine:
            async with worker_process(settings, postgres_url, log) as (process, _):

                async def blocked_mid_batch() -> bool:
                    # Asked on a connection of its own: inside the holder's transaction,
                    # pg_stat_activity would answer from a snapshot taken at its first use.
                    watcher = await asyncpg.connect(dsn)
                    try:
                        waiting = await watcher.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO messages%'",
                            database,
                        )
                    finally:
                        await watcher.close()
                    return bool(waiting)

                await wait_until(blocked_mid_batch, timeout=30)
                process.send_signal(signal.SIGKILL)
                assert await process.wait() == -signal.SIGKILL
            await lock.rollback()
            assert await count(engine, schema.statuses) == 0  # the batch's writes died with it
            async with worker_process(settings, postgres_url, log) as (process, _):

                async def all_stored() -> bool:
                    return await count(engine, schema.statuses) == len(keys)

                await wait_until(all_stored, timeout=60)
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), timeout=15) == 0
            async with engine.connect() as connection:
                states = (await connection.execute(select(schema.messages.c.status))).scalars()
                assert set(states) == {"read"}
    finally:
        await holder.close()


async def test_sigterm_under_a_backlog_stops_after_the_batch_in_hand_and_doubles_nothing(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    bodies = [status_webhook(f"wamid.S{n}", status) for status in STATUSES for n in range(1500)]
    events = await publish_bodies(settings.amqp_url, bodies)
    log = tmp_path / "worker.log"
    async with open_database(database_url) as engine:
        async with worker_process(settings, database_url, log) as (process, metrics):

            async def working() -> bool:
                return (await metric(metrics, "wapipe_worker_stored_total") or 0) > 0

            await wait_until(working, timeout=30, step=0.005)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        ready, _ = await queue_depth(settings.amqp_url, "wa.status")
        assert ready > 0, "it drained the backlog instead of stopping"
        assert await count(engine, schema.statuses) + ready == len(events)  # acked = stored

        # The next worker gets the rest, none of it stored already: nothing lost, nothing twice.
        async with worker_process(settings, database_url, log) as (process, metrics):

            async def stored_the_rest() -> bool:
                return await metric(metrics, "wapipe_worker_stored_total") == ready

            await wait_until(stored_the_rest, timeout=60)
            assert await metric(metrics, "wapipe_worker_duplicates_total") == 0
            assert await count(engine, schema.statuses) == len(events)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=10) == 0
