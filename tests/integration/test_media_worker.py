"""The media worker against the sandbox and the real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aio_pika
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import IngressClient, start_ingress, with_settings
from tests.helpers import drain, free_port, wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    SECRET,
    TOKEN,
    SandboxClient,
    start_sandbox,
)
from tests.integration.worker_support import metric, running_worker
from wapipe.sandbox.keys import WORLD
from wapipe.shared import topology
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import media

KINDS = ("image", "audio", "video", "document", "sticker")


@pytest.fixture
async def system(
    settings: Settings, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[SandboxClient, Settings]]:
    """An ingress taking the sandbox's webhooks, and the settings of a media worker."""
    settings = with_settings(settings, app_secrets=(SECRET,), database_url=database_url)
    ingress: IngressClient = await start_ingress(settings)
    sandbox = await start_sandbox(str(ingress.make_url("/webhook")))
    worker = with_settings(
        settings,
        graph_url=str(sandbox.make_url("")).rstrip("/"),
        access_token=TOKEN,
        media_dir=str(tmp_path / "media"),
        media_attempts=3,
        worker_retry_base_s=0.01,
        worker_max_attempts=2,
    )
    try:
        yield sandbox, worker
    finally:
        await sandbox.close()
        await ingress.close()


async def customer_sends(sandbox: SandboxClient, kind: str, **spec: Any) -> str:
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": kind, **spec}
    )
    assert response.status == 200
    media_id: str = (await response.json())["media_id"]
    return media_id


def file_at(location: str) -> bytes:
    return Path(urlparse(location).path).read_bytes()


async def media_rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return {row.media_id: row for row in await connection.execute(select(schema.media))}


async def test_each_media_type_is_stored_byte_for_byte(
    system: tuple[SandboxClient, Settings],
) -> None:
    sandbox, settings = system
    async with (
        open_database(settings.database_url) as engine,
        running_worker(media.KIND, settings) as metrics,
    ):
        ids = {kind: await customer_sends(sandbox, kind) for kind in KINDS}

        async def all_stored() -> bool:
            rows = await media_rows(engine)
            return len(rows) == len(KINDS) and {row.state for row in rows.values()} == {"stored"}

        await wait_until(all_stored, timeout=20)

        # The rows are committed before the batch's events are confirmed and the batch counted.
        async def all_counted() -> bool:
            return await metric(metrics, "wapipe_worker_stored_total") == len(KINDS)

        await wait_until(all_counted, timeout=10)
        rows = await media_rows(engine)
    sandbox_media = sandbox.app[WORLD].media.items
    for kind, media_id in ids.items():
        row, original = rows[media_id], sandbox_media[media_id].content
        stored = file_at(row.location)
        assert stored == original, kind
        assert row.sha256 == hashlib.sha256(original).hexdigest()
        assert row.size_bytes == len(original)
        assert row.mime_type == sandbox_media[media_id].mime_type
    assert rows[ids["document"]].file_name == sandbox_media[ids["document"]].filename


async def test_the_same_media_twice_is_downloaded_once(
    system: tuple[SandboxClient, Settings],
) -> None:
    sandbox, settings = system
    connection = await aio_pika.connect(settings.amqp_url)
    async with (
        connection,
        open_database(settings.database_url) as engine,
        running_worker(media.KIND, settings) as metrics,
    ):
        follower = await (await connection.channel()).declare_queue("watch", exclusive=True)
        await follower.bind(topology.EVENTS_EXCHANGE, "media.#")
        media_id = await customer_sends(sandbox, "image")
        await wait_until(lambda: _stored(engine, media_id), timeout=20)
        # Meta delivers the same webhook again.
        [delivery] = await (await sandbox.get("/_sandbox/webhooks")).json()
        again = await sandbox.post(f"/_sandbox/webhooks/{delivery['id']}/redeliver")
        assert again.status == 200

        async def handled_twice() -> bool:  # the second one handled, not merely taken
            return await metric(metrics, "wapipe_worker_duplicates_total") == 1

        await wait_until(handled_twice, timeout=10)
        downloads = [r for r in sandbox.app[WORLD].requests if "attachments" in r.path]
        assert len(downloads) == 1
        assert await metric(metrics, "wapipe_worker_stored_total") == 1
        # Its event, again, under the same key: a crash between commit and event loses nothing.
        events = [await follower.get(timeout=5) for _ in range(2)]
        assert {(event.routing_key, event.message_id) for event in events} == {
            ("media.stored", f"media:{media_id}:stored")
        }


async def _stored(engine: AsyncEngine, media_id: str) -> bool:
    rows = await media_rows(engine)
    return media_id in rows and rows[media_id].state == "stored"


