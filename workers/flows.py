"""The flows worker: ``wa.flows.requests`` -> the flow handlers -> a reply to the endpoint.

``wapipe worker flows`` answers the Flows endpoint's requests (ingress/flows.py) with the async
functions named in ``WAPIPE_FLOW_HANDLERS`` ("module:function", comma-separated). Each is given
a ``FlowRequest`` and returns the next screen (``NextScreen``), the end (``CloseFlow``), or
None when the request is not its flow's: the next handler is asked then. A handler raises
``FlowTokenInvalid`` for a token it does not know or no longer honours (answered 427). An error
notification nobody answers is acknowledged; any other request nobody answers is an unknown
flow token (427).

Request/reply, not a stored event: a request is acked once its reply is published (or its
deadline has passed); nothing is retried or dead-lettered, since Meta's client waits for
the answer and gives up soon after. Replicas share the queue; each runs up to
``WAPIPE_FLOWS_CONCURRENCY`` requests at once, so the worker scales on the queue's depth like
the others. Log lines name the handler and the outcome, never the request's content.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import aio_pika
import msgspec
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from wapipe.shared import topology
from wapipe.shared.flows.protocol import (
    DEADLINE_HEADER,
    Acknowledge,
    FlowAnswer,
    FlowReply,
    FlowRequest,
    FlowTokenInvalid,
    encoder,
    request_decoder,
    response_body,
    token_invalid_body,
)
from wapipe.shared.settings import Settings
from wapipe.workers.handlers import load_async_functions
from wapipe.workers.main import WorkerKind, worker_process
from wapipe.workers.metrics import WorkerMetrics

log = logging.getLogger(__name__)


FlowHandler = Callable[[FlowRequest], Awaitable[FlowAnswer | None]]


def load_flow_handlers(names: Sequence[str]) -> list[FlowHandler]:
    """The functions named "module:function" (workers/handlers.py)."""
    handlers: list[FlowHandler] = load_async_functions(names, "WAPIPE_FLOW_HANDLERS")
    return handlers


async def answer(handlers: Sequence[FlowHandler], request: FlowRequest) -> FlowReply:
    """Ask each handler in turn; the first answer wins. Raises what a handler raised, except
    ``FlowTokenInvalid``, which is a reply."""
    try:
        for handler in handlers:
            found = await handler(request)
            if found is not None:
                return FlowReply(outcome="answered", body=response_body(request, found))
    except FlowTokenInvalid as refused:
        return FlowReply(
            outcome="token_invalid", status=427, body=token_invalid_body(refused.message)
        )
    if request.is_error_notification:
        return FlowReply(outcome="answered", body=response_body(request, Acknowledge()))
    return FlowReply(outcome="unclaimed")


def where(exc: BaseException) -> str:
    """Where ``exc`` was raised ("module.py:42"): logged instead of its message, which may
    quote the customer's answers."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class Answerer:
    """Takes each request as a task of its own (the prefetch bounds how many), replies, acks."""

    def __init__(
        self, handlers: Sequence[FlowHandler], replies: AbstractExchange, metrics: WorkerMetrics
    ) -> None:
        self._handlers = handlers
        self._replies = replies
        self._metrics = metrics
        self._running: set[asyncio.Task[None]] = set()

    async def on_request(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._answer(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        """Let the requests in hand finish (each is bounded by its deadline)."""
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _answer(self, message: AbstractIncomingMessage) -> None:
        self._metrics.consumed.inc()
        started = time.perf_counter()
        reply = await self._reply_to(message)
        if reply is not None and message.reply_to:
            await self._replies.publish(
                aio_pika.Message(
                    encoder.encode(reply),
                    content_type="application/json",
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to,
            )
        await message.ack()
        self._metrics.processing.observe(time.perf_counter() - started)

    async def _reply_to(self, message: AbstractIncomingMessage) -> FlowReply | None:
        headers = message.headers or {}
        deadline_ms = headers.get(DEADLINE_HEADER)
        left_s = deadline_ms / 1000 - time.time() if isinstance(deadline_ms, int) else 10.0
        if left_s <= 0:
            log.warning("flows request past its deadline, dropped")
            return None
        try:
            request = request_decoder.decode(message.body)
            async with asyncio.timeout(left_s):
                reply = await answer(self._handlers, request)
        except msgspec.DecodeError:
            log.error("flows request unreadable")
            return FlowReply(outcome="failed")
        except TimeoutError:
            self._metrics.failures.inc()
            log.warning("flow handler too slow, the endpoint has answered without it")
            return None
        except Exception as exc:
            self._metrics.failures.inc()
            log.error("flow handler failed", extra={"error": type(exc).__name__, "at": where(exc)})
            return FlowReply(outcome="failed")
        log.info(
            "flows request answered", extra={"action": request.action, "outcome": reply.outcome}
        )
        return reply


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    handlers = load_flow_handlers(settings.flow_handlers)  # a bad name fails before any connect
    if not handlers:
        log.warning("no WAPIPE_FLOW_HANDLERS: every flow request will be answered 427")
    async with worker_process(kind, settings, stop, WorkerMetrics(kind.name)) as resources:
        if resources is None:
            return
        channel = await resources.connection.channel()
        await channel.set_qos(prefetch_count=settings.flows_concurrency)
        answerer = Answerer(handlers, channel.default_exchange, resources.metrics)
        queue = await channel.get_queue(kind.queue, ensure=False)
        tag = await queue.consume(answerer.on_request)
        log.info("worker started", extra={"queue": kind.queue, "metrics_port": resources.port})
        await stop.wait()
        await queue.cancel(tag)
        await answerer.drain()
    log.info("worker stopped", extra={"queue": kind.queue})


KIND: Final = WorkerKind("flows", topology.FLOWS_QUEUE, metrics_port=9106, serve=serve)
