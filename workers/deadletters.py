"""Dead letters: list, peek at, replay and purge what each queue's ``<queue>.dlq`` holds.

A message lands in ``<queue>.dlq`` (through ``wa.dlx``, keyed by the queue's name) when

- a worker gives up on it (workers/runtime.py): it carries the ``x-wapipe-*`` headers of
  ``DeadLetterHeader`` (the error, attempts, when, the queue, the original routing key);
- the broker does (redelivered ``topology.DELIVERY_LIMIT`` times, or rejected without requeue):
  it carries the broker's ``x-death`` header instead.

Nothing here loses a message. A peek hands back what it read with ``basic.nack``; a replay acks a
dead letter only once its copy in the live queue is confirmed, and whatever is unsettled when the
connection goes goes back to the dlq. The price is "at least once": an ack lost after its confirm
leaves the message in both queues, and consumers drop the repeat by its key (``message_id``).

    DeadLetterError
    ├── UnknownQueue   a name that is neither a queue of the topology nor its dlq
    ├── QueueMissing   the broker has no such queue in this vhost (`wapipe topology` not run)
    └── ReplayStopped  the broker refused a replayed message (a full live queue, say)
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final

import aio_pika
import aiormq
import msgspec
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, HeadersType

from wapipe.shared import amqp, topology
from wapipe.workers.runtime import DeadLetterHeader

REPLAYS_HEADER: Final = "x-wapipe-replays"  # how many times this message was replayed
BODY_PREVIEW_CHARS: Final = 2000
REPLAY_BATCH: Final = 100  # dead letters in flight at once during a replay

# What a replay strips: the last failure (it is history once the message is retried) and what the
# broker added when it dead-lettered or redelivered the message, which would mislead the consumer.
_DROPPED_HEADERS: Final = frozenset(
    {
        DeadLetterHeader.ERROR,
        DeadLetterHeader.FAILED_AT,
        "x-death",
        "x-delivery-count",
        "x-acquired-count",
    }
)
_DROPPED_PREFIXES: Final = ("x-first-death-", "x-last-death-")


class DeadLetterError(Exception):
    """Something about dead letters that the operator has to act on."""


class UnknownQueue(DeadLetterError):
    def __init__(self, name: str) -> None:
        known = ", ".join(f"{q.name} ({q.dead_letter_queue})" for q in topology.QUEUES)
        super().__init__(f"unknown queue {name!r}; the known ones are: {known}")
        self.name = name


class QueueMissing(DeadLetterError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the broker has no queue {name!r} in this vhost (run `wapipe topology`)")
        self.name = name


class ReplayStopped(DeadLetterError):
    def __init__(self, queue: str, replayed: int, reason: str) -> None:
        super().__init__(
            f"replayed {replayed}, then the broker refused one into {queue} ({reason}); "
            "the rest are still in the dead-letter queue"
        )
        self.replayed = replayed


class DeadLetterQueue(msgspec.Struct, frozen=True):
    name: str  # the dlq, e.g. wa.status.dlq
    queue: str  # the live queue it belongs to
    messages: int  # ready to read: what a peek or a replay in progress holds is not counted


class DeadLetter(msgspec.Struct, frozen=True):
    message_id: str | None
    routing_key: str | None  # the key it was first published with, e.g. status.sent
    error: str | None  # the worker's last error, or the broker's reason (delivery_limit, ...)
    attempts: int | None  # the worker's tries; None when the broker dead-lettered it
    failed_at: float | None  # unix seconds
    queue: str | None  # where it failed
    replays: int
    body_size: int  # bytes
    body: str  # as text, cut at BODY_PREVIEW_CHARS


# --- Pure: names, headers, rendering -----------------------------------------------------------


def resolve(name: str) -> topology.Queue:
    """The topology's queue named ``name``, or whose dlq is; else ``UnknownQueue``."""
    for queue in topology.QUEUES:
        if name in (queue.name, queue.dead_letter_queue):
            return queue
    raise UnknownQueue(name)


