"""Running workers in tests: in-process (serve) or as real processes, and reading their effects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aio_pika
import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import SECRETS, IngressClient, with_settings
from tests.helpers import free_port, publish_raw, wait_until
from wapipe.ingress.split import Event, split_body
from wapipe.shared import topology
from wapipe.shared.settings import Settings
from wapipe.shared.signature import HEADER, sign
from wapipe.workers.main import WorkerKind, serve


@asynccontextmanager
async def running_worker(kind: WorkerKind, settings: Settings) -> AsyncIterator[str]:
    """``kind`` consuming in this process until the block ends; yields its metrics URL."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        (kind.serve or serve)(kind, with_settings(settings, metrics_port=port), stop)
    )
    url = f"http://127.0.0.1:{port}/metrics"

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return await metric(url, "wapipe_worker_consumed_total") is not None

    try:
        await wait_until(started, timeout=15)
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def metric(url: str, name: str, **labels: str) -> float | None:
    """A sample's value from a worker's /metrics (the one with these labels, if given); None
    while it does not answer, or has no such sample."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def post_webhook(client: IngressClient, body: bytes) -> int:
    headers = {"content-type": "application/json", HEADER: sign(SECRETS[0].encode(), body)}
    response = await client.post("/webhook", data=body, headers=headers)
    return response.status


def as_messages(events: Sequence[Event]) -> list[tuple[str, aio_pika.Message]]:
    return [
        (
            event.routing_key,
            aio_pika.Message(
                event.body,
                message_id=event.message_id,
                headers=dict(event.headers),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
        )
        for event in events
    ]


async def publish_bodies(amqp_url: str, bodies: Sequence[bytes]) -> list[Event]:
    """Split webhook bodies as the ingress does and publish their events; returns them."""
    events = [event for body in bodies for event in split_body(body, time.time())]
    await topology.declare_at(amqp_url)  # the queues exist before any worker starts
    await publish_raw(amqp_url, topology.EVENTS_EXCHANGE, as_messages(events))
    return events


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def queue_depth(amqp_url: str, queue: str) -> tuple[int, int]:
    """(ready, consumers) from a passive declare: exact, unlike the management API's figures."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return result.message_count or 0, result.consumer_count or 0
