"""Publishing the workers' own events on ``wa.events`` (``handled.*``, ``account.*`` views...).

Confirmed and persistent, like the ingress: a worker acks its input only after the events it
publishes for it are confirmed, so a crash in between publishes them again (at least once; each
event carries its stable key as ``message_id`` for consumers to drop repeats).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from shared import topology

CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class OutgoingEvent:
    routing_key: str
    key: str  # the stable key, as message_id
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)


class EventPublisher:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchange: AbstractExchange | None = None

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish all, wait for every confirm; raises if any is refused or lost."""
        if self._exchange is None:
            self._exchange = await self._channel.get_exchange(
                topology.EVENTS_EXCHANGE, ensure=False
            )
        exchange = self._exchange
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        event.body,
                        message_id=event.key,
                        content_type=CONTENT_TYPE,
                        headers=dict(event.headers),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=event.routing_key,
                )
                for event in events
            )
        )
