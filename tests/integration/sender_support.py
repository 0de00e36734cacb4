"""What the sender's tests share: a sandbox with an ingress in front of wapipe, jobs to publish,
the outbound events to follow, the sandbox's counts to read."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from tests.conftest import IngressClient, start_ingress, with_settings
from tests.helpers import free_port, wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    SECRET,
    TOKEN,
    SandboxClient,
    phone_number_id,
    start_sandbox,
)
from tests.integration.worker_support import metric
from wapipe.sandbox.keys import WORLD
from wapipe.sandbox.state import RequestRecord
from wapipe.shared import topology
from wapipe.shared.schemas.jobs import Job, SendJob, encode_job, routing_key, text_message
from wapipe.shared.schemas.outbound import (
    OutboundAccepted,
    OutboundEvent,
    OutboundFailed,
    outbound_decoder,
)
from wapipe.shared.settings import Settings


@dataclass
class System:
    sandbox: SandboxClient
    settings: Settings  # a sender's
    number: str  # the sandbox business's phone number id

    def customers(self, count: int, prefix: str = "1555") -> list[str]:
        """``count`` customers who wrote lately (their 24-hour window open)."""
        world = self.sandbox.app[WORLD]
        found = []
        for n in range(count):
            wa_id = f"{prefix}{n:07d}"
            customer = world.customers.get(wa_id) or world.add_customer(wa_id, f"Customer {n}")
            customer.last_inbound_at = world.clock.now()
            found.append(wa_id)
        return found

    async def counts(self) -> dict[str, Any]:
        response = await self.sandbox.get("/_sandbox/counts")
        counts: dict[str, Any] = (await response.json())[self.number]
        return counts

    async def fault(self, **fault: Any) -> None:
        response = await self.sandbox.post("/_sandbox/faults", json=fault)
        assert response.status == 200, await response.text()

    def sends(self) -> list[Any]:
        """What the sandbox accepted, oldest first."""
        return list(self.sandbox.app[WORLD].sent.values())

    def text(self, to: str = CUSTOMER, body: str = "hello", **job: Any) -> SendJob:
        job.setdefault("idempotency_key", str(uuid.uuid4()))
        return SendJob(phone_number_id=self.number, to=to, message=text_message(body), **job)


@asynccontextmanager
async def sandbox_system(
    settings: Settings, database_url: str, **sandbox_config: Any
) -> AsyncIterator[System]:
    """An ingress taking the sandbox's webhooks (so statuses reach wa.events), the sandbox,
    and settings for a sender against it."""
    settings = with_settings(settings, app_secrets=(SECRET,), database_url=database_url)
    ingress: IngressClient = await start_ingress(settings)
    sandbox = await start_sandbox(str(ingress.make_url("/webhook")), **sandbox_config)
    sender = with_settings(
        settings,
        graph_url=str(sandbox.make_url("")).rstrip("/"),
        access_token=TOKEN,
        graph_timeout_s=5.0,
        sender_pause_s=0.5,
        worker_retry_base_s=0.01,
    )
    system = System(sandbox, sender, phone_number_id(sandbox))
    sandbox.app[WORLD].customers[CUSTOMER].last_inbound_at = sandbox.app[WORLD].clock.now()
    try:
        yield system
    finally:
        await sandbox.close()
        await ingress.close()


async def publish_jobs(amqp_url: str, jobs: Iterable[Job | bytes], number: str = "") -> None:
    """Each job to wa.outbound, confirmed (bytes: a body as is, routed to ``number``)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await topology.declare(channel)
        exchange = await channel.get_exchange(topology.OUTBOUND_EXCHANGE)
        for job in jobs:
            body = job if isinstance(job, bytes) else encode_job(job)
            key = routing_key(number if isinstance(job, bytes) else job.phone_number_id)
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=key,
                mandatory=True,
            )


@dataclass
class Follower:
    """Every ``outbound.*`` event, as it comes."""

    events: list[OutboundEvent] = field(default_factory=list)

    async def take(self, message: AbstractIncomingMessage) -> None:
        self.events.append(outbound_decoder.decode(message.body))
        await message.ack()

    def accepted(self, key: str | None = None) -> list[OutboundAccepted]:
        return [
            e
            for e in self.events
            if isinstance(e, OutboundAccepted) and (key is None or e.key == key)
        ]

    def failed(self, key: str | None = None) -> list[OutboundFailed]:
        return [
            e
            for e in self.events
            if isinstance(e, OutboundFailed) and (key is None or e.key == key)
        ]

    def done(self, keys: Sequence[str]) -> bool:
        ended = {e.key for e in self.events}
        return all(key in ended for key in keys)

    async def until_done(self, keys: Sequence[str], within_s: float = 30) -> None:
        async def done() -> bool:
            return self.done(keys)

        await wait_until(done, timeout=within_s)


@asynccontextmanager
async def following(amqp_url: str) -> AsyncIterator[Follower]:
    follower = Follower()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await topology.declare(channel)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(topology.EVENTS_EXCHANGE, "outbound.#")
        await queue.consume(follower.take)
        yield follower


def requests_to_messages(system: System) -> list[RequestRecord]:
    """The sends the sandbox received (answered or refused), oldest first."""
    return [
        r
        for r in system.sandbox.app[WORLD].requests
        if r.method == "POST" and r.path.endswith("/messages")
    ]


def sender_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``wapipe worker sender`` process with these settings."""
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": settings.amqp_url,
        "WAPIPE_DATABASE_URL": settings.database_url,
        "WAPIPE_GRAPH_URL": settings.graph_url,
        "WAPIPE_ACCESS_TOKEN": settings.access_token,
        "WAPIPE_SENDER_PAIR_INTERVAL_S": str(settings.sender_pair_interval_s),
        "WAPIPE_SENDER_PAIR_BURST": str(settings.sender_pair_burst),
        "WAPIPE_SENDER_RATE_PER_S": str(settings.sender_rate_per_s),
        "WAPIPE_LOG_FORMAT": "json",
        **extra,
    }
    env.pop("WAPIPE_ACCESS_TOKEN_FILE", None)
    return env


@asynccontextmanager
async def sender_process(
    settings: Settings, log: Path, port: int | None = None, **extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``wapipe worker sender`` as a process of its own (its metrics on ``port``, if given), up
    (its metrics answer) when yielded; killed at the end if it still runs."""
    port = port or free_port()
    env = sender_env(settings, WAPIPE_METRICS_PORT=str(port), **extra)
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wapipe", "worker", "sender", env=env, stderr=output
        )
    try:

        async def up() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"the sender exited: {tail(log)}")
            return (
                await metric(f"http://127.0.0.1:{port}/metrics", "wapipe_sender_held") is not None
            )

        await wait_until(up, timeout=30)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]
