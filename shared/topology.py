"""The broker topology: every exchange, queue, binding and argument, as data, in one place.

    wa.events (topic, alternate exchange wa.unroutable)
      status.#                                -> wa.status
      message.#                               -> wa.message
      message.{image,audio,video,document,sticker} -> wa.media
      account.#                               -> wa.account
      quarantine.#                            -> wa.quarantine
      handled.#, media.#, outbound.#,
      template.#, phone_number.#              -> wa.sink (exchange)
    wa.unroutable (fanout)                    -> wa.unroutable   (what no binding matched)
    wa.sink (fanout, nothing bound)           drops what reaches it
    wa.outbound (topic)                       send jobs, routing key send.<phone_number_id>
      send.#                                  -> wa.send.shards (exchange)
    wa.send.shards (x-consistent-hash: by routing key, so one number always lands in one shard)
      weight 1 each                           -> wa.send.0 ... wa.send.7   (single active consumer)
    wa.events status.failed                   -> wa.send.status (the sender links refusals to jobs)
    wa.send.wait.{10,60,300,900} (fanout)     -> the queue of that name, whose messages expire
                                                 after so many seconds back into wa.outbound
    wa.dlx (direct)                           -> <queue>.dlq, one per queue, keyed by queue name
    wa.flows (direct)
      request                                 -> wa.flows.requests  (Flows endpoint requests,
                                                 answered by direct reply-to; no dead letters)

wapipe's own outputs (``handled.*``, ``template.*``, ``phone_number.*``, ``media.*``,
``outbound.*``) are for whoever binds a queue to them; bound to ``wa.sink`` as well, they are
dropped when nobody does, instead of filling ``wa.unroutable``, which stays an alarm for input
nothing took.

The send shards are how several sender replicas pace each number together (workers/sender/):
the hash sends every job of a number to the same shard, and a shard delivers to one consumer at
a time (``x-single-active-consumer``), so each number has one owner that paces it exactly; when
the owner dies, RabbitMQ hands the shard, unacked jobs included, to a standby replica. The
exchange is RabbitMQ's ``rabbitmq_consistent_hash_exchange`` plugin (shipped with it, to be
enabled). Changing ``SEND_SHARDS`` moves numbers between shards: drain the sender first.

The wait queues are delays: the sender parks there the jobs that must wait long (a recipient
backing off, or many jobs for one recipient), so that they do not hold a shard's prefetch. No
one consumes them; a job expires after the queue's seconds and is dead-lettered, under its own
routing key, into ``wa.outbound`` and so to its shard again.

Every other queue is a durable quorum queue that dead-letters to its own ``<queue>.dlq`` at least
once (which RabbitMQ allows only with ``x-overflow: reject-publish``: a full queue refuses
publishes, so the ingress answers 503 and Meta retries, rather than dropping the oldest message).

The Flows requests are request/reply (ingress/flows.py, workers/flows.py): each carries its
deadline as its expiration, and one that expires unread is dropped, not dead-lettered: the
endpoint has already answered Meta, so nobody could use it.

``declare()`` is idempotent: RabbitMQ accepts a re-declaration with identical arguments, so every
process may declare at start-up, concurrently. Changing an argument of an existing queue is
refused by the broker (PRECONDITION_FAILED); that needs a migration, not a redeploy.
"""

from __future__ import annotations

from typing import Any, Final

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractConnection, ExchangeType

from wapipe.shared import amqp

EVENTS_EXCHANGE: Final = "wa.events"
UNROUTABLE_EXCHANGE: Final = "wa.unroutable"
SINK_EXCHANGE: Final = "wa.sink"
OUTBOUND_EXCHANGE: Final = "wa.outbound"
SEND_SHARDS_EXCHANGE: Final = "wa.send.shards"
SEND_SHARDS: Final = 8
SEND_STATUS_QUEUE: Final = "wa.send.status"
# The queues the workers consume (each with its dead-letter queue, ``<name>.dlq``).
STATUS_QUEUE: Final = "wa.status"
MESSAGE_QUEUE: Final = "wa.message"
MEDIA_QUEUE: Final = "wa.media"
ACCOUNT_QUEUE: Final = "wa.account"
QUARANTINE_QUEUE: Final = "wa.quarantine"
UNROUTABLE_QUEUE: Final = "wa.unroutable"
OUTPUT_KEYS: Final = ("handled.#", "media.#", "outbound.#", "template.#", "phone_number.#")
DEAD_LETTER_EXCHANGE: Final = "wa.dlx"
QUARANTINE_ROUTING_KEY: Final = "quarantine.body"
FLOWS_EXCHANGE: Final = "wa.flows"
FLOWS_QUEUE: Final = "wa.flows.requests"
FLOWS_ROUTING_KEY: Final = "request"

