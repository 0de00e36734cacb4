"""Sandbox load mode benchmark: signed webhooks/s one process sustains at a prompt receiver.

    python -m tests.bench.sandbox_load [--rate 3000] [--duration 30]

The receiver (tests/bench/servers.py `bare`: reads the body, answers 200) runs on core 1; load
mode runs here, pinned to core 0. In the same session, for comparison: load mode at a higher rate
for a short run (how much headroom), and wrk against the same receiver (what the receiver takes
at most). Appends to results/sandbox_load.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.ingress import machine, wait_ready, wrk
from tests.helpers import free_port
from wapipe.sandbox.load import Target, parse_mix, run_load
from wapipe.shared.eventloop import new_event_loop

RESULTS = Path(__file__).parent / "results" / "sandbox_load.md"
SECRET = "bench-app-secret"
MIX = "status=0.75,text=0.25"


def load_run(url: str, rate: float, duration: float) -> dict[str, Any]:
    loop = new_event_loop()
    try:
        report = loop.run_until_complete(
            run_load(Target(url, SECRET), rate, duration, parse_mix(MIX), seed=1)
        )
    finally:
        loop.close()
    return report.summary()


def wrk_ceiling(port: int, duration_s: int) -> float:
    """What the receiver takes at most: wrk, closed loop, on load mode's core."""
    script = Path("/tmp/wapipe-sandbox-load.lua")
    script.write_text('wrk.method = "POST"\nwrk.body = "{}"\n')
    return wrk(port, script, connections=64, duration_s=duration_s, core="0")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=3000)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    port = free_port()
    receiver = subprocess.Popen(
        [
            "taskset",
            "-c",
            "1",
            sys.executable,
            "-m",
            "tests.bench.servers",
            "bare",
            "--port",
            str(port),
        ]
    )
    try:
        wait_ready(port)
        url = f"http://127.0.0.1:{port}/webhook"
        load_run(url, 500, 2)  # warm-up
        main_run = load_run(url, args.rate, args.duration)
        headroom = load_run(url, args.rate * 5 / 3, 10)
        ceiling = wrk_ceiling(port, 10)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}. Load mode pinned to core 0, receiver (`bare`) to core 1; "
        f"mix {MIX}, every body signed, fresh ids.",
        "",
        "| run | offered | answered | elapsed s | achieved/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in (
        (f"load mode at {args.rate:.0f}/s", main_run),
        (f"load mode at {args.rate * 5 / 3:.0f}/s (10 s)", headroom),
    ):
        lines.append(
            f"| {name} | {run['offered']} | {run['answered']} | {run['elapsed_s']} | "
            f"{run['ok_per_s']} | {run['latency_ms']['p50']} | "
            f"{run['latency_ms']['p99']} |"
        )
    lines += [
        "",
        "wrk against the same receiver (closed loop, 64 connections, 10 s): "
        f"{ceiling:.0f} requests/s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with RESULTS.open("a") as results:
            results.write(text + "\n")


if __name__ == "__main__":
    main()
