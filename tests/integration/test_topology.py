"""The broker topology: declared from many processes at once, by `wapipe topology`, as data."""

from __future__ import annotations

import asyncio
import os
import sys

import aio_pika

from tests.helpers import drain
from wapipe.shared import topology


async def declare_once(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await topology.declare(await connection.channel())


async def test_declaring_from_many_connections_at_once_is_safe(vhost_url: str) -> None:
    await asyncio.gather(*(declare_once(vhost_url) for _ in range(8)))
    await declare_once(vhost_url)  # and again, later


async def test_wapipe_topology_declares_every_queue_and_dead_letter_queue(vhost_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        "topology",
        env={**os.environ, "WAPIPE_AMQP_URL": vhost_url, "WAPIPE_LOG_FORMAT": "json"},
    )
    assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel()
        for queue in topology.QUEUES:
            live = await channel.declare_queue(queue.name, passive=True)
            dead = await channel.declare_queue(queue.dead_letter_queue, passive=True)
            assert live.declaration_result.message_count == 0
            assert dead.declaration_result.message_count == 0
        for wait in topology.WAIT_QUEUES:
            delay = await channel.declare_queue(wait.name, passive=True)
            assert delay.declaration_result.message_count == 0


async def publish_event(amqp_url: str, routing_key: str, message_id: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        await exchange.publish(aio_pika.Message(b"{}", message_id=message_id), routing_key)


async def test_unroutable_event_lands_in_the_alternate_exchange_queue(vhost_url: str) -> None:
    await declare_once(vhost_url)
    await publish_event(vhost_url, "nobody.binds.this", "k")
    [message] = await drain(vhost_url, "wa.unroutable")
    assert message.routing_key == "nobody.binds.this"


async def test_rejected_message_is_dead_lettered_to_its_queue(vhost_url: str) -> None:
    await declare_once(vhost_url)
    await publish_event(vhost_url, "status.sent", "k")
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        queue = await (await connection.channel()).get_queue("wa.status")
        message = await queue.get(timeout=5)
        assert message is not None
        await message.reject(requeue=False)
    [dead] = await drain(vhost_url, "wa.status.dlq")
    assert dead.message_id == "k"


async def test_an_output_nobody_follows_is_dropped_and_a_follower_gets_it(vhost_url: str) -> None:
    await declare_once(vhost_url)
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel()
        follower = await channel.declare_queue("crm-bridge", exclusive=True)
        await follower.bind(topology.EVENTS_EXCHANGE, "handled.#")
        await publish_event(vhost_url, "handled.text", "followed")
        await publish_event(vhost_url, "media.stored", "nobody-follows")
        message = await follower.get(timeout=5)
        assert message.message_id == "followed"
        await message.ack()
    assert await drain(vhost_url, "wa.unroutable") == []