MEDIA_TYPES: Final = ("image", "audio", "video", "document", "sticker")

# A safety net under the workers' own bounded retries: a message redelivered this many times
# (say, because it crashes every consumer) is dead-lettered instead of looping forever.
DELIVERY_LIMIT: Final = 20


class Exchange(msgspec.Struct, frozen=True):
    name: str
    type: ExchangeType
    arguments: dict[str, Any] = {}


class WaitQueue(msgspec.Struct, frozen=True):
    """A delay of ``seconds``: what its exchange (fanout, of the same name) takes comes back to
    ``wa.outbound`` then, under the routing key it was published with."""

    seconds: int

    @property
    def name(self) -> str:
        return f"wa.send.wait.{self.seconds}"


SEND_WAITS_S: Final = (10, 60, 300, 900)  # 900: a recipient held after 131064 waits 15 minutes
WAIT_QUEUES: Final = tuple(WaitQueue(seconds) for seconds in SEND_WAITS_S)


class Queue(msgspec.Struct, frozen=True):
    name: str
    exchange: str
    binding_keys: tuple[str, ...]
    single_active: bool = False  # one consumer at a time, the others standing by

    @property
    def dead_letter_queue(self) -> str:
        return self.name + ".dlq"


def send_shard(shard: int) -> Queue:
    # The binding key of a consistent-hash exchange is the queue's weight in the hash ring.
    return Queue(f"wa.send.{shard}", SEND_SHARDS_EXCHANGE, ("1",), single_active=True)


EXCHANGES: Final = (
    Exchange(EVENTS_EXCHANGE, ExchangeType.TOPIC, {"alternate-exchange": UNROUTABLE_EXCHANGE}),
    Exchange(UNROUTABLE_EXCHANGE, ExchangeType.FANOUT),
    Exchange(SINK_EXCHANGE, ExchangeType.FANOUT),
    Exchange(OUTBOUND_EXCHANGE, ExchangeType.TOPIC),
    Exchange(SEND_SHARDS_EXCHANGE, ExchangeType.X_CONSISTENT_HASH),
    Exchange(DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT),
    Exchange(FLOWS_EXCHANGE, ExchangeType.DIRECT),
    *(Exchange(wait.name, ExchangeType.FANOUT) for wait in WAIT_QUEUES),
)

QUEUES: Final = (
    Queue(STATUS_QUEUE, EVENTS_EXCHANGE, ("status.#",)),
    Queue(MESSAGE_QUEUE, EVENTS_EXCHANGE, ("message.#",)),
    Queue(MEDIA_QUEUE, EVENTS_EXCHANGE, tuple(f"message.{kind}" for kind in MEDIA_TYPES)),
    Queue(ACCOUNT_QUEUE, EVENTS_EXCHANGE, ("account.#",)),
    Queue(QUARANTINE_QUEUE, EVENTS_EXCHANGE, ("quarantine.#",)),
    Queue(UNROUTABLE_QUEUE, UNROUTABLE_EXCHANGE, ("",)),
    *(send_shard(shard) for shard in range(SEND_SHARDS)),
    Queue(SEND_STATUS_QUEUE, EVENTS_EXCHANGE, ("status.failed",)),
)
# The sender's shard queues, in shard order.
SHARD_QUEUES: Final = tuple(
    queue.name for queue in QUEUES if queue.exchange == SEND_SHARDS_EXCHANGE
)

