"""A customer filling a flow, as the WhatsApp client does it (docs/cloudapi/flows.md).

``play`` walks the Flow JSON: it opens the flow (``INIT`` to the endpoint for a
``data_exchange`` flow message, else the first screen), then on each screen submits the
customer's answers for it through the screen's footer action: ``data_exchange`` asks the
endpoint for the next screen, ``navigate`` moves to the named screen, ``complete`` ends the flow
with its payload. An endpoint's answer must lead where the routing model allows; ``SUCCESS``
ends the flow with its params. What the endpoint is called with and what it answered is kept,
step by step, for the console and the tests.

Pure but for ``exchange``, the caller's way to reach the endpoint (encrypted, signed).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MAX_STEPS: Final = 25
_BINDING: Final = re.compile(r"^\$\{(form|data)\.([A-Za-z0-9_]+)\}$")

# (request) -> (HTTP status, the answer in clear, or None when it did not decrypt)
Exchange = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any] | None]]]


@dataclass
class Step:
    screen: str
    request: dict[str, Any]
    status: int | None = None  # None: the screen moved without the endpoint
    answer: dict[str, Any] | None = None


@dataclass
class Shown:
    """A screen as the customer saw it, what they entered on it and how they left it."""

    screen: str
    title: str
    fields: list[dict[str, Any]]  # the inputs: name, type, label, required
    data: dict[str, Any]  # what the screen was opened with
    answers: dict[str, Any]
    action: str  # the footer's: data_exchange, navigate or complete


@dataclass
class Played:
    screens: list[Shown] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # each call to the endpoint
    closed_with: dict[str, Any] | None = None  # the nfm_reply's response_json
    error: str | None = None  # why the customer saw an error instead


class FlowBroken(Exception):
    """The flow cannot go on: what the customer would see as an error."""


def _screens(flow_json: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {screen["id"]: screen for screen in flow_json.get("screens", [])}


def footer_action(screen: Mapping[str, Any]) -> Mapping[str, Any]:
    """The on-click action of the screen's Footer (searched through its layout)."""
    stack: list[Any] = [screen.get("layout", {})]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("type") == "Footer" and "on-click-action" in node:
                action: Mapping[str, Any] = node["on-click-action"]
                return action
            stack.extend(node.get("children", []))
        elif isinstance(node, list):
            stack.extend(node)
    raise FlowBroken(f"screen {screen.get('id')} has no Footer action")


def inputs(screen: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The screen's input components (those with a ``name``), in layout order."""
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                visit(child)
        elif isinstance(node, Mapping):
            if "name" in node and node.get("type") not in ("Form", None):
                found.append(
                    {
                        "name": node["name"],
                        "type": node["type"],
                        "label": node.get("label", ""),
                        "required": bool(node.get("required", False)),
                    }
                )
            visit(node.get("children", []))

    visit(screen.get("layout", {}))
    return found


def entry_screen(flow_json: Mapping[str, Any]) -> str:
    """The screen a ``navigate`` flow message without a screen opens on (Meta's
    FIRST_ENTRY_SCREEN): the first one no route leads to."""
    routing: Mapping[str, Any] = flow_json.get("routing_model", {})
    led_to = {target for targets in routing.values() for target in targets}
    ids = [str(screen.get("id", "")) for screen in flow_json.get("screens", [])]
    return next((i for i in ids if i not in led_to), ids[0] if ids else "")


def resolve(
    payload: Mapping[str, Any], form: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    """The payload with ``${form.x}`` and ``${data.x}`` replaced by the answers and the data."""
    resolved = {}
    for key, value in payload.items():
        bound = _BINDING.match(value) if isinstance(value, str) else None
        if bound is None:
            resolved[key] = value
        else:
            source = form if bound.group(1) == "form" else data
            resolved[key] = source.get(bound.group(2))
    return resolved


async def play(
    flow_json: Mapping[str, Any],
    flow_token: str,
    answers: Mapping[str, Mapping[str, Any]],
    exchange: Exchange,
    opening: Mapping[str, Any] | None = None,
) -> Played:
    """Fill the flow with ``answers`` (screen id -> its form's fields). ``opening`` is the flow
    message's ``flow_action_payload`` for a ``navigate`` flow (``screen``, ``data``); None
    opens with ``INIT``."""
    played = Played()
    try:
        await _walk(flow_json, flow_token, answers, exchange, opening, played)
    except FlowBroken as exc:
        played.error = str(exc)
    return played


async def _walk(
    flow_json: Mapping[str, Any],
    flow_token: str,
    answers: Mapping[str, Mapping[str, Any]],
    exchange: Exchange,
    opening: Mapping[str, Any] | None,
    played: Played,
) -> None:
    screens = _screens(flow_json)
    routing: Mapping[str, Any] = flow_json.get("routing_model", {})
    version = str(flow_json.get("data_api_version", "3.0"))
    if opening is None:
        opened: dict[str, Any] = {"version": version, "action": "INIT", "flow_token": flow_token}
        screen, data = await _ask(exchange, "", opened, played, screens, None)
    else:
        screen, data = str(opening.get("screen", "")), dict(opening.get("data", {}))
    for _ in range(MAX_STEPS):
        if screen not in screens:
            raise FlowBroken(f"no screen {screen!r} in the Flow JSON")
        action = footer_action(screens[screen])
        given = dict(answers.get(screen, {}))
        payload = resolve(action.get("payload", {}), given, data)
        name = action.get("name")
        shown = screens[screen]
        title = str(shown.get("title", screen))
        played.screens.append(Shown(screen, title, inputs(shown), data, given, str(name)))
        if name == "complete":
            played.closed_with = {**payload, "flow_token": flow_token}
            return
        if name == "navigate":
            screen, data = str(action.get("next", {}).get("name", "")), payload
            continue
        if name != "data_exchange":
            raise FlowBroken(f"screen {screen}: unknown action {name!r}")
        request: dict[str, Any] = {
            "version": version,
            "action": "data_exchange",
            "screen": screen,
            "flow_token": flow_token,
            "data": payload,
        }
        allowed = routing.get(screen)
        screen, data = await _ask(exchange, screen, request, played, screens, allowed)
        if played.closed_with is not None:
            return
    raise FlowBroken(f"still going after {MAX_STEPS} screens")


async def _ask(
    exchange: Exchange,
    screen: str,
    request: dict[str, Any],
    played: Played,
    screens: Mapping[str, Any],
    allowed: list[str] | None,
) -> tuple[str, dict[str, Any]]:
    status, answer = await exchange(request)
    played.steps.append(Step(screen or "(open)", request, status, answer))
    if status != 200 or answer is None:
        raise FlowBroken(f"the endpoint answered {status}")
    next_screen = answer.get("screen")
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    assert isinstance(data, dict)
    if next_screen == "SUCCESS":
        params = data.get("extension_message_response", {}).get("params", {})
        played.closed_with = dict(params)
        return "SUCCESS", data
    if "error_message" in data:  # a snackbar: this customer gives up there
        raise FlowBroken(f"{next_screen}: {data['error_message']}")
    if not isinstance(next_screen, str) or next_screen not in screens:
        raise FlowBroken(f"the endpoint named no screen of the flow ({next_screen!r})")
    if allowed is not None and next_screen != screen and next_screen not in allowed:
        raise FlowBroken(f"the routing model does not lead from {screen} to {next_screen}")
    return next_screen, data
