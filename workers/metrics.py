"""Each worker's Prometheus metrics, served on its own port (``/metrics``, and ``/healthz``).

Counted per batch, not per message, so the cost stays out of the way of the consume loop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wapipe.shared.schemas.events import Header

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage

    from wapipe.workers.runtime import Outcome

BATCH_SIZES: Final = (1, 5, 10, 25, 50, 100, 200, 500, 1000)
LATENCIES_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WorkerMetrics:
    def __init__(self, worker: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"worker": worker}

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, registry=self.registry, labelnames=["worker"]).labels(
                **labels
            )

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(
                name, doc, registry=self.registry, labelnames=["worker"], buckets=buckets
            ).labels(**labels)

        self.consumed = counter("wapipe_worker_consumed", "Messages taken from the queue.")
        self.stored = counter("wapipe_worker_stored", "Events stored for the first time.")
        self.duplicates = counter(
            "wapipe_worker_duplicates", "Events that were stored already (redelivered or repeated)."
        )
        self.failures = counter("wapipe_worker_failures", "Failed tries of a message.")
        self.unavailable = counter(
            "wapipe_worker_storage_unavailable", "Calls that found a dependency down (retried)."
        )
        self.dead_lettered = counter(
            "wapipe_worker_dead_lettered", "Messages published to the dead-letter queue."
        )
        self.batch_size = histogram("wapipe_worker_batch_size", "Messages per batch.", BATCH_SIZES)
        self.processing = histogram(
            "wapipe_worker_processing_seconds", "Handling a batch, commit included.", LATENCIES_S
        )
        self.receipt_to_commit = histogram(
            "wapipe_worker_receipt_to_commit_seconds",
            "From the ingress receiving an event to the worker committing it.",
            LATENCIES_S,
        )

    def observe(
        self, batch: Sequence[AbstractIncomingMessage], outcome: Outcome, elapsed_s: float
    ) -> None:
        self.batch_size.observe(len(batch))
        self.processing.observe(elapsed_s)
        self.stored.inc(outcome.stored)
        self.duplicates.inc(outcome.duplicates)
        now = time.time()
        for message in batch:
            if (at := received_at(message)) is not None:
                self.receipt_to_commit.observe(max(now - at, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


@asynccontextmanager
async def serve_metrics(metrics: WorkerMetrics, host: str, port: int) -> AsyncIterator[None]:
    """``/metrics`` and ``/healthz`` on ``host:port`` while the block runs (port 0: none)."""
    if port == 0:
        yield
        return

    async def scrape(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


def received_at(message: AbstractIncomingMessage) -> float | None:
    """When the ingress received the event (its header), for the receipt-to-commit latency."""
    value = (message.headers or {}).get(Header.RECEIVED_AT)
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return float(value) if isinstance(value, str | int | float) else None
    except ValueError:
        return None
