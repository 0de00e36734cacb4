"""Status worker benchmark: status events/s one ``wapipe worker status`` process stores.

    python -m tests.bench.status_worker [--events 60000] [--rounds 3] [--backends sqlite,postgresql]

Each round pre-fills ``wa.status`` (in a vhost of its own) with ``--events`` status events: a
third of that many messages, each sent, delivered and read, shuffled, 5 % of them repeated.
Then one worker process, pinned to core 0, drains it into a fresh database; the rate is counted
from the first event stored to the last (start-up excluded), read off the worker's metrics; the
database is checked to hold every distinct event once. In the same session, for comparison: a
bare aio-pika consumer (same prefetch, decodes the event and the status, one multiple-ack per
batch, stores nothing) on the same kind of queue: the ceiling that the broker and decoding leave.
Appends to results/status_worker.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import msgspec

from tests.bench.ingress import machine
from tests.bench.report import publish
from tests.conftest import POSTGRES_ADMIN_URL, postgres
from tests.helpers import Broker, free_port, publish_raw, status_webhook
from tests.integration.worker_support import as_messages, metric
from wapipe.ingress.split import split_body
from wapipe.shared import topology
from wapipe.shared.schemas.events import event_decoder
from wapipe.shared.schemas.webhook import Status
from wapipe.shared.storage.database import create_engine, migrate

RESULTS = Path(__file__).parent / "results" / "status_worker.md"
BATCH = 500  # the worker's default


@dataclass(frozen=True)
class Run:
    what: str
    events: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.events / self.elapsed_s


def events_for(count: int, seed: int) -> list[tuple[str, aio_pika.Message]]:
    rng = random.Random(seed)
    bodies = [
        status_webhook(f"wamid.B{seed}.{number}", status, conversation_id=f"conv-{number}")
        for number in range(count // 3)
        for status in ("sent", "delivered", "read")
    ]
    rng.shuffle(bodies)
    repeats = rng.sample(bodies, len(bodies) // 20)
    bodies = bodies[: count - len(repeats)] + repeats
    rng.shuffle(bodies)
    now = time.time()
    return as_messages([event for body in bodies for event in split_body(body, now)])


async def prefill(amqp_url: str, messages: list[tuple[str, aio_pika.Message]]) -> None:
    await topology.declare_at(amqp_url)
    await publish_raw(amqp_url, topology.EVENTS_EXCHANGE, messages)


async def database(backend: str, folder: Path, *, migrated: bool = True) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"
    else:
        name = f"wapipe_bench_{uuid.uuid4().hex[:10]}"
        await postgres(f'CREATE DATABASE "{name}"')
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    if migrated:
        engine = create_engine(url)
        await migrate(engine)  # before the clock starts, as a deploy job would
        await engine.dispose()
    return url


async def stored_distinct(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql("SELECT count(*) FROM statuses")
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def drain_rate(metrics: str, total: int, process: subprocess.Popen[bytes]) -> float:
    """Seconds from the first event handled to the last, read off the worker's metrics."""
    first_at = first_count = None
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        done = (await metric(metrics, "wapipe_worker_stored_total") or 0) + (
            await metric(metrics, "wapipe_worker_duplicates_total") or 0
        )
        now = time.monotonic()
        if done and first_at is None:
            first_at, first_count = now, done
        if done >= total:
            assert first_at is not None
            assert first_count is not None
            return (total - first_count) / (now - first_at)
        await asyncio.sleep(0.2)  # a scrape costs the worker CPU: not too often


