"""The account commands' parsers (``wapipe templates|profile|numbers|analytics|report``), apart
from their work: registering them costs wapipe.py nothing, and each command's module (rich, the
client, storage, matplotlib) is imported only when that command runs.

The commands themselves: shared/templates_cli.py, account_cli.py, analytics_cli.py,
report_cli.py (README "Managing the account").
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeAlias

from shared.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
KINDS: Final = ("messages", "conversations", "pricing", "templates")  # shared/analytics.py


def _lazy(module: str, name: str) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        command: Callable[[Settings, argparse.Namespace], int] = getattr(
            importlib.import_module(module), name
        )
        return command(settings, args)

    return run


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON rather than a table")


def add_account_commands(commands: Commands) -> None:
    add_templates_parser(commands)
    add_account_parsers(commands)
    add_analytics_parser(commands)
    add_report_parser(commands)


def add_templates_parser(commands: Commands) -> None:
    parser = commands.add_parser("templates", help="the WABA's message templates")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--waba", help="the WABA id (default: WAPIPE_WABA_ID)")
    common.add_argument("--page-size", type=int, default=100, help="templates per call")
    _json_flag(common)
    listing = actions.add_parser("list", parents=[common], help="every template, with status")
    listing.add_argument("--status", help="only these: APPROVED, PENDING, REJECTED, ...")
    show = actions.add_parser("show", parents=[common], help="one template by name or id")
    show.add_argument("template", help="its name (every language) or its id")
    create = actions.add_parser("create", parents=[common], help="create from a JSON/YAML file")
    create.add_argument("file", type=Path, help="the template, as JSON or YAML (checked first)")
    edit = actions.add_parser("edit", parents=[common], help="new components or category")
    edit.add_argument("id", help="the template's id")
    edit.add_argument("file", type=Path, help="JSON/YAML with components and/or category")
    delete = actions.add_parser("delete", parents=[common], help="delete a template")
    delete.add_argument("name", help="the template's name")
    delete.add_argument("--id", help="only the language of this template id")
    actions.add_parser("sync", parents=[common], help="store every template and change")
    parser.set_defaults(run=_lazy("shared.templates_cli", "run_templates"), service="templates")


def add_account_parsers(commands: Commands) -> None:
    common = argparse.ArgumentParser(add_help=False)
    _json_flag(common)
    profile = commands.add_parser("profile", help="the business profile of a number")
    actions = profile.add_subparsers(dest="action", required=True, metavar="ACTION")
    number = argparse.ArgumentParser(add_help=False, parents=[common])
    number.add_argument("--from", dest="phone_number_id", required=True, help="its number id")
    actions.add_parser("show", parents=[number], help="what the profile says")
    update = actions.add_parser("update", parents=[number], help="change some fields")
    fields = {
        "about": "the about text (1 to 139 characters)",
        "address": "the business's address (up to 256 characters)",
        "description": "what the business does (up to 512 characters)",
        "email": "a contact email address (up to 128 characters)",
        "vertical": "the industry, as Meta names it: RETAIL, RESTAURANT, OTHER ...",
    }
    for field, meaning in fields.items():
        update.add_argument(f"--{field}", help=meaning)
    update.add_argument("--website", action="append", dest="websites", help="repeat, at most 2")
    update.add_argument("--picture-handle", help="a Resumable Upload handle for the picture")
    profile.set_defaults(run=_lazy("shared.account_cli", "run_profile"), service="profile")

    numbers = commands.add_parser("numbers", help="the WABA's phone numbers")
    kinds = numbers.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_sender = argparse.ArgumentParser(add_help=False, parents=[common])
    with_sender.add_argument("--sender-metrics", help="the sender's metrics URL")
    listing = kinds.add_parser("list", parents=[with_sender], help="every number")
    listing.add_argument("--waba", help="the WABA id (default: WAPIPE_WABA_ID)")
    show = kinds.add_parser("show", parents=[with_sender], help="one number")
    show.add_argument("phone_number_id", help="the number's phone number id")
    numbers.set_defaults(run=_lazy("shared.account_cli", "run_numbers"), service="numbers")


def add_analytics_parser(commands: Commands) -> None:
    parser = commands.add_parser("analytics", help="the Cloud API's analytics, pulled and stored")
    parser.add_argument("kind", choices=KINDS, help="which analytics to pull")
    parser.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--to", dest="last", required=True, help="last day, included")
    parser.add_argument(
        "--granularity",
        default="day",
        choices=("half_hour", "day", "month"),
        help="one data point per this much time",
    )
    parser.add_argument("--template", action="append", default=[], help="a template id; repeat")
    parser.add_argument("--waba", help="the WABA id (default: WAPIPE_WABA_ID)")
    _json_flag(parser)
    parser.set_defaults(run=_lazy("shared.analytics_cli", "run_analytics"), service="analytics")


def add_report_parser(commands: Commands) -> None:
    parser = commands.add_parser("report", help="delivery, latency, spend, inbound, per day")
    parser.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--to", dest="last", required=True, help="last day, included")
    parser.add_argument(
        "--prices", type=Path, help="price table, TOML by market (docs/pricing-table.md)"
    )
    parser.add_argument(
        "--price", action="append", default=[], help="CATEGORY=USD, any market (no --prices)"
    )
    parser.add_argument("--chart", type=Path, default=Path("wapipe-report.png"), help="the PNG")
    parser.add_argument("--no-chart", action="store_true", help="write no chart")
    _json_flag(parser)
    parser.set_defaults(run=_lazy("shared.report_cli", "run_report"), service="report")
