"""PostgreSQL restarted under load: a worker, or the sender, holds what it has while the database
is away (nothing acked before its commit), says so in a log line and a metric, and resumes by
itself; nothing is lost, nothing stored or sent twice. The cluster is the test's own
(tests/integration/private_postgres.py): the machine's server is shared."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Table, select

from tests.conftest import with_settings
from tests.helpers import drain, free_port, status_webhook, wait_until
from tests.integration.private_postgres import private_postgres
from tests.integration.sender_support import (
    following,
    publish_jobs,
    requests_to_messages,
    sandbox_system,
    sender_process,
)
from tests.integration.test_media_worker import customer_sends, media_rows
from tests.integration.test_message_worker import text_webhook
from tests.integration.test_worker_process import worker_process
from tests.integration.worker_support import (
    count,
    metric,
    publish_bodies,
    queue_depth,
    running_worker,
)
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import media
from wapipe.workers.sender.events import MARKER


def said(log: Path, message: str) -> int:
    """How many of the process's log lines say ``message``."""
    return sum(1 for line in json_lines(log) if line["msg"] == message)


def json_lines(log: Path) -> list[dict[str, object]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def status_bodies() -> list[bytes]:
    return [status_webhook(f"wamid.P{n}", s) for s in ("sent", "read") for n in range(3000)]


def message_bodies() -> list[bytes]:
    return [text_webhook(f"wamid.M{n}", f"hello {n}") for n in range(3000)]


# worker, its queue, what it stores (and the column that is the event's key), the bodies
WORKERS: dict[str, tuple[str, Table, str, Callable[[], list[bytes]]]] = {
    "status": ("wa.status", schema.statuses, "key", status_bodies),
    "message": ("wa.message", schema.messages, "wamid", message_bodies),
}


@pytest.mark.parametrize("kind", WORKERS)
async def test_a_database_restart_under_load_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path, kind: str
) -> None:
    queue, table, key_column, bodies = WORKERS[kind]
    events = await publish_bodies(settings.amqp_url, bodies())
    keys = {event.message_id for event in events}
    log = tmp_path / "worker.log"
    async with (
        private_postgres() as database,
        worker_process(settings, database.url, log, kind) as (process, metrics),
    ):

        async def storing() -> bool:
            return (await metric(metrics, "wapipe_worker_stored_total") or 0) > 0

        await wait_until(storing, timeout=30, step=0.005)
        await database.stop()  # every session ends, mid-batch

        async def waiting() -> bool:
            unavailable = await metric(metrics, "wapipe_worker_storage_unavailable_total")
            return (unavailable or 0) > 0 and said(log, "storage unavailable, waiting") > 0

        await wait_until(waiting, timeout=20)
        _, consumers = await queue_depth(settings.amqp_url, queue)
        assert consumers == 1  # held, not crashed
        assert process.returncode is None
        stored_so_far = await metric(metrics, "wapipe_worker_stored_total") or 0
        assert stored_so_far < len(keys), "the restart came too late to prove anything"
        await database.start()

        async with open_database(database.url) as engine:

            async def drained() -> bool:
                ready, _ = await queue_depth(settings.amqp_url, queue)
                return ready == 0 and await count(engine, table) == len(keys)

            await wait_until(drained, timeout=60, step=0.2)
            async with engine.connect() as connection:
                rows = (await connection.execute(select(table.c[key_column]))).scalars()
                stored = list(rows)
    assert sorted(stored) == sorted(keys)  # each once
    assert await drain(settings.amqp_url, f"{queue}.dlq") == []
    assert said(log, "storage unavailable, waiting") <= 3  # one line, not one per try


async def journal(database_url: str) -> tuple[dict[str, tuple[str, str | None]], list[str]]:
    """Each job's state and wamid, and the wamids of the outbound messages stored."""
    jobs, messages = schema.send_jobs, schema.messages
    async with open_database(database_url) as engine, engine.connect() as connection:
        found = await connection.execute(select(jobs.c.idempotency_key, jobs.c.state, jobs.c.wamid))
        states = {row[0]: (row[1], row[2]) for row in found}
        outbound = await connection.execute(
            select(messages.c.wamid).where(messages.c.direction == "out")
        )
        return states, list(outbound.scalars())