async def worker_round(broker: Broker, backend: str, events: int, seed: int, folder: Path) -> Run:
    messages = events_for(events, seed)
    keys = {message.message_id for _, message in messages}
    with broker.vhost(f"wapipe-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        await prefill(amqp_url, messages)
        url = await database(backend, folder)
        port = free_port()
        env = {
            **os.environ,
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": url,
            "WAPIPE_METRICS_PORT": str(port),
            "WAPIPE_LOG_LEVEL": "WARNING",
        }
        command = ["taskset", "-c", "0", sys.executable, "-m", "wapipe", "worker", "status"]
        process = subprocess.Popen(command, env=env)  # noqa: ASYNC220 - a benchmark's child
        try:
            rate = await drain_rate(f"http://127.0.0.1:{port}/metrics", len(messages), process)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        stored = await stored_distinct(url)
        if backend == "postgresql":
            await postgres(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    if stored != len(keys):
        raise RuntimeError(f"stored {stored} distinct events, expected {len(keys)}")
    return Run(f"wapipe worker status, {backend}", len(messages), len(messages) / rate)


def bare_consumer(amqp_url: str, total: int) -> None:
    """The comparison: consume, decode event and status, ack every BATCH; store nothing."""
    status_decoder = msgspec.json.Decoder(Status)

    async def consume() -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=2 * BATCH)
            queue = await channel.declare_queue("wa.status", passive=True)
            seen = 0
            started = None
            async with queue.iterator() as messages:
                async for message in messages:
                    started = started or time.monotonic()
                    status_decoder.decode(event_decoder.decode(message.body).payload)
                    seen += 1
                    if seen % BATCH == 0 or seen == total:
                        await message.ack(multiple=True)
                    if seen == total:
                        break
            assert started is not None
            print(f"{(time.monotonic() - started)}")

    asyncio.run(consume())


async def bare_round(broker: Broker, events: int, seed: int) -> Run:
    messages = events_for(events, seed)
    with broker.vhost(f"wapipe-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        await prefill(amqp_url, messages)
        command = ["taskset", "-c", "0", sys.executable, "-m", "tests.bench.status_worker"]
        output = subprocess.run(  # noqa: ASYNC221 - nothing else runs meanwhile
            [*command, "--bare-consumer", amqp_url, "--events", str(len(messages))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return Run(
        f"bare aio-pika consumer (decode, ack per {BATCH}, no storage)",
        len(messages),
        float(output),
    )


def report(runs: list[Run], events: int, rounds: int) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Worker (or bare consumer) pinned to core 0; RabbitMQ "
        f"{rabbitmq_version()} and PostgreSQL on the machine, unpinned. {events} events a round "
        f"(5 % repeats), {rounds} rounds, interleaved; batch {BATCH}, prefetch {2 * BATCH}.",
        "",
        "| run | median events/s | rounds (events/s) |",
        "|---|---|---|",
    ]
    medians: dict[str, float] = {}
    for what in dict.fromkeys(run.what for run in runs):
        rates = [run.rate for run in runs if run.what == what]
        medians[what] = statistics.median(rates)
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        lines.append(f"| {what} | {medians[what]:,.0f} | {shown} |")
    bare = next((rate for what, rate in medians.items() if what.startswith("bare")), None)
    if bare:
        lines.append("")
        for what, rate in medians.items():
            if not what.startswith("bare"):
                lines.append(f"- {what}: {rate / bare:.2f}x of the bare consumer")
    return "\n".join(lines) + "\n"


def rabbitmq_version() -> str:
    try:
        overview = Broker.local().api("GET", "/overview")
        return str(overview.get("rabbitmq_version", "?"))
    except OSError:
        return "?"


async def bench(events: int, rounds: int, backends: list[str]) -> list[Run]:
    broker = Broker.local()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as folder:
        for number in range(rounds):
            for backend in backends:
                runs.append(await worker_round(broker, backend, events, number, Path(folder)))
                print(f"{runs[-1].what}: {runs[-1].rate:,.0f}/s", flush=True)
            runs.append(await bare_round(broker, events, number))
            print(f"{runs[-1].what}: {runs[-1].rate:,.0f}/s", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--bare-consumer", metavar="AMQP_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_consumer:
        bare_consumer(args.bare_consumer, args.events)
        return
    os.sched_setaffinity(0, {1})  # the bench's own polling stays off the worker's core
    runs = asyncio.run(bench(args.events, args.rounds, args.backends.split(",")))
    text = report(runs, args.events, args.rounds)
    publish(
        RESULTS, "Status worker results", "tests.bench.status_worker", text, write=not args.no_write
    )


if __name__ == "__main__":
    main()
