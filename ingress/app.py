"""The ingress web app: routes, state and lifecycle. ``run()`` is what ``wapipe ingress`` calls."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

from aiohttp import web

from wapipe.ingress import flows, handlers, handover
from wapipe.ingress.flows_rpc import FlowsBroker
from wapipe.ingress.keys import METRICS, PUBLISHER, SECRETS, SETTINGS
from wapipe.ingress.metrics import IngressMetrics
from wapipe.ingress.publish import Publisher
from wapipe.shared import amqp
from wapipe.shared.eventloop import new_event_loop
from wapipe.shared.flows.keys import endpoint_keys
from wapipe.shared.settings import Settings, require

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD: Final = 20_000  # allocations between young-generation collections (default 700)

# How long SIGTERM waits for in-flight requests (each bounded by the confirm timeout).
SHUTDOWN_GRACE_S: Final = 10.0
# How long a starting ingress waits for its broker before it listens: beside a running ingress
# (a roll) the kernel would hand the new one connections it could only answer 503; alone, past
# this it listens anyway, answering 503 (and failing /readyz) until the broker comes.
BROKER_FIRST_S: Final = 10.0


def create_app(settings: Settings) -> web.Application:
    require(settings, "app_secrets", "verify_token")
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[SECRETS] = tuple(secret.encode() for secret in settings.app_secrets)
    app[METRICS] = IngressMetrics()
    app[flows.ENDPOINT] = flows.FlowsEndpoint(
        keys=endpoint_keys(settings),
        secrets=app[SECRETS],
        broker=FlowsBroker(settings.amqp_url, amqp.connection_name("ingress-flows")),
        deadline_s=settings.flows_deadline_s,
        max_body_bytes=settings.max_body_bytes,
    )
    app[METRICS].registry.register(app[flows.ENDPOINT].metrics)
    app.router.add_routes(
        [
            web.get("/webhook", handlers.verify),
            web.post("/webhook", handlers.receive),
            web.post(flows.PATH, flows.receive),
            web.get("/healthz", handlers.healthz),
            web.get("/readyz", handlers.readyz),
            web.get("/metrics", handlers.metrics_page),
        ]
    )
    app[handover.DRAIN] = handover.Drain()
    app.on_response_prepare.append(handover.close_when_draining)
    app.cleanup_ctx.append(_broker)
    if app[flows.ENDPOINT].keys:
        app.cleanup_ctx.append(_flows_broker)
    return app


async def _flows_broker(app: web.Application) -> AsyncIterator[None]:
    """The Flows endpoint's own connection (request/reply), made in the background too."""
    broker = app[flows.ENDPOINT].broker
    async with _connecting("flows-broker-connect", broker.connect(), broker.close):
        yield


async def _broker(app: web.Application) -> AsyncIterator[None]:
    """Connect in the background: the ingress serves (503, /readyz failing) until it is up."""
    settings = app[SETTINGS]
    publisher = Publisher(
        settings.amqp_url,
        connection_name=amqp.connection_name("ingress"),
        confirm_timeout_s=settings.confirm_timeout_s,
    )
    app[PUBLISHER] = publisher
    # Closed once aiohttp has let in-flight handlers finish, so their confirms are in.
    async with _connecting("broker-connect", publisher.connect(), publisher.close):
        yield


@asynccontextmanager
async def _connecting(
    name: str, connect: Coroutine[Any, Any, None], close: Callable[[], Awaitable[None]]
) -> AsyncIterator[None]:
    """``connect`` as a task of its own while the app runs (a failure logged); then ``close``."""
    connecting = asyncio.create_task(connect, name=name)
    connecting.add_done_callback(_log_failure)
    try:
        yield
    finally:
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        # A topology conflict, say: the ingress stays up, unready, answering 503.
        log.error("background task failed", extra={"task": task.get_name(), "error": repr(error)})


def run(settings: Settings) -> None:
    app = create_app(settings)
    settle_garbage_collector()
    log.info(
        "ingress starting", extra={"host": settings.ingress_host, "port": settings.ingress_port}
    )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(app, settings))


async def serve(app: web.Application, settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, on a port another ingress may share (ingress/handover.py),
    listening once the broker is connected (or BROKER_FIRST_S passed). Then: new connections to
    the other, stop listening, answer every request already read (each bounded by the confirm
    deadline), close."""
    sock = handover.listening_socket(settings.ingress_host, settings.ingress_port)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,  # one line per webhook at thousands a second; metrics count them
        shutdown_timeout=SHUTDOWN_GRACE_S,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()
        await _broker_first(app[PUBLISHER], stop)
        if stop.is_set():
            return  # stopped before it listened: nothing to hand over
        await web.SockSite(runner, sock).start()
        # What a roll waits for before it stops the old ingress (deploy/scripts/roll.sh).
        log.info("ingress listening", extra={"port": settings.ingress_port})
        await stop.wait()
        log.info("ingress stopping: handing new connections over, ending those in flight")
        await handover.hand_over(sock, app[handover.DRAIN])
    finally:
        await runner.cleanup()  # stops listening, lets handlers finish, then the broker closes
        sock.close()


async def _broker_first(publisher: Publisher, stop: asyncio.Event) -> None:
    """Until the broker is connected, a stop comes, or BROKER_FIRST_S pass."""
    waits = [asyncio.ensure_future(publisher.connected.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=BROKER_FIRST_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if not (publisher.connected.is_set() or stop.is_set()):
        log.warning(
            "broker not connected yet: listening anyway, answering 503 until it is",
            extra={"waited_s": BROKER_FIRST_S},
        )


def settle_garbage_collector() -> None:
    """Keep the collector off the hot path: each webhook allocates a few hundred short-lived
    objects, so the default threshold (700) collected every few requests, walking the modules and
    the app each time a collection reached the older generations. Freezing what start-up made and
    collecting the young generation less often saves about 5 µs a webhook
    (tests/bench/results/publish_cost.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
