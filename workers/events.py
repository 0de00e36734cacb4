"""Publishing what workers produce: events on ``wa.events``, jobs on ``wa.outbound``.

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

CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class OutgoingEvent:
    exchange: str
    routing_key: str
    key: str  # the stable key, as message_id
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    # A job must reach its queue (returned otherwise: an error); an event on wa.events may
    # have no follower at all (it then ends in wa.sink, which no queue takes).
    mandatory: bool = True


class EventPublisher:
    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish all, wait for every confirm; raises if any is refused or lost."""
        for name in {event.exchange for event in events} - self._exchanges.keys():
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        if len(events) == 1:  # the sender's usual case: no gather to set up
            await self._publish(events[0])
        elif events:
            await asyncio.gather(*(self._publish(event) for event in events))

    async def _publish(self, event: OutgoingEvent) -> None:
        await self._exchanges[event.exchange].publish(
            aio_pika.Message(
                event.body,
                message_id=event.key,
                content_type=CONTENT_TYPE,
                headers=dict(event.headers),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=event.routing_key,
            mandatory=event.mandatory,
        )
