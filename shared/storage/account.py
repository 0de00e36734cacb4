"""Storing account and template webhooks: every change kept, templates and numbers kept current.

``account_events`` keeps every change whole, keyed by its event key (a repeat inserts nothing).
``templates`` and ``phone_numbers`` hold the latest state: each attribute group (a template's
status, its category, its quality; a number's quality and tier, its account standing) moves only
to a change at least as recent as the one it holds, so changes applied in any order end the same
(but for two in the same second, Meta's resolution: the one applied last wins). What a change
leaves out is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Dialect, Table, and_, case, func, or_

from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    execute_many,
    insert_for,
    insert_new,
    prepare,
)


class AccountEventRow(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    field: str
    waba_id: str
    phone_number_id: str | None
    entry_time: int | None
    received_at: float
    stored_at: float
    payload: str


class TemplateRow(msgspec.Struct, frozen=True, kw_only=True):
    template_id: str
    waba_id: str
    name: str | None
    language: str | None
    status: str | None
    status_reason: str | None
    status_at: float | None
    category: str | None
    category_at: float | None
    quality: str | None
    quality_at: float | None


class PhoneNumberRow(msgspec.Struct, frozen=True, kw_only=True):
    display_phone_number: str
    waba_id: str
    quality_event: str | None
    messaging_tier: str | None
    quality_at: float | None
    account_event: str | None
    account_event_at: float | None


class FlowRow(msgspec.Struct, frozen=True, kw_only=True):
    flow_id: str
    waba_id: str
    status: str | None
    status_at: float | None
    alert_event: str | None
    alert_state: str | None
    alert_message: str | None
    alert_at: float | None


TEMPLATE_GROUPS = {
    "status_at": ("status", "status_reason"),
    "category_at": ("category",),
    "quality_at": ("quality",),
}
PHONE_NUMBER_GROUPS = {
    "quality_at": ("quality_event", "messaging_tier"),
    "account_event_at": ("account_event",),
}
FLOW_GROUPS = {
    "status_at": ("status",),
    "alert_at": ("alert_event", "alert_state", "alert_message"),
}


async def store_account_events(
    connection: Connection,
    events: Sequence[AccountEventRow],
    templates: Sequence[TemplateRow],
    phone_numbers: Sequence[PhoneNumberRow],
    flows: Sequence[FlowRow] = (),
) -> set[str]:
    """Write a batch in the caller's transaction; return the keys stored for the first time."""
    new = await insert_new(connection, schema.account_events, events, key="key")
    await execute_many(connection, _templates(connection.dialect), templates, key="template_id")
    await execute_many(
        connection, _phone_numbers(connection.dialect), phone_numbers, key="display_phone_number"
    )
    await execute_many(connection, _flows(connection.dialect), flows, key="flow_id")
    return new


@lru_cache(maxsize=8)
def _templates(dialect: Dialect) -> Prepared:
    merge = _merge(dialect, schema.templates, "template_id", TEMPLATE_GROUPS, ("name", "language"))
    return prepare(merge, dialect, TemplateRow)


@lru_cache(maxsize=8)
def _phone_numbers(dialect: Dialect) -> Prepared:
    merge = _merge(dialect, schema.phone_numbers, "display_phone_number", PHONE_NUMBER_GROUPS, ())
    return prepare(merge, dialect, PhoneNumberRow)


@lru_cache(maxsize=8)
def _flows(dialect: Dialect) -> Prepared:
    return prepare(_merge(dialect, schema.flows, "flow_id", FLOW_GROUPS, ()), dialect, FlowRow)


def _merge(
    dialect: Dialect,
    table: Table,
    key: str,
    groups: dict[str, tuple[str, ...]],
    latest_known: tuple[str, ...],
) -> Any:
    statement = insert_for(dialect, table)
    stored, new = table.c, statement.excluded
    updates: dict[str, Any] = {
        name: func.coalesce(new[name], stored[name]) for name in latest_known
    }
    for at, columns in groups.items():
        newer = and_(new[at].is_not(None), or_(stored[at].is_(None), new[at] >= stored[at]))
        updates[at] = case((newer, new[at]), else_=stored[at])
        for name in columns:  # what a newer change leaves out (null) is kept as it was
            updates[name] = case(
                (newer, func.coalesce(new[name], stored[name])), else_=stored[name]
            )
    return statement.on_conflict_do_update(index_elements=[key], set_=updates)
