"""The sender as a process: ``wapipe worker sender``.

    worker_process (workers/main.py): database, broker, topology, metrics
      └─ the Cloud API client (no retries of its own: the sender paces and retries)
         └─ Sender: the journal, the intake, the lanes (one task each), tending every 2 s
            └─ consuming every shard (active where no other replica is) and wa.send.status
SIGTERM: stop sending, then stop taking (a standby takes the shards over and sends at once),
let the sends in flight end and be recorded, cancel the rest, close in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from wapipe.shared import topology
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.settings import Settings
from wapipe.workers.main import WorkerKind, batching, retry_policy, worker_process
from wapipe.workers.retry import Unavailable
from wapipe.workers.runtime import SHUTDOWN_STEP_S, Consumer
from wapipe.workers.sender.core import TEND_EVERY_S, Sender, SenderFailed
from wapipe.workers.sender.intake import Intake
from wapipe.workers.sender.journal import outage
from wapipe.workers.sender.metrics import SenderMetrics
from wapipe.workers.sender.settle import FailedStatuses, Settler

log = logging.getLogger(__name__)

METRICS_PORT: Final = 9105


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    metrics = SenderMetrics()
    async with worker_process(kind, settings, stop, metrics) as resources:
        if resources is None:  # stopped while waiting for the broker
            return
        # The sender paces and retries itself: a retry inside the client would bypass the pacing.
        async with CloudApi(GraphConfig.from_settings(settings, retries=0)) as api:
            sender = Sender(settings, resources.engine, api, resources.events, metrics, stop)
            # What start-up made lives as long as the process: out of the collector's sight, a
            # full collection takes milliseconds, not the tens that stall every send at 1,000/s.
            gc.collect()
            gc.freeze()
            try:
                await _run(sender, resources.connection, stop, resources.port)
            finally:
                await sender.cancel()
    if sender.failure is not None:
        raise SenderFailed("a sender task failed") from sender.failure
    log.info("sender stopped")


async def _run(
    sender: Sender, connection: AbstractRobustConnection, stop: asyncio.Event, port: int
) -> None:
    settings = sender.settings
    connection.reconnect_callbacks.add(sender.on_reconnect)
    intake = sender.intake
    settler = Settler(sender.engine, sender.events, settings)
    for work in (sender.journal.run(), sender.acks.run(), intake.run(), _tend(sender, settler)):
        sender.spawn(work)
    statuses = Consumer(
        topology.SEND_STATUS_QUEUE,
        FailedStatuses(sender.engine, sender.events),
        sender.metrics,
        batching(settings),
        retry_policy(settings),
    )
    async with consuming(connection, intake, settings.sender_prefetch):
        log.info(
            "sender started",
            extra={"queues": topology.SHARD_QUEUES, "metrics_port": port},
        )
        await statuses.run(connection, stop)
        sender.stop_sending()  # before the shards go to a standby, which sends at once
    # The sends in flight end and are recorded (their answers are on the way), then acked.
    await sender.drain(settings.graph_timeout_s)
    await sender.acks.close()


async def _tend(sender: Sender, settler: Settler) -> None:
    while True:
        await asyncio.sleep(TEND_EVERY_S)  # a period, not a wait for something
        for lane in sender.lanes.values():
            lane.tend()
            pace = lane.throughput.limit(lane.clock())
            sender.metrics.pace.labels(lane.number).set(pace)
        try:
            await settler.settle_once()
        except Unavailable as exc:  # the database away: the journal's one line says so
            sender.metrics.unavailable.inc()
            outage.warning(log, "database", "database unavailable, waiting", error=str(exc))
        except Exception:  # the broker away: next time
            log.exception("cannot settle unknown outcomes now")


@asynccontextmanager
async def consuming(
    connection: AbstractRobustConnection, intake: Intake, prefetch: int
) -> AsyncIterator[None]:
    """Consume every shard (active on those no other replica holds) until the block ends."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queues: list[tuple[AbstractQueue, str]] = []
    for name in topology.SHARD_QUEUES:
        queue = await channel.declare_queue(name, passive=True)
        tag = await queue.consume(intake.receive)
        intake.consumes(tag, name)
        queues.append((queue, tag))
    try:
        yield
    finally:
        for shard, tag in queues:
            with contextlib.suppress(Exception):  # bounded: the broker may be away
                async with asyncio.timeout(SHUTDOWN_STEP_S):
                    await shard.cancel(tag)


# Coalesced: at 1,000 sends a second an event publish and an ack each, written one frame per
# send otherwise (tests/bench/results/sender.md).
KIND: Final = WorkerKind(
    "sender", topology.SHARD_QUEUES[0], METRICS_PORT, serve=serve, coalesce=True
)
