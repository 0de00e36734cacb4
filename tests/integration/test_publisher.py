"""The job publisher against the real RabbitMQ, in a vhost of the test's own."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aio_pika
import msgspec
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, ExchangeType

from tests.helpers import wait_until
from wapipe.cli.send import register, run_send
from wapipe.shared.publisher import JobPublisher, JobUnroutable, PublishError
from wapipe.shared.schemas.content import Text
from wapipe.shared.schemas.jobs import MarkReadJob, SendJob, TextMessage, job_decoder, text_message
from wapipe.shared.settings import Settings
from wapipe.shared.topology import OUTBOUND_EXCHANGE

NUMBER = "109876000001"


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(OUTBOUND_EXCHANGE, ExchangeType.TOPIC, durable=True)
        yield channel


async def bound_queue(channel: aio_pika.abc.AbstractChannel, key: str) -> AbstractQueue:
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(OUTBOUND_EXCHANGE, key)
    return queue


async def take(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    received: list[AbstractIncomingMessage] = []

    async def got() -> bool:
        if (message := await queue.get(fail=False, no_ack=True)) is not None:
            received.append(message)
        return len(received) >= count

    await wait_until(got, timeout=5)
    return received


async def test_a_published_job_arrives_whole_with_its_properties(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    queue = await bound_queue(channel, "send.#")
    sent = SendJob(
        idempotency_key="order-42",
        phone_number_id=NUMBER,
        to="16315551181",
        message=text_message("Your order has shipped"),
        callback_data="order:42",
        metadata={"order": "42"},
    )
    read = MarkReadJob(idempotency_key="read:1", phone_number_id=NUMBER, message_id="wamid.IN")
    async with JobPublisher(settings, name="test-publisher") as jobs:
        await jobs.publish(sent)
        await jobs.publish(read)
    first, second = await take(queue, 2)
    assert job_decoder.decode(first.body) == sent
    assert job_decoder.decode(second.body) == read
    assert first.routing_key == f"send.{NUMBER}"
    assert first.message_id == "order-42"
    assert first.content_type == "application/json"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT


async def test_a_job_no_queue_takes_raises_unroutable(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    await bound_queue(channel, "send.999")  # another number's
    job = SendJob(idempotency_key="k", phone_number_id=NUMBER, to="1", message=text_message("a"))
    async with JobPublisher(settings) as jobs:
        with pytest.raises(JobUnroutable, match=f"routing key 'send.{NUMBER}'"):
            await jobs.publish(job)


async def test_a_job_breaking_the_contract_is_not_published(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> None:
    queue = await bound_queue(channel, "send.#")
    too_long = TextMessage(text=Text(body="x" * 4097))
    job = SendJob(idempotency_key="k", phone_number_id=NUMBER, to="1", message=too_long)
    async with JobPublisher(settings) as jobs:
        with pytest.raises(msgspec.ValidationError, match="length <= 4096"):
            await jobs.publish(job)
        await jobs.publish(msgspec.structs.replace(job, message=text_message("ok")))
    [only] = await take(queue, 1)
    assert job_decoder.decode(only.body) == msgspec.structs.replace(job, message=text_message("ok"))
    assert await queue.get(fail=False, no_ack=True) is None  # both publishes were confirmed


async def test_a_missing_exchange_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(PublishError, match="wapipe topology"):
        async with JobPublisher(settings):
            pass


async def test_wapipe_send_publishes_the_job_it_describes(
    settings: Settings, channel: aio_pika.abc.AbstractChannel, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = await bound_queue(channel, "send.#")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    argv = ["send", "text", "--from", NUMBER, "--to", "16315551181", "--body", "hi", "--key", "k1"]
    # run_send runs its own event loop, as the command does: in a thread, beside this one.
    assert await asyncio.to_thread(run_send, settings, parser.parse_args(argv)) == 0
    [message] = await take(queue, 1)
    job = job_decoder.decode(message.body)
    assert job == SendJob(
        idempotency_key="k1", phone_number_id=NUMBER, to="16315551181", message=text_message("hi")
    )
    assert f"published k1 to send.{NUMBER}" in capsys.readouterr().out
