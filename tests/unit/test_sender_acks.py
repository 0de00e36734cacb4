"""The sender's batched acks (workers/sender/acks.py ``Tags``), with no broker: a multiple ack
never settles a delivery the sender still holds, and every delivery is settled exactly once.

A broker is modelled as AMQP 0-9-1 defines a channel's acks: ``basic.ack(t, multiple)``
settles every unsettled tag up to ``t``; an ack of a tag settled already is a channel error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

from aio_pika.abc import AbstractIncomingMessage
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wapipe.workers.sender.acks import Acks, Tags


class Channel:
    """The broker's side: which tags are unsettled, and which the sender let go of."""

    def __init__(self, delivered: int) -> None:
        self.unsettled = set(range(1, delivered + 1))
        self.done: set[int] = set()  # settled by the sender (acked, nacked or rejected)

    def ack(self, tag: int, *, multiple: bool = False) -> None:
        assert tag in self.unsettled, f"ack of {tag}, settled already: a channel error"
        covered = {t for t in self.unsettled if t <= tag} if multiple else {tag}
        held = covered - self.done
        assert not held, f"ack of {tag} settles {sorted(held)}, still held"
        self.unsettled -= covered

    def alone(self, tag: int) -> None:  # a nack or a reject
        assert tag in self.unsettled
        self.unsettled.discard(tag)


def settle(tags: Tags, channel: Channel, batch: list[int]) -> tuple[int | None, list[int]]:
    channel.done.update(batch)
    multiple, singles = tags.settle(batch)
    if multiple is not None:
        channel.ack(multiple, multiple=True)
    for tag in singles:
        channel.ack(tag)
    return multiple, singles


def test_acks_in_delivery_order_are_one_multiple_ack() -> None:
    tags, channel = Tags(), Channel(5)
    assert settle(tags, channel, [3, 1, 2, 5, 4]) == (5, [])
    assert channel.unsettled == set()
    assert tags.floor == 5


def test_a_held_delivery_keeps_its_tag_and_those_above_go_one_by_one() -> None:
    tags, channel = Tags(), Channel(6)
    assert settle(tags, channel, [1, 2, 4, 5]) == (2, [4, 5])  # 3 is held
    assert channel.unsettled == {3, 6}
    assert settle(tags, channel, [3]) == (3, [])  # 4 and 5 settled already: floor 5
    assert tags.floor == 5
    assert settle(tags, channel, [6]) == (6, [])


def test_a_nack_closes_the_gap_below_later_acks() -> None:
    tags, channel = Tags(), Channel(4)
    channel.done.add(2)
    tags.settled_alone(2)
    channel.alone(2)
    assert settle(tags, channel, [1, 3]) == (3, [])  # 2 is no longer unsettled: not covered
    assert channel.unsettled == {4}


def test_a_tag_settled_twice_is_not_acked_again() -> None:
    tags, channel = Tags(), Channel(3)
    settle(tags, channel, [1, 3])
    assert tags.settle([1, 3]) == (None, [])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(
            st.permutations(list(range(1, n + 1))),
            st.lists(st.integers(min_value=1, max_value=8), min_size=n, max_size=n),
            st.sets(st.integers(min_value=1, max_value=n)),
        )
    )
)
@example(([2, 1, 3], [1, 1, 1], set()))
@example(([3, 1, 2, 4], [2, 2, 2, 2], {2}))
def test_every_delivery_is_settled_once_and_none_while_held(
    case: tuple[list[int], list[int], set[int]],
) -> None:
    """Deliveries settled in any order, in batches of any size, some nacked or rejected: every
    frame the sender sends is legal, and in the end none is left unsettled."""
    order, sizes, alone = case
    tags, channel = Tags(), Channel(len(order))
    pending = list(order)
    for size in sizes:
        if not pending:
            break
        batch, pending = pending[:size], pending[size:]
        acked = [tag for tag in batch if tag not in alone]
        for tag in batch:
            if tag in alone:
                channel.done.add(tag)
                tags.settled_alone(tag)
                channel.alone(tag)
        settle(tags, channel, acked)
    assert channel.unsettled == set()
    assert tags.floor == len(order)
    assert not tags.above


class Frames:
    """An aiormq channel whose write queue is full: each frame call waits until ``release``
    lets the waiting calls in, newest first (asyncio.Queue promises no order among the writers
    waiting on a full queue), and is recorded in the order it got in."""

    is_closed = False

    def __init__(self) -> None:
        self.waiting: list[asyncio.Event] = []
        self.sent: list[tuple[str, int, bool]] = []

    async def _room(self) -> None:
        room = asyncio.Event()
        self.waiting.append(room)
        await room.wait()

    async def release(self) -> None:
        while self.waiting:
            self.waiting.pop().set()
            await asyncio.sleep(0)  # it records its frame before the next one gets in

    async def basic_ack(self, tag: int, multiple: bool = False, wait: bool = True) -> None:
        await self._room()
        self.sent.append(("ack", tag, multiple))

    async def basic_nack(self, tag: int, requeue: bool = True, wait: bool = True) -> None:
        await self._room()
        self.sent.append(("nack", tag, False))


@dataclass
class Delivery:
    channel: Frames
    delivery_tag: int


async def test_a_given_back_delivery_is_never_covered_by_a_multiple_ack_queued_before_it() -> None:
    # 1 and 3 done, 2 given back while the channel's write queue is full: whichever frame gets
    # in first, no ack may settle 2 before its nack is queued.
    frames, acks = Frames(), Acks()
    one, two, three = (cast(AbstractIncomingMessage, Delivery(frames, tag)) for tag in (1, 2, 3))
    giving_back = asyncio.ensure_future(acks.give_back([two]))
    await asyncio.sleep(0)  # the nack waits for room
    flushing = asyncio.ensure_future(acks.flush([one, three]))
    await asyncio.sleep(0)
    await frames.release()
    await asyncio.gather(giving_back, flushing)
    await frames.release()  # the acks the nack's settling let through after it
    broker = Channel(3)
    broker.done.update({1, 3})
    for kind, tag, multiple in frames.sent:
        if kind == "nack":
            broker.alone(tag)
        else:
            broker.ack(tag, multiple=multiple)
    assert broker.unsettled == set()
