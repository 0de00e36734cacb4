"""``wapipe report``: delivery, latency, spend and inbound volume per day, from wapipe's own
storage (the work in cli/report/run.py, the figures in figures.py, the chart in chart.py)."""

from __future__ import annotations

from pathlib import Path

from wapipe.cli.command import Commands, add_json_flag, lazy
from wapipe.cli.period import add_period_flags


def register(commands: Commands) -> None:
    parser = commands.add_parser("report", help="delivery, latency, spend, inbound, per day")
    add_period_flags(parser)
    parser.add_argument(
        "--prices", type=Path, help="price table, TOML by market (docs/pricing-table.md)"
    )
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        help="CATEGORY=USD a message in any market, e.g. marketing=0.025 (not with --prices)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="where the chart (PNG) goes (default: var/report-SINCE-to-UNTIL.png)",
    )
    parser.add_argument("--no-chart", action="store_true", help="write no chart")
    add_json_flag(parser)
    parser.set_defaults(run=lazy("wapipe.cli.report.run", "run_report"), service="report")
