"""The status worker against the real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from tests.conftest import IngressClient, postgres, with_settings
from tests.helpers import TcpProxy, drain, publish_raw, sample_bodies, status_webhook, wait_until
from tests.integration.worker_support import (
    count,
    metric,
    post_webhook,
    publish_bodies,
    queue_depth,
    running_worker,
)
from wapipe.ingress.split import split_body
from wapipe.shared import topology
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import status
from wapipe.workers.deadletters import replay
from wapipe.workers.main import Resources, WorkerKind
from wapipe.workers.runtime import DeadLetterHeader, Handler, Outcome


async def test_every_status_sample_is_stored_through_the_ingress(
    ingress: IngressClient, settings: Settings, database_url: str
) -> None:
    bodies = [path.read_bytes() for path in sample_bodies() if path.name.startswith("status_")]
    expected = {event.message_id for body in bodies for event in split_body(body, time.time())}
    settings = with_settings(settings, database_url=database_url)
    async with open_database(database_url) as engine, running_worker(status.KIND, settings):
        for body in bodies:
            assert await post_webhook(ingress, body) == 200
        await wait_until(lambda: _keys_are(engine, expected), timeout=10)
        async with engine.connect() as connection:
            failed = (
                await connection.execute(
                    select(schema.messages).where(schema.messages.c.failure_code == 131026)
                )
            ).one()
            priced = (
                await connection.execute(
                    select(
                        schema.statuses.c.pricing_billable,
                        schema.statuses.c.pricing_model,
                        schema.statuses.c.pricing_category,
                        schema.statuses.c.pricing_type,
                    ).where(schema.statuses.c.pricing_type == "free_customer_service")
                )
            ).one()
    # Each status keeps its own pricing, what the report charges by (cli/report/charges.py).
    assert tuple(priced) == (False, "PMP", "service", "free_customer_service")
    assert failed.status == "failed"
    assert failed.failure_title == "Message undeliverable"
    assert failed.failure_details == "Message Undeliverable."


async def _keys_are(engine: object, expected: set[str]) -> bool:
    async with engine.connect() as connection:  # type: ignore[attr-defined]
        keys = set((await connection.execute(select(schema.statuses.c.key))).scalars())
    return keys == expected


async def test_the_same_webhook_three_times_is_stored_once(
    ingress: IngressClient, settings: Settings, database_url: str
) -> None:
    body = status_webhook("wamid.THRICE", "delivered")
    settings = with_settings(settings, database_url=database_url)
    async with (
        open_database(database_url) as engine,
        running_worker(status.KIND, settings) as metrics,
    ):
        for _ in range(3):
            assert await post_webhook(ingress, body) == 200

        async def all_seen() -> bool:
            return await metric(metrics, "wapipe_worker_consumed_total") == 3

        await wait_until(all_seen, timeout=10)
        await wait_until(
            lambda: _metric_is(metrics, "wapipe_worker_duplicates_total", 2), timeout=10
        )
        assert await count(engine, schema.statuses) == 1
        assert await count(engine, schema.messages) == 1
        assert await metric(metrics, "wapipe_worker_stored_total") == 1


async def _metric_is(url: str, name: str, value: float) -> bool:
    return await metric(url, name) == value


class FailsOn:
    """The status handler, except that it fails on one message: a stand-in for any bug or
    constraint that a single event trips over, every time."""

    def __init__(self, inner: Handler, message_id: str) -> None:
        self._inner = inner
        self._message_id = message_id

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        if any(message.message_id == self._message_id for message in batch):
            raise RuntimeError(f"cannot store {self._message_id}")
        return await self._inner(batch)


def failing_on(message_id: str) -> WorkerKind:
    @asynccontextmanager
    async def handler(resources: Resources) -> AsyncIterator[Handler]:
        yield FailsOn(status.StatusHandler(resources.engine), message_id)

    return WorkerKind("status", status.QUEUE, 0, handler)


async def dead_letters(amqp_url: str, expected: int) -> list[AbstractIncomingMessage]:
    found: list[AbstractIncomingMessage] = []

    async def arrived() -> bool:
        found.extend(await drain(amqp_url, "wa.status.dlq"))
        return len(found) >= expected

    await wait_until(arrived, timeout=10)
    return found


async def test_a_poison_message_is_dead_lettered_after_its_attempts_and_the_rest_stored(
    settings: Settings, database_url: str
) -> None:
    bodies = [status_webhook(f"wamid.N{number}", "sent") for number in range(41)]
    poison_key = split_body(bodies[20], time.time())[0].message_id
    settings = with_settings(
        settings,
        database_url=database_url,
        worker_max_attempts=3,
        worker_retry_base_s=0.01,
        worker_batch_size=50,
    )
    async with (
        open_database(database_url) as engine,
        running_worker(failing_on(poison_key), settings) as metrics,
    ):
        await publish_bodies(settings.amqp_url, bodies)
        (dead,) = await dead_letters(settings.amqp_url, 1)

        async def stored_the_rest() -> bool:
            return await count(engine, schema.statuses) == 40

        await wait_until(stored_the_rest, timeout=10)
        assert await metric(metrics, "wapipe_worker_failures_total") == 3
        assert await metric(metrics, "wapipe_worker_dead_lettered_total") == 1
    assert dead.message_id == poison_key
    headers = dead.headers or {}
    assert headers[DeadLetterHeader.ERROR] == f"RuntimeError: cannot store {poison_key}"
    assert headers[DeadLetterHeader.ATTEMPTS] == 3
    assert headers[DeadLetterHeader.QUEUE] == "wa.status"
    assert headers[DeadLetterHeader.ROUTING_KEY] == "status.sent"
    assert json.loads(dead.body)["key"] == poison_key  # the event itself, unchanged


async def test_an_undecodable_event_is_dead_lettered_at_once_with_the_reason(
    settings: Settings, database_url: str
) -> None:
    settings = with_settings(settings, database_url=database_url, worker_max_attempts=5)
    undecodable = aio_pika.Message(
        b'{"v":1,"kind":"status","key":"bad","routing_key":"status.sent","field":"messages",'
        b'"waba_id":"1","received_at":1.0,"payload":{"status":"sent"}}',
        message_id="bad",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    async with running_worker(status.KIND, settings) as metrics:
        await publish_raw(
            settings.amqp_url, topology.EVENTS_EXCHANGE, [("status.sent", undecodable)]
        )
        (dead,) = await dead_letters(settings.amqp_url, 1)
        assert await metric(metrics, "wapipe_worker_failures_total") == 1
    headers = dead.headers or {}
    assert headers[DeadLetterHeader.ATTEMPTS] == 1
    assert "undecodable status event" in str(headers[DeadLetterHeader.ERROR])


async def test_a_database_outage_holds_the_events_until_it_ends(
    settings: Settings, postgres_url: str
) -> None:
    name = make_url(postgres_url).database
    settings = with_settings(
        settings, database_url=postgres_url, worker_max_attempts=2, worker_retry_max_s=0.2
    )
    async with running_worker(status.KIND, settings) as metrics:
        await postgres(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        try:
            await publish_bodies(
                settings.amqp_url, [status_webhook(f"wamid.O{n}", "read") for n in range(30)]
            )

            async def waiting() -> bool:
                return (await metric(metrics, "wapipe_worker_storage_unavailable_total") or 0) > 3

            await wait_until(waiting, timeout=20)
        finally:
            await postgres(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        async with open_database(postgres_url) as engine:

            async def stored() -> bool:
                return await count(engine, schema.statuses) == 30

            await wait_until(stored, timeout=20)
        assert await metric(metrics, "wapipe_worker_failures_total") == 0
        assert await metric(metrics, "wapipe_worker_dead_lettered_total") == 0
    assert await drain(settings.amqp_url, "wa.status.dlq") == []


async def test_a_lost_broker_connection_is_resumed_and_nothing_is_lost(
    settings: Settings, database_url: str
) -> None:
    target = URL(settings.amqp_url)
    sent = [status_webhook(f"wamid.R{n}", "sent") for n in range(1000)]
    read = [status_webhook(f"wamid.R{n}", "read") for n in range(1000)]
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        via_proxy = str(target.with_host("127.0.0.1").with_port(proxy.port))
        worker_settings = with_settings(settings, amqp_url=via_proxy, database_url=database_url)
        async with (
            open_database(database_url) as engine,
            running_worker(status.KIND, worker_settings) as metrics,
        ):
            await publish_bodies(settings.amqp_url, sent)
            await wait_until(lambda: _stored(engine, 1000), timeout=20)
            proxy.cut()

            async def consumer_gone() -> bool:
                return (await queue_depth(settings.amqp_url, "wa.status"))[1] == 0

            await wait_until(consumer_gone, timeout=10)
            await publish_bodies(settings.amqp_url, read)  # while the worker is cut off
            proxy.restore()
            await wait_until(lambda: _stored(engine, 2000), timeout=30)
            assert await metric(metrics, "wapipe_worker_dead_lettered_total") == 0
            async with engine.connect() as connection:
                states = (await connection.execute(select(schema.messages.c.status))).scalars()
                assert set(states) == {"read"}
    assert await drain(settings.amqp_url, "wa.status.dlq") == []


async def _stored(engine: AsyncEngine, expected: int) -> bool:
    return await count(engine, schema.statuses) == expected


class FailsFirst:
    """The status handler, failing the batch holding one message its first ``times`` calls."""

    def __init__(self, inner: Handler, message_id: str, times: int) -> None:
        self._inner = inner
        self._message_id = message_id
        self._left = times

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        if self._left and any(message.message_id == self._message_id for message in batch):
            if len(batch) == 1:
                self._left -= 1
            raise RuntimeError("not yet")
        return await self._inner(batch)


async def test_a_retry_in_flight_is_never_taken_by_a_multiple_ack(
    settings: Settings, database_url: str
) -> None:
    bodies = [status_webhook(f"wamid.M{number}", "sent") for number in range(3000)]
    slow_key = split_body(bodies[10], time.time())[0].message_id

    @asynccontextmanager
    async def handler(resources: Resources) -> AsyncIterator[Handler]:
        yield FailsFirst(status.StatusHandler(resources.engine), slow_key, times=2)

    kind = WorkerKind("status", status.QUEUE, 0, handler)
    settings = with_settings(
        settings, database_url=database_url, worker_retry_base_s=0.3, worker_batch_size=100
    )
    async with open_database(database_url) as engine, running_worker(kind, settings) as metrics:
        await publish_bodies(settings.amqp_url, bodies)
        await wait_until(lambda: _stored(engine, 3000), timeout=30)
        assert await metric(metrics, "wapipe_worker_failures_total") == 2
        assert await metric(metrics, "wapipe_worker_dead_lettered_total") == 0
        # Every ack was valid: a double ack would have closed the channel (and its consumer).
        assert await queue_depth(settings.amqp_url, "wa.status") == (0, 1)


STATUS_ORDERS = sorted(set(itertools.permutations(["sent", "delivered", "read", "read", "sent"])))


@pytest.mark.parametrize("batch_size", [1, 50])
async def test_statuses_through_the_broker_in_every_order_end_in_read_with_all_history(
    settings: Settings, database_url: str, batch_size: int
) -> None:
    bodies = [
        status_webhook(f"wamid.P{number}", status)
        for position in range(5)
        for number, order in enumerate(STATUS_ORDERS)
        for status in (order[position],)
    ]
    settings = with_settings(settings, database_url=database_url, worker_batch_size=batch_size)
    async with open_database(database_url) as engine, running_worker(status.KIND, settings):
        await publish_bodies(settings.amqp_url, bodies)
        await wait_until(lambda: _stored(engine, 3 * len(STATUS_ORDERS)), timeout=20)

        async def all_read() -> bool:
            async with engine.connect() as connection:
                states = (await connection.execute(select(schema.messages.c.status))).scalars()
                return list(states) == ["read"] * len(STATUS_ORDERS)

        await wait_until(all_read, timeout=10)
        async with engine.connect() as connection:
            history = (
                await connection.execute(select(schema.statuses.c.wamid, schema.statuses.c.status))
            ).all()
    assert sorted(history) == sorted(
        (f"wamid.P{number}", status)
        for number in range(len(STATUS_ORDERS))
        for status in ("sent", "delivered", "read")
    )


async def test_a_dead_letter_replayed_once_the_fault_is_fixed_is_stored(
    settings: Settings, database_url: str
) -> None:
    bodies = [status_webhook(f"wamid.F{number}", "delivered") for number in range(5)]
    poison_key = split_body(bodies[2], time.time())[0].message_id
    settings = with_settings(
        settings, database_url=database_url, worker_max_attempts=2, worker_retry_base_s=0.01
    )
    async with open_database(database_url) as engine:
        async with running_worker(failing_on(poison_key), settings):
            await publish_bodies(settings.amqp_url, bodies)

            async def dead_lettered() -> bool:
                return await queue_depth(settings.amqp_url, "wa.status.dlq") == (1, 0)

            await wait_until(dead_lettered, timeout=10)
            assert await count(engine, schema.statuses) == 4
        async with running_worker(status.KIND, settings):  # the fault fixed: a new release
            assert await replay(settings.amqp_url, "wa.status") == 1
            await wait_until(lambda: _stored(engine, 5), timeout=10)
    assert await queue_depth(settings.amqp_url, "wa.status.dlq") == (0, 0)
