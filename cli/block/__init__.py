"""``wapipe block add|remove|list``: the customers a business number has blocked, through Meta's
block-users API (the work in cli/block/run.py)."""

from __future__ import annotations

import argparse

from wapipe.cli.command import Commands, add_json_flag, lazy


def register(commands: Commands) -> None:
    parser = commands.add_parser("block", help="block and unblock customers, list the blocked")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--from",
        dest="phone_number_id",
        help="the business number's phone number id (default: WAPIPE_PHONE_NUMBER_ID, else "
        "the local sandbox's)",
    )
    add_json_flag(common)
    for action, meaning in (("add", "block customers"), ("remove", "unblock customers")):
        change = actions.add_parser(action, parents=[common], help=meaning)
        change.add_argument(
            "users", nargs="+", metavar="USER", help="a phone number, wa_id or BSUID"
        )
    actions.add_parser("list", parents=[common], help="the number's blocked customers")
    parser.set_defaults(run=lazy("wapipe.cli.block.run", "run_block"), service="block")
