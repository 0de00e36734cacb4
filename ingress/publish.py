"""Confirmed publishing of a body's events: all confirmed, or ``BrokerUnavailable``.

The ingress may answer Meta 200 only once the broker has confirmed every event of the body, so
``publish_all`` either returns with every confirm in hand or raises. It never waits for the broker
to come back: an unreachable broker, a negative confirm or a confirm slower than
``confirm_timeout_s`` raises at once, the handler answers 503 and Meta retries later. Reconnecting
is the robust connection's job, in the background; until it succeeds ``ready`` is false.

aio-pika owns the connection, its recovery and the topology. The publish itself goes through
the channel aio-pika exposes underneath (``get_underlay_channel``, aiormq): with the AMQP
properties built directly and no wait for the socket to drain, it costs about 30 % less CPU per
event than ``Exchange.publish`` (tests/bench/results/publish_cost.md), and the ingress is bound
by its CPU.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from ingress.deadlines import Deadlines
from ingress.split import Event
from shared import topology

log = logging.getLogger(__name__)

RECONNECT_INTERVAL_S: Final = 1.0
CONTENT_TYPE: Final = "application/json"
PERSISTENT: Final = 2  # AMQP delivery mode


class BrokerUnavailable(Exception):
    """The events were not all confirmed: nothing may be acknowledged to Meta."""


class Publisher:
    """One robust connection and one confirmed channel, owned by the ingress."""

    def __init__(self, amqp_url: str, connection_name: str, confirm_timeout_s: float) -> None:
        self._amqp_url = amqp_url
        self._connection_name = connection_name
        self._confirm_timeout_s = confirm_timeout_s
        self._deadlines = Deadlines(confirm_timeout_s)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._underlay: aiormq.Channel | None = None  # aiormq's, under self._channel

    @property
    def ready(self) -> bool:
        """True while a publish could succeed (connected, channel open)."""
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def connect(self) -> None:
        """Connect and declare the topology, retrying until the broker answers."""
        attempt = 0
        while self._connection is None:
            try:
                connection = await aio_pika.connect_robust(
                    self._amqp_url,
                    client_properties={"connection_name": self._connection_name},
                    reconnect_interval=RECONNECT_INTERVAL_S,
                )
                try:
                    channel = await connection.channel(
                        publisher_confirms=True, on_return_raises=True
                    )
                    await topology.declare(channel)
                except BaseException:
                    await connection.close()
                    raise
            except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
                # Only a lost connection is retried; a topology conflict (PRECONDITION_FAILED,
                # a channel error) raises: it needs a person, not a retry.
                attempt += 1
                log.warning(
                    "broker unreachable, retrying", extra={"attempt": attempt, "error": str(exc)}
                )
                await asyncio.sleep(min(RECONNECT_INTERVAL_S * attempt, 5.0))
                continue
            self._connection, self._channel = connection, channel
            log.info("broker connected", extra={"connection": self._connection_name})

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish_all(self, events: Sequence[Event]) -> None:
        """Publish persistently and wait for every confirm. Raises ``BrokerUnavailable``."""
        deadline = self._deadlines.arm()
        try:
            channel = await self._open_channel()
            if len(events) == 1:  # the common body: no task per event
                await _publish(channel, events[0])
            else:
                await asyncio.gather(*(_publish(channel, event) for event in events))
        except asyncio.CancelledError:
            if self._deadlines.expired(deadline):
                raise BrokerUnavailable(f"no confirm within {self._deadlines.limit_s} s") from None
            raise
        except (aiormq.exceptions.AMQPError, OSError) as exc:  # OSError: resets, refusals
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._deadlines.disarm(deadline)

    async def watch_deadlines(self) -> None:
        """Answer 503 for every confirm that takes too long; runs for the publisher's life."""
        await self._deadlines.watch()

    async def _open_channel(self) -> aiormq.Channel:
        """The current aiormq channel; a new one once aio-pika has reconnected."""
        underlay = self._underlay
        if underlay is None or underlay.is_closed:
            if not self.ready or self._channel is None:
                raise BrokerUnavailable("not connected to the broker")
            # Under publish_all's deadline: should the connection drop right now, this would
            # wait for the next one.
            fresh = await self._channel.get_underlay_channel()
            if not isinstance(fresh, aiormq.Channel):  # the concrete one has `wait`
                raise TypeError(f"unexpected channel type {type(fresh).__name__}")
            underlay = self._underlay = fresh
        return underlay


async def _publish(channel: aiormq.Channel, event: Event) -> None:
    confirm = await channel.basic_publish(
        event.body,
        exchange=topology.EVENTS_EXCHANGE,
        routing_key=event.routing_key,
        properties=aiormq.spec.Basic.Properties(
            message_id=event.message_id,
            headers=event.headers,  # type: ignore[arg-type]
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
        ),
        # An event no binding takes would come back (the channel raises on returns), but the
        # alternate exchange takes those into wa.unroutable first.
        mandatory=True,
        wait=False,  # the confirm below is what counts; no need to wait for the socket too
    )
    if not isinstance(confirm, aiormq.spec.Basic.Ack):
        raise BrokerUnavailable(f"broker refused the event: {type(confirm).__name__}")