@pytest.mark.timeout(180)
async def test_a_database_restart_under_the_sender_sends_each_job_once(
    settings: Settings, tmp_path: Path
) -> None:
    """600 jobs at the sandbox's 80/s; PostgreSQL stopped once sends are under way: the sender
    stops sending (its next send needs a commit), holds its jobs, says so, and finishes every
    job once the database is back. The sandbox saw each job once; each is recorded accepted,
    with the sandbox's wamid, and its message stored once."""
    jobs_count = 600
    log = tmp_path / "sender.log"
    async with (
        private_postgres() as database,
        sandbox_system(settings, database.url) as system,
        following(settings.amqp_url) as events,
    ):
        jobs = [system.text(to=to, body=f"n{n}") for n, to in enumerate(system.customers(600))]
        keys = [job.idempotency_key for job in jobs]
        port = free_port()
        metrics = f"http://127.0.0.1:{port}/metrics"
        async with sender_process(system.settings, log, port) as process:
            await publish_jobs(settings.amqp_url, jobs)

            async def sending() -> bool:
                return len(system.sends()) >= 50

            await wait_until(sending, timeout=30, step=0.005)
            await database.stop()  # every session ends, sends in flight

            async def waiting() -> bool:
                unavailable = await metric(
                    metrics, "wapipe_worker_storage_unavailable_total", worker="sender"
                )
                return (unavailable or 0) > 0 and said(log, "database unavailable, waiting") > 0

            await wait_until(waiting, timeout=20)

            async def stopped_sending() -> bool:  # a send's next step is a commit: none goes
                before = len(system.sends())
                await asyncio.sleep(1.0)  # a window in which nothing may happen
                return len(system.sends()) == before

            await wait_until(stopped_sending, timeout=10)
            assert len(system.sends()) < jobs_count, "the restart came too late to prove anything"
            assert process.returncode is None
            await database.start()
            await events.until_done(keys, within_s=60)
            assert process.returncode is None
        states, stored = await journal(database.url)
    sends = system.sends()
    by_job = collections.Counter(send.biz_opaque_callback_data for send in sends)
    assert by_job == collections.Counter(MARKER + key for key in keys)  # each job sent once
    answered = [r.status for r in requests_to_messages(system)]
    assert answered.count(200) == jobs_count
    wamid = {send.biz_opaque_callback_data: send.wamid for send in sends}
    assert states == {key: ("accepted", wamid[MARKER + key]) for key in keys}
    assert sorted(stored) == sorted(wamid.values())
    assert {event.key for event in events.accepted()} == set(keys)
    assert events.failed() == []
    assert 1 <= said(log, "database unavailable, waiting") <= 3  # one line per 10 s
    assert [line for line in json_lines(log) if line["level"] == "error"] == []


@pytest.mark.timeout(120)
async def test_a_database_restart_under_the_media_worker_stores_each_media_once(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """400 images from the sandbox's customer, queued; PostgreSQL stopped once some are stored: the
    worker holds its batch (its record is a transaction), says so, and stores every image once
    when the database is back; nothing is dead-lettered."""
    async with (
        private_postgres() as database,
        sandbox_system(settings, database.url) as system,
    ):
        worker = with_settings(
            system.settings, media_dir=str(tmp_path / "media"), worker_batch_size=25
        )
        ids = [await customer_sends(system.sandbox, "image") for _ in range(400)]  # queued
        async with (
            open_database(database.url) as engine,
            running_worker(media.KIND, worker) as metrics,
        ):

            async def storing() -> bool:
                return (await metric(metrics, "wapipe_worker_stored_total") or 0) > 0

            await wait_until(storing, timeout=30, step=0.005)
            await database.stop()

            async def waiting() -> bool:
                unavailable = await metric(metrics, "wapipe_worker_storage_unavailable_total")
                return (unavailable or 0) > 0 and "storage unavailable, waiting" in caplog.text

            await wait_until(waiting, timeout=20)
            stored_so_far = await metric(metrics, "wapipe_worker_stored_total") or 0
            assert stored_so_far < len(ids), "the restart came too late to prove anything"
            await database.start()

            async def all_stored() -> bool:
                ready, _ = await queue_depth(settings.amqp_url, "wa.media")
                rows = await media_rows(engine)
                return ready == 0 and len(rows) == len(ids)

            await wait_until(all_stored, timeout=60, step=0.2)
            rows = await media_rows(engine)
    assert sorted(rows) == sorted(ids)
    assert {row.state for row in rows.values()} == {"stored"}
    assert await drain(settings.amqp_url, "wa.media.dlq") == []