# Exchange-to-exchange bindings: (source, destination, routing key).
EXCHANGE_BINDINGS: Final = (
    *((EVENTS_EXCHANGE, SINK_EXCHANGE, key) for key in OUTPUT_KEYS),
    (OUTBOUND_EXCHANGE, SEND_SHARDS_EXCHANGE, "send.#"),
)


def queue_arguments(queue: Queue) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": queue.name,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": DELIVERY_LIMIT,
    }
    if queue.single_active:
        arguments["x-single-active-consumer"] = True
    return arguments


DEAD_LETTER_ARGUMENTS: Final[dict[str, Any]] = {"x-queue-type": "quorum"}


# Not in QUEUES: no dead-letter queue, and nothing `wapipe dlq` could replay.
FLOWS_QUEUE_ARGUMENTS: Final[dict[str, Any]] = {
    "x-queue-type": "quorum",
    "x-overflow": "reject-publish",  # a full queue refuses: the endpoint answers at once
}


def wait_queue_arguments(wait: WaitQueue) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": wait.seconds * 1000,
        # No x-dead-letter-routing-key: a job comes back under its own, send.<phone_number_id>.
        "x-dead-letter-exchange": OUTBOUND_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare(channel: AbstractChannel) -> None:
    """Declare everything above; safe to call from many processes at once."""
    exchanges = {}
    for spec in EXCHANGES:
        exchanges[spec.name] = await channel.declare_exchange(
            spec.name, spec.type, durable=True, arguments=spec.arguments
        )
    for queue in QUEUES:
        dead = await channel.declare_queue(
            queue.dead_letter_queue, durable=True, arguments=DEAD_LETTER_ARGUMENTS
        )
        await dead.bind(exchanges[DEAD_LETTER_EXCHANGE], routing_key=queue.name)
        live = await channel.declare_queue(
            queue.name, durable=True, arguments=queue_arguments(queue)
        )
        for key in queue.binding_keys:
            await live.bind(exchanges[queue.exchange], routing_key=key)
    for wait in WAIT_QUEUES:
        delay = await channel.declare_queue(
            wait.name, durable=True, arguments=wait_queue_arguments(wait)
        )
        await delay.bind(exchanges[wait.name], routing_key="")
    for source, destination, key in EXCHANGE_BINDINGS:
        await exchanges[destination].bind(exchanges[source], routing_key=key)
    flows = await channel.declare_queue(FLOWS_QUEUE, durable=True, arguments=FLOWS_QUEUE_ARGUMENTS)
    await flows.bind(exchanges[FLOWS_EXCHANGE], routing_key=FLOWS_ROUTING_KEY)


async def declare_once(connection: AbstractConnection) -> None:
    """Declare everything on a plain channel of its own, closed afterwards. On a robust channel
    aio-pika records each declaration and replays them all after every reconnect, one round trip
    each (some 110 here), before the channel may be used again: measured, that kept services
    answering 503 for seconds after a blip of the broker (tests/bench/results/broker_blip.md).
    A service's robust channels declare only what they consume, passively."""
    async with aio_pika.Channel(connection) as channel:
        await declare(channel)


async def declare_at(amqp_url: str, connection_name: str | None = None) -> None:
    """Connect, declare, disconnect: what ``wapipe topology`` runs in a deploy job."""
    name = connection_name or amqp.connection_name("topology")
    connection = await amqp.connect_once(amqp_url, name)
    async with connection:
        await declare(await connection.channel())


def queue_names() -> list[str]:
    """Every queue ``declare`` makes: live, dead-letter and wait queues."""
    live = [name for queue in QUEUES for name in (queue.name, queue.dead_letter_queue)]
    return [*live, *(wait.name for wait in WAIT_QUEUES), FLOWS_QUEUE]


async def remove_at(amqp_url: str, connection_name: str | None = None) -> None:
    """Delete every queue (with what it holds) and exchange ``declare`` makes, those that are
    there. For a machine being cleared, never a deploy."""
    name = connection_name or amqp.connection_name("topology")
    connection = await amqp.connect_once(amqp_url, name)
    async with connection:
        channel = await connection.channel()
        for name in queue_names():
            await channel.queue_delete(name)
        for spec in EXCHANGES:
            await channel.exchange_delete(spec.name)
