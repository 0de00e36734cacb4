"""The sandbox ``wapipe up`` runs on this machine, found the same way by every command that talks
to the Cloud API: when a setting it needs is unset (WAPIPE_GRAPH_URL left at Meta's, or
WAPIPE_PHONE_NUMBER_ID, WAPIPE_WABA_ID), a sandbox answering at 127.0.0.1:8090 with exactly one
business fills it in, and the command says so on stderr. Explicit settings and flags always win.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any, Final

import msgspec

from wapipe.cli.errors import UNREACHABLE, CommandError
from wapipe.cli.local.up import LOCAL_DEFAULTS
from wapipe.shared.settings import Settings

SANDBOX_URL: Final = LOCAL_DEFAULTS["WAPIPE_GRAPH_URL"]
LOCAL_ACCESS_TOKEN: Final = LOCAL_DEFAULTS["WAPIPE_ACCESS_TOKEN"]  # what the sandbox accepts
META_GRAPH_URL: Final = "https://graph.facebook.com"  # shared/settings.py's default


def local_business(url: str = SANDBOX_URL) -> dict[str, Any] | None:
    """The one business of a sandbox answering at ``url``; None if none answers, or it has
    several (then which one is meant cannot be guessed)."""
    try:
        with urllib.request.urlopen(f"{url}/_sandbox/state", timeout=1) as answer:  # noqa: S310
            businesses = json.loads(answer.read())["businesses"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(businesses, list) or len(businesses) != 1:
        return None
    business: dict[str, Any] = businesses[0]
    return business


def with_local_sandbox(
    settings: Settings,
    command: str,
    need: tuple[str, ...] = ("graph_url", "phone_number_id", "waba_id"),
) -> Settings:
    """``settings`` with what the local sandbox supplies for the fields in ``need`` that are
    unset; unchanged when no sandbox answers. Says on stderr what it took."""
    changes: dict[str, str] = {}
    if "graph_url" in need:
        unset = settings.graph_url == META_GRAPH_URL and not settings.access_token
        if not unset and settings.graph_url != SANDBOX_URL:
            return settings  # another Cloud API: its ids are not the sandbox's
        if unset:
            changes = {"graph_url": SANDBOX_URL, "access_token": LOCAL_ACCESS_TOKEN}
    missing = [f for f in need if f != "graph_url" and not getattr(settings, f)]
    if not (changes or missing):
        return settings
    business = local_business()
    if business is None:
        return settings
    changes |= {f: str(business[f]) for f in missing if business.get(f)}
    said = ", ".join(
        f"{name} {changes[field]}"
        for field, name in (("phone_number_id", "number"), ("waba_id", "WABA"))
        if field in changes
    )
    print(
        f"wapipe {command}: using the local sandbox at {SANDBOX_URL}"
        + (f" ({said})" if said else ""),
        file=sys.stderr,
    )
    return msgspec.structs.replace(settings, **changes)


FLAGS: Final = {"phone_number_id": "--from", "waba_id": "--waba"}


def cloud_api_settings(
    settings: Settings, command: str, need: tuple[str, ...] = (), **given: str | None
) -> Settings:
    """The settings a Cloud API command runs with: its flags (``given``, e.g. ``waba_id`` from
    ``--waba``) over the environment, the local sandbox for what is still unset, and one error
    naming everything still missing (``need``: the ids it cannot do without)."""
    settings = msgspec.structs.replace(settings, **{k: v for k, v in given.items() if v})
    settings = with_local_sandbox(settings, command, ("graph_url", *need))
    missing = [
        f"WAPIPE_{field.upper()}" + (f" (or {FLAGS[field]})" if field in FLAGS else "")
        for field in ("access_token", *need)
        if not getattr(settings, field)
    ]
    if missing:
        raise CommandError(
            f"set {', '.join(missing)}, or start the local sandbox (`wapipe up`)", UNREACHABLE
        )
    return settings
