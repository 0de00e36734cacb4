"""The cost table: the whole pipeline at a steady load, each service's CPU per event, anchors by.

    make bench-cost      (or: python -m tests.bench.cost [--rate 25] [--duration 60] [--rounds 3]
                          [--ceiling] [--backend sqlite|postgresql] [--code DIR --code-label L])

A round: the sandbox (the Cloud API, its customers), the ingress, the status, message and media
workers and the sender, each its own process as ``wapipe up`` runs them (cli/local/up.py: the
example bot answers every message), against a fresh vhost and database. Customers write at
``--rate`` messages/s for ``--duration`` s, open loop, fresh numbers, one in ten an image of
100 KB: the ingress takes their webhooks, the message worker stores them and the bot answers,
the sender sends the answers to the sandbox, whose statuses come back through the ingress to the
status worker; the media worker fetches the images. Each service's CPU time (/proc/<pid>/stat)
and its count of events (its own metrics) are read after a warm-up and when the load ends: CPU
per event over that stretch. The round holds if every message was answered 200, handled and
its answer accepted within ``DRAIN_S`` of the end.

Then, in the same round, the anchors at the rates the services saw (tests/bench/cost_anchors.py
and servers.py): a bare aiohttp server and the straightforward aio-pika handler for the ingress,
a bare aio-pika consumer for the status and message workers, a bare look-up + download loop for
the media worker, a bare aiohttp client posting the same sends for the sender.

``--code DIR`` runs another checkout's services (DIR/.venv/bin/wapipe, made with
``make .venv/bin/wapipe`` there) in every round too, before or after this tree's by turns, then
the anchors: a before/after whose two sides share their anchors and the machine's state.

``--ceiling`` then raises the rate (x1.5 a step, ``CEILING_STEP_S`` a step, no anchors) until a
step does not hold: the highest steady rate is the last that held. Medians over the rounds are
printed and appended to results/cost.md with the machine and the date. CI does not run it.
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
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.bench.cost_anchors import IMAGE_BYTES, SECRET, TOKEN, anchors, vhost
from tests.bench.ingress import cpu_seconds, machine, wait_ready
from tests.bench.report import positive_float, positive_int, publish
from tests.bench.status_worker import database, rabbitmq_version
from tests.conftest import postgres
from tests.helpers import Broker, answers, free_port, wait_until
from wapipe.cli.local.up import EXAMPLE_HANDLER
from wapipe.shared import topology

RESULTS = Path(__file__).parent / "results" / "cost.md"
WARM_UP_S = 8.0
DRAIN_S = 20.0
CEILING_STEP_S = 20.0
IMAGE_EVERY = 10  # one message in ten is an image
SERVICES = ("ingress", "status", "message", "media", "sender", "sandbox")
# What each service counts as its event, off its own /metrics.
EVENT_METRIC = {
    "ingress": ("wapipe_ingress_requests_total", {"outcome": "ok"}),
    "status": ("wapipe_worker_consumed_total", {}),
    "message": ("wapipe_worker_consumed_total", {}),
    "media": ("wapipe_worker_consumed_total", {}),
    "sender": ("wapipe_sender_accepted_total", {}),
}
EVENTS_NAMED = {
    "ingress": "200s",
    "status": "statuses",
    "message": "messages",
    "media": "images",
    "sender": "sends",
    "sandbox": "customer messages",
}


@dataclass
class Pipeline:
    """The running services: their processes and where their metrics are."""

    processes: dict[str, subprocess.Popen[bytes]]
    metrics: dict[str, str]
    sandbox_url: str
    ingress_port: int

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(process.pid) for name, process in self.processes.items()}

    async def counts(self) -> dict[str, float]:
        counts = {}
        async with aiohttp.ClientSession() as session:
            for name, url in self.metrics.items():
                metric, labels = EVENT_METRIC[name]
                counts[name] = await summed(session, url, metric, labels)
        return counts

    def stop(self) -> None:
        """The services first, the sandbox (the Cloud API they call) last."""
        for name in sorted(self.processes, key=lambda name: name == "sandbox"):
            process = self.processes[name]
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def summed(
    session: aiohttp.ClientSession, url: str, name: str, labels: dict[str, str]
) -> float:
    """The sum of a metric's samples with these labels (0 while there is none)."""
    async with session.get(url) as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@dataclass(frozen=True)
