"""``wapipe profile``: the business profile of a number.

    wapipe profile show [--from ID] [--json]
    wapipe profile update [--from ID] [--about T] [--address T] [--description T] [--email E]
                          [--website URL ...] [--vertical V] [--picture-handle H]

A profile update is checked against Meta's limits before it is sent (cli/profile/check.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from wapipe.cli import output as console
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.cli.profile.check import problems
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.management import business_profile
from wapipe.shared.settings import Settings


def run_profile(settings: Settings, args: argparse.Namespace) -> int:
    return console.run(f"profile {args.action}", lambda: _profile(settings, args))


def profile_update(args: argparse.Namespace) -> dict[str, Any]:
    fields = ("about", "address", "description", "email", "vertical", "websites")
    update = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    if args.picture_handle:
        update["profile_picture_handle"] = args.picture_handle
    return update


async def _profile(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "update":
        update = profile_update(args)
        if found := problems(update):
            raise console.CommandError("; ".join(found))
    command = f"profile {args.action}"
    settings = cloud_api_settings(
        settings, command, ("phone_number_id",), phone_number_id=args.phone_number_id
    )
    number = settings.phone_number_id
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        if args.action == "update":
            await api.update_business_profile(number, update)
        shown = await business_profile(api, number)
    rows = [(k, ", ".join(v) if isinstance(v, list) else v) for k, v in _fields(shown).items()]
    title = f"Business profile of {number}" + (" (updated)" if args.action == "update" else "")
    console.emit(args, shown, console.table(title, ("field", "value"), rows))
    return 0


def _fields(profile: Any) -> dict[str, Any]:
    return {f: getattr(profile, f) for f in profile.__struct_fields__}
