"""``wapipe numbers list|show``: the WABA's phone numbers, with the sender's pace and pause
state of each (the work in cli/numbers/run.py)."""

from __future__ import annotations

import argparse

from wapipe.cli.command import Commands, add_json_flag, lazy


def register(commands: Commands) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_json_flag(common)
    numbers = commands.add_parser("numbers", help="the WABA's phone numbers")
    kinds = numbers.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_sender = argparse.ArgumentParser(add_help=False, parents=[common])
    with_sender.add_argument("--sender-metrics", help="the sender's metrics URL")
    listing = kinds.add_parser("list", parents=[with_sender], help="every number")
    listing.add_argument(
        "--waba", help="the WABA id (default: WAPIPE_WABA_ID, else the local sandbox's)"
    )
    show = kinds.add_parser("show", parents=[with_sender], help="one number")
    show.add_argument(
        "--from",
        dest="phone_number_id",
        help="the number's phone number id (default: WAPIPE_PHONE_NUMBER_ID, else the local "
        "sandbox's)",
    )
    numbers.set_defaults(run=lazy("wapipe.cli.numbers.run", "run_numbers"), service="numbers")
