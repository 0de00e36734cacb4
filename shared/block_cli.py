"""``wapipe block``: the customers a business number has blocked (Meta's block-users API).

    wapipe block add USER ... [--from ID] [--json]      block (phone numbers, wa_ids, BSUIDs)
    wapipe block remove USER ... [--from ID] [--json]   unblock
    wapipe block list [--from ID] [--json]              the number's blocklist

A blocked customer cannot write to the number, and a send to them is refused with 130403,
which the sender fails at once (docs/cloudapi/blocking.md). Meta blocks only customers who
wrote in the last 24 hours, 1,000 a request (more are sent in several), 64,000 a number. Users
that could not be blocked are listed with Meta's reason, and the command exits 1.
``--from`` defaults to ``WAPIPE_PHONE_NUMBER_ID``. Registered by wapipe.py:
``add_block_commands(commands)``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

from shared.settings import Settings

if TYPE_CHECKING:
    from shared.cloudapi.blocking import BlockedUser

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_block_commands(commands: Commands) -> None:
    parser = commands.add_parser("block", help="block and unblock customers, list the blocked")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--from", dest="phone_number_id", help="the business number's id (WAPIPE_PHONE_NUMBER_ID)"
    )
    common.add_argument("--json", action="store_true", help="print JSON rather than a table")
    for action, meaning in (("add", "block customers"), ("remove", "unblock customers")):
        change = actions.add_parser(action, parents=[common], help=meaning)
        change.add_argument(
            "users", nargs="+", metavar="USER", help="a phone number, wa_id or BSUID"
        )
    actions.add_parser("list", parents=[common], help="the number's blocked customers")
    parser.set_defaults(run=run_block, service="block")


def run_block(settings: Settings, args: argparse.Namespace) -> int:
    from shared import console

    return console.run(f"block {args.action}", lambda: _block(settings, args))


async def _block(settings: Settings, args: argparse.Namespace) -> int:
    from shared import console
    from shared.cloudapi import blocking
    from shared.cloudapi.client import CloudApi, GraphConfig
    from shared.settings import require

    number = args.phone_number_id or settings.phone_number_id
    if not number:
        raise console.CommandError("give --from, or set WAPIPE_PHONE_NUMBER_ID")
    require(settings, "access_token")
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        if args.action == "list":
            listed = await blocking.blocked(api, number)
            listing = [(u.wa_id, u.user_id) for u in listed]
            table = console.table(f"Blocked by {number}", ("wa_id", "BSUID"), listing)
            console.emit(args, [_json(u) for u in listed], table)
            return 0
        done: list[BlockedUser] = []
        failed: list[BlockedUser] = []
        for chunk in _chunks(args.users, blocking.USERS_PER_REQUEST):
            result = await blocking.block(api, number, chunk, unblock=args.action == "remove")
            done += result.done
            failed += result.failed_users
    verb = "blocked" if args.action == "add" else "unblocked"
    rows = [(u.who, verb, "") for u in done] + [(u.who, "failed", u.reason) for u in failed]
    table = console.table(f"{verb.capitalize()} on {number}", ("user", "result", "reason"), rows)
    console.emit(
        args, {verb: [_json(u) for u in done], "failed": [_json(u) for u in failed]}, table
    )
    return console.FAILED if failed else 0


def _chunks(users: Sequence[str], size: int) -> list[Sequence[str]]:
    return [users[i : i + size] for i in range(0, len(users), size)]


def _json(user: BlockedUser) -> dict[str, str | None]:
    return {"user": user.who, "wa_id": user.wa_id, "user_id": user.user_id} | (
        {"reason": user.reason} if user.errors else {}
    )
