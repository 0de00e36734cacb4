"""How the flows worker turns handlers' answers into replies (workers/flows.py), without a
broker: the first answer wins, refusals are 427, error notifications are acknowledged."""

from __future__ import annotations

import pytest

from wapipe.shared.flows.protocol import (
    CloseFlow,
    FlowAnswer,
    FlowRequest,
    FlowTokenInvalid,
    NextScreen,
)
from wapipe.shared.settings import SettingsError
from wapipe.workers.flows import answer, load_flow_handlers, where


async def mine(request: FlowRequest) -> FlowAnswer | None:
    if request.flow_token != "mine":
        return None
    if request.screen == "LAST":
        return CloseFlow({"ok": True})
    if request.screen == "GONE":
        raise FlowTokenInvalid("Already done.")
    return NextScreen("NEXT", {"a": 1}, error_message="careful")


def request(token: str = "mine", screen: str = "", **data: object) -> FlowRequest:
    action = "data_exchange" if screen else "INIT"
    return FlowRequest(action=action, flow_token=token, screen=screen, data=dict(data))


async def test_a_screen_answer_carries_its_data_and_error_message() -> None:
    reply = await answer([mine], request())
    assert reply.outcome == "answered"
    assert reply.body == {"screen": "NEXT", "data": {"a": 1, "error_message": "careful"}}


async def test_the_closing_answer_puts_the_flow_token_in_the_params() -> None:
    reply = await answer([mine], request(screen="LAST"))
    params = reply.body["data"]["extension_message_response"]["params"]
    assert reply.body["screen"] == "SUCCESS"
    assert params == {"ok": True, "flow_token": "mine"}


async def test_a_refused_token_is_a_427_reply_with_its_message() -> None:
    reply = await answer([mine], request(screen="GONE"))
    assert (reply.outcome, reply.status, reply.body) == (
        "token_invalid",
        427,
        {"error_msg": "Already done."},
    )


async def test_nobody_claims_an_unknown_token_but_an_error_notification_is_acknowledged() -> None:
    assert (await answer([mine], request("other"))).outcome == "unclaimed"
    notice = request("other", screen="X", error="bad-screen", error_message="no X")
    assert notice.is_error_notification
    assert (await answer([mine], notice)).body == {"data": {"acknowledged": True}}


def test_handlers_are_loaded_by_name_with_a_clear_error() -> None:
    assert load_flow_handlers(["wapipe.examples.booking_flow:handle"])
    with pytest.raises(SettingsError, match="WAPIPE_FLOW_HANDLERS: cannot load 'nope:x'"):
        load_flow_handlers(["nope:x"])
    with pytest.raises(SettingsError, match="is not an async function"):
        load_flow_handlers(["wapipe.workers.flows:where"])


def test_a_handler_failure_is_logged_by_place_not_message() -> None:
    with pytest.raises(RuntimeError) as raised:
        raise RuntimeError("the customer's name is Ana")
    assert where(raised.value).startswith("test_flow_handlers.py:")
    assert "Ana" not in where(raised.value)
