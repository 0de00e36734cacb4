"""PostgreSQL restarted under load: a worker holds its batch while the database is away (nothing
acked before its commit), says so in a log line and a metric, and resumes by itself; nothing is
lost, nothing stored twice. The cluster is the test's own (tests/integration/private_postgres.py):
the machine's server is shared."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from tests.helpers import drain, status_webhook, wait_until
from tests.integration.private_postgres import private_postgres
from tests.integration.test_worker_process import worker_process
from tests.integration.worker_support import count, metric, publish_bodies, queue_depth
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database


def said(log: Path, message: str) -> int:
    """How many of the worker's log lines say ``message``."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if line.startswith("{") and json.loads(line)["msg"] == message)


async def test_a_database_restart_under_load_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    bodies = [
        status_webhook(f"wamid.P{n}", status) for status in ("sent", "read") for n in range(3000)
    ]
    events = await publish_bodies(settings.amqp_url, bodies)
    keys = {event.message_id for event in events}
    log = tmp_path / "worker.log"
    async with (
        private_postgres() as database,
        worker_process(settings, database.url, log) as (process, metrics),
    ):

        async def storing() -> bool:
            return (await metric(metrics, "wapipe_worker_stored_total") or 0) > 0

        await wait_until(storing, timeout=30, step=0.005)
        await database.stop()  # every session ends, mid-batch

        async def waiting() -> bool:
            unavailable = await metric(metrics, "wapipe_worker_storage_unavailable_total")
            return (unavailable or 0) > 0 and said(log, "storage unavailable, waiting") > 0

        await wait_until(waiting, timeout=20)
        _, consumers = await queue_depth(settings.amqp_url, "wa.status")
        assert consumers == 1  # held, not crashed
        assert process.returncode is None
        stored_so_far = await metric(metrics, "wapipe_worker_stored_total") or 0
        assert stored_so_far < len(keys), "the restart came too late to prove anything"
        await database.start()

        async with open_database(database.url) as engine:

            async def drained() -> bool:
                ready, _ = await queue_depth(settings.amqp_url, "wa.status")
                return ready == 0 and await count(engine, schema.statuses) == len(keys)

            await wait_until(drained, timeout=60, step=0.2)
            async with engine.connect() as connection:
                rows = (await connection.execute(select(schema.statuses.c.key))).scalars()
                stored = list(rows)
    assert sorted(stored) == sorted(keys)  # each once
    assert await drain(settings.amqp_url, "wa.status.dlq") == []
    assert said(log, "storage unavailable, waiting") <= 3  # one line, not one per try
