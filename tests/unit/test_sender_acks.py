"""The sender's batched acks (workers/sender/acks.py ``Tags``), with no broker: a multiple ack
never settles a delivery the sender still holds, and every delivery is settled exactly once.

A broker is modelled as AMQP 0-9-1 defines a channel's acks: ``basic.ack(t, multiple)``
settles every unsettled tag up to ``t``; an ack of a tag settled already is a channel error.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from wapipe.workers.sender.acks import Tags


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
