"""One worker at a steady rate: its CPU per event, and where it goes (cProfile).

    python -m tests.bench.worker_profile message|status [--rate 50] [--duration 20]
                                         [--code DIR] [--rounds 3] [--profile] [--write]

Publishes events to ``wa.events`` at ``--rate``/s (open loop) for ``--duration`` s: inbound texts
for the message worker (the example bot answers each: examples/echo_bot.py), statuses for the
status worker, on SQLite. Prints the worker's CPU per event (/proc/<pid>/stat, every thread) from
the first event to the last, and the share of it off the main thread (the SQLite thread).

``--code DIR`` runs another checkout's worker (DIR/.venv/bin/wapipe, made with ``make
.venv/bin/wapipe`` there, on a database of its own migration) in every round too, by turns: the
first code first in odd rounds, last in even ones; medians of ``--rounds``. With ``--profile``
each worker runs under cProfile, timed by its main thread's CPU (about twice the CPU: read its
shares, not its times), and the top entries of each code's last round are printed. ``--write``
appends the medians to results/cost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

from tests.bench.cost import Code
from tests.bench.cost_anchors import paced_publish
from tests.bench.ingress import cpu_seconds, machine
from tests.bench.report import positive_float, positive_int, publish
from tests.helpers import Broker, answers, free_port, wait_until
from tests.integration.worker_support import as_messages, metric
from wapipe.ingress.split import split_body
from wapipe.sandbox.load import Target, webhook_body
from wapipe.shared import topology

KIND = {"message": "text", "status": "status"}
RESULTS = Path(__file__).parent / "results" / "cost.md"

# The worker under cProfile timed by its main thread's CPU, not the wall clock: a worker waits
# most of the time, and wall-clock times would charge its waits to whatever awaited (the SQLite
# thread's CPU is the bench's own column). Standard library only, so that any checkout's
# interpreter runs it: python -c PROFILED OUT KIND.
PROFILED = """
import cProfile, contextlib, importlib, runpy, sys, time
out, kind = sys.argv[1:3]
for module in ("wapipe.cli.main", f"wapipe.workers.{kind}"):  # imported before, not profiled
    with contextlib.suppress(ImportError):
        importlib.import_module(module)
profiler = cProfile.Profile(time.thread_time)
sys.argv = ["wapipe", "worker", kind]
profiler.enable()
try:
    runpy.run_module("wapipe", run_name="__main__")
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""


def events(kind: str, count: int) -> list[tuple[str, aio_pika.Message]]:
    target, now = Target("http://unused", "unused"), time.time()
    bodies = [webhook_body(KIND[kind], target, number, now) for number in range(count)]
    return as_messages([event for body in bodies for event in split_body(body, now)])


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU so far of the process's main thread, and of all its threads."""
    return cpu_seconds_of(f"/proc/{pid}/task/{pid}"), cpu_seconds(pid)


def cpu_seconds_of(task: str) -> float:
    fields = Path(f"{task}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    kind: str, rate: float, duration_s: float, code: Code, profile: Path | None
) -> dict[str, float]:
    """One worker's run: CPU ms an event, all threads and off the main thread."""
    broker = Broker.local()
    with (
        tempfile.TemporaryDirectory() as folder,
        broker.vhost(f"wapipe-profile-{uuid.uuid4().hex[:8]}") as amqp_url,
    ):
        await topology.declare_at(amqp_url)
        port = free_port()
        env = {
            "WAPIPE_AMQP_URL": amqp_url,
            "WAPIPE_DATABASE_URL": await code.database("sqlite", Path(folder)),
            "WAPIPE_METRICS_PORT": str(port),
            "WAPIPE_MESSAGE_HANDLERS": code.handler,
            "WAPIPE_LOG_LEVEL": "WARNING",
        }
        if profile:
            python = (  # this tree's interpreter, or the checkout's venv's
                sys.executable
                if code.command[0] == sys.executable
                else Path(code.command[0]).with_name("python")
            )
            process = Code(code.label, (str(python), "-c", PROFILED)).start(
                [str(profile), kind], env
            )
        else:
            process = code.start(["worker", kind], env)
        metrics = f"http://127.0.0.1:{port}/metrics"
        try:
            await wait_until(lambda: answers(metrics), timeout=30, step=0.2)
            messages = events(kind, int(rate * duration_s))
            main_from, all_from = thread_cpu_seconds(process.pid)
            await paced_publish(amqp_url, messages, rate)

            async def done() -> bool:
                seen = await metric(metrics, "wapipe_worker_consumed_total")
                return seen is not None and seen >= len(messages)

            await wait_until(done, timeout=60, step=0.2)
            main_to, all_to = thread_cpu_seconds(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    every, off_main = all_to - all_from, (all_to - main_to) - (all_from - main_from)
    return {"ms": every * 1000 / len(messages), "threads_ms": off_main * 1000 / len(messages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(KIND))
    parser.add_argument("--rate", type=positive_float, default=50)
    parser.add_argument("--duration", type=positive_float, default=20)
    parser.add_argument("--code", type=Path, metavar="DIR", help="another checkout, by turns")
    parser.add_argument("--rounds", type=positive_int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=positive_int, default=25)
    parser.add_argument("--write", action="store_true", help="append to results/cost.md")
    args = parser.parse_args()
    if int(args.rate * args.duration) < 1:
        parser.error("--rate times --duration must make at least one event")
    codes = [Code(f"this tree ({Path.cwd().name})")]
    if args.code:
        codes.append(Code.checkout(args.code.resolve(), args.code.resolve().name))
    runs: dict[str, list[dict[str, float]]] = {code.label: [] for code in codes}
    with tempfile.TemporaryDirectory() as folder:
        profiles = {code.label: Path(folder) / f"{index}.prof" for index, code in enumerate(codes)}
        for round_number in range(args.rounds):
            for code in codes if round_number % 2 == 0 else codes[::-1]:
                profile = profiles[code.label] if args.profile else None
                run_ = asyncio.run(run(args.kind, args.rate, args.duration, code, profile))
                runs[code.label].append(run_)
                print(f"{code.label}: {run_['ms']:.3f} ms an event", flush=True)
        if args.profile:
            for label, profile in profiles.items():
                print(f"\nprofile: {label} (last round)")
                stats = pstats.Stats(str(profile))
                stats.sort_stats("tottime").print_stats(args.top)
                stats.sort_stats("cumulative").print_stats(args.top)
    publish(RESULTS, "Cost", "tests.bench.cost", report(args, runs), write=args.write)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]]) -> str:
    def median(label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[label])

    count = int(args.rate * args.duration)
    lines = [
        f"## {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: {args.kind} worker at "
        f"{args.rate:g}/s",
        "",
        f"`python -m tests.bench.worker_profile {' '.join(sys.argv[1:])}`. Machine: {machine()};"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end. "
        f"{count} events a round on SQLite"
        + (", the codes by turns" if len(runs) > 1 else "")
        + "; CPU of the worker process (every thread) from the first event to the last"
        + (", under cProfile" if args.profile else "")
        + "; medians.",
        "",
        "| code | CPU ms an event | of it off the main thread | rounds (ms) |",
        "|---|---|---|---|",
    ]
    for label in runs:
        lines.append(
            f"| {label} | {median(label, 'ms'):.3f} | {median(label, 'threads_ms'):.3f} | "
            + ", ".join(f"{run['ms']:.3f}" for run in runs[label])
            + " |"
        )
    labels = list(runs)
    if len(labels) == 2:
        ratio = median(labels[0], "ms") / median(labels[1], "ms")
        lines += ["", f"{labels[0]} / {labels[1]}: {ratio:.2f}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