class Code:
    """Which checkout's services a pipeline runs: this tree's, or another's (--code)."""

    label: str
    command: tuple[str, ...] = (sys.executable, "-m", "wapipe")
    handler: str = EXAMPLE_HANDLER

    @classmethod
    def checkout(cls, folder: Path, label: str) -> Code:
        command = folder / ".venv" / "bin" / "wapipe"
        if not command.exists():
            raise SystemExit(f"{command} is missing: run `make .venv/bin/wapipe` in {folder}")
        # Before the wapipe.* namespace (src/wapipe), the examples were a top-level package.
        namespaced = (folder / "src" / "wapipe").is_dir()
        handler = EXAMPLE_HANDLER if namespaced else EXAMPLE_HANDLER.removeprefix("wapipe.")
        return cls(label, (str(command),), handler)

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.command, *args], env={**os.environ, **env})

    async def database(self, backend: str, folder: Path) -> str:
        """A fresh database at this code's schema (its own `wapipe migrate`, as a deploy runs)."""
        if self.command[0] == sys.executable:
            return await database(backend, folder)
        url = await database(backend, folder, migrated=False)
        migrating = self.start(["migrate"], {"WAPIPE_DATABASE_URL": url})
        if await asyncio.to_thread(migrating.wait) != 0:
            raise SystemExit(f"{self.label}: `wapipe migrate` failed")
        return url


async def pipeline(amqp_url: str, database_url: str, folder: Path, code: Code) -> Pipeline:
    ingress_port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {
        "WAPIPE_AMQP_URL": amqp_url,
        "WAPIPE_DATABASE_URL": database_url,
        "WAPIPE_MEDIA_DIR": str(folder / uuid.uuid4().hex),
        "WAPIPE_APP_SECRETS": SECRET,
        "WAPIPE_VERIFY_TOKEN": "bench",
        "WAPIPE_ACCESS_TOKEN": TOKEN,
        "WAPIPE_GRAPH_URL": sandbox_url,
        "WAPIPE_MESSAGE_HANDLERS": code.handler,
        "WAPIPE_SENDER_RATE_PER_S": "1000",  # the top tier: the load, not the pace, decides
        "WAPIPE_INGRESS_PORT": str(ingress_port),
        "WAPIPE_LOG_LEVEL": "WARNING",
    }
    await topology.declare_at(amqp_url)
    webhook = f"http://127.0.0.1:{ingress_port}/webhook"
    processes = {
        "sandbox": code.start(
            ["sandbox", "--port", str(sandbox_port), "--webhook-url", webhook, "--rate", "1000"],
            env,
        ),
        "ingress": code.start(["ingress"], env),
    }
    metrics = {"ingress": f"http://127.0.0.1:{ingress_port}/metrics"}
    for worker in ("status", "message", "media", "sender"):
        port = free_port()
        processes[worker] = code.start(
            ["worker", worker], {**env, "WAPIPE_METRICS_PORT": str(port)}
        )
        metrics[worker] = f"http://127.0.0.1:{port}/metrics"
    running = Pipeline(processes, metrics, sandbox_url, ingress_port)
    try:
        wait_ready(ingress_port, timeout=60)
        for url in [f"{sandbox_url}/_sandbox/state", *metrics.values()]:
            await wait_until(partial(answers, url), timeout=60, step=0.2)
    except BaseException:
        running.stop()
        raise
    return running


@dataclass
class Customers:
    """Customers writing at a steady rate (open loop), each from a fresh number."""

    sandbox_url: str
    posted: int = 0
    images: int = 0
    failed: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def write(self, rate: float, duration_s: float) -> None:
        async with aiohttp.ClientSession() as session:
            started = time.monotonic()
            for number in range(int(rate * duration_s)):
                delay_s = started + number / rate - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)  # the pace is the point
                task = asyncio.ensure_future(self._one(session, number))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await asyncio.gather(*self._tasks)

    async def _one(self, session: aiohttp.ClientSession, number: int) -> None:
        image = number % IMAGE_EVERY == IMAGE_EVERY - 1
        spec: dict[str, Any] = (
            {"type": "image", "size": IMAGE_BYTES}
            if image
            else {"type": "text", "body": f"hello {number}"}
        )
        url = f"{self.sandbox_url}/_sandbox/customers/1777{number:07d}/messages"
        async with session.post(url, json=spec) as response:
            await response.read()
            if response.status != 200:
                self.failed += 1
                return
        self.posted += 1
        self.images += image


