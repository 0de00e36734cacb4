"""The sandbox customer's walk through a flow: footer actions, the routing model, the endpoint's
answers and errors. Pure: the endpoint is a script of answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wapipe.sandbox.flow_player import footer_action, play, resolve
from wapipe.shared.flows.flow_json import problems

BOOKING = json.loads(Path("examples/booking_flow.json").read_text())


def endpoint(*answers: tuple[int, dict[str, Any] | None]) -> Any:
    script = list(answers)
    seen: list[dict[str, Any]] = []

    async def exchange(request: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        seen.append(request)
        return script.pop(0)

    exchange.seen = seen  # type: ignore[attr-defined]
    return exchange


def test_the_booking_example_passes_the_flow_json_checks() -> None:
    assert problems(BOOKING) == []


def test_a_payload_takes_the_form_answers_and_the_screen_data() -> None:
    payload = {"a": "${form.name}", "b": "${data.slot}", "c": True}
    assert resolve(payload, {"name": "Ana"}, {"slot": "mon-10"}) == {
        "a": "Ana",
        "b": "mon-10",
        "c": True,
    }


def test_the_footer_is_found_inside_a_form() -> None:
    assert footer_action(BOOKING["screens"][1])["name"] == "data_exchange"


async def test_the_walk_follows_the_endpoint_to_success() -> None:
    exchange = endpoint(
        (200, {"screen": "APPOINTMENT", "data": {}}),
        (200, {"screen": "DETAILS", "data": {"department": "d", "slot": "s"}}),
        (200, {"screen": "SUMMARY", "data": {"department": "d", "slot": "s", "name": "N"}}),
        (200, {"screen": "SUCCESS", "data": {"extension_message_response": {"params": {"x": 1}}}}),
    )
    answers = {"APPOINTMENT": {"department": "d", "slot": "s"}, "DETAILS": {"name": "N"}}
    played = await play(BOOKING, "t", answers, exchange)
    assert played.error is None
    assert played.closed_with == {"x": 1}
    assert [r["action"] for r in exchange.seen] == ["INIT", *["data_exchange"] * 3]
    assert exchange.seen[2]["data"] == {"name": "N", "department": "d", "slot": "s"}


async def test_a_screen_the_routing_model_forbids_breaks_the_flow() -> None:
    exchange = endpoint(
        (200, {"screen": "APPOINTMENT", "data": {}}),
        (200, {"screen": "SUMMARY", "data": {}}),  # APPOINTMENT leads only to DETAILS
    )
    played = await play(BOOKING, "t", {}, exchange)
    assert played.error == "the routing model does not lead from APPOINTMENT to SUMMARY"


async def test_an_error_answer_or_a_snackbar_stops_the_customer() -> None:
    assert (
        await play(BOOKING, "t", {}, endpoint((427, None)))
    ).error == "the endpoint answered 427"
    snackbar = (200, {"screen": "APPOINTMENT", "data": {"error_message": "try again"}})
    played = await play(BOOKING, "t", {}, endpoint(snackbar))
    assert played.error == "APPOINTMENT: try again"


async def test_a_static_flow_completes_on_the_device_without_the_endpoint() -> None:
    flow = {
        "version": "7.2",
        "screens": [
            {
                "id": "ONE",
                "layout": {
                    "children": [
                        {
                            "type": "Footer",
                            "on-click-action": {
                                "name": "navigate",
                                "next": {"name": "TWO"},
                                "payload": {"n": "${form.n}"},
                            },
                        }
                    ]
                },
            },
            {
                "id": "TWO",
                "terminal": True,
                "layout": {
                    "children": [
                        {
                            "type": "Footer",
                            "on-click-action": {"name": "complete", "payload": {"n": "${data.n}"}},
                        }
                    ]
                },
            },
        ],
    }
    played = await play(flow, "tok", {"ONE": {"n": 7}}, endpoint(), opening={"screen": "ONE"})
    assert played.closed_with == {"n": 7, "flow_token": "tok"}
    assert played.steps == []
