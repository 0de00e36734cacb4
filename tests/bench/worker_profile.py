"""One worker at a steady rate: its CPU per event, and where it goes (cProfile).

    python -m tests.bench.worker_profile message [--rate 50] [--duration 20] [--profile]

Publishes events to ``wa.events`` at ``--rate``/s (open loop) for ``--duration`` s: inbound texts
for the message worker (the example bot answers each: examples/echo_bot.py), statuses for the
status worker, on SQLite. Prints the worker's CPU per event (/proc/<pid>/stat) from the first
event to the last; with ``--profile`` the worker runs under cProfile (about twice the CPU: read
its shares, not its times) and the top entries are printed. Nothing is written to results/.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

from tests.bench.cost_anchors import paced_publish
from tests.bench.ingress import cpu_seconds
from tests.bench.status_worker import database
from tests.helpers import Broker, answers, free_port, wait_until
from tests.integration.worker_support import as_messages, metric
from wapipe.examples import echo_bot
from wapipe.ingress.split import split_body
from wapipe.sandbox.load import Target, webhook_body
from wapipe.shared import topology

KIND = {"message": "text", "status": "status"}


def events(kind: str, count: int) -> list[tuple[str, aio_pika.Message]]:
    target, now = Target("http://unused", "unused"), time.time()
    bodies = [webhook_body(KIND[kind], target, number, now) for number in range(count)]
    return as_messages([event for body in bodies for event in split_body(body, now)])


async def run(kind: str, rate: float, duration_s: float, profile: Path | None) -> None:
    broker = Broker.local()
    with (
        tempfile.TemporaryDirectory() as folder,
        broker.vhost(f"wapipe-profile-{uuid.uuid4().hex[:8]}") as amqp_url,
    ):
        await topology.declare_at(amqp_url)
        port = free_port()
        env = {
            **os.environ,
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": await database("sqlite", Path(folder)),
            "WAPIPE_METRICS_PORT": str(port),
            "WAPIPE_MESSAGE_HANDLERS": f"{echo_bot.__name__}:handle",
            "WAPIPE_LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "wapipe", "worker", kind]
        if profile:
            command = [
                sys.executable,
                "-m",
                "tests.bench.worker_profile",
                kind,
                "--child",
                str(profile),
            ]
        process = subprocess.Popen(command, env=env)  # noqa: ASYNC220 - a benchmark's child
        metrics = f"http://127.0.0.1:{port}/metrics"
        try:
            await wait_until(lambda: answers(metrics), timeout=30, step=0.2)
            messages = events(kind, int(rate * duration_s))
            cpu_from = cpu_seconds(process.pid)
            await paced_publish(amqp_url, messages, rate)

            async def done() -> bool:
                seen = await metric(metrics, "wapipe_worker_consumed_total")
                return seen is not None and seen >= len(messages)

            await wait_until(done, timeout=60, step=0.2)
            cpu_s = cpu_seconds(process.pid) - cpu_from
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    print(f"{kind} worker: {len(messages)} events at {rate:.0f}/s, ", end="")
    print(f"CPU {cpu_s * 1000 / len(messages):.3f} ms an event")


def profiled_worker(kind: str, out: Path) -> None:
    """The worker under cProfile timed by CPU, not the wall clock: a worker waits most of the
    time, and wall-clock times would charge its waits to whatever awaited."""
    profiler = cProfile.Profile(time.process_time)
    sys.argv = ["wapipe", "worker", kind]
    profiler.enable()
    try:
        runpy.run_module("wapipe", run_name="__main__")
    except SystemExit:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(str(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(KIND))
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        profiled_worker(args.kind, args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        profile = Path(folder) / "worker.prof" if args.profile else None
        asyncio.run(run(args.kind, args.rate, args.duration, profile))
        if profile:
            stats = pstats.Stats(str(profile))
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
