"""The one consume loop every worker runs: batch, handle, ack after commit, retry, dead-letter.

    broker --(prefetch)--> inbox --(up to batch_size, or batch_wait_s after the first)--> handler
                                                                                           |
        ack (one multiple-ack for the batch) <-- returned: its effects are committed <-----'
        raised: the batch again, message by message; a message that keeps failing is retried
        after a back-off (workers/retry.py) and at last published to its dead-letter queue with
        the error in headers, then acked

Handlers never ack. A handler gets a batch and commits its effects in one transaction, or raises.
Every effect is keyed by the event's stable key, so a batch redelivered after a crash (committed,
not yet acked) changes nothing.

Delivery tags are per channel, and a robust connection opens new channels after a reconnect:
each delivery keeps the channel it came on. One from a channel since closed is dropped unhandled
(the broker delivers it again on the new one); retry bookkeeping is per (channel, tag); and a
multiple-ack is sent only when nothing older on the same channel is still held for a retry.

A worker that holds deliveries past one call (the sender: a job waits for its turn) settles them
with ``ack``, ``give_back`` and ``reject`` below, never on the delivery itself.

On SIGTERM the worker stops taking messages, finishes the batch in hand, acks it and closes; what
it had prefetched but not started goes back to the queue when the channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from wapipe.shared import topology
from wapipe.workers.metrics import WorkerMetrics
from wapipe.workers.retry import DeadLetter, RetryPolicy, Unavailable, after_failure

log = logging.getLogger(__name__)

SHUTDOWN_STEP_S: Final = 5.0


async def ack(deliveries: Sequence[AbstractIncomingMessage]) -> None:
    """Done: its effects are committed."""
    for delivery in deliveries:
        # A delivery from before a reconnect cannot be settled; its redelivery is ours too.
        with contextlib.suppress(Exception):
            await delivery.ack()


async def give_back(deliveries: Sequence[AbstractIncomingMessage]) -> None:
    """Not done, through no fault of its own: back to its queue, to whichever consumer."""
    for delivery in deliveries:
        with contextlib.suppress(Exception):
            await delivery.nack(requeue=True)


async def reject(delivery: AbstractIncomingMessage) -> None:
    """Never to be done: to its queue's dead-letter queue, through the broker (the queue's
    ``x-dead-letter-exchange``, shared/topology.py)."""
    with contextlib.suppress(Exception):
        await delivery.reject(requeue=False)


class DeadLetterHeader:
    """Headers the runtime sets on a message it dead-letters."""

    ERROR: Final = "x-wapipe-error"  # the last error, one line
    ATTEMPTS: Final = "x-wapipe-attempts"
    FAILED_AT: Final = "x-wapipe-failed-at"  # unix seconds
    QUEUE: Final = "x-wapipe-queue"  # where it came from
    ROUTING_KEY: Final = "x-wapipe-routing-key"  # the routing key it was published with


@dataclass(frozen=True)
class Outcome:
    """What a handler reports about a committed batch, for the metrics."""

    stored: int = 0  # events stored for the first time
    duplicates: int = 0  # events that were stored already


class Handler(Protocol):
    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome: ...


@dataclass(frozen=True)
class Batching:
    size: int = 500
    wait_s: float = 0.02  # how long a partial batch waits for more after its first message
    prefetch: int = 1000


class Delivery(NamedTuple):
    message: AbstractIncomingMessage
    channel: aiormq.abc.AbstractChannel  # the one it came on: its tag means nothing elsewhere

    @property
    def key(self) -> tuple[aiormq.abc.AbstractChannel, int]:
        return self.channel, self.message.delivery_tag or 0


@dataclass
class Consumer:
    """Consumes one queue with one handler until ``stop`` is set."""

    queue_name: str
    handler: Handler
    metrics: WorkerMetrics
    batching: Batching = field(default_factory=Batching)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    _attempts: dict[tuple[object, int], int] = field(default_factory=dict)  # tries so far
    _held: set[tuple[object, int]] = field(default_factory=set)  # waiting for a retry
    _retries: set[asyncio.Task[None]] = field(default_factory=set)
    _dead_letters: AbstractChannel | None = None
    _stopping: asyncio.Future[Any] | None = None

    async def run(self, connection: aio_pika.abc.AbstractConnection, stop: asyncio.Event) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.batching.prefetch)
        self._dead_letters = await connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        # Declared (passively), not merely looked up: a robust channel restores the consumers
        # only of queues it declared, after a reconnect.
        queue = await channel.declare_queue(self.queue_name, passive=True)
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()

        async def receive(message: AbstractIncomingMessage) -> None:
            inbox.put_nowait(Delivery(message, message.channel))

        consumer_tag = await queue.consume(receive)
        stopping = self._stopping = asyncio.ensure_future(stop.wait())
        try:
            while batch := await self._collect(inbox, stopping):
                await self._process(batch)
        finally:
            stopping.cancel()
            await self._shut(queue, consumer_tag, channel)

    async def _shut(
        self, queue: AbstractQueue, consumer_tag: str, channel: AbstractChannel
    ) -> None:
        for task in self._retries:
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
        # With the broker away, a robust channel would wait for it to come back: bound each step.
        # The connection may be gone already; what is unacked goes back to the queue anyway.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SHUTDOWN_STEP_S):
                await queue.cancel(consumer_tag)
        for each in (channel, self._dead_letters):
            if each is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(SHUTDOWN_STEP_S):
                        await each.close()

    async def _collect(
        self, inbox: asyncio.Queue[Delivery], stopping: asyncio.Future[Any]
    ) -> list[Delivery]:
        """The next batch; empty once ``stopping`` is done. Stopping, it takes nothing more:
        what is prefetched goes back to the queue when the channel closes."""
        batch: list[Delivery] = []
        deadline: float | None = None
        while len(batch) < self.batching.size and not stopping.done():
            delivery = await self._next(inbox, stopping, deadline)
            if delivery is None:
                break
            if delivery.channel.is_closed:
                continue  # its channel is gone: the broker delivers it again on the new one
            batch.append(delivery)
            if deadline is None:
                deadline = time.monotonic() + self.batching.wait_s
        return batch

    async def _next(
        self,
        inbox: asyncio.Queue[Delivery],
        stopping: asyncio.Future[Any],
        deadline: float | None,
    ) -> Delivery | None:
        """One delivery: at once if one waits; else, for a batch's first, as long as it takes
        (or until stopping); for the others, until ``deadline``."""
        if not inbox.empty():
            return inbox.get_nowait()
        if deadline is None:
            waiting = asyncio.ensure_future(inbox.get())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                return waiting.result()
            waiting.cancel()
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(inbox.get(), remaining)
        except TimeoutError:
            return None

    async def _process(self, batch: list[Delivery], *, again: bool = False) -> None:
        """Handle and ack ``batch``; on failure, each message on its own (``again``: a retry)."""
        started = time.monotonic()
        if not again:
            self.metrics.consumed.inc(len(batch))
        messages = [delivery.message for delivery in batch]
        try:
            outcome = await self._call(messages)
        except Unavailable:
            # Stopping during an outage: left unacked, back to the queue at close; held, so
            # that no multiple-ack may take it meanwhile.
            self._held.update(delivery.key for delivery in batch)
            return
        except Exception as exc:
            if len(batch) == 1:
                await self._failed(batch[0], exc)
                return
            log.warning(
                "batch failed, handling its messages one by one",
                extra={"size": len(batch), "error": str(exc)},
            )
            for delivery in batch:
                await self._process([delivery], again=True)
            return
        await self._ack(batch, multiple=not again)
        self.metrics.observe(messages, outcome, time.monotonic() - started)

    async def _call(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        """The handler's outcome; while it reports a dependency down, wait and call again."""
        outage = 0
        while True:
            try:
                return await self.handler(batch)
            except Unavailable as exc:
                outage += 1
                self.metrics.unavailable.inc()
                delay_s = self.policy.backoff_s(outage)
                if outage == 1 or outage % 10 == 0:
                    log.warning(
                        "storage unavailable, waiting",
                        extra={"error": str(exc), "tries": outage, "delay_s": round(delay_s, 2)},
                    )
                assert self._stopping is not None
                await asyncio.wait({self._stopping}, timeout=delay_s)
                if self._stopping.done():
                    raise

    async def _ack(self, batch: Sequence[Delivery], *, multiple: bool = False) -> None:
        """Ack ``batch``; ``multiple`` only from the main loop, whose batches come in tag order
        (a retry's lone message may be older than what the main loop is handling now)."""
        channel = batch[-1].channel
        mine = {delivery.key for delivery in batch}
        held_here = any(key[0] is channel for key in self._held - mine)
        try:
            if multiple and not held_here and all(d.channel is channel for d in batch):
                # Every earlier delivery on this channel is settled: one frame acks them all.
                await batch[-1].message.ack(multiple=True)
            else:  # an older one is held: a multiple-ack would take it too
                for delivery in batch:
                    await delivery.message.ack()
        except (aiormq.exceptions.AMQPError, RuntimeError) as exc:  # the channel is gone
            # Committed but not acked: the broker redelivers, and keyed writes make that a no-op.
            log.warning("ack lost with the connection", extra={"error": str(exc)})
        # Only now: until its own ack is out, a held message must keep multiple-acks away.
        for delivery in batch:
            self._forget(delivery)

    def _forget(self, delivery: Delivery) -> None:
        self._attempts.pop(delivery.key, None)
        self._held.discard(delivery.key)

    async def _failed(self, delivery: Delivery, error: Exception) -> None:
        attempt = self._attempts.get(delivery.key, 0) + 1
        self._attempts[delivery.key] = attempt
        self.metrics.failures.inc()
        step = after_failure(error, attempt, self.policy)
        if isinstance(step, DeadLetter):
            await self._dead_letter(delivery, step.reason, attempt)
            return
        log.warning(
            "message failed, retrying",
            extra={
                "message_id": delivery.message.message_id,
                "attempt": attempt,
                "delay_s": round(step.delay_s, 3),
                "error": str(error),
            },
        )
        self._held.add(delivery.key)
        task = asyncio.create_task(self._retry_later(delivery, step.delay_s))
        self._retries.add(task)
        task.add_done_callback(self._retry_done)

    def _retry_done(self, task: asyncio.Task[None]) -> None:
        self._retries.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a retry failed unexpectedly", exc_info=error)

    async def _retry_later(self, delivery: Delivery, delay_s: float) -> None:
        await asyncio.sleep(delay_s)  # a back-off: the time passing is the point
        if delivery.channel.is_closed:
            self._forget(delivery)  # redelivered on the new channel, counted afresh
            return
        await self._process([delivery], again=True)

    async def _dead_letter(self, delivery: Delivery, reason: str, attempts: int) -> None:
        if delivery.channel.is_closed:  # the broker delivers it again: its fate is decided then
            self._forget(delivery)
            return
        try:
            await self._publish_dead_letter(delivery, reason, attempts)
        except (aiormq.exceptions.AMQPError, RuntimeError, ConnectionError, TimeoutError) as exc:
            # Not in the dead-letter queue: back to its own queue rather than stuck unacked
            # (the broker's delivery limit is the net under a dlq that keeps refusing).
            log.error(
                "dead-lettering failed, returning the message to its queue",
                extra={"message_id": delivery.message.message_id, "error": str(exc)},
            )
            with contextlib.suppress(aiormq.exceptions.AMQPError, RuntimeError):
                await delivery.message.nack(requeue=True)
            self._forget(delivery)
            return
        await self._ack([delivery])  # confirmed in the dead-letter queue: settle the original
        self.metrics.dead_lettered.inc()
        log.error(
            "message dead-lettered",
            extra={
                "message_id": delivery.message.message_id,
                "attempts": attempts,
                "error": reason,
            },
        )

    async def _publish_dead_letter(self, delivery: Delivery, reason: str, attempts: int) -> None:
        assert self._dead_letters is not None
        message = delivery.message
        headers = dict(message.headers or {})
        headers.update(
            {
                DeadLetterHeader.ERROR: reason[:1000],
                DeadLetterHeader.ATTEMPTS: attempts,
                DeadLetterHeader.FAILED_AT: f"{time.time():.6f}",
                DeadLetterHeader.QUEUE: self.queue_name,
                DeadLetterHeader.ROUTING_KEY: message.routing_key or "",
            }
        )
        exchange = await self._dead_letters.get_exchange(
            topology.DEAD_LETTER_EXCHANGE, ensure=False
        )
        await exchange.publish(
            aio_pika.Message(
                message.body,
                headers=headers,
                content_type=message.content_type,
                message_id=message.message_id,
                timestamp=message.timestamp,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=self.queue_name,
        )
