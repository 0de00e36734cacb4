"""The sender benchmark's figures (tests/bench/sender.py): what a run's sends come to, as the
sandbox logged them, and its sender's CPU, as /proc counts it; and the report's text.

Rates: the accepted sends in each whole second from the first, their median (the first second
left out: every slot is free then), and overall, the slope of sends against time (least squares
over every send), which counts a steady rate right and a slow limit's bursts (all of a second's
sends at once) too, where count / (last - first) would count them one second short.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tests.bench.ingress import machine
from tests.bench.status_worker import rabbitmq_version

LIMIT_CODES: Final = (130429, 131056)  # throughput, pair rate
JOBS_PER_RECIPIENT: Final = 10  # far below any pair limit


@dataclass(frozen=True)
class Usage:
    """The CPU a process took while the sandbox accepted its sends, and how long its event
    loop was ready to run but another process had the core (a noisy machine)."""

    loop_s: float  # the main thread's CPU: the event loop
    threads_s: float  # the other threads' (aiosqlite runs each connection in one)
    loop_waited_s: float  # the main thread's time on the run queue
    elapsed_s: float
    sends: int

    @property
    def share(self) -> float:
        return (self.loop_s + self.threads_s) / self.elapsed_s

    @property
    def per_send_us(self) -> float:
        return (self.loop_s + self.threads_s) / self.sends * 1e6

    def since(self, earlier: Usage) -> Usage:
        return Usage(
            self.loop_s - earlier.loop_s,
            self.threads_s - earlier.threads_s,
            self.loop_waited_s - earlier.loop_waited_s,
            self.elapsed_s - earlier.elapsed_s,
            self.sends - earlier.sends,
        )


def usage_now(pid: int, at: float, sends: int) -> Usage:
    """A process's CPU so far, by thread (/proc/<pid>/task/*/schedstat: CPU ns, run queue ns)."""
    loop = others = waited = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            cpu_ns, wait_ns, _ = (task / "schedstat").read_text().split()
            if task.name == str(pid):
                loop, waited = int(cpu_ns) / 1e9, int(wait_ns) / 1e9
            else:
                others += int(cpu_ns) / 1e9
    return Usage(loop, others, waited, at, sends)


@dataclass(frozen=True)
class Run:
    what: str
    limit: float | None  # None: no limit (a ceiling)
    sends: list[float]  # when the sandbox accepted each send, sorted
    counts: dict[str, Any]  # the sandbox's /_sandbox/counts of the number
    refusals: Counter[int | None]  # answers other than 200, by error code
    usage: Usage  # of the sender (or the bare loop)
    code: str = ""  # the sender's commit; a bare loop's kind ("bare", "journal")
    turn: int = 0  # the turn of an A/B (runs of one turn ran back to back)
    load: float = 0.0  # the machine's load average (1 min) at the run's end

    @property
    def seconds(self) -> list[int]:
        """Accepted sends in each whole second from the first."""
        first = self.sends[0]
        per_second = [0] * int(self.sends[-1] - first)
        for at in self.sends:
            if (index := int(at - first)) < len(per_second):
                per_second[index] += 1
        return per_second

    @property
    def median(self) -> float:
        steady = self.seconds[1:] or self.seconds or [0]
        return float(statistics.median(steady))

    @property
    def overall(self) -> float:
        return statistics.linear_regression(self.sends, range(len(self.sends))).slope

    @property
    def span_rate(self) -> float:
        return (len(self.sends) - 1) / (self.sends[-1] - self.sends[0])

    @property
    def busiest_window(self) -> int:
        """The most sends in any one-second window [t, t + 1), wherever it starts."""
        busiest = start = 0
        for end, at in enumerate(self.sends):
            while self.sends[start] <= at - 1.0:
                start += 1
            busiest = max(busiest, end - start + 1)
        return busiest

    @property
    def slot_cycles(self) -> list[float]:
        """Seconds from each send to the one ``limit`` sends later: how soon the sender's slots
        come back (a second after each answer, plus the latency it adds: workers/pacing.py)."""
        if not self.limit:
            return []
        later = self.sends[int(self.limit) :]
        return [b - a for a, b in zip(self.sends, later, strict=False)]

    @property
    def other_refusals(self) -> int:
        return sum(n for code, n in self.refusals.items() if code not in LIMIT_CODES)


# --- the report ----------------------------------------------------------------------------------


def ratio(run: Run) -> str:
    return f"{run.overall / run.limit:.3f}" if run.limit else "-"


def cpu(run: Run) -> list[str]:
    usage = run.usage
    return [
        f"{usage.share:.0%} ({usage.loop_s / usage.elapsed_s:.0%} + "
        f"{usage.threads_s / usage.elapsed_s:.0%})",
        f"{usage.per_send_us:,.0f} µs",
        f"{usage.loop_waited_s / usage.elapsed_s:.0%}",
    ]


def cycles(run: Run) -> str:
    if len(cycle := run.slot_cycles) < 2:
        return ""
    p99 = statistics.quantiles(cycle, n=100)[98]
    return (
        f"; a slot comes back 1 s + {(statistics.mean(cycle) - 1) * 1000:.0f} ms after its last "
        f"send on average (median + {(statistics.median(cycle) - 1) * 1000:.0f} ms, p99 + "
        f"{(p99 - 1) * 1000:.0f} ms)"
    )


