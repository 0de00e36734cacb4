"""Send jobs: what any system publishes on ``wa.outbound`` for wapipe to send. Versioned.

The first version, enough for the message worker's replies and read receipts; the sender's issue
widens it (every message kind typed, JSON Schema, AsyncAPI). A job carries the Cloud API's own
message object in ``message`` (what follows ``"messaging_product"`` and ``"to"`` in a
``POST /{phone_number_id}/messages`` body), so every kind the API knows can already be sent.

Each job names its ``kind`` (``send`` or ``mark_read``). Routing key: ``send.<phone_number_id>``.
``idempotency_key`` is what makes a job at most once: the same key published twice is sent once.
"""

from __future__ import annotations

from typing import Final

import msgspec

JOB_VERSION: Final = 1


class SendJob(msgspec.Struct, frozen=True, kw_only=True, tag="send", tag_field="kind"):
    v: int = JOB_VERSION
    idempotency_key: str
    phone_number_id: str  # the business number to send from
    to: str  # the recipient's wa_id (or user id)
    message: msgspec.Raw  # e.g. {"type": "text", "text": {"body": "Hello"}}
    reply_to: str | None = None  # the wamid this answers (sent as the message's context)
    callback_data: str | None = None  # biz_opaque_callback_data, echoed on statuses
    expires_at: float | None = None  # unix seconds; not sent after this
    metadata: dict[str, str] = {}  # passed back in the outbound.* events


class MarkReadJob(msgspec.Struct, frozen=True, kw_only=True, tag="mark_read", tag_field="kind"):
    """Mark an inbound message read (its blue ticks), optionally showing "typing…"."""

    v: int = JOB_VERSION
    idempotency_key: str
    phone_number_id: str
    message_id: str  # the inbound wamid
    typing: bool = False


def routing_key(phone_number_id: str) -> str:
    return f"send.{phone_number_id}"


Job = SendJob | MarkReadJob
job_decoder: Final = msgspec.json.Decoder(Job)
