"""What the sender publishes on ``wa.events`` about each send job: a public, versioned contract.

    outbound.accepted   the Cloud API took the message: its wamid (statuses follow under it)
    outbound.failed     the job ended without a message: invalid, expired, refused by the
                        Cloud API (at once, or later as a ``failed`` status), or an outcome
                        that could not be known

Each job ends in exactly one of them, but may be published more than once (a crash between the
record and the publish publishes again): the AMQP ``message_id`` is ``<idempotency key>:<event>``,
stable, for followers to drop repeats. A job accepted, then refused by a ``failed`` status
(131047 outside the 24-hour window, 131026 undeliverable, 131049, 131050, ...), has both events:
``outbound.failed`` with ``stage: "status"`` and the wamid comes last.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

OUTBOUND_VERSION: Final = 1
ACCEPTED: Final = "outbound.accepted"
FAILED: Final = "outbound.failed"

# Where a job failed: its body ("invalid"), its clock ("expired"), the Cloud API's answer
# ("send"), a later ``failed`` status ("status"), or an outcome never learnt ("unknown").
Stage = Literal["invalid", "expired", "send", "status", "unknown"]


class OutboundAccepted(
    msgspec.Struct, frozen=True, kw_only=True, tag="accepted", tag_field="event"
):
    v: int = OUTBOUND_VERSION
    key: str  # the job's idempotency key
    phone_number_id: str
    to: str | None = None  # the job's phone number, or
    recipient: str | None = None  # its BSUID
    wamid: str
    wa_id: str | None = None  # the recipient as WhatsApp knows them, when the answer said
    message_status: str | None = None  # "accepted" or "held_for_quality_assessment" (templates)
    callback_data: str | None = None
    metadata: dict[str, str] = {}
    at: float  # unix seconds


class OutboundFailed(msgspec.Struct, frozen=True, kw_only=True, tag="failed", tag_field="event"):
    v: int = OUTBOUND_VERSION
    key: str  # the job's idempotency key ("" when an invalid job had none)
    phone_number_id: str | None = None
    to: str | None = None
    recipient: str | None = None
    stage: Stage
    code: int | None = None  # the Cloud API's error code, when it gave one
    title: str  # the Cloud API's title, or wapipe's reason
    details: str | None = None
    wamid: str | None = None  # set when the refusal came as a status after acceptance
    callback_data: str | None = None
    metadata: dict[str, str] = {}
    at: float


OutboundEvent = OutboundAccepted | OutboundFailed
outbound_decoder: Final = msgspec.json.Decoder(OutboundEvent)
