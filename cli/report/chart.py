"""The report as a chart (PNG, matplotlib): messages sent, delivered, read and failed per day,
and the send-to-delivered latency (p50, p90) per day, of the slowest number that day."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Final

from wapipe.cli.report.figures import Report

WIDTH_IN: Final = 10.0
HEIGHT_IN: Final = 6.0
DPI: Final = 100  # so a chart is 1000 x 600 pixels


def write_chart(report: Report, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib import pyplot

    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in report.deliveries:
        for i, value in enumerate((row.sent, row.delivered, row.read, row.failed)):
            totals[row.day][i] += value
    days = sorted(totals)
    figure, (counts, latency) = pyplot.subplots(2, 1, figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    try:
        width = 0.2
        for i, label in enumerate(("sent", "delivered", "read", "failed")):
            positions = [d + (i - 1.5) * width for d in range(len(days))]
            counts.bar(positions, [totals[day][i] for day in days], width, label=label)
        counts.set_xticks(range(len(days)), days)
        counts.set_ylabel("messages")
        counts.legend(loc="best", fontsize="small")
        counts.set_title(title)
        stage = [r for r in report.latencies if r.stage == "sent->delivered"]
        for label, attribute in (("p50", "p50_s"), ("p90", "p90_s")):
            by_day = {r.day: 0.0 for r in stage}
            for r in stage:
                by_day[r.day] = max(by_day[r.day], getattr(r, attribute))
            latency.plot(list(by_day), list(by_day.values()), marker="o", label=label)
        latency.set_ylabel("sent->delivered s\n(slowest number)")
        latency.legend(loc="best", fontsize="small")
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)