def row(run: Run) -> list[str]:
    return [
        run.what,
        f"{run.median:,.0f}",
        f"{run.overall:,.1f}",
        ratio(run),
        str(run.counts["busiest_second"]),
        str(run.busiest_window),
        str(run.counts["throughput_refused"]),
        str(run.counts["pair_refused"]),
        str(run.other_refusals),
        *cpu(run),
    ]


HEADER: Final = [
    "run",
    "median/s",
    "overall/s",
    "overall / limit",
    "busiest second",
    "busiest 1 s window",
    "130429",
    "131056",
    "other refusals",
    "CPU (loop + threads)",
    "CPU per send",
    "loop waited for its core",
]


def summary(run: Run) -> str:
    return "; ".join(f"{name} {value}" for name, value in zip(HEADER, row(run), strict=True))


def detail(run: Run) -> str:
    return (
        f"- {run.what}: {len(run.sends)} sends in {run.sends[-1] - run.sends[0]:.2f} s "
        f"(count / (last - first) = {run.span_rate:,.1f}/s){cycles(run)}; per second: "
        + ", ".join(map(str, run.seconds))
    )


def table(runs: list[Run]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(run)) + " |" for run in runs]
    return [*lines, "", *map(detail, runs)]


def code_version(folder: Path | None = None) -> str:
    """The commit measured (this checkout's, or ``folder``'s), and whether the code that ran
    differs from it."""
    git = ["git", "-C", str(folder or Path(__file__).resolve().parents[2])]
    paths = ["--", "workers", "shared", "sandbox", "cli", "wapipe.py"]
    try:
        quiet = subprocess.DEVNULL  # an export (git archive) is no repository: said below
        commit = subprocess.check_output(
            [*git, "rev-parse", "--short", "HEAD"], text=True, stderr=quiet
        )
        changed = subprocess.check_output(
            [*git, "status", "--porcelain", *paths], text=True, stderr=quiet
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.strip() + (" with uncommitted changes" if changed.strip() else "")


def comparison(runs: list[Run]) -> list[str]:
    """An A/B's medians over its turns, by code and limit: the pace, the CPU per send and its
    ratio to the anchor of the same turn (the journal loop, else the bare one)."""
    anchors: dict[int, float] = {}
    for kind in ("bare", "journal"):  # the journal loop wins where both ran
        anchors |= {r.turn: r.usage.per_send_us for r in runs if r.code == kind}
    groups: dict[tuple[str, float | None], list[Run]] = {}
    for run in runs:
        if run.code not in ("bare", "journal"):
            groups.setdefault((run.code, run.limit), []).append(run)
    lines = [
        "| code | limit | turns | overall / limit (median; each) | CPU per send (median) "
        "| ratio to the anchor (median; each) | loop waited | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("journal", "bare"):
        if found := [r for r in runs if r.code == kind]:
            each = ", ".join(f"{r.usage.per_send_us:,.0f}" for r in found)
            loads = ", ".join(f"{r.load:.1f}" for r in found)
            median = statistics.median(r.usage.per_send_us for r in found)
            lines.append(
                f"| anchor: {kind} loop | none | {len(found)} | - | {median:,.0f} µs ({each}) "
                f"| - | - | {loads} |"
            )
    for (code, limit), group in groups.items():
        paces = [r.overall / r.limit for r in group if r.limit]
        per_send = [r.usage.per_send_us for r in group]
        ratios = [r.usage.per_send_us / anchors[r.turn] for r in group if r.turn in anchors]
        waited = [r.usage.loop_waited_s / r.usage.elapsed_s for r in group]

        def median_each(values: list[float], form: str) -> str:
            if not values:
                return "-"
            each = ", ".join(format(value, form) for value in values)
            return f"{format(statistics.median(values), form)} ({each})"

        lines.append(
            f"| {code} | {f'{limit:,.0f}/s' if limit else 'none'} | {len(group)} "
            f"| {median_each(paces, '.3f')} | {statistics.median(per_send):,.0f} µs "
            f"| {median_each(ratios, '.2f')} | {statistics.median(waited):.0%} "
            f"| {', '.join(f'{r.load:.1f}' for r in group)} |"
        )
    return lines


def report(
    runs: list[Run], duration_s: float, ceiling_jobs: int, backend: str, turns: int = 1
) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Code: {code_version()}. Machine: {machine()}. The sender (or the bare loop) on core 0; "
        f"the sandbox, its webhook sink and the benchmark on core 1; RabbitMQ "
        f"{rabbitmq_version()} and {backend} unpinned. Each limit for {duration_s:g} s "
        f"(limit x duration jobs queued first, {JOBS_PER_RECIPIENT} to each recipient); the "
        f"ceilings {ceiling_jobs} jobs, the sandbox's limits lifted. Rates from the "
        "sandbox's request log: median of the whole seconds from the first send (the first left "
        "out), overall = slope of sends against time. CPU: the process's share of its core while "
        "it sent (event loop + other threads), per send, and the share of that time its loop "
        "was ready but another process had the core.",
        "",
        *table(runs),
    ]
    if turns > 1 or len({r.code for r in runs if r.code not in ("bare", "journal")}) > 1:
        lines += [
            "",
            f"By code, over {turns} turns (the codes' order reversed every other turn; load: "
            "the 1-minute load average at each run's end):",
            "",
            *comparison(runs),
        ]
    return "\n".join(lines) + "\n"