def _text(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return None if value is None else str(value)


def _integer(value: object) -> int | None:
    text = _text(value)
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _seconds(value: object) -> float | None:
    if isinstance(value, datetime.datetime):  # the broker's x-death time is an AMQP timestamp
        return value.timestamp()
    text = _text(value)
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _last_death(headers: HeadersType) -> Mapping[str, object]:
    """The broker's latest x-death entry (it puts the latest first); empty if it has none."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def _death_routing_key(death: Mapping[str, object]) -> str | None:
    keys = death.get("routing-keys")
    if isinstance(keys, list | tuple) and keys:
        return ",".join(str(_text(key)) for key in keys)
    return None


def _preview(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= BODY_PREVIEW_CHARS else text[:BODY_PREVIEW_CHARS] + "…"


def describe(message_id: str | None, headers: HeadersType, body: bytes) -> DeadLetter:
    """What a dead letter says about itself: the worker's headers first, else the broker's."""
    death = _last_death(headers)

    def either(header: str, death_field: str) -> object:
        value = headers.get(header)
        return death.get(death_field) if value is None else value

    return DeadLetter(
        message_id=message_id,
        routing_key=_text(headers.get(DeadLetterHeader.ROUTING_KEY)) or _death_routing_key(death),
        error=_text(either(DeadLetterHeader.ERROR, "reason")),
        attempts=_integer(headers.get(DeadLetterHeader.ATTEMPTS)),
        failed_at=_seconds(either(DeadLetterHeader.FAILED_AT, "time")),
        queue=_text(either(DeadLetterHeader.QUEUE, "queue")),
        replays=_integer(headers.get(REPLAYS_HEADER)) or 0,
        body_size=len(body),
        body=_preview(body),
    )


def replay_headers(headers: HeadersType) -> HeadersType:
    """The headers a replayed message goes back with: its own, minus the failure, counted."""
    kept: HeadersType = {
        name: value
        for name, value in headers.items()
        if name not in _DROPPED_HEADERS and not name.startswith(_DROPPED_PREFIXES)
    }
    kept[REPLAYS_HEADER] = (_integer(headers.get(REPLAYS_HEADER)) or 0) + 1
    return kept


def render_queues(queues: Sequence[DeadLetterQueue]) -> str:
    width = max([len("queue"), *(len(queue.queue) for queue in queues)])
    lines = [f"{'queue':<{width}}  dead letters"]
    lines += [f"{queue.queue:<{width}}  {queue.messages:>12}" for queue in queues]
    return "\n".join(lines)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def render_dead_letters(dead_letter_queue: str, dead_letters: Sequence[DeadLetter]) -> str:
    blocks = [f"{dead_letter_queue}: {len(dead_letters)} shown"]
    for each in dead_letters:
        fields = {
            "message id": each.message_id,
            "routing key": each.routing_key,
            "error": each.error,
            "attempts": each.attempts,
            "failed at": _when(each.failed_at),
            "queue": each.queue,
            "replays": each.replays,
            "body": f"{each.body_size} bytes: {each.body}",
        }
        blocks.append(
            "\n".join(
                f"{name:<12} {'-' if value is None else value}" for name, value in fields.items()
            )
        )
    return "\n\n".join(blocks)


# --- I/O over aio-pika ---------------------------------------------------------------------------


@asynccontextmanager
async def _channel(amqp_url: str, *, confirms: bool = False) -> AsyncIterator[AbstractChannel]:
    # Not robust on purpose: a tool run by hand should fail loudly, not reconnect in silence.
    connection = await amqp.connect_once(amqp_url, amqp.connection_name("dlq"))
    async with connection:
        # Returns raised: a replayed message that reaches no queue is a failure, not a success.
        yield await connection.channel(publisher_confirms=confirms, on_return_raises=confirms)


async def _declared(channel: AbstractChannel, name: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise QueueMissing(name) from None


def _depth(queue: AbstractQueue) -> int:
    return queue.declaration_result.message_count or 0


async def _take(source: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    """Up to ``count`` messages, unacked: they are ours until acked or handed back."""
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < count and (message := await source.get(no_ack=False, fail=False)):
        taken.append(message)
    return taken


async def list_queues(amqp_url: str) -> list[DeadLetterQueue]:
    """Every queue's dlq and how many dead letters it holds."""
    async with _channel(amqp_url) as channel:
        return [
            DeadLetterQueue(
                queue.dead_letter_queue,
                queue.name,
                _depth(await _declared(channel, queue.dead_letter_queue)),
            )
            for queue in topology.QUEUES
        ]


async def show(amqp_url: str, queue: str, limit: int = 10) -> list[DeadLetter]:
    """The first ``limit`` dead letters of ``queue``, left in its dlq.

    Left in the dlq, though not always in place: a quorum queue with no delivery limit (as the
    dlqs are on RabbitMQ 3.x) puts what is handed back at its tail, so a peek at the first few
    of many moves them last, and the next peek shows the ones after.
    """
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, not {limit}")
    dead_letter_queue = resolve(queue).dead_letter_queue
    async with _channel(amqp_url) as channel:
        taken = await _take(await _declared(channel, dead_letter_queue), limit)
        # All read before any goes back: a requeued message returns to the head of the queue and
        # would be read again. nack, not reject: from RabbitMQ 4.3 a reject counts as a failed
        # delivery, and a quorum queue drops a message past its delivery limit.
        if taken:
            await taken[-1].nack(multiple=True, requeue=True)
    return [describe(m.message_id, m.headers, m.body) for m in taken]


def _replayed(message: AbstractIncomingMessage) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers=replay_headers(message.headers),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=message.expiration,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        user_id=message.user_id,
        app_id=message.app_id,
    )


