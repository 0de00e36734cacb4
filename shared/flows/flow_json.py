"""Flow JSON checked before it is sent to Meta (docs/cloudapi/flows.md, "Flow JSON"): the
problems Meta would refuse it for that can be seen without Meta. Pure."""

from __future__ import annotations

import re
from typing import Any, Final

VERSION: Final = re.compile(r"^\d+\.\d+$")
SCREEN_ID: Final = re.compile(r"^[A-Za-z_]+$")
DATA_API_VERSIONS: Final = ("3.0",)
RESERVED_SCREENS: Final = frozenset({"SUCCESS"})  # the endpoint's closing screen


def problems(flow: Any) -> list[str]:
    """What is wrong with ``flow`` (a decoded Flow JSON), each in one line; empty when none."""
    if not isinstance(flow, dict):
        return ["a Flow JSON is an object"]
    found = _version(flow)
    screens = flow.get("screens")
    if not isinstance(screens, list) or not screens:
        return [*found, "screens: a non-empty list is required"]
    ids = [screen.get("id") if isinstance(screen, dict) else None for screen in screens]
    found += _screens(screens, ids)
    if "data_api_version" in flow:
        found += _endpoint(flow, {i for i in ids if isinstance(i, str)})
    elif "routing_model" in flow:
        found.append("routing_model without data_api_version: only a flow with an endpoint has one")
    return found


def _version(flow: dict[str, Any]) -> list[str]:
    version = flow.get("version")
    if not isinstance(version, str) or not VERSION.match(version):
        return ['version: required, as "<major>.<minor>" (e.g. "7.2")']
    return []


def _screens(screens: list[Any], ids: list[Any]) -> list[str]:
    found = []
    for number, (screen, screen_id) in enumerate(zip(screens, ids, strict=True), 1):
        if not isinstance(screen_id, str) or not SCREEN_ID.match(screen_id):
            found.append(f"screen {number}: id required, letters and underscores only")
        elif screen_id in RESERVED_SCREENS:
            found.append(f"screen {number}: {screen_id} is a reserved id")
        if not isinstance(screen, dict) or not isinstance(screen.get("layout"), dict):
            found.append(f"screen {number}: layout required (an object)")
    repeated = sorted({i for i in ids if isinstance(i, str) and ids.count(i) > 1})
    if repeated:
        found.append(f"screens: ids used twice: {', '.join(repeated)}")
    if not any(isinstance(s, dict) and s.get("terminal") is True for s in screens):
        found.append("screens: at least one must be terminal")
    return found


def _endpoint(flow: dict[str, Any], ids: set[str]) -> list[str]:
    found = []
    if flow["data_api_version"] not in DATA_API_VERSIONS:
        found.append(f"data_api_version: must be one of {', '.join(DATA_API_VERSIONS)}")
    routing = flow.get("routing_model")
    if not isinstance(routing, dict):
        return [*found, "routing_model: required with data_api_version (screen -> next screens)"]
    for source, targets in routing.items():
        if source not in ids:
            found.append(f"routing_model: {source} is not a screen")
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            found.append(f"routing_model: {source} must route to a list of screen ids")
            continue
        unknown = sorted(set(targets) - ids)
        if unknown:
            found.append(f"routing_model: {source} routes to unknown {', '.join(unknown)}")
        if source in targets:
            found.append(f"routing_model: {source} routes to itself")
    return found
