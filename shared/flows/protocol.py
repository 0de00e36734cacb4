"""What the Flows endpoint and the flow handlers say to each other (docs/cloudapi/flows.md).

    Meta --encrypted--> ingress POST /flows --FlowRequest (clear JSON)--> wa.flows.requests
                                 ^                                          | flows worker
                                 '------------ FlowReply (direct reply-to) -' (the handlers)

``FlowRequest`` is Meta's decrypted request, decoded permissively (Meta adds fields). A handler
answers with ``NextScreen``, ``CloseFlow`` or ``Acknowledge``, or raises ``FlowTokenInvalid``;
the worker turns that into a ``FlowReply``: the status and clear body the ingress encrypts.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

PING: Final = "ping"
INIT: Final = "INIT"
DATA_EXCHANGE: Final = "data_exchange"
BACK: Final = "BACK"
# Actions handed to the handlers; anything else but ping is refused (400).
HANDLED_ACTIONS: Final = frozenset({INIT, DATA_EXCHANGE, BACK})
# The screen Meta closes a flow with; its data carries the nfm_reply's params.
SUCCESS_SCREEN: Final = "SUCCESS"
# A request's header on the broker: its deadline (epoch milliseconds); the worker gives up
# after it.
DEADLINE_HEADER: Final = "x-deadline"


class FlowRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One decrypted request. ``data`` is what the screen submitted (or, in an error
    notification, ``error`` and ``error_message``)."""

    version: str = ""
    action: str
    flow_token: str = ""
    screen: str = ""
    data: dict[str, Any] = {}

    @property
    def is_error_notification(self) -> bool:
        """The client reports that our previous answer was wrong (a bad screen, bad data)."""
        return "error" in self.data and self.action in (INIT, DATA_EXCHANGE)


class NextScreen(msgspec.Struct, frozen=True):
    """Show ``screen`` with ``data``; ``error_message`` shows as a snackbar over it."""

    screen: str
    data: dict[str, Any] = {}
    error_message: str | None = None


class CloseFlow(msgspec.Struct, frozen=True):
    """Close the flow; ``params`` (with the flow token) come back in the nfm_reply message."""

    params: dict[str, Any] = {}


class Acknowledge(msgspec.Struct, frozen=True):
    """The answer to an error notification."""


FlowAnswer = NextScreen | CloseFlow | Acknowledge


class FlowTokenInvalid(Exception):
    """Raised by a handler for a token it does not know or no longer honours: answered 427, the
    flow closes and its button is disabled; ``message`` is shown to the customer."""

    def __init__(self, message: str = "This form is no longer available.") -> None:
        super().__init__(message)
        self.message = message


Outcome = Literal["answered", "token_invalid", "unclaimed", "failed"]


class FlowReply(msgspec.Struct, frozen=True, kw_only=True):
    """The worker's reply: the HTTP status and the clear body the ingress encrypts. ``failed``
    and ``unclaimed`` carry no body: the ingress answers them as errors of its own."""

    outcome: Outcome
    status: int = 200
    body: dict[str, Any] = {}


request_decoder: Final = msgspec.json.Decoder(FlowRequest)
reply_decoder: Final = msgspec.json.Decoder(FlowReply)
encoder: Final = msgspec.json.Encoder()


def response_body(request: FlowRequest, answer: FlowAnswer) -> dict[str, Any]:
    """The clear JSON Meta expects for ``answer`` (docs/cloudapi/flows.md, "Responses")."""
    if isinstance(answer, Acknowledge):
        return {"data": {"acknowledged": True}}
    if isinstance(answer, CloseFlow):
        params = {**answer.params, "flow_token": request.flow_token}
        return {
            "screen": SUCCESS_SCREEN,
            "data": {"extension_message_response": {"params": params}},
        }
    data = dict(answer.data)
    if answer.error_message:
        data["error_message"] = answer.error_message
    return {"screen": answer.screen, "data": data}


def ping_body() -> dict[str, Any]:
    return {"data": {"status": "active"}}


def token_invalid_body(message: str) -> dict[str, Any]:
    return {"error_msg": message}
