"""Where a server of the ingress benchmark spends its CPU: py-spy, sampling it under wrk's load.

    python -m tests.bench.ingress_profile wapipe [--duration 15] [--top 25]
    python -m tests.bench.ingress_profile wapipe@main      (the ingress as of a git commit)

The server (``wapipe``, ``naive``, ``publish-only`` or ``bare``: tests/bench/servers.py) runs as
in tests/bench/ingress.py, alone on core 0, wrk on core 1; py-spy (``pip install py-spy``, not a
dependency) samples it from core 1 too, without stopping it (``--nonblocking``), so the server's
CPU is what it would be. Prints the server's CPU per request, its write system calls per request
(/proc/<pid>/io: the sends to the broker and to wrk), and the top entries by own samples and by
samples under them (inclusive). Nothing is written to results/.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tests.bench.ingress import (
    KINDS,
    LOAD_CORE,
    _body,
    cpu_seconds,
    export_baseline,
    server,
    wrk,
    wrk_script,
)
from tests.helpers import Broker, free_port

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (path/to/module.py:line)`` as ``module.py function``: one name per function."""
    found = _FRAME.match(frame)
    if found is None:
        return frame
    path = found["file"]
    short = "/".join(path.split("/")[-2:]) if "site-packages" in path else path.split("/")[-1]
    return f"{short} {found['function']}"


def tops(raw: str, limit: int) -> str:
    """Own and inclusive sample counts by function, from py-spy's ``--format raw`` output."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        names = [frame_name(frame) for frame in stack.split(";")[1:]]  # [0] is the thread
        if not names:
            continue
        total += count
        own[names[-1]] += count
        for name in set(names):
            under[name] += count
    lines = [f"{total} samples", "", "own %   incl %   function"]
    for name, count in own.most_common(limit):
        lines.append(f"{100 * count / total:5.1f}  {100 * under[name] / total:6.1f}   {name}")
    lines += ["", "inclusive, top:"]
    for name, count in under.most_common(limit):
        lines.append(f"{100 * count / total:5.1f}   {name}")
    return "\n".join(lines)


def write_calls(pid: int) -> int:
    """Write system calls the process made so far (``syscw`` in /proc/<pid>/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise RuntimeError(f"no syscw in /proc/{pid}/io")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", help=f"one of {', '.join(KINDS)}, or wapipe@<git commit>")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples a second")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")

    broker = Broker.local()
    with tempfile.TemporaryDirectory() as folder:
        if args.kind.startswith("wapipe@"):
            export_baseline(args.kind.removeprefix("wapipe@"), Path(folder))
        elif args.kind not in KINDS:
            raise SystemExit(f"unknown server {args.kind!r}")
        script = Path(folder) / "wrk.lua"
        script.write_text(wrk_script(_body()))
        raw = Path(folder) / "profile.txt"
        with broker.vhost(f"wapipe-profile-{uuid.uuid4().hex[:8]}") as amqp_url:
            subprocess.run(
                [sys.executable, "-m", "wapipe", "topology"],
                check=True,
                env={**os.environ, "WAPIPE_AMQP_URL": amqp_url, "WAPIPE_LOG_LEVEL": "WARNING"},
            )
            port = free_port()
            with server(args.kind, port, amqp_url) as pid:
                wrk(port, script, args.connections, 2)  # warm-up
                spy = subprocess.Popen(
                    [
                        "taskset",
                        "-c",
                        LOAD_CORE,
                        py_spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--nonblocking",
                        "--rate",
                        str(args.rate),
                        "--format",
                        "raw",
                        "--output",
                        str(raw),
                        "--duration",
                        str(args.duration),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)
                cpu_before, writes_before = cpu_seconds(pid), write_calls(pid)
                rps, _, _, total, errors = wrk(port, script, args.connections, args.duration)
                cpu_us = (cpu_seconds(pid) - cpu_before) / max(total, 1) * 1e6
                writes = (write_calls(pid) - writes_before) / max(total, 1)
                spy.wait(timeout=60)
        print(
            f"{args.kind}: {rps:.0f} accepted/s, {errors} errors, {cpu_us:.0f} µs CPU/request, "
            f"{writes:.2f} write calls/request"
        )
        print(tops(raw.read_text(), args.top))


if __name__ == "__main__":
    main()