async def _move(
    channel: AbstractChannel, queue: str, batch: Sequence[AbstractIncomingMessage], before: int
) -> int:
    """Publish ``batch`` to ``queue``; ack each dead letter whose copy is confirmed."""
    results = await asyncio.gather(
        *(
            channel.default_exchange.publish(_replayed(m), routing_key=queue, mandatory=True)
            for m in batch
        ),
        return_exceptions=True,
    )
    moved = 0
    refused: aiormq.exceptions.DeliveryError | None = None
    for message, result in zip(batch, results, strict=True):
        if isinstance(result, aiormq.exceptions.DeliveryError):  # nacked or returned
            refused = refused or result
        elif isinstance(result, BaseException):  # the connection went: unacked ones stay put
            raise result
        else:
            await message.ack()
            moved += 1
    if refused is not None:
        raise ReplayStopped(queue, before + moved, type(refused).__name__)
    return moved


async def replay(amqp_url: str, queue: str, limit: int | None = None) -> int:
    """Move up to ``limit`` dead letters (default all) back to their live queue; how many moved.

    At most what the dlq held at the start: were a consumer to fail them again at once,
    replaying until the dlq is empty would never end.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")
    spec = resolve(queue)
    async with _channel(amqp_url, confirms=True) as channel:
        source = await _declared(channel, spec.dead_letter_queue)
        await _declared(channel, spec.name)  # else every publish would come back unroutable
        budget = _depth(source) if limit is None else min(limit, _depth(source))
        replayed = 0
        while replayed < budget:
            batch = await _take(source, min(REPLAY_BATCH, budget - replayed))
            if not batch:
                break
            replayed += await _move(channel, spec.name, batch, replayed)
    return replayed


async def purge(amqp_url: str, queue: str) -> int:
    """Delete every dead letter of ``queue`` for good; how many there were."""
    dead_letter_queue = resolve(queue).dead_letter_queue
    async with _channel(amqp_url) as channel:
        purged = await (await _declared(channel, dead_letter_queue)).purge()
    return purged.message_count or 0
