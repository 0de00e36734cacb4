"""Running one worker as a process: ``wapipe worker status|message|account``.

    settings -> database (migrated) -> broker (topology declared) -> handler -> consume loop
                                                     metrics on their own port, beside

Each worker kind is a ``WorkerKind``: its queue, its default metrics port and how to build its
handler from what the process holds (``Resources``). SIGTERM or SIGINT stops the loop cleanly
(workers/runtime.py); every resource is closed in reverse order by the exit stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import topology
from shared.eventloop import new_event_loop
from shared.settings import Settings
from shared.storage.database import open_database
from workers.events import EventPublisher
from workers.metrics import WorkerMetrics, serve_metrics
from workers.retry import RetryPolicy
from workers.runtime import SHUTDOWN_STEP_S, Batching, Consumer, Handler

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_RETRY_S: Final = 2.0
RECONNECT_INTERVAL_S: Final = 1.0  # after a lost connection (aio-pika's default is 5 s)


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    events: EventPublisher


@dataclass(frozen=True)
class WorkerKind:
    name: str
    queue: str
    metrics_port: int
    handler: Callable[[Resources], AbstractAsyncContextManager[Handler]] | None = None
    # A worker that is not one queue into one batch handler (the sender) runs its own way.
    serve: Callable[[WorkerKind, Settings, asyncio.Event], Coroutine[Any, Any, None]] | None = None


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


async def connect(amqp_url: str, name: str) -> AbstractRobustConnection:
    """A robust, named connection; waits for the broker rather than failing at start-up."""
    while True:
        try:
            return await aio_pika.connect_robust(
                amqp_url,
                client_properties={"connection_name": name},
                reconnect_interval=RECONNECT_INTERVAL_S,
            )
        except (
            aiormq.exceptions.AuthenticationError,
            aiormq.exceptions.ProbableAuthenticationError,
        ):
            raise  # wrong credentials: waiting will not help
        except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
            log.warning("broker unreachable, retrying", extra={"error": str(exc)})
            await asyncio.sleep(CONNECT_RETRY_S)


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


async def close_connection(connection: AbstractRobustConnection) -> None:
    with contextlib.suppress(Exception):  # the broker may be away: do not wait for it
        async with asyncio.timeout(SHUTDOWN_STEP_S):
            await connection.close()


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    metrics = WorkerMetrics(kind.name)
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(open_database(settings.database_url))
        name = f"wapipe-worker-{kind.name}@{socket.gethostname()}"
        connection = await unless_stopped(connect(settings.amqp_url, name), stop)
        if connection is None:  # stopped while waiting for the broker
            return
        stack.push_async_callback(close_connection, connection)
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare(publishing)
        resources = Resources(settings, engine, EventPublisher(publishing))
        assert kind.handler is not None, f"{kind.name}: a handler or a serve of its own"
        handler = await stack.enter_async_context(kind.handler(resources))
        port = settings.metrics_port or kind.metrics_port
        await stack.enter_async_context(serve_metrics(metrics, settings.metrics_host, port))
        consumer = Consumer(
            kind.queue, handler, metrics, batching(settings), retry_policy(settings)
        )
        log.info("worker started", extra={"queue": kind.queue, "metrics_port": port})
        await consumer.run(connection, stop)
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