@dataclass
class PipelineRun:
    rate: float
    events: dict[str, float]  # per service, over the measured stretch
    cpu_s: dict[str, float]
    window_s: float
    held: bool
    note: str

    def rates(self) -> dict[str, float]:
        return {name: events / self.window_s for name, events in self.events.items()}

    def status_share(self) -> float:
        """The share of the ingress's webhooks that carried a status."""
        return min(1.0, self.events["status"] / max(1.0, self.events["ingress"]))

    def cpu_ms(self, service: str) -> float:
        events = self.events.get(service) or 0
        return self.cpu_s[service] / events * 1000 if events else float("nan")


async def pipeline_round(
    broker: Broker, backend: str, rate: float, duration_s: float, folder: Path, code: Code
) -> PipelineRun:
    with vhost(broker) as amqp_url:
        url = await code.database(backend, folder)
        running = await pipeline(amqp_url, url, folder, code)
        try:
            customers = Customers(running.sandbox_url)
            load = asyncio.ensure_future(customers.write(rate, duration_s))
            await asyncio.sleep(WARM_UP_S)
            cpu_from, counts_from, from_at = running.cpu(), await running.counts(), time.monotonic()
            await load
            cpu_to, counts_to = running.cpu(), await running.counts()
            window_s = time.monotonic() - from_at
            held, note = await drained(running, customers)
        finally:
            running.stop()
        if backend == "postgresql":
            await postgres(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    events = {name: counts_to[name] - counts_from[name] for name in counts_to}
    events["sandbox"] = events["message"]  # each customer message is one inbound webhook
    cpu = {name: cpu_to[name] - cpu_from[name] for name in cpu_to}
    return PipelineRun(rate, events, cpu, window_s, held, note)


async def drained(running: Pipeline, customers: Customers) -> tuple[bool, str]:
    """Whether every customer message was handled and answered within DRAIN_S of the end."""
    wanted = {"message": customers.posted, "sender": customers.posted, "media": customers.images}
    deadline = time.monotonic() + DRAIN_S
    while True:
        counts = await running.counts()
        behind = {
            name: wanted[name] - counts[name] for name in wanted if counts[name] < wanted[name]
        }
        if not behind and not customers.failed:
            return True, "drained"
        if time.monotonic() > deadline:
            return False, f"{customers.failed} posts failed; behind after {DRAIN_S:.0f} s: {behind}"
        await asyncio.sleep(0.5)


# --- the table -----------------------------------------------------------------------------------


@dataclass
class Round:
    runs: dict[str, PipelineRun]  # by the code's label: this tree first
    anchors: dict[str, dict[str, float]]


def table(rounds: list[Round], label: str) -> list[str]:
    lines = [
        "| service | events in the window | CPU ms/event | anchor (same round) | anchor CPU "
        "ms/event | service / anchor | rounds (CPU ms/event) |",
        "|---|---|---|---|---|---|---|",
    ]
    for service in SERVICES:
        per_event = [r.runs[label].cpu_ms(service) for r in rounds]
        cpu = statistics.median(per_event)
        events = statistics.median(r.runs[label].events[service] for r in rounds)
        each = ", ".join(f"{value:.2f}" for value in per_event)
        named = defaultdict(list)
        for r in rounds:
            for anchor, value in r.anchors.get(service, {}).items():
                named[anchor].append(value)
        if not named:
            lines.append(
                f"| {service} | {events:,.0f} {EVENTS_NAMED[service]} | {cpu:.2f} | - | - | - | "
                f"{each} |"
            )
        for anchor, values in named.items():
            anchor_ms = statistics.median(values)
            lines.append(
                f"| {service} | {events:,.0f} {EVENTS_NAMED[service]} | {cpu:.2f} | {anchor} | "
                f"{anchor_ms:.2f} | {cpu / anchor_ms:.2f}x | {each} |"
            )
    return lines


def report(
    args: argparse.Namespace,
    codes: list[Code],
    rounds: list[Round],
    ceiling: dict[str, list[PipelineRun]],
) -> str:
    turns = (
        ", each running " + " and ".join(c.label for c in codes) + " (in turns)"
        if codes[1:]
        else ""
    )
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC - " + " vs ".join(c.label for c in codes),
        "",
        f"Machine: {machine()}; RabbitMQ {rabbitmq_version()}; {args.backend}; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end. Customers write "
        f"{args.rate:.0f} messages/s (one in {IMAGE_EVERY} a {IMAGE_BYTES // 1024} KB image) for "
        f"{args.duration:.0f} s; measured from {WARM_UP_S:.0f} s in to the end. "
        f"{len(rounds)} rounds{turns}, then the anchors; medians.",
    ]
    for code in codes:
        runs = [r.runs[code.label] for r in rounds]
        lines += [
            "",
            f"### {code.label}",
            "",
            *table(rounds, code.label),
            "",
            "Rounds held (every message handled and answered): "
            + ", ".join(f"{run.held} ({run.note})" for run in runs),
        ]
        steps = ceiling.get(code.label, [])
        if steps:
            held = [run.rate for run in steps if run.held]
            lines += [
                "",
                f"Highest steady rate ({CEILING_STEP_S:.0f} s steps): "
                + (f"{max(held):.0f} customer messages/s" if held else "none held")
                + " ("
                + "; ".join(f"{run.rate:.0f}/s {'held' if run.held else run.note}" for run in steps)
                + ")",
            ]
    return "\n".join(lines) + "\n"


