"""``wapipe report``: delivery, latency, spend and inbound volume per day, from wapipe's own
storage (the work in cli/report/run.py, the figures in figures.py, the chart in chart.py)."""

from __future__ import annotations

from pathlib import Path

from cli.command import Commands, add_json_flag, lazy


def register(commands: Commands) -> None:
    parser = commands.add_parser("report", help="delivery, latency, spend, inbound, per day")
    parser.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--to", dest="last", required=True, help="last day, included")
    parser.add_argument(
        "--price", action="append", default=[], help="CATEGORY=USD a message, e.g. marketing=0.025"
    )
    parser.add_argument("--chart", type=Path, default=Path("wapipe-report.png"), help="the PNG")
    parser.add_argument("--no-chart", action="store_true", help="write no chart")
    add_json_flag(parser)
    parser.set_defaults(run=lazy("cli.report.run", "run_report"), service="report")
