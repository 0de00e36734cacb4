"""``wapipe profile show|update``: the business profile of a number (the work in
cli/profile/run.py, Meta's limits in cli/profile/check.py)."""

from __future__ import annotations

import argparse

from wapipe.cli.command import Commands, add_json_flag, lazy


def register(commands: Commands) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_json_flag(common)
    profile = commands.add_parser("profile", help="the business profile of a number")
    actions = profile.add_subparsers(dest="action", required=True, metavar="ACTION")
    number = argparse.ArgumentParser(add_help=False, parents=[common])
    number.add_argument(
        "--from",
        dest="phone_number_id",
        help="the number's phone number id (default: WAPIPE_PHONE_NUMBER_ID, else the local "
        "sandbox's)",
    )
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
    profile.set_defaults(run=lazy("wapipe.cli.profile.run", "run_profile"), service="profile")
