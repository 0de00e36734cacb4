"""``wapipe report``: delivery, latency, spend and inbound volume from wapipe's own storage.

    wapipe report [--since 2026-12-01] [--until 2026-12-03] [--price marketing=0.025 ...]
                  [--out report.png | --no-chart] [--json]

The period is cli/period.py's (the last 7 days unless told); the numbers are
cli/report/figures.py's, the chart cli/report/chart.py's. No Cloud API call; the database must
exist (cli/database.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

from cli import output as console
from cli.database import existing
from cli.period import period, today_utc
from cli.report.figures import Report, build
from shared.settings import Settings
from shared.storage.database import open_database
from shared.storage.report import report_facts

DEFAULT_OUT: Final = Path("var") / "report.png"  # named for its period


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    return console.run("report", lambda: _report(settings, args))


def prices(given: list[str]) -> dict[str, float]:
    found = {}
    for item in given:
        category, _, usd = item.partition("=")
        try:
            found[category.strip().lower()] = float(usd)
        except ValueError:
            raise console.CommandError(f"--price {item!r}: give CATEGORY=USD") from None
    return found


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    asked = period(args.since, args.until, today_utc())
    priced = prices(args.price)
    async with open_database(existing(settings.database_url)) as engine:
        statuses, inbound = await report_facts(engine, asked.start, asked.end)
    report = build(statuses, inbound, priced)
    chart = None
    if not args.no_chart:
        from cli.report.chart import write_chart

        chart = args.out or DEFAULT_OUT.with_name(f"report-{asked.first}-to-{asked.last}.png")
        chart.parent.mkdir(parents=True, exist_ok=True)
        write_chart(report, chart, f"wapipe {asked.first} to {asked.last} (UTC)")
    console.emit(args, report, *_tables(report, chart))
    return 0


def _tables(report: Report, chart: Path | None) -> list[Any]:
    tables = [
        console.table(
            "Delivery (messages, by the day of each status)",
            ("day", "number", "sent", "delivered", "read", "failed"),
            [
                (r.day, r.phone_number_id, r.sent, r.delivered, r.read, r.failed)
                for r in report.deliveries
            ],
        ),
        console.table(
            "Failures by error code",
            ("day", "number", "code", "messages"),
            [(r.day, r.phone_number_id, r.error_code, r.messages) for r in report.failures],
        ),
        console.table(
            "Latency (seconds)",
            ("day", "number", "stage", "messages", "p50", "p90", "p99"),
            [
                (r.day, r.phone_number_id, r.stage, r.messages, r.p50_s, r.p90_s, r.p99_s)
                for r in report.latencies
            ],
        ),
        console.table(
            "Conversations and cost by category",
            ("day", "number", "category", "conversations", "messages", "cost USD"),
            [
                (r.day, r.phone_number_id, r.category, r.conversations, r.priced_messages, r.cost)
                for r in report.spend
            ],
        ),
        console.table(
            "Inbound by type",
            ("day", "number", "type", "messages"),
            [(r.day, r.phone_number_id, r.type, r.messages) for r in report.inbound],
        ),
    ]
    if chart is not None:
        tables.append(console.table("Chart", ("written to",), [(str(chart),)]))
    return tables
