"""Every service's way to the broker: named connections, confirmed publishes.

    connection_name("worker-status")  ->  "wapipe-worker-status@<host>", as the broker shows it
    connect(url, name)                ->  a robust connection (aio-pika reconnects it); services
                                          wait for an unreachable broker, a library's user
                                          (``wait=False``) hears of it at once
    connect_once(url, name)           ->  a plain one, for commands and deploy jobs
    connect(url, name, coalesce=True) ->  while busy, one send a millisecond to the broker,
                                          the frames written meanwhile joined (``CoalescingWriter``)

``url`` may name several nodes of one cluster, comma-separated (``WAPIPE_AMQP_URL``): ``connect``
tries them in turn, starting with the first, and a robust connection that loses its node goes on
to the next; ``connect_once`` takes the first that answers. The node reached is logged.
    close(connection)                 ->  bounded: a broker that is away cannot hold a shutdown
    publish / publish_all             ->  persistent, confirmed, through aiormq (below)
    EventPublisher                    ->  publish_all on a channel the robust connection renews

aio-pika owns the connection, its recovery and the topology; the publish goes through the channel
it exposes underneath (``get_underlay_channel``). Two reasons, both measured: the AMQP properties
built directly cost about 30 % less CPU per message than ``Exchange.publish``
(tests/bench/results/publish_cost.md); and ``wait=False`` does not wait for the socket to drain
while holding the channel's lock, a wait that lets publishes leave one per turn of the event
loop (at a thousand a second, the sender's events queued for most of a second). What is waited
for is the confirm; the connection's bounded write queue is the back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractRobustConnection
from pamqp.common import FieldTable
from yarl import URL

from wapipe.shared.settings import broker_urls

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/json"
PERSISTENT: Final = 2  # AMQP delivery mode
CONNECT_TIMEOUT_S: Final = 5.0
CONNECT_RETRY_MAX_S: Final = 5.0  # the longest wait between tries while the broker is away
RECONNECT_INTERVAL_S: Final = 1.0  # after a lost connection (aio-pika's default is 5 s)
HEARTBEAT_S: Final = 10
_REFUSED_LOGIN: Final = (
    aiormq.exceptions.AuthenticationError,
    aiormq.exceptions.ProbableAuthenticationError,
)
CLOSE_TIMEOUT_S: Final = 5.0


def connection_name(role: str) -> str:
    """The name the broker shows for a connection (its management UI, ``rabbitmqctl``)."""
    return f"wapipe-{role}@{socket.gethostname()}"


async def connect(
    amqp_url: str, name: str, *, wait: bool = True, coalesce: bool = False
) -> AbstractRobustConnection:
    """A robust, named connection, with heartbeats (a half-open link is noticed after two
    missed). While the broker is unreachable it is tried again, node after node, 1, 2 ... 5 s
    apart (a service starting before its broker), or with ``wait=False`` each node once (a
    library's user hears of it at once). Wrong credentials are never tried again. Cancelled, it
    leaves nothing behind."""
    urls = [with_defaults(url) for url in broker_urls(amqp_url)]
    attempt = 0
    while True:
        # Made here, not by connect_robust(), so that a cancelled connect can close it: a
        # cancelled connect_robust() leaves its reconnecting task behind.
        connection = NodesConnection(urls, attempt, name, coalesce=coalesce)
        try:
            await connection.connect(timeout=CONNECT_TIMEOUT_S)
            return connection
        except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
            await connection.close()
            attempt += 1
            if isinstance(exc, _REFUSED_LOGIN) or (not wait and attempt >= len(urls)):
                raise
            if attempt % len(urls):  # the next node at once; a pause after a round of them all
                continue
            log.warning(
                "broker unreachable, retrying",
                extra={"attempt": attempt // len(urls), "error": str(exc)},
            )
            await asyncio.sleep(
                min(RECONNECT_INTERVAL_S * attempt / len(urls), CONNECT_RETRY_MAX_S)
            )
        except BaseException:
            await connection.close()
            raise


_ATTEMPT: Final = "_RobustConnection__connect_transport"  # aio-pika's, private (see below)


class NodesConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection, over the nodes of a cluster: each (re)connection attempt
    goes to the next node (the first attempt to node ``first``), and says which it reached."""

    def __init__(
        self, urls: Sequence[URL], first: int, name: str, *, coalesce: bool = False
    ) -> None:
        super().__init__(urls[first % len(urls)], client_properties={"connection_name": name})
        if coalesce:  # passed on to every aiormq connection made, reconnections too
            self.kwargs["transport_factory"] = CoalescingTransports()
        self._urls = tuple(urls)
        self._next = first
        self._name = name

    # aio-pika (pinned <11) makes every attempt through this private method, on self.url; the
    # node is picked just before it (tests/integration/test_amqp_nodes.py holds it to that).
    async def _RobustConnection__connect_transport(self) -> None:
        self.url = self._urls[self._next % len(self._urls)]
        self._next += 1
        await getattr(super(), _ATTEMPT)()
        log.info("broker node reached", extra={"node": node_of(self.url), "connection": self._name})


# While busy, the least time between two sends to the broker (CoalescingWriter).
HOLD_S: Final = 0.001


class CoalescingWriter(asyncio.StreamWriter):
    """A stream writer that sends at most once every ``HOLD_S`` while busy, what was written
    in between joined.

    aiormq's writer task writes each frame queued (a publish's three frames, made one buffer)
    with its own ``write``: one send a publish, each waking the broker. Those sends were the
    ingress's largest single cost (tests/bench/results/ingress.md: 14-18 % of its CPU, mostly
    the kernel's loopback path and the wake-up), and joining only what one turn of the event loop
    wrote left 1.8 sends a request of the 2.0 (a webhook's publish and its answer). So a write
    after a quiet spell leaves at the loop's next turn, and one soon after a send waits until
    ``HOLD_S`` after it: a publish is confirmed up to that much later under load, never later when
    idle. ``drain`` and ``close`` send what is held first, so a frame the writer drains (aiormq's
    RPCs, a publish with ``wait=True``) has left when drain returns."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        reader: asyncio.StreamReader,
        loop: asyncio.AbstractEventLoop,
        hold_s: float = HOLD_S,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._hold_s = hold_s
        self._held: list[bytes] = []
        self._event_loop = loop
        self._sent_at = 0.0
        self._flushing: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._flushing is None:
            wait = self._sent_at + self._hold_s - self._event_loop.time()
            self._flushing = (
                self._event_loop.call_later(wait, self.flush)
                if wait > 0
                else self._event_loop.call_soon(self.flush)
            )
        self._held.append(bytes(data))

    def writelines(self, data: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in data:
            self.write(chunk)

    def flush(self) -> None:
        """Send what is held now."""
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        if self._held:
            held, self._held = self._held, []
            if not self.transport.is_closing():  # closed under us: the frames are lost anyway
                self.transport.write(held[0] if len(held) == 1 else b"".join(held))
                self._sent_at = self._event_loop.time()

    async def drain(self) -> None:
        self.flush()
        await super().drain()

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()
        super().close()


class CoalescingTransports(aiormq.connection.TransportFactory):
    """aiormq's way in for its socket: TCP or TLS, as aiormq opens them, with a
    ``CoalescingWriter``."""

    async def create(
        self, url: URL, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if url.host is None or url.port is None:  # aiormq sets the port from the scheme
            raise aiormq.exceptions.AMQPConnectionError(f"no host or port in {url.host!r}")
        provider = kwargs.pop("ssl_context_provider", None)
        ssl_context = await provider.get_context() if url.scheme == "amqps" and provider else None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol, host=url.host, port=url.port, ssl=ssl_context, **kwargs
            )
        except OSError as exc:
            raise aiormq.exceptions.AMQPConnectionError(*exc.args) from exc
        return reader, CoalescingWriter(transport, protocol, reader, loop)


def node_of(url: URL) -> str:
    """A node as logs name it: host and port, never the credentials."""
    return f"{url.host}:{url.port}"


def with_defaults(amqp_url: str) -> URL:
    """The broker URL with our heartbeat and reconnect interval, unless it sets its own
    (``?heartbeat=30&reconnect_interval=5``)."""
    url = URL(amqp_url)
    defaults = {"heartbeat": str(HEARTBEAT_S), "reconnect_interval": str(RECONNECT_INTERVAL_S)}
    return url.update_query({k: v for k, v in defaults.items() if k not in url.query})


async def connect_once(amqp_url: str, name: str) -> AbstractConnection:
    """A plain, named connection for a command run by hand or a deploy job: it fails loudly
    rather than reconnect in silence. With several nodes, the first that answers (the last
    one's error if none does; wrong credentials at once)."""
    urls = broker_urls(amqp_url)
    for position, url in enumerate(urls, 1):
        try:
            connection = await aio_pika.connect(url, client_properties={"connection_name": name})
        except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
            if isinstance(exc, _REFUSED_LOGIN) or position == len(urls):
                raise
            log.warning(
                "broker node unreachable, trying the next", extra={"node": node_of(URL(url))}
            )
            continue
        if len(urls) > 1:
            log.info("broker node reached", extra={"node": node_of(URL(url)), "connection": name})
        return connection
    raise AssertionError("unreachable: settings refuse an empty WAPIPE_AMQP_URL")


async def close(connection: AbstractConnection) -> None:
    with contextlib.suppress(Exception):  # the broker may be away: do not wait for it
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await connection.close()


class Outgoing(NamedTuple):
    """One message to publish: where, its stable key (``message_id``), its body."""

    exchange: str
    routing_key: str
    message_id: str
    body: bytes
    headers: Mapping[str, Any] | None = None
    # A job must reach its queue (returned otherwise: an error); an event on wa.events may
    # have no follower at all (it then ends in wa.sink, which no queue takes).
    mandatory: bool = True


async def underlay(channel: AbstractChannel) -> aiormq.Channel:
    """aiormq's channel under ``channel`` (a new one once aio-pika has reconnected)."""
    fresh = await channel.get_underlay_channel()
    if not isinstance(fresh, aiormq.Channel):  # the concrete one has `wait`
        raise TypeError(f"unexpected channel type {type(fresh).__name__}")
    return fresh


async def publish(channel: aiormq.Channel, message: Outgoing) -> None:
    """Publish persistently and wait for the broker's confirm. Raises aiormq's DeliveryError on a
    nack, PublishError on a return (the channel must be opened with ``on_return_raises``), and
    whatever the link raises when it drops."""
    confirm = await channel.basic_publish(
        message.body,
        exchange=message.exchange,
        routing_key=message.routing_key,
        properties=aiormq.spec.Basic.Properties(
            message_id=message.message_id,
            headers=_table(message.headers),
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
        ),
        mandatory=message.mandatory,
        wait=False,
    )
    # aiormq raises on a nack or a return; should it ever hand them back instead, still refuse.
    if not isinstance(confirm, aiormq.spec.Basic.Ack):
        raise aiormq.exceptions.DeliveryError(None, confirm)  # type: ignore[arg-type]


async def publish_all(channel: aiormq.Channel, messages: Sequence[Outgoing]) -> None:
    """Publish every message at once and wait for every confirm; should one fail, the others
    are called off and the error raised (a caller that retries publishes them all again)."""
    if len(messages) == 1:  # the usual case: no task per message
        await publish(channel, messages[0])
        return
    tasks = [asyncio.ensure_future(publish(channel, message)) for message in messages]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class EventPublisher:
    """Confirmed publishing on one channel of a robust connection (a worker's events, the
    sender's parked jobs): a worker acks its input only after what it publishes for it is
    confirmed, so a crash in between publishes it again (at least once; each message carries
    its stable key as ``message_id`` for consumers to drop repeats)."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel

    async def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish all, wait for every confirm; raises if any is refused or lost."""
        if messages:
            await publish_all(await underlay(self._channel), messages)


def _table(headers: Mapping[str, Any] | None) -> FieldTable | None:
    return headers if headers is None or isinstance(headers, dict) else dict(headers)
