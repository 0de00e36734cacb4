"""What one webhook's publish costs the ingress, in CPU µs, path by path (no HTTP in the way).

    python -m tests.bench.publish_cost [--rounds 3] [--events 15000]

32 concurrent publishers in one process on uvloop, against the local RabbitMQ (a vhost of its
own), each publishing one signed single-status webhook after another; the figure is the
process's CPU time over the events. The variants take the ingress's choices away one at a time:

    aio-pika          check the signature, Exchange.publish(aio_pika.Message(body)) of the raw body
    aiormq            the same through the aiormq channel underneath, basic_publish(wait=False)
    aiormq+timer      ... with a confirm timeout armed per publish (asyncio.timeout)
    wapipe+locks      signature, split_body, Publisher.publish_all (its deadlines: one shared
                      timer, not one per publish), counting with prometheus_client's metrics
    wapipe-gc         ... counting in plain ints, as the ingress does
    wapipe            ... with the garbage collector settled as `wapipe ingress` settles it

Appends medians to results/publish_cost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import aiormq
import uvloop
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tests.bench.ingress import machine
from tests.helpers import Broker, cloudapi_dir
from wapipe.ingress.app import settle_garbage_collector
from wapipe.ingress.metrics import IngressMetrics
from wapipe.ingress.publish import Publisher
from wapipe.ingress.split import split_body
from wapipe.shared import signature, topology

RESULTS = Path(__file__).parent / "results" / "publish_cost.md"
VARIANTS = ("aio-pika", "aiormq", "aiormq+timer", "wapipe+locks", "wapipe-gc", "wapipe")
CONCURRENCY = 32
SECRET = b"bench-app-secret"


def locked_metrics() -> Callable[[float], None]:
    """The ingress's counting as it was with prometheus_client's (locked) metrics."""
    registry = CollectorRegistry()
    requests = Counter("r", "r", ["outcome"], registry=registry).labels("ok")
    events = Counter("e", "e", ["kind"], registry=registry).labels("status")
    publish = Histogram("p", "p", registry=registry)
    in_flight = Gauge("i", "i", registry=registry)

    def count(seconds: float) -> None:
        in_flight.inc()
        publish.observe(seconds)
        events.inc()
        in_flight.dec()
        requests.inc()

    return count


async def measure(variant: str, amqp_url: str, body: bytes, events: int) -> float:
    header = signature.sign(SECRET, body)
    publisher = Publisher(amqp_url, "bench-publish-cost", confirm_timeout_s=2.0)
    await publisher.connect()
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE)
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    counters = IngressMetrics()
    locked = locked_metrics()

    def verified() -> None:
        digest = signature.parse(header)
        assert digest is not None
        assert signature.is_valid(digest, body, (SECRET,))

    async def raw(timeout_s: float | None) -> None:
        verified()
        await underlay.basic_publish(
            body,
            exchange=topology.EVENTS_EXCHANGE,
            routing_key="status.sent",
            properties=aiormq.spec.Basic.Properties(delivery_mode=2),
            mandatory=True,
            wait=False,
            timeout=timeout_s,
        )

    async def through_aio_pika() -> None:
        verified()
        await exchange.publish(aio_pika.Message(body, delivery_mode=2), "status.sent")

    async def wapipe(with_locks: bool) -> None:
        counters.in_flight += 1
        verified()
        split = split_body(body, time.time())
        started = time.perf_counter()
        await publisher.publish_all(split)
        if with_locks:
            locked(time.perf_counter() - started)
        else:
            counters.observe_publish(time.perf_counter() - started)
            counters.events["status"] += 1
            counters.in_flight -= 1
            counters.requests["ok"] += 1

    one: Callable[[], Awaitable[None]] = {
        "aio-pika": through_aio_pika,
        "aiormq": lambda: raw(None),
        "aiormq+timer": lambda: raw(2.0),
        "wapipe+locks": lambda: wapipe(True),
        "wapipe-gc": lambda: wapipe(False),
        "wapipe": lambda: wapipe(False),
    }[variant]

    async def publisher_loop(count: int) -> None:
        for _ in range(count):
            await one()

    thresholds = gc.get_threshold()
    if variant == "wapipe":
        settle_garbage_collector()
    try:
        cpu_before = time.process_time()
        await asyncio.gather(*(publisher_loop(events // CONCURRENCY) for _ in range(CONCURRENCY)))
        cpu_us = (time.process_time() - cpu_before) / (events // CONCURRENCY * CONCURRENCY) * 1e6
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    await connection.close()
    await publisher.close()
    return cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=15000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    broker = Broker.local()
    body = (cloudapi_dir() / "webhooks" / "status_sent.json").read_bytes()
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with broker.vhost(f"wapipe-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                cpu_us = uvloop.run(measure(variant, amqp_url, body, args.events))
                results[variant].append(cpu_us)
                print(f"{variant:14s} {cpu_us:6.1f} µs", flush=True)
    base = statistics.median(results["aio-pika"])
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. {args.events} events a run, {CONCURRENCY} concurrent "
        f"publishers, {args.rounds} rounds interleaved; medians of process CPU µs per event.",
        "",
        "| variant | CPU µs/event | vs aio-pika | runs |",
        "|---|---|---|---|",
    ]
    for variant, runs in results.items():
        median = statistics.median(runs)
        each = ", ".join(f"{run:.1f}" for run in runs)
        lines.append(f"| {variant} | {median:.1f} | {median / base:.2f} | {each} |")
    text = "\n".join([*lines, ""])
    print(text)
    if not args.no_write:
        with RESULTS.open("a") as results_file:
            results_file.write(text + "\n")


if __name__ == "__main__":
    main()
