"""Media worker benchmark: 100 KB images stored per second by one ``wapipe worker media``.

    python -m tests.bench.media_worker [--images 2000] [--rounds 3] [--size 102400]

Each round: the sandbox (core 1) and the ingress (core 1) run as processes; customers send
``--images`` images of ``--size`` bytes while no media worker runs, so ``wa.media`` fills; then
one media worker (core 0, default concurrency, SQLite) drains it. The rate is counted from the
first image stored to the last, off the worker's metrics; every image must be stored, byte
counts checked. In the same session, for comparison: the same look-ups and downloads by a bare
aiohttp loop at the same concurrency, the bytes thrown away (what the sandbox serves at most).
Appends to results/media_worker.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.ingress import machine, wait_ready
from tests.bench.report import publish
from tests.helpers import Broker, answers, free_port, wait_until
from tests.integration.worker_support import metric
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION as GRAPH_VERSION

RESULTS = Path(__file__).parent / "results" / "media_worker.md"
TOKEN = "bench-token"
SECRET = "bench-secret"
CONCURRENCY = 8  # the worker's default


def service(args: list[str], core: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", core, sys.executable, "-m", "wapipe", *args]
    return subprocess.Popen(command, env={**os.environ, **env})


async def send_images(sandbox: str, count: int, size: int) -> list[str]:
    async with aiohttp.ClientSession() as session:

        async def one(number: int) -> str:
            url = f"{sandbox}/_sandbox/customers/1555{number:07d}/messages"
            async with session.post(url, json={"type": "image", "size": size}) as response:
                response.raise_for_status()
                media_id: str = (await response.json())["media_id"]
                return media_id

        ids: list[str] = []
        for start in range(0, count, 100):
            ids += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 100))))
        return ids


async def bare_downloads(sandbox: str, media_ids: list[str]) -> float:
    """Seconds for look-up plus download of every id, CONCURRENCY at a time, bytes dropped."""
    slots = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(media_id: str) -> None:
            async with slots:
                async with session.get(f"{sandbox}/{GRAPH_VERSION}/{media_id}") as response:
                    info: dict[str, Any] = await response.json()
                async with session.get(info["url"]) as response:
                    async for _ in response.content.iter_chunked(256 * 1024):
                        pass

        started = time.monotonic()
        await asyncio.gather(*(one(media_id) for media_id in media_ids))
        return time.monotonic() - started


async def one_round(images: int, size: int, folder: Path) -> dict[str, float]:
    broker = Broker.local()
    with broker.vhost(f"wapipe-media-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        sandbox_port, ingress_port, metrics_port = free_port(), free_port(), free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": f"sqlite:///{folder / uuid.uuid4().hex}.db",
            "WAPIPE_MEDIA_DIR": str(folder / uuid.uuid4().hex),
            "WAPIPE_APP_SECRETS": SECRET,
            "WAPIPE_VERIFY_TOKEN": "bench",
            "WAPIPE_ACCESS_TOKEN": TOKEN,
            "WAPIPE_GRAPH_URL": sandbox,
            "WAPIPE_INGRESS_PORT": str(ingress_port),
            "WAPIPE_METRICS_PORT": str(metrics_port),
            "WAPIPE_LOG_LEVEL": "WARNING",
        }
        webhook = f"http://127.0.0.1:{ingress_port}/webhook"
        helpers = [
            service(["ingress"], "1", env),
            service(["sandbox", "--port", str(sandbox_port), "--webhook-url", webhook], "1", env),
        ]
        worker = None
        try:
            wait_ready(ingress_port)
            await wait_until(lambda: answers(f"{sandbox}/_sandbox/state"), timeout=20)
            ids = await send_images(sandbox, images, size)
            await wait_until(lambda: _queued(amqp_url, images), timeout=60, step=0.2)
            bare_s = await bare_downloads(sandbox, ids)
            worker = service(["worker", "media"], "0", env)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            worker_s = await _drain_time(metrics, images)
        finally:
            for process in [*helpers, *([worker] if worker else [])]:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    return {"worker": images / worker_s, "bare": images / bare_s}


async def _queued(amqp_url: str, count: int) -> bool:
    from tests.integration.worker_support import queue_depth

    return (await queue_depth(amqp_url, "wa.media"))[0] >= count


async def _drain_time(metrics: str, total: int) -> float:
    first_at = first_done = None
    while True:
        done = await metric(metrics, "wapipe_worker_stored_total") or 0
        now = time.monotonic()
        if done and first_at is None:
            first_at, first_done = now, done
        if done >= total:
            assert first_at is not None
            assert first_done is not None
            if first_done >= total:
                raise RuntimeError("all stored between two looks: use more --images")
            return (now - first_at) * total / (total - first_done)
        await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            runs.append(asyncio.run(one_round(args.images, args.size, Path(folder))))
            print(runs[-1], flush=True)
    worker = statistics.median(run["worker"] for run in runs)
    bare = statistics.median(run["bare"] for run in runs)
    text = "\n".join(
        [
            f"## {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
            "",
            f"Machine: {machine()}. {args.images} images of {args.size} bytes a round, "
            f"{args.rounds} rounds; the media worker (core 0, concurrency {CONCURRENCY}, SQLite, "
            "a folder store) drains a filled `wa.media`; sandbox and ingress on core 1.",
            "",
            "| run | median images/s | rounds |",
            "|---|---|---|",
            f"| wapipe worker media | {worker:,.0f} | "
            + ", ".join(f"{run['worker']:,.0f}" for run in runs)
            + " |",
            f"| bare aiohttp look-up + download, bytes dropped | {bare:,.0f} | "
            + ", ".join(f"{run['bare']:,.0f}" for run in runs)
            + " |",
            "",
            f"wapipe / bare: {worker / bare:.2f}x",
            "",
        ]
    )
    publish(
        RESULTS, "Media worker results", "tests.bench.media_worker", text, write=not args.no_write
    )


if __name__ == "__main__":
    main()
