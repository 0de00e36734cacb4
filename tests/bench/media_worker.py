"""Media worker benchmark: 100 KB images stored per second by one ``wapipe worker media``.

    python -m tests.bench.media_worker [--images 2000] [--rounds 3] [--size 102400]
                                       [--code DIR] [--profile]

Each round: the sandbox (core 1) and the ingress (core 1) run as processes; customers send
``--images`` images of ``--size`` bytes while no media worker runs, so ``wa.media`` fills; then
one media worker (core 0, default concurrency, SQLite) drains it. The rate is counted from the
first image stored to the last, off the worker's metrics; every image must be stored, byte
counts checked. In the same session, for comparison: the same look-ups and downloads by a bare
aiohttp loop at the same concurrency, the bytes thrown away (what the sandbox serves at most).
Besides the rates, the CPU per image of each (the worker's from /proc/<pid>/stat over the drain,
the loop's from this process's own CPU time): steadier than rates on a shared machine.

``--code DIR`` runs another checkout's worker (DIR/.venv/bin/wapipe) in every round too, by turns
with this tree's: a before and after. ``--profile`` samples the worker with py-spy
(``pip install py-spy``) over its drain and prints the top entries. Appends to
results/media_worker.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
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

from tests.bench.ingress import cpu_seconds, machine, wait_ready
from tests.bench.ingress_profile import tops
from tests.bench.report import positive_int, publish
from tests.helpers import Broker, answers, free_port, wait_until
from tests.integration.worker_support import metric
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION as GRAPH_VERSION

RESULTS = Path(__file__).parent / "results" / "media_worker.md"
TOKEN = "bench-token"
SECRET = "bench-secret"
CONCURRENCY = 8  # the worker's default


THIS_TREE: tuple[str, ...] = (sys.executable, "-m", "wapipe")


def service(
    args: list[str], core: str, env: dict[str, str], wapipe: tuple[str, ...] = THIS_TREE
) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", core, *wapipe, *args]
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


async def bare_downloads(sandbox: str, media_ids: list[str]) -> tuple[float, float]:
    """Seconds and CPU seconds for look-up plus download of every id, CONCURRENCY at a time,
    bytes dropped."""
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

        started, cpu_before = time.monotonic(), time.process_time()
        await asyncio.gather(*(one(media_id) for media_id in media_ids))
        return time.monotonic() - started, time.process_time() - cpu_before


async def one_round(
    images: int,
    size: int,
    folder: Path,
    wapipe: tuple[str, ...] = THIS_TREE,
    profile: Path | None = None,
    media: Path | None = None,
) -> dict[str, float]:
    broker = Broker.local()
    with broker.vhost(f"wapipe-media-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        sandbox_port, ingress_port, metrics_port = free_port(), free_port(), free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": f"sqlite:///{folder / uuid.uuid4().hex}.db",
            "WAPIPE_MEDIA_DIR": str((media or folder) / uuid.uuid4().hex),
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
            bare_s, bare_cpu_s = await bare_downloads(sandbox, ids)
            worker = service(["worker", "media"], "0", env, wapipe)
            metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            worker_s, worker_cpu_s = await _drain_time(metrics, images, worker.pid, profile)
        finally:
            for process in [*helpers, *([worker] if worker else [])]:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    return {
        "worker": images / worker_s,
        "bare": images / bare_s,
        "worker_cpu_ms": worker_cpu_s * 1000 / images,
        "bare_cpu_ms": bare_cpu_s * 1000 / images,
    }


async def _queued(amqp_url: str, count: int) -> bool:
    from tests.integration.worker_support import queue_depth

    return (await queue_depth(amqp_url, "wa.media"))[0] >= count


async def _drain_time(
    metrics: str, total: int, pid: int, profile: Path | None
) -> tuple[float, float]:
    """Seconds and the worker's CPU seconds for ``total`` images, from the first stored to the
    last (scaled up to all); with ``profile``, py-spy samples the worker over that stretch."""
    first_at = first_done = None
    first_cpu = 0.0
    spy = None
    while True:
        done = await metric(metrics, "wapipe_worker_stored_total") or 0
        now, cpu = time.monotonic(), cpu_seconds(pid)
        if done and first_at is None:
            first_at, first_done, first_cpu = now, done, cpu
            if profile is not None:
                spy = _py_spy(pid, profile)
        if done >= total:
            assert first_at is not None
            assert first_done is not None
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
                spy.wait(timeout=60)
            if first_done >= total:
                raise RuntimeError("all stored between two looks: use more --images")
            scale = total / (total - first_done)
            return (now - first_at) * scale, (cpu - first_cpu) * scale
        await asyncio.sleep(0.05)


def _py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", "250"]
    return subprocess.Popen(
        ["taskset", "-c", "1", *command, "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=positive_int, default=2000)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--size", type=positive_int, default=100 * 1024)
    parser.add_argument("--code", type=Path, metavar="DIR", help="another checkout, by turns")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker's drains")
    parser.add_argument(
        "--top", type=positive_int, default=20, help="entries of the profile printed"
    )
    parser.add_argument(
        "--media-dir",
        type=Path,
        help="where the stores go (default: a temporary folder; /dev/shm: a tmpfs, the disk out)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    codes = {"wapipe worker media": THIS_TREE}
    if args.code:
        command = args.code.resolve() / ".venv" / "bin" / "wapipe"
        if not command.exists():
            raise SystemExit(f"{command} is missing: run `make .venv/bin/wapipe` in {args.code}")
        codes[f"worker media of {args.code.resolve().name}"] = (str(command),)
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in codes}
    profiles: dict[str, list[str]] = {label: [] for label in codes}
    with (
        tempfile.TemporaryDirectory() as folder,
        tempfile.TemporaryDirectory(dir=args.media_dir) as media,
    ):
        for round_number in range(args.rounds):
            # By turns, the first code first in odd rounds, last in even ones.
            order = list(codes) if round_number % 2 == 0 else list(codes)[::-1]
            for label in order:
                profile = Path(folder) / f"{uuid.uuid4().hex}.txt" if args.profile else None
                run = asyncio.run(
                    one_round(
                        args.images, args.size, Path(folder), codes[label], profile, Path(media)
                    )
                )
                runs[label].append(run)
                if profile is not None and profile.exists():
                    profiles[label].append(profile.read_text())
                print(label, run, flush=True)
    text = report(args, runs)
    if args.profile:
        for label, raws in profiles.items():
            print(f"\nprofile: {label} (py-spy, the drains of every round)")
            print(tops("\n".join(raws), args.top))
    publish(
        RESULTS, "Media worker results", "tests.bench.media_worker", text, write=not args.no_write
    )


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]]) -> str:
    def median(label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[label])

    def each(label: str, key: str, form: str) -> str:
        return ", ".join(format(run[key], form) for run in runs[label])

    everything = [run for label_runs in runs.values() for run in label_runs]
    bare = statistics.median(run["bare"] for run in everything)
    bare_cpu = statistics.median(run["bare_cpu_ms"] for run in everything)
    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        "",
        f"Machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        " at the end."
        f" {args.images} images of {args.size} bytes a round, "
        f"{args.rounds} rounds; the media worker (core 0, concurrency {CONCURRENCY}, SQLite, "
        f"a folder store{' under ' + str(args.media_dir) if args.media_dir else ''}) drains a "
        "filled `wa.media`; sandbox and ingress on core 1"
        + (", the codes by turns" if len(runs) > 1 else "")
        + ". CPU: the worker's over its drain, the bare loop's own; medians.",
        "",
        "| run | median images/s | CPU ms/image | rounds (images/s) | rounds (CPU ms/image) |",
        "|---|---|---|---|---|",
    ]
    for label in runs:
        lines.append(
            f"| {label} | {median(label, 'worker'):,.0f} | {median(label, 'worker_cpu_ms'):.2f} | "
            f"{each(label, 'worker', ',.0f')} | {each(label, 'worker_cpu_ms', '.2f')} |"
        )
    lines += [
        f"| bare aiohttp look-up + download, bytes dropped | {bare:,.0f} | {bare_cpu:.2f} | "
        f"{', '.join(format(run['bare'], ',.0f') for run in everything)} | "
        f"{', '.join(format(run['bare_cpu_ms'], '.2f') for run in everything)} |",
        "",
    ]
    for label in runs:
        # The ratios within each round (the bare loop beside the worker), then their median.
        rate = statistics.median(run["worker"] / run["bare"] for run in runs[label])
        cpu = statistics.median(run["worker_cpu_ms"] / run["bare_cpu_ms"] for run in runs[label])
        lines.append(f"- {label} / bare: {rate:.2f}x the rate, {cpu:.2f}x the CPU per image")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
