"""Ingress benchmark: signed single-status webhooks over loopback, wapipe against two references.

    make bench-ingress            (or: python -m tests.bench.ingress --rounds 3 --duration 15)

Each server runs alone on core 0 (taskset), wrk drives it from core 1 with a fixed number of
connections (full load), or with ``--rate N`` a paced client does, N requests a second
(tests/bench/pace.py: the low rates where fixed costs per wake-up show); RabbitMQ runs where the
OS puts it. Servers measured, interleaved round by round:

    bare          an aiohttp handler that only answers 200: the ceiling
    publish-only  check the signature, publish the raw body, await the confirm (on uvloop): the
                  floor of any design that publishes each webhook, with nothing else done
    naive         the ingress's job written straightforwardly with aio-pika: each event
                  built with `json` and published, awaiting each confirm in turn
    wapipe        `wapipe ingress`
    wapipe@REF    `wapipe ingress` as of the git commit REF (``--baseline REF``): a change's
                  before and after, measured interleaved in one session

(see servers.py)

Every run uses a fresh vhost; after each wapipe or naive run the queue depth is checked against
the number of 200s the load saw, so a fast run that lost messages cannot pass unnoticed. Prints
medians and ratios and appends them, with the machine and the date, to results/ingress.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

from tests.bench.report import positive_float, positive_int
from tests.helpers import Broker, cloudapi_dir, free_port
from wapipe.shared.signature import sign

SECRET = "bench-app-secret"
RESULTS = Path(__file__).parent / "results" / "ingress.md"
SERVER_CORE, LOAD_CORE = "0", "1"
KINDS = ("bare", "publish-only", "naive", "wapipe")


@dataclass(frozen=True)
class Run:
    kind: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU time per request: steadier than the rate on a noisy machine
    requests: int
    errors: int
    published: int  # 200s over warm-up and run: what the queue must hold
    queued: int | None


def wrk_script(body: bytes) -> str:
    escaped = body.decode().replace("\\", "\\\\").replace('"', '\\"')
    return (
        'wrk.method = "POST"\n'
        f'wrk.body = "{escaped}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["X-Hub-Signature-256"] = "{sign(SECRET.encode(), body)}"\n'
    )


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
        ):
            conn.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if conn.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready within {timeout} s")


# kind "wapipe@REF" -> the source tree of REF (its src/, put first on PYTHONPATH)
BASELINES: dict[str, Path] = {}


def export_baseline(ref: str, into: Path) -> str:
    """Check out ``ref``'s tree under ``into`` (git archive: the work tree is left alone) and
    register it as the kind ``wapipe@<ref>``."""
    archive = subprocess.run(["git", "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    kind = f"wapipe@{ref}"
    BASELINES[kind] = into / "src"
    return kind


# kind "wapipe@DIR" -> DIR/.venv/bin/wapipe: another checkout with its own venv (``--code DIR``)
CHECKOUTS: dict[str, Path] = {}


def add_checkout(folder: Path) -> str:
    """Register another checkout's ``wapipe`` (made by ``make .venv/bin/wapipe`` there) as the
    kind ``wapipe@<folder name>``: a tree whose dependencies or layout differ from this one's."""
    command = folder.resolve() / ".venv" / "bin" / "wapipe"
    if not command.exists():
        raise SystemExit(f"{command} is missing: run `make .venv/bin/wapipe` in {folder}")
    kind = f"wapipe@{folder.resolve().name}"
    CHECKOUTS[kind] = command
    return kind


