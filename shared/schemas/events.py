"""The events wapipe publishes on ``wa.events``: a public, versioned contract.

The ingress turns each webhook body into events (see ``ingress/split.py``). Each event is one AMQP
message whose body is a ``WebhookEvent`` encoded as JSON; its properties carry what a consumer
needs to route without decoding: ``message_id`` (the event's key), the routing key (whose first
word is the kind), and the headers in ``Header``. The Cloud API's own object (a status, a message,
a change's value) travels verbatim in ``payload``, byte for byte as Meta sent it, so nothing is lost
in translation; decode it with ``shared.schemas.webhook``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

SCHEMA_VERSION: Final = 1
NULL: Final = msgspec.Raw(b"null")  # msgspec cannot decode `Raw | None`; JSON null stands in

EventKind = Literal["status", "message", "account"]


class Header:
    """AMQP header names set on every event (values are strings)."""

    PHONE_NUMBER_ID: Final = "x-wa-phone-number-id"  # absent when the value has no metadata
    WABA_ID: Final = "x-wa-waba-id"
    RECEIVED_AT: Final = "x-wa-received-at"  # unix seconds with microseconds, as text
    QUARANTINE_REASON: Final = "x-wapipe-reason"  # on quarantined bodies only


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened, as the ingress received it.

    ``key`` is the event's stable identity (also the AMQP ``message_id``): the same event delivered
    twice by Meta carries the same key, so a consumer writing by key stores it once.
    """

    v: int = SCHEMA_VERSION
    kind: EventKind
    key: str
    routing_key: str
    field: str  # the webhook subscription field, e.g. "messages"
    waba_id: str
    phone_number_id: str | None = None
    display_phone_number: str | None = None
    entry_time: int | None = None  # entry[].time when Meta sends it (template/account fields)
    received_at: float  # when the ingress received the body, unix seconds
    contact: msgspec.Raw = NULL  # the user's contacts[] object, for messages and statuses
    payload: msgspec.Raw  # the status, message or change value, verbatim


event_decoder: Final = msgspec.json.Decoder(WebhookEvent)