@pytest.mark.parametrize(
    "fault",
    [
        # The URL expired (or was refused): the worker looks the id up again, a second try.
        {"endpoint": "download", "status": 404, "count": 1},
        {"endpoint": "download", "status": 401, "count": 1},
        # Transient: the client's own retries carry it through, within the worker's first try.
        {"endpoint": "download", "status": 503, "count": 2},
        {"endpoint": "download", "drop": True, "count": 1},
        {"endpoint": "node", "code": 131000, "count": 1},
    ],
)
async def test_a_failed_download_is_tried_again_with_a_fresh_look_up(
    system: tuple[SandboxClient, Settings], fault: dict[str, Any]
) -> None:
    sandbox, settings = system
    assert (await sandbox.post("/_sandbox/faults", json=fault)).status == 200
    async with open_database(settings.database_url) as engine, running_worker(media.KIND, settings):
        media_id = await customer_sends(sandbox, "document")
        await wait_until(lambda: _stored(engine, media_id), timeout=20)
        row = (await media_rows(engine))[media_id]
    assert row.attempts == (2 if fault.get("status") in (401, 404) else 1)
    assert file_at(row.location) == sandbox.app[WORLD].media.items[media_id].content
    assert await (await sandbox.get("/_sandbox/faults")).json() == []  # each fault was met


async def test_a_digest_mismatch_is_retried_then_failed_with_its_reason(
    system: tuple[SandboxClient, Settings],
) -> None:
    sandbox, settings = system
    media_id = await customer_sends(sandbox, "image")  # before the worker runs
    sandbox.app[WORLD].media.items[media_id].content += b"tampered"
    connection = await aio_pika.connect(settings.amqp_url)
    async with (
        connection,
        open_database(settings.database_url) as engine,
        running_worker(media.KIND, settings) as metrics,
    ):
        channel = await connection.channel()
        follower = await channel.declare_queue("media-watch", exclusive=True)
        await follower.bind(topology.EVENTS_EXCHANGE, "media.#")

        async def dead_lettered() -> bool:
            return await metric(metrics, "wapipe_worker_dead_lettered_total") == 1

        await wait_until(dead_lettered, timeout=20)
        row = (await media_rows(engine))[media_id]
        event = await follower.get(timeout=5)
    assert (row.state, row.attempts, row.location) == ("failed", 3, None)
    assert "sha256 mismatch" in row.error
    assert event.routing_key == "media.failed"
    assert "sha256 mismatch" in json.loads(event.body)["error"]
    [dead] = await drain(settings.amqp_url, "wa.media.dlq")
    assert "sha256 mismatch" in str((dead.headers or {})["x-wapipe-error"])
    assert leftovers(settings) == []


def leftovers(settings: Settings) -> list[Path]:
    return list((Path(settings.media_dir) / "tmp").glob("*"))


def peak_and_current_rss_kb(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process, in KiB: its peak resident memory so far, and now."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])


async def test_a_50_mb_document_is_stored_while_the_worker_grows_by_less_than_20_mb(
    system: tuple[SandboxClient, Settings], tmp_path: Path
) -> None:
    """A worker process of its own, so its memory is its own: peak RSS against RSS at rest."""
    sandbox, settings = system
    port = free_port()
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": settings.amqp_url,
        "WAPIPE_DATABASE_URL": settings.database_url,
        "WAPIPE_GRAPH_URL": settings.graph_url,
        "WAPIPE_ACCESS_TOKEN": settings.access_token,
        "WAPIPE_MEDIA_DIR": settings.media_dir,
        "WAPIPE_METRICS_PORT": str(port),
    }
    metrics = f"http://127.0.0.1:{port}/metrics"
    with (tmp_path / "worker.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wapipe", "worker", "media", env=env, stderr=log
        )
    try:

        async def up() -> bool:
            return await metric(metrics, "wapipe_worker_consumed_total") is not None

        await wait_until(up, timeout=30)
        _, at_rest_kb = peak_and_current_rss_kb(process.pid)
        size = 50 * 1024 * 1024
        media_id = await customer_sends(sandbox, "document", size=size)

        async def stored() -> bool:
            return await metric(metrics, "wapipe_worker_stored_total") == 1

        await wait_until(stored, timeout=60)
        peak_kb, _ = peak_and_current_rss_kb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=15)
    async with open_database(settings.database_url) as engine:
        row = (await media_rows(engine))[media_id]
    assert row.size_bytes >= size
    assert (
        row.sha256 == hashlib.sha256(sandbox.app[WORLD].media.items[media_id].content).hexdigest()
    )
    growth_mb = (peak_kb - at_rest_kb) / 1024
    assert growth_mb < 20, f"the worker grew by {growth_mb:.1f} MB for a {size >> 20} MB file"


async def test_media_go_to_an_s3_compatible_store_when_so_configured(
    system: tuple[SandboxClient, Settings], s3_location: str
) -> None:
    sandbox, settings = system
    settings = with_settings(settings, media_dir=s3_location)
    async with open_database(settings.database_url) as engine, running_worker(media.KIND, settings):
        media_id = await customer_sends(sandbox, "video")
        await wait_until(lambda: _stored(engine, media_id), timeout=20)
        row = (await media_rows(engine))[media_id]
    content = sandbox.app[WORLD].media.items[media_id].content
    digest = hashlib.sha256(content).hexdigest()
    bucket = s3_location.removeprefix("s3://").split("/", 1)[0]
    assert row.location == f"s3://{bucket}/media/{digest[:2]}/{digest[2:4]}/{digest}"
    assert row.size_bytes == len(content)
