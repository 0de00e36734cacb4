"""What ``wapipe report`` reads: the statuses and the inbound messages of a period."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.storage import schema


class StatusFact(msgspec.Struct, frozen=True):
    wamid: str
    phone_number_id: str
    status: str
    timestamp: int
    error_code: int | None = None
    conversation_id: str | None = None
    pricing_category: str | None = None


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
    ).where(statuses.c.timestamp >= start, statuses.c.timestamp < end)
    inbound_query = select(messages.c.phone_number_id, messages.c.type, messages.c.timestamp).where(
        messages.c.direction == "in", messages.c.timestamp >= start, messages.c.timestamp < end
    )
    async with engine.connect() as connection:
        found = [
            StatusFact(row[0], row[1] or "?", row[2], row[3], row[4], row[5], row[6])
            for row in await connection.execute(status_query)
        ]
        inbound = [
            InboundFact(row[0] or "?", row[1] or "unknown", row[2])
            for row in await connection.execute(inbound_query)
        ]
    return found, inbound
