"""Where a sender's event loop spends its time, from the collapsed stacks ``--profile`` keeps
(py-spy ``--format raw --threads --idle``): the busy share, the top entries by self samples,
and the shares by what each sample is inside of.

    python -m tests.bench.sender_profile DIR/sender-1000-<code>-<turn>.txt [...]

Samples whose innermost Python frame is the loop's ``run`` are the loop waiting or in uvloop's
C code (libuv, its transports): "idle or in C" below. The rest are the busy samples, and every
share is of them.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Final

# What a sample is inside of: the first of these found from the root of its stack down.
PARTS: Final = (
    ("the HTTP call (CloudApi, aiohttp's request)", ("cloudapi/client.py",)),
    ("HTTP answers in (aiohttp's protocol)", ("aiohttp/client_proto.py",)),
    ("event publish and its confirm", ("shared/amqp.py",)),
    ("AMQP frames in (aiormq's reader)", ("_reader (aiormq", "__reader (aiormq")),
    ("AMQP frames out (aiormq's writer)", ("__writer (aiormq",)),
    ("deliveries to the intake (aio-pika's consumer)", ("consumer (aio_pika/queue.py",)),
    ("acks", ("sender/acks.py", "runtime.py")),
    # SQLAlchemy runs its work in greenlets: their stacks have no root, so its frames tell.
    ("journal (group commit, SQLAlchemy)", ("sender/journal.py", "aiosqlite", "sqlalchemy/")),
    ("intake (decode, claim, admit)", ("sender/intake.py",)),
    ("the lane", ("sender/lane.py",)),
    ("send (its other steps)", ("sender/send.py",)),
)
IDLE: Final = re.compile(r"^(Runner\.)?run \(asyncio/runners\.py")
FRAME: Final = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def read(path: Path) -> Counter[tuple[str, ...]]:
    """The main thread's stacks (the one running the event loop) and their samples."""
    threads: dict[str, Counter[tuple[str, ...]]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread ")), "")
        python = tuple(f for f in frames if FRAME.match(f) and not f.startswith("thread "))
        threads.setdefault(thread, Counter())[python] += int(count)
    return max(threads.values(), key=lambda c: sum(n for s, n in c.items() if _loop(s)))


def _loop(stack: tuple[str, ...]) -> bool:
    return any("asyncio/runners.py" in frame for frame in stack)


def name(frame: str) -> str:
    found = FRAME.match(frame)
    return f"{found.group(1)} ({found.group(2)})" if found else frame


def summary(path: Path, top: int = 12) -> str:
    stacks = read(path)
    total = sum(stacks.values())
    idle = sum(n for s, n in stacks.items() if not s or IDLE.match(s[-1]))
    busy = total - idle
    own: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    for stack, n in stacks.items():
        if not stack or IDLE.match(stack[-1]):
            continue
        own[name(stack[-1])] += n
        joined = ";".join(stack)
        part = next(
            (label for label, marks in PARTS if any(mark in joined for mark in marks)), "other"
        )
        parts[part] += n
    lines = [
        f"{path.name}: {total} samples, {busy / total:.0%} busy ({idle / total:.0%} idle or in C)",
        "  inside of: " + ", ".join(f"{label} {n / busy:.1%}" for label, n in parts.most_common()),
        "  top self: " + ", ".join(f"{fn} {n / busy:.1%}" for fn, n in own.most_common(top)),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for path in args.profiles:
        print(summary(path, args.top))


if __name__ == "__main__":
    main()
