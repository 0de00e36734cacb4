"""Settling the shard deliveries the sender holds: acks gathered over one turn of the event
loop and sent as one ``basic.ack(multiple)`` per contiguous run of delivery tags.

At 1,000 sends a second an ack a send is a frame, a future and a wait for the socket each; the
sends whose group commit ends together ack together, so most acks ride on one frame. A
multiple ack settles every unsettled tag up to its own on the channel, so it is sent only up to
where every tag below has been settled by us (``Tags.floor``): a job still held (a slow
recipient, a parked line) keeps its tag, and the acks above it go one by one. Delivery tags
are consecutive from 1 on a channel; the floor only ever passes tags settled here, so a
delivery settled some other way is never covered, it only keeps the floor below it (acks one
by one from there: slower, not wrong). The sender's consuming channel carries only its own
deliveries (workers/sender/service.py), so in practice the floor keeps up.

An ack is queued, never awaited to the socket: it leaves after the commit it follows, as
before, and a lost one (a connection dropped first) is a redelivery, which the journal answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import AbstractChannel


@dataclass
class Tags:
    """One channel's settled tags: every tag up to ``floor``, and those in ``above``."""

    floor: int = 0
    above: set[int] = field(default_factory=set)

    def settle(self, tags: Iterable[int]) -> tuple[int | None, list[int]]:
        """Mark ``tags`` settled (to be acked now); return how: the tag of one multiple ack
        (None: none) and the tags to ack one by one (above a tag still held). A tag settled
        already is left out (a second ack of it would close the channel)."""
        fresh = {tag for tag in tags if tag > self.floor and tag not in self.above}
        end = self.floor
        while end + 1 in fresh or end + 1 in self.above:
            end += 1
        run = [tag for tag in fresh if tag <= end]
        singles = sorted(tag for tag in fresh if tag > end)
        self.above.update(singles)
        self._lift(end)
        return (max(run) if run else None), singles

    def settled_alone(self, tag: int) -> None:
        """``tag`` settled by a frame of its own (a nack, a reject)."""
        if tag > self.floor:
            self.above.add(tag)
            self._lift(self.floor)

    def _lift(self, to: int) -> None:
        """The floor up to ``to`` (every tag up to it settled), and on over those settled."""
        for tag in range(self.floor + 1, to + 1):
            self.above.discard(tag)
        self.floor = max(self.floor, to)
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.discard(self.floor)


def _address(delivery: AbstractIncomingMessage) -> tuple[AbstractChannel, int]:
    tag = delivery.delivery_tag
    assert tag is not None, "a consumer's delivery has a tag"
    return delivery.channel, tag


class Acks:
    """The sender's settlements of its deliveries: acks batched (``run``, one task), nacks and
    rejects at once. Every settlement of a shard delivery goes through here, or the floor of its
    channel would stop below it (acks one by one after that: slower, never wrong)."""

    def __init__(self) -> None:
        self._tags: dict[AbstractChannel, Tags] = {}
        self._waiting: list[AbstractIncomingMessage] = []
        self._wake = asyncio.Event()

    def ack(self, deliveries: Sequence[AbstractIncomingMessage]) -> None:
        """Done (their effects are committed): acked on the loop's next turn."""
        self._waiting.extend(deliveries)
        self._wake.set()

    # A nack or a reject marks its tag settled only once its frame is queued to the channel:
    # marked before, a multiple ack computed meanwhile (aiormq's write queue full, its waiters
    # served in no set order) could cover the tag and leave first, acking a job given back.

    async def give_back(self, deliveries: Sequence[AbstractIncomingMessage]) -> None:
        """Back to their queue, to whichever consumer."""
        for delivery in deliveries:
            # A closed channel (aio-pika raises on reading it): back in the queue already.
            with contextlib.suppress(Exception):
                channel, tag = _address(delivery)
                await channel.basic_nack(tag, requeue=True, wait=False)
                self._of(channel).settled_alone(tag)

    async def reject(self, delivery: AbstractIncomingMessage) -> None:
        """To its queue's dead-letter queue, through the broker."""
        with contextlib.suppress(Exception):
            channel, tag = _address(delivery)
            await channel.basic_reject(tag, requeue=False, wait=False)
            self._of(channel).settled_alone(tag)

    def _of(self, channel: AbstractChannel) -> Tags:
        tags = self._tags.get(channel)
        if tags is None:
            # A new channel (a reconnect): the closed ones' tags are of no use now.
            self._tags = {c: t for c, t in self._tags.items() if not c.is_closed}
            tags = self._tags[channel] = Tags()
        return tags

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, []
            await self.flush(waiting)

    async def close(self) -> None:
        """Send the acks still waiting (at a stop: their effects are committed, and a delivery
        not acked would come again, to be answered by the journal and its events sent again)."""
        waiting, self._waiting = self._waiting, []
        await self.flush(waiting)

    async def flush(self, deliveries: Sequence[AbstractIncomingMessage]) -> None:
        by_channel: dict[AbstractChannel, list[int]] = {}
        for delivery in deliveries:
            # A delivery from before a reconnect cannot be settled (aio-pika raises on reading
            # its closed channel); its redelivery is ours too.
            with contextlib.suppress(Exception):
                if delivery.delivery_tag is not None:
                    by_channel.setdefault(delivery.channel, []).append(delivery.delivery_tag)
        for channel, tags in by_channel.items():
            multiple, singles = self._of(channel).settle(tags)
            with contextlib.suppress(Exception):  # closed meanwhile: redelivered, as above
                if multiple is not None:
                    await channel.basic_ack(multiple, multiple=True, wait=False)
                for tag in singles:
                    await channel.basic_ack(tag, wait=False)
