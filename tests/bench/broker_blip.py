"""A broker blip under load: how long after the link returns do webhooks get 200 again?

    python -m tests.bench.broker_blip [--rate 400] [--cuts 3] [--cut-s 4] [--label after]
                                      [--code DIR]   (DIR's services: DIR/.venv/bin/wapipe)

`wapipe ingress` (core 1) and `wapipe worker status` (core 0) reach RabbitMQ through a TCP proxy
in this process; this process also sends signed status webhooks at ``--rate``, open loop. Every
``--gap-s`` seconds the proxy cuts the link (every connection closed, new ones refused) for
``--cut-s`` seconds. For each cut, measured from the moment the link is back:

    first 200    the first request answered 200 after the return
    last 503     the last request answered 503 (its answer's time)
    consumed     the worker's first message consumed after the return (its metrics, polled
                 every 20 ms), and when it consumed at the offered rate again (a second of
                 consumption at 90 % of the rate or more)
    reconnect    the ingress's "broker reconnected" log line (aio-pika calls it once every
                 channel is restored)

and the 503s answered around the cut. Appends medians to results/broker_blip.md. Every webhook
answered 200 must be stored once (checked at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from tests.bench.ingress import machine
from tests.bench.report import publish
from tests.bench.status_worker import rabbitmq_version, stored_distinct
from tests.helpers import Broker, TcpProxy, free_port, status_webhook, wait_until
from tests.helpers import answers as answers_ok
from tests.integration.worker_support import metric
from wapipe.shared.signature import HEADER, sign

RESULTS = Path(__file__).parent / "results" / "broker_blip.md"
SECRET = "bench-app-secret"
POLL_S = 0.02


@dataclass
class Answers:
    """Every request's answer: (monotonic time of the answer, HTTP status or 0 for no answer)."""

    seen: list[tuple[float, int]] = field(default_factory=list)
    sent: int = 0


@dataclass
class Consumption:
    """The worker's consumed total over time: (monotonic time, total)."""

    samples: list[tuple[float, float]] = field(default_factory=list)


