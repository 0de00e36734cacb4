"""End to end: the sandbox's load mode -> ingress -> RabbitMQ -> status worker -> database.

    python -m tests.bench.end_to_end [--rate 1000] [--duration 60] [--backends sqlite,postgresql]

Load mode (this process) sends signed status webhooks at ``--rate`` for ``--duration`` seconds,
open loop, to a ``wapipe ingress`` process (core 1); one ``wapipe worker status`` process (core 0)
stores them. Then: every webhook answered 200 must be in the database, once; and the time from
the ingress's receipt (``received_at``) to the worker's write (``stored_at``, taken as the batch's
transaction starts; its commit follows within the batch's processing time, also reported) gives
the latency percentiles. Appends to results/end_to_end.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.ingress import machine, wait_ready
from tests.bench.report import publish
from tests.bench.status_worker import database, rabbitmq_version, stored_distinct
from tests.conftest import postgres
from tests.helpers import Broker, free_port, wait_until
from tests.integration.worker_support import metric
from wapipe.sandbox.load import Target, parse_mix, run_load
from wapipe.shared.storage.database import create_engine

RESULTS = Path(__file__).parent / "results" / "end_to_end.md"
SECRET = "bench-app-secret"


def service(args: list[str], core: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", core, sys.executable, "-m", "wapipe", *args]
    return subprocess.Popen(command, env={**os.environ, **env})


async def stored_rows(url: str) -> list[tuple[float, float]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql("SELECT received_at, stored_at FROM statuses")
            rows: list[Any] = list(result)
            return [(float(received), float(stored)) for received, stored in rows]
    finally:
        await engine.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def one_run(backend: str, rate: float, duration: float, folder: Path) -> dict[str, Any]:
    broker = Broker.local()
    with broker.vhost(f"wapipe-e2e-{uuid.uuid4().hex[:8]}") as amqp_url:
        url = await database(backend, folder)
        ingress_port, metrics_port = free_port(), free_port()
        env = {
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": url,
            "WAPIPE_APP_SECRETS": SECRET,
            "WAPIPE_VERIFY_TOKEN": "bench",
            "WAPIPE_INGRESS_PORT": str(ingress_port),
            "WAPIPE_METRICS_PORT": str(metrics_port),
            "WAPIPE_LOG_LEVEL": "WARNING",
        }
        ingress = service(["ingress"], "1", env)
        worker = service(["worker", "status"], "0", env)
        try:
            wait_ready(ingress_port)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"

            async def worker_up() -> bool:
                return await metric(metrics, "wapipe_worker_consumed_total") is not None

            await wait_until(worker_up, timeout=30, step=0.1)
            target = Target(f"http://127.0.0.1:{ingress_port}/webhook", SECRET)
            report = await run_load(target, rate, duration, parse_mix("status=1"), seed=1)
            accepted = report.answered.get("200", 0)

            async def all_stored() -> bool:
                return await stored_distinct(url) >= accepted

            await wait_until(all_stored, timeout=60, step=0.2)
            processing = await histogram_p99(metrics, "wapipe_worker_processing_seconds")
        finally:
            for process in (ingress, worker):
                process.send_signal(signal.SIGTERM)
            for process in (ingress, worker):
                process.wait(timeout=30)
        rows = await stored_rows(url)
        if backend == "postgresql":
            await postgres(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    latencies = [stored - received for received, stored in rows]
    return {
        "backend": backend,
        "offered": report.offered,
        "answered": dict(report.answered),
        "elapsed_s": round(report.elapsed_s, 2),
        "stored": len(rows),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "processing_p99_le_s": processing,
    }


async def histogram_p99(url: str, name: str) -> float | None:
    """The upper bound of the bucket holding the 99th percentile of a worker histogram."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    buckets = [
        (float(sample.labels["le"]), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    ]
    if not buckets:
        return None
    total = buckets[-1][1]
    return next((bound for bound, seen in buckets if seen >= 0.99 * total), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            runs.append(asyncio.run(one_run(backend, args.rate, args.duration, Path(folder))))
            print(runs[-1], flush=True)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; RabbitMQ {rabbitmq_version()}. Load mode (status webhooks, "
        f"signed, fresh wamids) at {args.rate:.0f}/s for {args.duration:.0f} s -> `wapipe "
        "ingress` (core 1) -> `wa.status` -> one `wapipe worker status` (core 0).",
        "",
        "| database | offered | answered | stored | receipt->write p50 ms | p99 ms | max ms | "
        "batch processing p99 <= s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['backend']} | {run['offered']} | {run['answered']} | {run['stored']} | "
            f"{run['p50_ms']} | {run['p99_ms']} | {run['max_ms']} | "
            f"{run['processing_p99_le_s']} |"
        )
    text = "\n".join(lines) + "\n"
    publish(RESULTS, "End-to-end results", "tests.bench.end_to_end", text, write=not args.no_write)


if __name__ == "__main__":
    main()
