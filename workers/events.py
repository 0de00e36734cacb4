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

import aiormq
from aio_pika.abc import AbstractChannel

from shared import amqp


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

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish all, wait for every confirm; raises if any is refused or lost."""
        if not events:
            return
        channel = await amqp.underlay(self._channel)
        if len(events) == 1:  # the sender's usual case: no gather to set up
            await _publish(channel, events[0])
        else:
            await asyncio.gather(*(_publish(channel, event) for event in events))


async def _publish(channel: aiormq.Channel, event: OutgoingEvent) -> None:
    await amqp.publish(
        channel,
        event.body,
        exchange=event.exchange,
        routing_key=event.routing_key,
        message_id=event.key,
        headers=dict(event.headers),
        mandatory=event.mandatory,
    )