async def offer(url: str, rate: float, stop: asyncio.Event, answers: Answers) -> None:
    """Signed status webhooks at ``rate``, open loop, each with a fresh wamid."""
    connector = aiohttp.TCPConnector(limit=500)
    timeout = aiohttp.ClientTimeout(total=30)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> None:
            body = status_webhook(f"wamid.B{n}", "sent")
            try:
                async with session.post(
                    url, data=body, headers={HEADER: sign(SECRET.encode(), body)}
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            answers.seen.append((time.monotonic(), status))

        started = time.monotonic()
        while not stop.is_set():
            due = started + answers.sent / rate
            if (wait_s := due - time.monotonic()) > 0:
                await asyncio.sleep(wait_s)  # pacing the offered load
            task = asyncio.create_task(one(answers.sent))
            answers.sent += 1
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


async def watch_consumption(url: str, stop: asyncio.Event, consumption: Consumption) -> None:
    while not stop.is_set():
        value = await metric(url, "wapipe_worker_consumed_total")
        if value is not None:
            consumption.samples.append((time.monotonic(), value))
        await asyncio.sleep(POLL_S)  # polling a metrics page


async def follow_log(stream: asyncio.StreamReader, lines: list[tuple[float, str]]) -> None:
    """The ingress's JSON log lines, each with the monotonic time it was read."""
    while line := await stream.readline():
        try:
            message = json.loads(line).get("msg", "")
        except ValueError:
            continue
        lines.append((time.monotonic(), message))


def measure_cut(
    back_at: float,
    cut_at: float,
    until: float,
    rate: float,
    answers: Answers,
    consumption: Consumption,
    log: list[tuple[float, str]],
) -> dict[str, Any]:
    after = [(t, status) for t, status in answers.seen if back_at <= t < until]
    first_200 = next((t for t, status in sorted(after) if status == 200), None)
    around = [(t, s) for t, s in answers.seen if cut_at <= t < until]
    last_503 = max((t for t, s in around if s == 503), default=None)
    totals = [(t, v) for t, v in consumption.samples if cut_at <= t < until]
    at_return = max((v for t, v in totals if t <= back_at), default=0.0)
    first_consumed = next((t for t, v in totals if t >= back_at and v > at_return), None)
    full_rate = next(
        (
            t
            for t, v in totals
            if t >= back_at
            and any(t2 >= t + 1.0 and v2 - v >= 0.9 * rate * (t2 - t) for t2, v2 in totals)
        ),
        None,
    )
    reconnect = next((t for t, m in log if t >= back_at and m == "broker reconnected"), None)

    def since(moment: float | None) -> float | None:
        return None if moment is None else round(moment - back_at, 2)

    return {
        "first_200_s": since(first_200),
        "last_503_s": since(last_503),
        "first_consumed_s": since(first_consumed),
        "consuming_at_rate_s": since(full_rate),
        "ingress_reconnected_s": since(reconnect),
        "answered_503": sum(1 for _, s in around if s == 503),
        "not_answered": sum(1 for _, s in around if s == 0),
    }


class ProxyProcess:
    """tests/helpers.py's TcpProxy in a process of its own, so that the load this process
    offers cannot slow the link down: SIGUSR1 cuts it, SIGUSR2 restores it."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process, self.port = process, port

    @classmethod
    async def start(cls, host: str, port: int) -> ProxyProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.broker_blip",
            "--serve-proxy",
            f"{host}:{port}",
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        return cls(process, int(await process.stdout.readline()))

    def cut(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def restore(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    async def stop(self) -> None:
        self.process.terminate()
        await self.process.wait()


async def serve_proxy(target: str) -> None:
    host, port = target.rsplit(":", 1)
    async with TcpProxy(host, int(port)) as proxy:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, proxy.cut)
        loop.add_signal_handler(signal.SIGUSR2, proxy.restore)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print(proxy.port, flush=True)
        await stop.wait()


@contextlib.contextmanager
def patient_vhost(broker: Broker, name: str) -> Iterator[str]:
    """Broker.vhost, waiting as long as a busy broker takes to make one (tens of seconds were
    seen on a shared machine)."""
    credentials = f"{broker.amqp_url.user}:{broker.amqp_url.password}".encode()

    def call(method: str, path: str, body: object | None = None) -> None:
        request = urllib.request.Request(
            str(broker.management_url / "api") + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"content-type": "application/json"},
        )
        request.add_header("authorization", "Basic " + base64.b64encode(credentials).decode())
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()

    call("PUT", f"/vhosts/{name}")
    try:
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        call("PUT", f"/permissions/{name}/{broker.amqp_url.user}", permissions)
        yield str(broker.amqp_url.with_path("/" + name))
    finally:
        call("DELETE", f"/vhosts/{name}")


async def one_run(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    broker = Broker.local()
    with patient_vhost(broker, f"wapipe-blip-{uuid.uuid4().hex[:8]}") as amqp_url:
        target = URL(amqp_url)
        proxy = await ProxyProcess.start(target.host or "127.0.0.1", target.port or 5672)
        try:
            via_proxy = str(target.with_host("127.0.0.1").with_port(proxy.port))
            return await with_services(args, folder, via_proxy, proxy)
        finally:
            await proxy.stop()


async def with_services(
    args: argparse.Namespace, folder: Path, amqp_url: str, proxy: ProxyProcess
) -> list[dict[str, Any]]:
    database_url = f"sqlite+aiosqlite:///{folder / uuid.uuid4().hex}.db"
    ingress_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "WAPIPE_AMQP_URL": amqp_url,
        "WAPIPE_DATABASE_URL": database_url,
        "WAPIPE_APP_SECRETS": SECRET,
        "WAPIPE_VERIFY_TOKEN": "bench",
        "WAPIPE_INGRESS_PORT": str(ingress_port),
        "WAPIPE_METRICS_PORT": str(metrics_port),
        "WAPIPE_LOG_FORMAT": "json",
    }
    python = [str(args.code / ".venv" / "bin" / "wapipe")] if args.code else [*THIS_TREE]
    worker = await asyncio.create_subprocess_exec(
        "taskset", "-c", "0", *python, "worker", "status", env=env
    )
    ingress = await asyncio.create_subprocess_exec(
        "taskset", "-c", "1", *python, "ingress", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert ingress.stderr is not None
    log: list[tuple[float, str]] = []
    reader = asyncio.create_task(follow_log(ingress.stderr, log))
    try:
        ready = f"http://127.0.0.1:{ingress_port}/readyz"
        await wait_until(lambda: answers_ok(ready), timeout=60, step=0.1)  # the proxy runs here
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        async def worker_up() -> bool:
            return await metric(metrics_url, "wapipe_worker_consumed_total") is not None

        await wait_until(worker_up, timeout=60, step=0.1)
        results, accepted = await under_load(args, ingress_port, metrics_url, proxy, log)

        async def all_stored() -> bool:
            return await stored_distinct(database_url) >= accepted

        await wait_until(all_stored, timeout=120, step=0.5)
        return results
    finally:
        for process in (ingress, worker):
            process.terminate()
        for process in (ingress, worker):
            await process.wait()
        await reader


async def under_load(
    args: argparse.Namespace,
    ingress_port: int,
    metrics_url: str,
    proxy: ProxyProcess,
    log: list[tuple[float, str]],
) -> tuple[list[dict[str, Any]], int]:
    """Load throughout, ``args.cuts`` cuts of the link; each cut's figures, and the 200s."""
    answers, consumption, stop = Answers(), Consumption(), asyncio.Event()
    load = asyncio.create_task(
        offer(f"http://127.0.0.1:{ingress_port}/webhook", args.rate, stop, answers)
    )
    watch = asyncio.create_task(watch_consumption(metrics_url, stop, consumption))
    cuts = []
    for _ in range(args.cuts):
        await asyncio.sleep(args.gap_s)  # steady load before the cut
        cut_at = time.monotonic()
        proxy.cut()
        await asyncio.sleep(args.cut_s)  # the blip itself
        proxy.restore()
        cuts.append((cut_at, time.monotonic()))
    await asyncio.sleep(args.gap_s)  # the last cut's recovery
    stop.set()
    await asyncio.gather(load, watch)
    results = []
    for index, (cut_at, back_at) in enumerate(cuts):
        until = cuts[index + 1][0] if index + 1 < len(cuts) else time.monotonic()
        result = measure_cut(back_at, cut_at, until, args.rate, answers, consumption, log)
        results.append({**result, "offered": answers.sent})
    accepted = sum(1 for _, status in answers.seen if status == 200)
    for result in results:
        result["accepted"] = accepted
    return results, accepted


def median(results: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in results if r[key] is not None]
    missing = len(results) - len(values)
    text = f"{statistics.median(values):.2f}" if values else "-"
    return text + (f" ({missing} never)" if missing else "")


def report(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    keys = (
        "first_200_s",
        "last_503_s",
        "ingress_reconnected_s",
        "first_consumed_s",
        "consuming_at_rate_s",
    )
    lines = [
        f"## {args.label}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; RabbitMQ {rabbitmq_version()}. Signed status webhooks at "
        f"{args.rate:.0f}/s -> `wapipe ingress` (core 1) -> proxy -> RabbitMQ -> proxy -> `wapipe "
        f"worker status` (core 0, SQLite); the proxy cut for {args.cut_s:.0f} s, {len(results)} "
        "cuts. Seconds from the link's return:",
        "",
        "| cut | first 200 | last 503 | ingress reconnected | worker's first consume | "
        "worker at rate | 503s | unanswered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(results, 1):
        lines.append(
            f"| {number} | {r['first_200_s']} | {r['last_503_s']} | {r['ingress_reconnected_s']} | "
            f"{r['first_consumed_s']} | {r['consuming_at_rate_s']} | {r['answered_503']} | "
            f"{r['not_answered']} |"
        )
    lines.append(
        "| **median** | " + " | ".join(median(results, key) for key in keys) + " | "
        f"{statistics.median(r['answered_503'] for r in results):.0f} | "
        f"{statistics.median(r['not_answered'] for r in results):.0f} |"
    )
    offered = sum({r["offered"] for r in results})
    accepted = sum({r["accepted"] for r in results})
    lines += ["", f"Offered {offered}, answered 200 {accepted}, every 200 stored."]
    return "\n".join(lines) + "\n"


THIS_TREE = (sys.executable, "-m", "wapipe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--cut-s", type=float, default=4)
    parser.add_argument("--gap-s", type=float, default=12)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--label", default="run")
    parser.add_argument("--code", type=Path, help="run this checkout's services (a before)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--serve-proxy", metavar="HOST:PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.code and not (args.code / ".venv" / "bin" / "wapipe").exists():
        parser.error(f"{args.code}/.venv/bin/wapipe is missing: `make .venv/bin/wapipe` there")
    if args.serve_proxy:
        asyncio.run(serve_proxy(args.serve_proxy))
        return
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            results += asyncio.run(one_run(args, Path(folder)))
    publish(
        RESULTS,
        "Broker blip results",
        "tests.bench.broker_blip",
        report(args, results),
        write=not args.no_write,
    )


if __name__ == "__main__":
    main()
