"""``wapipe report``: delivery, latency, spend and inbound volume from wapipe's own storage.

    wapipe report --from 2026-12-01 --to 2026-12-03 [--prices prices.toml | --price marketing=0.025]
                  [--chart wapipe-report.png | --no-chart] [--json]

The numbers are shared/report.py's (charges: shared/charges.py); the chart shared/report_chart.py's.
No Cloud API call.
Registered by wapipe.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec

from shared import console
from shared.analytics import PeriodError, period
from shared.charges import PriceTable, PriceTableError, load_price_table, parse_price_table
from shared.report import Report, build
from shared.settings import Settings
from shared.storage.database import open_database
from shared.storage.report import report_facts


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
    try:
        start, end = period(args.first, args.last)
    except PeriodError as exc:
        raise console.CommandError(str(exc)) from None
    priced = prices(args)
    async with open_database(settings.database_url) as engine:
        statuses, inbound = await report_facts(engine, start, end)
    report = build(statuses, inbound, priced)
    if not args.no_chart:
        from shared.report_chart import write_chart

        write_chart(report, args.chart, f"wapipe {args.first} to {args.last} (UTC)")
    currency = priced.currency if priced is not None else ""
    console.emit(args, report, *_tables(report, None if args.no_chart else args.chart, currency))
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