@contextlib.contextmanager
def server(kind: str, port: int, amqp_url: str) -> Iterator[int]:
    if kind in CHECKOUTS:
        command = [str(CHECKOUTS[kind]), "ingress", "--port", str(port)]
    elif kind == "wapipe" or kind in BASELINES:
        command = [sys.executable, "-m", "wapipe", "ingress", "--port", str(port)]
    else:
        command = [
            sys.executable,
            "-m",
            "tests.bench.servers",
            kind,
            "--port",
            str(port),
            "--amqp-url",
            amqp_url,
            "--secret",
            SECRET,
        ]
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": amqp_url,
        "WAPIPE_APP_SECRETS": SECRET,
        "WAPIPE_VERIFY_TOKEN": "bench",
        "WAPIPE_LOG_LEVEL": "WARNING",
    }
    if kind in BASELINES:
        env["PYTHONPATH"] = str(BASELINES[kind])
    process = subprocess.Popen(["taskset", "-c", SERVER_CORE, *command], env=env)
    try:
        wait_ready(port)
        yield process.pid  # taskset execs the server: same pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    port: int, script: Path, connections: int, duration_s: int, core: str = LOAD_CORE
) -> tuple[float, float, float, int, int]:
    """Requests/s, p50 ms, p99 ms, requests and errors of one wrk run pinned to ``core``."""
    output = subprocess.run(
        [
            "taskset",
            "-c",
            core,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/webhook",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(errors_match.group(1)) if errors_match else 0
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    p50 = _latency_ms(output, "50%")
    p99 = _latency_ms(output, "99%")
    return rps, p50, p99, total, errors


def paced(
    port: int,
    rate: float,
    connections: int,
    duration_s: int,
    chain: int = 1,
    core: str = LOAD_CORE,
) -> tuple[float, float, float, int, int]:
    """As ``wrk``, but ``rate`` requests a second, ``chain`` at a time one after another
    (tests/bench/pace.py), on ``core``."""
    body = _body()
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        output = subprocess.run(
            [
                "taskset",
                "-c",
                core,
                sys.executable,
                "-m",
                "tests.bench.pace",
                f"http://127.0.0.1:{port}/webhook",
                body_file.name,
                sign(SECRET.encode(), body),
                f"--rate={rate}",
                f"--duration={duration_s}",
                f"--connections={connections}",
                f"--chain={chain}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    outcome = json.loads(output)
    return (
        outcome["rps"],
        outcome["p50_ms"],
        outcome["p99_ms"],
        int(outcome["requests"]),
        int(outcome["errors"]),
    )


def _latency_ms(output: str, percentile: str) -> float:
    found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output)
    assert found, output
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def one_run(
    kind: str,
    broker: Broker,
    script: Path,
    connections: int,
    duration_s: int,
    rate: float | None = None,
    chain: int = 1,
) -> Run:
    with broker.vhost(f"wapipe-bench-{uuid.uuid4().hex[:8]}") as amqp_url:
        subprocess.run(
            [sys.executable, "-m", "wapipe", "topology"],
            check=True,
            env={**os.environ, "WAPIPE_AMQP_URL": amqp_url, "WAPIPE_LOG_LEVEL": "WARNING"},
        )
        port = free_port()
        with server(kind, port, amqp_url) as pid:
            if rate is None:
                warm_up = wrk(port, script, connections, 2)  # not counted, but published
                cpu_before = cpu_seconds(pid)
                rps, p50, p99, total, errors = wrk(port, script, connections, duration_s)
            else:
                warm_up = paced(port, rate, connections, 2, chain)
                cpu_before = cpu_seconds(pid)
                rps, p50, p99, total, errors = paced(port, rate, connections, duration_s, chain)
            cpu_us = (cpu_seconds(pid) - cpu_before) / max(total, 1) * 1e6
        published = warm_up[3] - warm_up[4] + total - errors
        queued = None if kind == "bare" else asyncio.run(_queue_depth(amqp_url, "wa.status"))
        return Run(kind, rps, p50, p99, cpu_us, total, errors, published, queued)


async def _queue_depth(amqp_url: str, queue: str) -> int:
    # A passive declare counts exactly (the management API's figures lag by seconds).
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def report(
    runs: list[Run],
    connections: int,
    duration_s: int,
    rate: float | None = None,
    chain: int = 1,
) -> str:
    kinds = list(dict.fromkeys(run.kind for run in runs))  # in the order they ran
    by_kind = {kind: [run for run in runs if run.kind == kind] for kind in kinds}
    med = {
        kind: (
            statistics.median(r.rps for r in rs),
            statistics.median(r.p50_ms for r in rs),
            statistics.median(r.p99_ms for r in rs),
            statistics.median(r.cpu_us for r in rs),
        )
        for kind, rs in by_kind.items()
    }
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Server pinned to core {SERVER_CORE}, the load to core {LOAD_CORE} "
        + (
            f"(wrk, 1 thread, {connections} connections"
            if rate is None
            else f"(paced at {rate:g} requests/s"
            + (f" in chains of {chain}" if chain > 1 else "")
            + f", tests/bench/pace.py, {connections} connections"
        )
        + f", {duration_s} s a run after a 2 s warm-up); "
        f"body: one signed `status_sent.json` ({len(_body())} bytes). "
        f"{len(runs) // len(kinds)} rounds, interleaved; medians.",
        "",
        "| server | accepted/s | p50 ms | p99 ms | server CPU µs/request | runs (accepted/s) |",
        "|---|---|---|---|---|---|",
    ]
    for kind, rs in by_kind.items():
        rps, p50, p99, cpu_us = med[kind]
        each = ", ".join(f"{r.rps:.0f}" for r in rs)
        lines.append(f"| {kind} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {cpu_us:.0f} | {each} |")
    for ours in (kind for kind in kinds if kind.startswith("wapipe")):
        lines.append("")
        lines += [
            f"- {ours} / {kind}: {med[ours][0] / med[kind][0]:.2f}x the rate, "
            f"{med[ours][3] / med[kind][3]:.2f}x the CPU per request"
            for kind in kinds
            if kind != ours
        ]
    lines += [
        "",
        "Checks (every confirmed webhook is in wa.status): "
        + "; ".join(
            f"{r.kind} {r.errors} errors, {r.queued} queued of {r.published}"
            for r in runs
            if r.queued is not None
        ),
        "",
    ]
    return "\n".join(lines)


def _body() -> bytes:
    return (cloudapi_dir() / "webhooks" / "status_sent.json").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--duration", type=positive_int, default=15, help="seconds per run")
    parser.add_argument("--connections", type=positive_int, default=32)
    parser.add_argument(
        "--rate",
        type=positive_float,
        help="requests a second, paced (tests/bench/pace.py), instead of wrk's full load",
    )
    parser.add_argument(
        "--chain",
        type=positive_int,
        default=1,
        help="with --rate: requests K at a time, each once the one before is answered "
        "(as the sandbox posts a message's statuses)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--kinds", default=",".join(KINDS), help="servers to run, comma-separated")
    parser.add_argument(
        "--baseline", metavar="REF", help="also run `wapipe ingress` as of this git commit"
    )
    parser.add_argument(
        "--code",
        type=Path,
        metavar="DIR",
        help="also run another checkout's `wapipe ingress` (DIR/.venv/bin/wapipe)",
    )
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if args.code:
        kinds.insert(
            kinds.index("wapipe") if "wapipe" in kinds else len(kinds), add_checkout(args.code)
        )
    baseline_dir = tempfile.TemporaryDirectory(prefix="wapipe-baseline-")
    if args.baseline:
        kinds.insert(
            kinds.index("wapipe") if "wapipe" in kinds else len(kinds),
            export_baseline(args.baseline, Path(baseline_dir.name)),
        )

    broker = Broker.local()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(_body()))
    runs = []
    for round_number in range(args.rounds):
        for kind in kinds:
            run = one_run(
                kind,
                broker,
                Path(script.name),
                args.connections,
                args.duration,
                args.rate,
                args.chain,
            )
            print(f"round {round_number + 1} {run}", flush=True)
            runs.append(run)
    text = report(runs, args.connections, args.duration, args.rate, args.chain)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a") as results:
            results.write(text + "\n")
    baseline_dir.cleanup()


if __name__ == "__main__":
    main()
