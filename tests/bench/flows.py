"""The Flows endpoint under a steady request rate: latency and CPU per request, beside a bare
decrypt-and-encrypt loop measured in the same run (tests/bench/results/flows.md).

    python -m tests.bench.flows [--rates 50 200] [--duration 10] [--runs 3]

The ingress (POST /flows) runs on core 0, the flows worker (the booking example) and this load
generator on core 1, against the local RabbitMQ in a vhost of its own. Requests are sealed in
advance (each with its own AES key, as Meta's client makes them) and sent open-loop at the rate,
so a slow answer never slows the offered load. Two actions: ``ping``, answered by the endpoint
alone, and ``INIT``, answered by the handler through the broker. Meta's bar: a response in less
than 1 second (docs/cloudapi/flows.md, "Latency and health").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from tests.bench.ingress import cpu_seconds, machine, wait_ready
from tests.helpers import Broker, free_port
from wapipe.shared.flows import crypto, keys
from wapipe.shared.signature import HEADER, sign

SECRET = "bench-app-secret"
SERVER_CORE, WORKER_CORE = "0", "1"
BARE_ITERATIONS = 2000


@dataclass
class Run:
    action: str
    rate: int
    sent: int
    ok: int
    p50_ms: float
    p99_ms: float
    ingress_cpu_ms: float  # per request
    worker_cpu_ms: float


@contextmanager
def system(amqp_url: str, key_file: Path) -> Iterator[tuple[int, int, int]]:
    """The ingress and a flows worker; yields (port, ingress pid, worker pid)."""
    port = free_port()
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": amqp_url,
        "WAPIPE_APP_SECRETS": SECRET,
        "WAPIPE_VERIFY_TOKEN": "bench",
        "WAPIPE_LOG_LEVEL": "WARNING",
        "WAPIPE_FLOWS_PRIVATE_KEY_FILE": str(key_file),
        "WAPIPE_FLOW_HANDLERS": "wapipe.examples.booking_flow:handle",
        "WAPIPE_METRICS_PORT": str(free_port()),
        "WAPIPE_DATABASE_URL": f"sqlite:///{key_file.parent}/bench.db",
    }
    wapipe = [sys.executable, "-m", "wapipe"]
    ingress = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *wapipe, "ingress", "--port", str(port)], env=env
    )
    worker = subprocess.Popen(["taskset", "-c", WORKER_CORE, *wapipe, "worker", "flows"], env=env)
    try:
        wait_ready(port)
        time.sleep(2)  # the worker's consumer
        yield port, ingress.pid, worker.pid
    finally:
        for process in (ingress, worker):
            process.terminate()
            process.wait(timeout=20)


def sealed(public: RSAPublicKey, action: str, count: int) -> list[tuple[bytes, crypto.Session]]:
    request = {"version": "3.0", "action": action, "flow_token": "booking:bench"}
    made = []
    for _ in range(count):
        envelope, session = crypto.encrypt_request(json.dumps(request).encode(), public)
        made.append((crypto.envelope_encoder.encode(envelope), session))
    return made


async def load(port: int, requests: list[tuple[bytes, crypto.Session]], rate: int) -> list[float]:
    """Latencies (s) of the requests answered 200 and readable, sent ``rate`` a second."""
    url = f"http://127.0.0.1:{port}/flows"
    latencies: list[float] = []

    async def one(client: aiohttp.ClientSession, body: bytes, session: crypto.Session) -> None:
        headers = {HEADER: sign(SECRET.encode(), body), "Content-Type": "application/json"}
        started = time.perf_counter()
        async with client.post(url, data=body, headers=headers) as response:
            text = await response.text()
        if response.status == 200:
            crypto.decrypt_response(text, session)
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as client:
        start = time.perf_counter()
        tasks = []
        for number, (body, session) in enumerate(requests):
            delay = start + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, body, session)))
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def one_run(
    port: int,
    pids: tuple[int, int],
    public: RSAPublicKey,
    action: str,
    rate: int,
    duration_s: int,
) -> Run:
    requests = sealed(public, action, rate * duration_s)
    before = [cpu_seconds(pid) for pid in pids]
    latencies = asyncio.run(load(port, requests, rate))
    used = [cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True)]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Run(
        action,
        rate,
        len(requests),
        len(latencies),
        cuts[49] * 1000,
        cuts[98] * 1000,
        used[0] / len(requests) * 1000,
        used[1] / len(requests) * 1000,
    )


def bare_loop(private: RSAPrivateKey) -> tuple[float, float]:
    """CPU ms of one decrypt-then-encrypt, and of the RSA private-key operation alone."""
    requests = sealed(private.public_key(), "INIT", BARE_ITERATIONS)
    answer = json.dumps({"screen": "APPOINTMENT", "data": {}}).encode()
    envelopes = [crypto.envelope_decoder.decode(body) for body, _ in requests]
    started = time.process_time()
    for envelope in envelopes:
        _, session = crypto.decrypt_request(envelope, [private])
        crypto.encrypt_response(answer, session)
    whole_ms = (time.process_time() - started) / BARE_ITERATIONS * 1000
    wrapped = [base64.b64decode(e.encrypted_aes_key) for e in envelopes]
    started = time.process_time()
    for key in wrapped:
        private.decrypt(key, crypto.OAEP)
    rsa_ms = (time.process_time() - started) / BARE_ITERATIONS * 1000
    return whole_ms, rsa_ms


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def report(
    runs: list[Run], bare: list[tuple[float, float]], duration_s: int, load: tuple[float, float]
) -> str:
    whole = statistics.median(b[0] for b in bare)
    rsa = statistics.median(b[1] for b in bare)
    lines = [
        f"## Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{machine()}; `python -m tests.bench.flows {' '.join(sys.argv[1:])}` on commit "
        f"{_commit()}.",
        f"Each cell the median of {len(runs) // len({(r.action, r.rate) for r in runs})} runs of "
        f"{duration_s} s; the machine is shared with other work (load average {load[0]:.1f} "
        f"at the start, {load[1]:.1f} at the end, on {os.cpu_count()} cores), so read the "
        "ratios.",
        "",
        f"Bare loop (same run, same process, core {WORKER_CORE}): decrypt a request and encrypt "
        f"its answer **{whole:.3f} ms** CPU; the RSA-OAEP private-key operation alone "
        f"{rsa:.3f} ms ({rsa / whole:.0%} of it).",
        "",
        "| action | rate /s | answered | p50 ms | p99 ms | ingress CPU ms/req | "
        "ratio to bare loop | worker CPU ms/req | p99 under Meta's 1 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for action, rate in sorted({(r.action, r.rate) for r in runs}):
        cell = [r for r in runs if (r.action, r.rate) == (action, rate)]
        ingress_cpu = statistics.median(r.ingress_cpu_ms for r in cell)
        lines.append(
            f"| {action} | {rate} | {sum(r.ok for r in cell)}/{sum(r.sent for r in cell)} | "
            f"{statistics.median(r.p50_ms for r in cell):.1f} | "
            f"{statistics.median(r.p99_ms for r in cell):.1f} | {ingress_cpu:.2f} | "
            f"{ingress_cpu / whole:.1f} | {statistics.median(r.worker_cpu_ms for r in cell):.2f} | "
            f"{'yes' if statistics.median(r.p99_ms for r in cell) < 1000 else 'no'} |"
        )
    lines += [
        "",
        "Meta's bar is an answer in less than 1 second (Flow Health and Monitoring).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("tests/bench/results/flows.md"),
        help="the results file the run is appended to",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(WORKER_CORE)})
    load_at_start = os.getloadavg()[0]
    private = keys.generate()
    broker = Broker.local()
    with (
        tempfile.TemporaryDirectory() as folder,
        broker.vhost(f"bench-flows-{uuid.uuid4().hex[:8]}") as url,
    ):
        key_file = Path(folder) / "private.pem"
        key_file.write_bytes(keys.private_pem(private))
        runs, bare = [], []
        with system(url, key_file) as (port, ingress_pid, worker_pid):
            for _ in range(args.runs):
                bare.append(bare_loop(private))
                for rate in args.rates:
                    for action in ("ping", "INIT"):
                        run = one_run(
                            port,
                            (ingress_pid, worker_pid),
                            private.public_key(),
                            action,
                            rate,
                            args.duration,
                        )
                        print(run, flush=True)
                        runs.append(run)
    text = report(runs, bare, args.duration, (load_at_start, os.getloadavg()[0]))
    # Appended: the file keeps every run, each under its own heading.
    with args.out.open("a", encoding="utf-8") as out:
        out.write("\n" + text)
    print(text)


if __name__ == "__main__":
    main()
