"""The message worker against the real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import IngressClient, with_settings
from tests.helpers import drain, sample_bodies, wait_until
from tests.integration import handlers
from tests.integration.worker_support import count, metric, post_webhook, running_worker
from wapipe.ingress.split import split_body
from wapipe.shared import topology
from wapipe.shared.schemas.jobs import MarkReadJob, SendJob, job_decoder, text_message
from wapipe.shared.settings import Settings, SettingsError
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import message
from wapipe.workers.message import load_handlers

HANDLER = "tests.integration.handlers:record"


def sample(name: str) -> bytes:
    return next(path for path in sample_bodies() if path.name == name).read_bytes()


def text_webhook(wamid: str, body: str) -> bytes:
    value = json.loads(sample("message_text.json"))
    change = value["entry"][0]["changes"][0]["value"]
    change["messages"][0].update(id=wamid, text={"body": body})
    return json.dumps(value).encode()


async def rows(engine: AsyncEngine) -> dict[str, dict[str, object]]:
    async with engine.connect() as connection:
        result = await connection.execute(select(schema.messages))
        return {row.wamid: dict(row._mapping) for row in result}


@pytest.fixture
def worker_settings(settings: Settings, database_url: str) -> Settings:
    handlers.CALLS.clear()
    return with_settings(
        settings,
        database_url=database_url,
        message_handlers=(HANDLER,),
        worker_retry_base_s=0.01,
        worker_max_attempts=2,
    )


@pytest.fixture
async def engine(worker_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with open_database(worker_settings.database_url) as opened:
        yield opened


async def test_every_message_sample_is_stored_with_its_details(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    bodies = [path.read_bytes() for path in sample_bodies() if path.name.startswith("message_")]
    wamids = {
        json.loads(event.body)["key"]
        for body in bodies
        for event in split_body(body, time.time())
        if event.kind == "message"
    }
    async with running_worker(message.KIND, worker_settings):
        for body in bodies:
            assert await post_webhook(ingress, body) == 200

        async def all_stored() -> bool:
            return set(await rows(engine)) == wamids

        await wait_until(all_stored, timeout=15)
        await wait_until(lambda: set(handlers.CALLS) == wamids, timeout=10)
    stored = await rows(engine)
    by_body = {name: json.loads(sample(name)) for name in ("message_text_reply_context.json",)}
    reply = stored["wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0003QjE3RjA5QkQ1NkQzRgA="]
    assert reply["context_wamid"] == "wamid.HBgLMTYzMTU1NTExODEVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA=="
    assert reply["context_from"] == "15550101234"
    assert reply["direction"] == "in"
    assert reply["type"] == "text"
    assert reply["wa_id"] == "16315551181"
    assert reply["handled_at"] is not None
    assert (
        json.loads(str(reply["payload"]))
        == (
            by_body["message_text_reply_context.json"]["entry"][0]["changes"][0]["value"][
                "messages"
            ][0]
        )
    )
    forwarded = stored["wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0004QjE3RjA5QkQ1NkQzRgA="]
    assert (forwarded["forwarded"], forwarded["frequently_forwarded"]) == (True, True)
    ad = stored["wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0005QjE3RjA5QkQ1NkQzRgA="]
    assert json.loads(str(ad["referral"]))["source_type"] == "ad"
    unsupported = stored["wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0025QjE3RjA5QkQ1NkQzRgA="]
    assert json.loads(str(unsupported["errors"]))[0]["code"] == 131051
    types = {row["type"] for row in stored.values()}
    assert {"text", "image", "audio", "location", "interactive", "reaction", "order"} <= types

    async with engine.connect() as connection:
        contacts = {
            row.contact_id: row for row in await connection.execute(select(schema.contacts))
        }
    assert contacts["16315551181"].profile_name == "Kerry Fisher"
    assert contacts["16315551181"].user_id == "US.13491208655302741918"
    username = contacts["BR.88120034561209871123"]
    assert (username.wa_id, username.profile_name) == (None, "Joana Reis")


async def test_the_same_message_three_times_is_stored_and_handled_once(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    body = text_webhook("wamid.ONCE", "hello")
    async with running_worker(message.KIND, worker_settings) as metrics:
        for _ in range(3):
            assert await post_webhook(ingress, body) == 200

        async def seen_all() -> bool:
            return await metric(metrics, "wapipe_worker_duplicates_total") == 2

        await wait_until(seen_all, timeout=10)
    assert handlers.CALLS == ["wamid.ONCE"]
    assert await count(engine, schema.messages) == 1


async def test_a_reply_goes_out_as_a_send_job_and_a_handled_event_follows(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    settings = with_settings(worker_settings, mark_read=True)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection, running_worker(message.KIND, settings):
        channel = await connection.channel()
        follower = await channel.declare_queue("crm-bridge", exclusive=True)
        await follower.bind(topology.EVENTS_EXCHANGE, "handled.#")
        sent = await follow_jobs(channel)
        assert await post_webhook(ingress, text_webhook("wamid.ECHO", "echo hi there")) == 200
        handled = await _next(follower)
        assert handled.routing_key == "handled.text"
        assert handled.message_id == "wamid.ECHO"
        assert json.loads(handled.body)["key"] == "wamid.ECHO"
        jobs = [job_decoder.decode(job.body) for job in await _take(sent, 2)]
    reply, read = jobs
    assert isinstance(reply, SendJob)
    assert reply.idempotency_key == "reply:wamid.ECHO:0"
    assert (reply.to, reply.reply_to) == ("16315551181", "wamid.ECHO")
    assert reply.message == text_message("hi there")
    assert isinstance(read, MarkReadJob)
    assert (read.idempotency_key, read.message_id) == ("read:wamid.ECHO", "wamid.ECHO")


async def _take(
    queue: aio_pika.abc.AbstractQueue, count: int
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def got() -> bool:
        if (message := await queue.get(fail=False, no_ack=True)) is not None:
            received.append(message)
        return len(received) >= count

    await wait_until(got, timeout=10)
    return received


async def _next(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    return (await _take(queue, 1))[0]


async def follow_jobs(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
    """A queue of the test's own on wa.outbound: every send job, whichever queues the sender
    keeps them in."""
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(topology.OUTBOUND_EXCHANGE, "send.#")
    return queue


async def test_a_failing_handler_dead_letters_its_message_and_publishes_nothing_for_it(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    connection = await aio_pika.connect(worker_settings.amqp_url)
    async with connection, running_worker(message.KIND, worker_settings) as metrics:
        sent = await follow_jobs(await connection.channel())
        for wamid, text in (("wamid.A", "echo one"), ("wamid.B", "boom"), ("wamid.C", "echo two")):
            assert await post_webhook(ingress, text_webhook(wamid, text)) == 200

        async def dead_lettered() -> bool:
            return await metric(metrics, "wapipe_worker_dead_lettered_total") == 1

        await wait_until(dead_lettered, timeout=10)
        jobs = [job_decoder.decode(job.body) for job in await _take(sent, 2)]
    [dead] = await drain(worker_settings.amqp_url, "wa.message.dlq")
    assert dead.message_id == "wamid.B"
    assert sorted(job.idempotency_key for job in jobs) == ["reply:wamid.A:0", "reply:wamid.C:0"]
    stored = await rows(engine)
    assert set(stored) == {"wamid.A", "wamid.B", "wamid.C"}  # stored, whatever the logic did
    assert stored["wamid.B"]["handled_at"] is None


async def test_a_batch_whose_handler_fails_midway_hands_every_other_message_on_once(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    connection = await aio_pika.connect(worker_settings.amqp_url)
    async with connection:
        sent = await follow_jobs(await connection.channel())
        # Queued before the worker starts: they come to it as one batch.
        for wamid, text in (("wamid.A", "echo one"), ("wamid.B", "boom"), ("wamid.C", "echo two")):
            assert await post_webhook(ingress, text_webhook(wamid, text)) == 200
        async with running_worker(message.KIND, worker_settings) as metrics:

            async def dead_lettered() -> bool:
                return await metric(metrics, "wapipe_worker_dead_lettered_total") == 1

            await wait_until(dead_lettered, timeout=10)  # C was retried before B's last try
            jobs = [job_decoder.decode(job.body) for job in await _take(sent, 2)]
        assert await sent.get(fail=False) is None  # no answer went out twice
    assert [handlers.CALLS.count(wamid) for wamid in ("wamid.A", "wamid.C")] == [1, 1]
    assert sorted(job.idempotency_key for job in jobs) == ["reply:wamid.A:0", "reply:wamid.C:0"]
    stored = await rows(engine)
    assert [stored[w]["handled_at"] is not None for w in ("wamid.A", "wamid.B", "wamid.C")] == [
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("tests.integration.handlers:missing", "cannot load"),
        ("no.such.module:handle", "cannot load"),
        ("tests.integration.handlers:not_async", "is not an async function"),
    ],
)
def test_a_handler_that_cannot_be_used_is_refused_at_start(name: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_handlers([name])
