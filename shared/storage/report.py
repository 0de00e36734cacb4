"""What ``wapipe report`` reads: the statuses and the inbound messages of a period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared.storage import schema


class StatusFact(msgspec.Struct, frozen=True):
    wamid: str
    phone_number_id: str
    status: str
    timestamp: int
    error_code: int | None = None
    conversation_id: str | None = None
    pricing_category: str | None = None
    recipient_id: str | None = None
    pricing_billable: bool | None = None
    pricing_model: str | None = None
    pricing_type: str | None = None


class InboundFact(msgspec.Struct, frozen=True):
    phone_number_id: str
    type: str
    timestamp: int


async def report_facts(
    engine: AsyncEngine, start: int, end: int
) -> tuple[list[StatusFact], list[InboundFact]]:
    """Statuses of [start, end) (unix seconds), and inbound messages of the same period."""
    statuses, messages = schema.statuses, schema.messages
    status_query = select(
        statuses.c.wamid,
        statuses.c.phone_number_id,
        statuses.c.status,
        statuses.c.timestamp,
        statuses.c.error_code,
        statuses.c.conversation_id,
        statuses.c.pricing_category,
        statuses.c.recipient_id,
        statuses.c.pricing_billable,
        statuses.c.pricing_model,
        statuses.c.pricing_type,
        statuses.c.payload,
    ).where(statuses.c.timestamp >= start, statuses.c.timestamp < end)
    inbound_query = select(messages.c.phone_number_id, messages.c.type, messages.c.timestamp).where(
        messages.c.direction == "in", messages.c.timestamp >= start, messages.c.timestamp < end
    )
    async with engine.connect() as connection:
        found = [_fact(tuple(row)) for row in await connection.execute(status_query)]
        inbound = [
            InboundFact(row[0] or "?", row[1] or "unknown", row[2])
            for row in await connection.execute(inbound_query)
        ]
    return found, inbound


class _Priced(msgspec.Struct):
    billable: bool | None = None
    pricing_model: str | None = None
    type: str | None = None


class _StoredStatus(msgspec.Struct):
    pricing: _Priced | None = None


_STORED: Final = msgspec.json.Decoder(_StoredStatus)


def _fact(row: Sequence[Any]) -> StatusFact:
    wamid, number, status, timestamp, code, conversation_id, category, recipient_id = row[:8]
    billable, model, pricing_type, payload = row[8:]
    if category is not None and model is None:  # stored before these columns: read the status
        try:
            pricing = _STORED.decode(payload).pricing or _Priced()
        except msgspec.DecodeError:
            pricing = _Priced()
        billable, model, pricing_type = pricing.billable, pricing.pricing_model, pricing.type
    return StatusFact(
        wamid,
        number or "?",
        status,
        timestamp,
        code,
        conversation_id,
        category,
        recipient_id,
        billable,
        model,
        pricing_type,
    )
