"""``wapipe block``: the customers a business number has blocked (Meta's block-users API).

    wapipe block add USER ... [--from ID] [--json]      block (phone numbers, wa_ids, BSUIDs)
    wapipe block remove USER ... [--from ID] [--json]   unblock
    wapipe block list [--from ID] [--json]              the number's blocklist

A blocked customer cannot write to the number, and a send to them is refused with 130403,
which the sender fails at once (docs/cloudapi/blocking.md). Meta blocks only customers who
wrote in the last 24 hours, 1,000 a request (more are sent in several), 64,000 a number. Users
that could not be blocked are listed with Meta's reason, and the command exits 1.
``--from`` defaults to ``WAPIPE_PHONE_NUMBER_ID``, else the local sandbox's number.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from wapipe.cli import output as console
from wapipe.cli.errors import FAILED
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.shared.cloudapi import blocking
from wapipe.shared.cloudapi.blocking import BlockedUser
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.settings import Settings


def run_block(settings: Settings, args: argparse.Namespace) -> int:
    return console.run(f"block {args.action}", lambda: _block(settings, args))


async def _block(settings: Settings, args: argparse.Namespace) -> int:
    settings = cloud_api_settings(
        settings, f"block {args.action}", ("phone_number_id",), phone_number_id=args.phone_number_id
    )
    number = settings.phone_number_id
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
    return FAILED if failed else 0


def _chunks(users: Sequence[str], size: int) -> list[Sequence[str]]:
    return [users[i : i + size] for i in range(0, len(users), size)]


def _json(user: BlockedUser) -> dict[str, str | None]:
    return {"user": user.who, "wa_id": user.wa_id, "user_id": user.user_id} | (
        {"reason": user.reason} if user.errors else {}
    )
