"""``wapipe report``: delivery, latency, spend and inbound volume from wapipe's own storage.

    wapipe report [--since 2026-12-01] [--until 2026-12-03]
                  [--prices prices.toml | --price marketing=0.025 ...]
                  [--out report.png | --no-chart] [--json]

The period is cli/period.py's (the last 7 days unless told); the numbers are
cli/report/figures.py's (charges: cli/report/charges.py), the chart cli/report/chart.py's. No
Cloud API call; the database must exist (cli/database.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

import msgspec

from wapipe.cli import output as console
from wapipe.cli.database import existing
from wapipe.cli.period import period, today_utc
from wapipe.cli.report.charges import (
    PriceTable,
    PriceTableError,
    load_price_table,
    parse_price_table,
)
from wapipe.cli.report.figures import Report, build
from wapipe.shared.settings import Settings
from wapipe.shared.storage.database import open_database
from wapipe.shared.storage.report import report_facts

DEFAULT_OUT: Final = Path("var") / "report.png"  # named for its period


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    return console.run("report", lambda: _report(settings, args))


def prices(args: argparse.Namespace) -> PriceTable | None:
    """The table of --prices, or one market for all of --price CATEGORY=USD, or None."""
    if args.prices is not None and args.price:
        raise console.CommandError("give --prices or --price, not both")
    try:
        if args.prices is not None:
            return load_price_table(args.prices)
        if not args.price:
            return None
        flat: dict[str, str] = {}
        for item in args.price:
            category, _, usd = item.partition("=")
            flat[category.strip().lower()] = usd.strip()
        document = {"markets": {"all": ["*"]}, "PMP": {"all": flat}, "CBP": {"all": flat}}
        return parse_price_table(document, "--price")
    except PriceTableError as exc:
        raise console.CommandError(str(exc)) from None


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    asked = period(args.since, args.until, today_utc())
    priced = prices(args)
    async with open_database(existing(settings.database_url)) as engine:
        statuses, inbound = await report_facts(engine, asked.start, asked.end)
    report = build(statuses, inbound, priced)
    chart = None
    if not args.no_chart:
        from wapipe.cli.report.chart import write_chart

        chart = args.out or DEFAULT_OUT.with_name(f"report-{asked.first}-to-{asked.last}.png")
        chart.parent.mkdir(parents=True, exist_ok=True)
        write_chart(report, chart, f"wapipe {asked.first} to {asked.last} (UTC)")
    currency = priced.currency if priced is not None else ""
    console.emit(args, report, *_tables(report, chart, currency))
    return 0


def _tables(report: Report, chart: Path | None, currency: str) -> list[Any]:
    total = "unpriced" if report.total_cost is None else f"{report.total_cost} {currency}"
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
            f"Charges: billable messages once each when delivered (total {total})",
            ("day", "number", "model", "market", "category", "type", "messages", "billed", "cost"),
            [msgspec.structs.astuple(r) for r in report.charges],
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
