"""Templates as a pull finds them (``wapipe templates sync``), beside their webhooks.

A pull writes each template's latest state into ``templates`` (the same row the account worker
moves on status, category and quality webhooks), plus what only a pull tells: the parameter
format and the components, which the sender's early check counts parameters on. A status a
pull finds changed since what was stored is kept as a change in ``account_events``, beside the
webhooks' (keyed ``message_template_status_update:sync:<id>:<status>:<time>``), so a template's
history reads the same whichever told it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared.cloudapi.nodes import TemplateNode
from wapipe.shared.storage import schema
from wapipe.shared.storage.account import AccountEventRow, TemplateRow, store_account_events
from wapipe.shared.storage.statements import Connection
from wapipe.shared.template_guard import StoredTemplate

STATUS_FIELD: Final = "message_template_status_update"
_components: Final = msgspec.json.Decoder(list[dict[str, Any]])
_encoder: Final = msgspec.json.Encoder()
_payload: Final = msgspec.json.Decoder(dict[str, Any])


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    template_id: str
    name: str
    language: str
    before: str | None  # None: a template wapipe did not know
    after: str
    reason: str | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: float
    status: str
    reason: str | None
    source: str  # "webhook" or "sync"


def status_changes(
    stored: dict[str, str | None], pulled: Sequence[TemplateNode]
) -> list[StatusChange]:
    """The templates whose pulled status is not the one stored (new ones included)."""
    return [
        StatusChange(
            template_id=t.id,
            name=t.name,
            language=t.language,
            before=stored.get(t.id),
            after=t.status,
            reason=t.rejected_reason,
        )
        for t in pulled
        if t.id not in stored or stored[t.id] != t.status
    ]


async def stored_statuses(engine: AsyncEngine, waba_id: str) -> dict[str, str | None]:
    table = schema.templates
    query = select(table.c.template_id, table.c.status).where(table.c.waba_id == waba_id)
    async with engine.connect() as connection:
        return {row.template_id: row.status for row in await connection.execute(query)}


async def store_pulled(
    engine: AsyncEngine, waba_id: str, pulled: Sequence[TemplateNode], now: float
) -> list[StatusChange]:
    """Store a pull of the WABA's templates; return the status changes it found."""
    changes = status_changes(await stored_statuses(engine, waba_id), pulled)
    events = [_event_row(change, waba_id, now) for change in changes]
    rows = [_template_row(t, waba_id, now) for t in pulled]
    async with engine.begin() as connection:
        await store_account_events(connection, events, rows, [])
        table = schema.templates
        for template in pulled:
            await connection.execute(
                table.update()
                .where(table.c.template_id == template.id)
                .values(
                    parameter_format=template.parameter_format,
                    components=_encoder.encode(template.components).decode(),
                    synced_at=now,
                )
            )
    return changes


def _template_row(template: TemplateNode, waba_id: str, now: float) -> TemplateRow:
    return TemplateRow(
        template_id=template.id,
        waba_id=waba_id,
        name=template.name,
        language=template.language,
        status=template.status,
        status_reason=template.rejected_reason,
        status_at=now,
        category=template.category,
        category_at=now,
        quality=template.quality,
        quality_at=now if template.quality is not None else None,
    )


def _event_row(change: StatusChange, waba_id: str, now: float) -> AccountEventRow:
    payload = {
        "event": change.after,
        "message_template_id": int(change.template_id),
        "message_template_name": change.name,
        "message_template_language": change.language,
        "reason": change.reason,
    }
    return AccountEventRow(
        key=f"{STATUS_FIELD}:sync:{change.template_id}:{change.after}:{int(now)}",
        field=STATUS_FIELD,
        waba_id=waba_id,
        phone_number_id=None,
        entry_time=int(now),
        received_at=now,
        stored_at=now,
        payload=_encoder.encode(payload).decode(),
    )


async def find_template(engine: AsyncEngine, name: str, language: str) -> StoredTemplate | None:
    async with engine.connect() as connection:
        return await stored_template(connection, name, language)


async def stored_template(
    connection: Connection, name: str, language: str
) -> StoredTemplate | None:
    """The template stored by ``wapipe templates sync`` (and its webhooks), if any."""
    table = schema.templates
    query = select(table).where(table.c.name == name, table.c.language == language)
    rows = (await connection.execute(query)).all()
    if not rows:
        return None
    row = rows[0]
    return StoredTemplate(
        template_id=row.template_id,
        name=row.name,
        language=row.language,
        status=row.status,
        category=row.category,
        components=_components.decode(row.components) if row.components else None,
    )


async def template_history(engine: AsyncEngine, template_id: str) -> list[HistoryEntry]:
    """Every status change stored for this template, webhooks and pulls, oldest first."""
    table = schema.account_events
    query = select(table.c.key, table.c.entry_time, table.c.received_at, table.c.payload).where(
        table.c.field == STATUS_FIELD
    )
    found = []
    async with engine.connect() as connection:
        for row in await connection.execute(query):
            payload = _payload.decode(row.payload)
            if str(payload.get("message_template_id")) != template_id:
                continue
            found.append(
                HistoryEntry(
                    at=float(row.entry_time or row.received_at),
                    status=str(payload.get("event")),
                    reason=payload.get("reason"),
                    source="sync" if ":sync:" in row.key else "webhook",
                )
            )
    return sorted(found, key=lambda entry: entry.at)
