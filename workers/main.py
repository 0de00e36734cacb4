"""Running one worker as a process: ``wapipe worker status|message|account|media|sender``.

    settings -> database (migrated) -> broker (topology declared) -> handler -> consume loop
                                                     metrics on their own port, beside

Each worker kind is a ``WorkerKind``: its queue, its default metrics port and how to build its
handler from what the process holds (``Resources``), or, for the sender, a ``serve`` of its own.
Every kind is wired the same way: ``run`` turns SIGTERM and SIGINT into ``stop``, and
``worker_process`` opens what the process holds and closes it in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared import amqp, topology
from wapipe.shared.amqp import EventPublisher
from wapipe.shared.eventloop import new_event_loop
from wapipe.shared.settings import Settings
from wapipe.shared.storage.database import open_database
from wapipe.workers.metrics import WorkerMetrics, serve_metrics
from wapipe.workers.retry import RetryPolicy
from wapipe.workers.runtime import Batching, Consumer, Handler

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    events: EventPublisher
    connection: AbstractRobustConnection
    metrics: WorkerMetrics
    port: int  # where the metrics are served (0: nowhere)


@dataclass(frozen=True)
class WorkerKind:
    name: str
    queue: str
    metrics_port: int
    handler: Callable[[Resources], AbstractAsyncContextManager[Handler]] | None = None
    # A worker that is not one queue into one batch handler (the sender) runs its own way.
    serve: Callable[[WorkerKind, Settings, asyncio.Event], Coroutine[Any, Any, None]] | None = None
    # Its connection's frames joined while busy (shared/amqp.py CoalescingWriter).
    coalesce: bool = False


def batching(settings: Settings) -> Batching:
    return Batching(
        size=settings.worker_batch_size,
        wait_s=settings.worker_batch_wait_ms / 1000,
        prefetch=settings.worker_prefetch or 2 * settings.worker_batch_size,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.worker_max_attempts,
        base_delay_s=settings.worker_retry_base_s,
        max_delay_s=settings.worker_retry_max_s,
    )


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None if ``stop`` is set first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


@asynccontextmanager
async def worker_process(
    kind: WorkerKind, settings: Settings, stop: asyncio.Event, metrics: WorkerMetrics
) -> AsyncIterator[Resources | None]:
    """What every worker process holds, opened in order and closed in reverse: the database
    (migrated), a named robust connection (waited for; None if ``stop`` comes first), the
    topology declared, a confirmed channel for what it publishes, its metrics served."""
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(open_database(settings.database_url))
        name = amqp.connection_name(f"worker-{kind.name}")
        connecting = amqp.connect(settings.amqp_url, name, coalesce=kind.coalesce)
        connection = await unless_stopped(connecting, stop)
        if connection is None:  # stopped while waiting for the broker
            yield None
            return
        stack.push_async_callback(amqp.close, connection)
        await topology.declare_once(connection)
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        port = settings.metrics_port or kind.metrics_port
        await stack.enter_async_context(serve_metrics(metrics, settings.metrics_host, port))
        yield Resources(settings, engine, EventPublisher(publishing), connection, metrics, port)


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    """One queue into one batch handler (workers/runtime.py)."""
    async with worker_process(kind, settings, stop, WorkerMetrics(kind.name)) as resources:
        if resources is None:
            return
        assert kind.handler is not None, f"{kind.name}: a handler or a serve of its own"
        async with kind.handler(resources) as handler:
            consumer = Consumer(
                kind.queue, handler, resources.metrics, batching(settings), retry_policy(settings)
            )
            log.info("worker started", extra={"queue": kind.queue, "metrics_port": resources.port})
            await consumer.run(resources.connection, stop)
    log.info("worker stopped", extra={"queue": kind.queue})


def run(kind: WorkerKind, settings: Settings) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await (kind.serve or serve)(kind, settings, stop)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
