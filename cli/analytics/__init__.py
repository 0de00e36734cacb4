"""``wapipe analytics KIND``: the Cloud API's analytics, pulled and stored (the work in
cli/analytics/run.py, the queries in cli/analytics/query.py)."""

from __future__ import annotations

from typing import Final

from wapipe.cli.command import Commands, add_json_flag, lazy
from wapipe.cli.period import add_period_flags

KINDS: Final = ("messages", "conversations", "pricing", "templates")  # cli/analytics/query.py


def register(commands: Commands) -> None:
    parser = commands.add_parser("analytics", help="the Cloud API's analytics, pulled and stored")
    parser.add_argument("kind", choices=KINDS, help="which analytics to pull")
    add_period_flags(parser)
    parser.add_argument(
        "--granularity",
        default="day",
        choices=("half_hour", "day", "month"),
        help="one data point per this much time",
    )
    parser.add_argument("--template", action="append", default=[], help="a template id; repeat")
    parser.add_argument(
        "--waba", help="the WABA id (default: WAPIPE_WABA_ID, else the local sandbox's)"
    )
    add_json_flag(parser)
    parser.set_defaults(run=lazy("wapipe.cli.analytics.run", "run_analytics"), service="analytics")
