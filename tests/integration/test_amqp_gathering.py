"""The sender's publisher (shared/amqp.py GatheringPublisher): what many callers publish in one
turn of the event loop goes to the broker in one piece, and each caller still hears of its own
messages' confirms, returns and failures."""

from __future__ import annotations

import asyncio
import uuid

import aiormq
import pytest

from tests.helpers import drain
from wapipe.shared import amqp
from wapipe.shared.amqp import GatheringPublisher, Outgoing


def outgoing(
    queue: str, key: str, body: bytes | None = None, *, mandatory: bool = True
) -> Outgoing:
    body = body if body is not None else key.encode()
    return Outgoing("", queue, key, body, mandatory=mandatory)


async def test_many_callers_at_once_are_each_confirmed_and_every_message_arrives(
    vhost_url: str,
) -> None:
    connection = await amqp.connect(vhost_url, "test-gathering")
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = (await channel.declare_queue(f"gathered-{uuid.uuid4().hex}")).name
        publisher = GatheringPublisher(channel)
        big = bytes(range(256)) * 1200  # 300 KB: more than one body frame
        callers = [publisher.publish([outgoing(queue, f"k{n}")]) for n in range(300)]
        callers.append(publisher.publish([outgoing(queue, "two-a"), outgoing(queue, "two-b")]))
        callers.append(publisher.publish([outgoing(queue, "big", big)]))
        # A plain publish on the same channel meanwhile: the delivery tags stay in step.
        callers.append(amqp.publish_all(await amqp.underlay(channel), [outgoing(queue, "plain")]))
        await asyncio.gather(*callers)
        await publisher.publish([outgoing(queue, "later")])  # the next turn's gathering
        arrived = {m.message_id: m.body for m in await drain(vhost_url, queue)}
        expected = {f"k{n}" for n in range(300)} | {"two-a", "two-b", "big", "plain", "later"}
        assert set(arrived) == expected
        assert arrived["big"] == big
        assert arrived["k7"] == b"k7"
    finally:
        await amqp.close(connection)


async def test_a_returned_message_fails_its_caller_only(vhost_url: str) -> None:
    connection = await amqp.connect(vhost_url, "test-gathering")
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = (await channel.declare_queue(f"gathered-{uuid.uuid4().hex}")).name
        publisher = GatheringPublisher(channel)
        results = await asyncio.gather(
            publisher.publish([outgoing(queue, "a")]),
            publisher.publish([outgoing("no-such-queue", "lost")]),  # mandatory: returned
            publisher.publish([outgoing("no-such-queue", "sunk", mandatory=False)]),
            publisher.publish([outgoing(queue, "b")]),
            return_exceptions=True,
        )
        assert isinstance(results[1], aiormq.exceptions.PublishError)
        assert [results[0], results[2], results[3]] == [None, None, None]
        assert {m.message_id for m in await drain(vhost_url, queue)} == {"a", "b"}
        # The channel goes on: the return left no tag out of step.
        await publisher.publish([outgoing(queue, "c")])
        assert [m.message_id for m in await drain(vhost_url, queue)] == ["c"]
    finally:
        await amqp.close(connection)


async def test_a_publish_on_a_closed_channel_raises_rather_than_waits(vhost_url: str) -> None:
    connection = await amqp.connect(vhost_url, "test-gathering")
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        publisher = GatheringPublisher(channel)
        await channel.close()
        with pytest.raises(Exception):  # noqa: B017,PT011 (aio-pika's or aiormq's, either way)
            await publisher.publish([outgoing("q", "x")])
    finally:
        await amqp.close(connection)
