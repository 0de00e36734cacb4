"""A booking flow's handler: a model for your own. ``wapipe up`` runs it when
``WAPIPE_FLOW_HANDLERS`` is unset; elsewhere set
``WAPIPE_FLOW_HANDLERS=wapipe.examples.booking_flow:handle``. Its screens are
``examples/booking_flow.json``.

    INIT         -> APPOINTMENT, with the services and the free slots
    APPOINTMENT  -> DETAILS (the choice checked; a slot gone: the same screen, with a message)
    DETAILS      -> SUMMARY, the booking spelled out
    SUMMARY      -> closed: the nfm_reply message carries the booking
    BACK         -> APPOINTMENT again

It claims the flow tokens that start with ``booking``: a handler returns None for a request
that is not its flow's, and the next handler is asked. It keeps no state between screens: each
screen's data carries the choices so far, and the payload brings them back.
"""

from __future__ import annotations

from typing import Any, Final

from wapipe.shared.flows.protocol import (
    BACK,
    INIT,
    CloseFlow,
    FlowAnswer,
    FlowRequest,
    FlowTokenInvalid,
    NextScreen,
)

FLOW_PREFIX: Final = "booking"
DEPARTMENTS: Final = {"haircut": "Haircut", "colour": "Colour", "beard": "Beard trim"}
SLOTS: Final = {
    "mon-10": "Monday 10:00",
    "mon-15": "Monday 15:00",
    "tue-11": "Tuesday 11:00",
}
TAKEN: Final = frozenset({"tue-11"})  # a slot someone else booked meanwhile


def _options(choices: dict[str, str]) -> list[dict[str, str]]:
    return [{"id": key, "title": title} for key, title in choices.items()]


def _appointment(error_message: str | None = None) -> NextScreen:
    data = {"departments": _options(DEPARTMENTS), "slots": _options(SLOTS)}
    return NextScreen("APPOINTMENT", data, error_message)


def _chosen(data: dict[str, Any]) -> tuple[str, str]:
    return str(data.get("department", "")), str(data.get("slot", ""))


async def handle(request: FlowRequest) -> FlowAnswer | None:
    if not request.flow_token.startswith(FLOW_PREFIX):
        return None  # not this flow
    if request.flow_token.endswith(":used"):
        raise FlowTokenInvalid("This booking is already made.")
    if request.is_error_notification:
        return None  # acknowledged for us; a real handler would record it
    if request.action in (INIT, BACK):
        return _appointment()
    department, slot = _chosen(request.data)
    if request.screen == "APPOINTMENT":
        if department not in DEPARTMENTS or slot not in SLOTS:
            return _appointment("Please choose a service and a time.")
        if slot in TAKEN:
            return _appointment("That time was just taken, please choose another.")
        return NextScreen("DETAILS", {"department": department, "slot": slot})
    if request.screen == "DETAILS":
        name = str(request.data.get("name", "")).strip()
        summary = f"{DEPARTMENTS[department]}, {SLOTS[slot]}, for {name}"
        data = {"summary": summary, "department": department, "slot": slot, "name": name}
        return NextScreen("SUMMARY", data)
    if request.screen == "SUMMARY":
        name = str(request.data.get("name", ""))
        return CloseFlow({"department": department, "slot": slot, "name": name})
    return None