async def bench(
    args: argparse.Namespace, codes: list[Code]
) -> tuple[list[Round], dict[str, list[PipelineRun]]]:
    broker = Broker.local()
    rounds: list[Round] = []
    ceiling: dict[str, list[PipelineRun]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for number in range(args.rounds):
            runs = {}
            # In turns, the order reversed every other round: neither code always goes first.
            for code in codes if number % 2 == 0 else codes[::-1]:
                run = await pipeline_round(
                    broker, args.backend, args.rate, args.duration, folder, code
                )
                print(f"round {number + 1}, {code.label}: {run}", flush=True)
                runs[code.label] = run
            # The anchors at the rates this tree's services saw (the same load for every code).
            first = runs[codes[0].label]
            rounds.append(Round(runs, await anchors(broker, first.rates(), first.status_share())))
            print(f"round {number + 1} anchors: {rounds[-1].anchors}", flush=True)
        for code in codes if args.ceiling else []:
            rate = args.ceiling_from or args.rate
            while True:
                run = await pipeline_round(broker, args.backend, rate, CEILING_STEP_S, folder, code)
                print(f"ceiling, {code.label}, {rate:.0f}/s: {run.held} {run.note}", flush=True)
                ceiling[code.label].append(run)
                if not run.held or rate >= 1000:
                    break
                rate = min(1000, rate * 1.5)
    return rounds, ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=positive_float, default=25, help="customer messages/s")
    parser.add_argument("--duration", type=positive_float, default=60, help="seconds a round")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--ceiling", action="store_true", help="then find the highest rate held")
    parser.add_argument(
        "--ceiling-from", type=positive_float, help="its first rate (default --rate)"
    )
    parser.add_argument("--label", default="this tree", help="this tree's name in the results")
    parser.add_argument("--code", type=Path, help="another checkout run in every round too")
    parser.add_argument("--code-label", default="", help="its name (default: its folder)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    codes = [Code(args.label)]
    if args.code:
        codes.append(Code.checkout(args.code.resolve(), args.code_label or args.code.name))
    rounds, ceiling = asyncio.run(bench(args, codes))
    text = report(args, codes, rounds, ceiling)
    publish(RESULTS, "Cost per event", "tests.bench.cost", text, write=not args.no_write)


if __name__ == "__main__":
    main()
