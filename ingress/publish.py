"""Confirmed publishing of a body's events: all confirmed, or ``BrokerUnavailable``.

The ingress may answer Meta 200 only once the broker has confirmed every event of the body, so
``publish_all`` either returns with every confirm in hand or raises. It never waits for the broker
to come back: an unreachable broker, a negative confirm or a confirm slower than
``confirm_timeout_s`` raises at once, the handler answers 503 and Meta retries later. Reconnecting
is the robust connection's job, in the background; until it succeeds ``ready`` is false.

aio-pika owns the connection, its recovery and the topology. The publish itself goes through
the channel aio-pika exposes underneath (shared/amqp.py): about 30 % less CPU per event than
``Exchange.publish`` (tests/bench/results/publish_cost.md), and the ingress is bound by its CPU.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Final

import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from wapipe.ingress.deadlines import Deadlines
from wapipe.ingress.split import Event
from wapipe.shared import amqp, topology

log = logging.getLogger(__name__)

STALL_HOLD_S: Final = 10.0


class BrokerUnavailable(Exception):
    """The events were not all confirmed: nothing may be acknowledged to Meta."""


class Publisher:
    """One robust connection and one confirmed channel, owned by the ingress."""

    def __init__(self, amqp_url: str, connection_name: str, confirm_timeout_s: float) -> None:
        self._amqp_url = amqp_url
        self._connection_name = connection_name
        self._deadlines = Deadlines(confirm_timeout_s)
        self._connection: AbstractRobustConnection | None = None  # once connected
        self._channel: AbstractRobustChannel | None = None  # once connected and declared
        self._underlay: aiormq.Channel | None = None  # aiormq's, under self._channel
        # A confirm came too late: the broker is up but stuck, or the link half-open. Not ready
        # until a confirm comes, the connection is made anew, or STALL_HOLD_S pass (else, with
        # no traffic let in, nothing would ever clear it).
        self._stalled_until = 0.0
        self.connected = asyncio.Event()  # set once, at the first connect and declare

    @property
    def ready(self) -> bool:
        """True while a publish could succeed: connected, channel open, broker not stuck."""
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
            and time.monotonic() >= self._stalled_until
        )

    async def connect(self) -> None:
        """Connect and declare the topology, retrying until the broker answers."""
        attempt = 0
        while self._channel is None:
            connection = await amqp.connect(self._amqp_url, self._connection_name, coalesce=True)
            self._connection = connection
            try:
                await topology.declare_once(connection)
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
                # Only a lost connection is retried; a topology conflict (PRECONDITION_FAILED,
                # a channel error) raises: it needs a person, not a retry.
                await connection.close()
                attempt += 1
                log.warning("broker lost while declaring, retrying", extra={"error": str(exc)})
                await asyncio.sleep(min(amqp.RECONNECT_INTERVAL_S * attempt, 5.0))
                continue
            except BaseException:
                await connection.close()
                raise
            connection.reconnect_callbacks.add(self._on_reconnect)
            self._channel = channel
            self.connected.set()
            log.info("broker connected", extra={"connection": self._connection_name})

    def _on_reconnect(self, *_: object) -> None:
        self._stalled_until = 0.0
        log.info("broker reconnected", extra={"connection": self._connection_name})

    async def close(self) -> None:
        self._deadlines.close()
        if self._connection is not None:
            await self._connection.close()

    async def publish_all(self, events: Sequence[Event]) -> None:
        """Publish persistently and wait for every confirm. Raises ``BrokerUnavailable``."""
        deadline = self._deadlines.arm()
        try:
            channel = await self._open_channel()
            await amqp.publish_all(channel, [_outgoing(event) for event in events])
        except asyncio.CancelledError:
            if self._deadlines.expired(deadline):
                self._stalled_until = time.monotonic() + STALL_HOLD_S
                raise BrokerUnavailable(f"no confirm within {self._deadlines.limit_s} s") from None
            raise
        except BrokerUnavailable:
            raise
        except Exception as exc:
            # Whatever aiormq and aio-pika raise when the link drops mid-publish (AMQPError,
            # OSError, ChannelInvalidStateError, which is a RuntimeError...): no confirm.
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._deadlines.disarm(deadline)
        self._stalled_until = 0.0

    async def _open_channel(self) -> aiormq.Channel:
        """The current aiormq channel; a new one once aio-pika has reconnected."""
        underlay = self._underlay
        if underlay is None or underlay.is_closed:
            if (
                self._channel is None
                or self._channel.is_closed
                or self._connection is None
                or self._connection.is_closed
            ):
                raise BrokerUnavailable("not connected to the broker")
            # Under publish_all's deadline: should the connection drop right now, this would
            # wait for the next one.
            underlay = self._underlay = await amqp.underlay(self._channel)
        return underlay


def _outgoing(event: Event) -> amqp.Outgoing:
    # An event no binding takes would come back (the channel raises on returns), but the
    # alternate exchange takes those into wa.unroutable first.
    return amqp.Outgoing(
        topology.EVENTS_EXCHANGE, event.routing_key, event.message_id, event.body, event.headers
    )
