"""Storing status updates: the history, and each message's delivery state folded forward.

Three statements per batch, whatever its size:

1. every update into ``statuses``, keyed by its event key: a repeat inserts nothing, and the keys
   that did go in come back, so the caller can count duplicates;
2. one ``MessageState`` per message into ``messages``, merged with what is stored by SQL that is a
   join (the same result in any order, applied any number of times; workers/progress.py): the
   furthest status wins, the failure with the lowest code wins, conversation and pricing are
   kept once known. So two status workers writing the same message at once need no lock, and a
   batch redelivered after a crash changes nothing;
3. the conversations first seen, once each.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Dialect, and_, case, func, or_

from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    execute_many,
    insert_for,
    insert_new,
    prepare,
)


class StatusRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``statuses``."""

    key: str
    wamid: str
    status: str
    timestamp: int | None
    recipient_id: str | None
    phone_number_id: str | None
    error_code: int | None
    error_title: str | None
    error_details: str | None
    conversation_id: str | None
    pricing_category: str | None
    received_at: float
    stored_at: float
    payload: str
    pricing_billable: bool | None = None
    pricing_model: str | None = None
    pricing_type: str | None = None


class MessageState(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch says about one outbound message, folded; merged into ``messages``."""

    wamid: str
    phone_number_id: str | None
    waba_id: str | None
    wa_id: str | None
    status_rank: int | None
    failure_code: int | None
    failure_title: str | None
    failure_details: str | None
    last_status_at: int | None
    conversation_id: str | None
    pricing_billable: bool | None
    pricing_model: str | None
    pricing_category: str | None
    pricing_type: str | None
    biz_opaque_callback_data: str | None
    direction: str = "out"  # a status for a message wapipe never sent creates its record


class ConversationRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    origin_type: str | None
    expiration_timestamp: int | None
    wa_id: str | None
    first_seen_at: float


async def store_statuses(
    connection: Connection,
    updates: Sequence[StatusRow],
    states: Sequence[MessageState],
    conversations: Sequence[ConversationRow] = (),
) -> set[str]:
    """Write a batch in the caller's transaction; return the keys stored for the first time."""
    new_keys = await insert_new(connection, schema.statuses, updates, key="key")
    await execute_many(connection, _merge(connection.dialect), states, key="wamid")
    await execute_many(connection, _conversations(connection.dialect), conversations, key="id")
    return new_keys


@lru_cache(maxsize=8)
def _merge(dialect: Dialect) -> Prepared:
    return prepare(_merge_states(dialect), dialect, MessageState)


@lru_cache(maxsize=8)
def _conversations(dialect: Dialect) -> Prepared:
    statement = insert_for(dialect, schema.conversations).on_conflict_do_nothing(
        index_elements=["id"]
    )
    return prepare(statement, dialect, ConversationRow)


def _merge_states(dialect: Dialect) -> Any:
    stored = schema.messages.c
    statement = insert_for(dialect, schema.messages)
    new = statement.excluded
    further = and_(
        new.status_rank.is_not(None),
        or_(stored.status_rank.is_(None), new.status_rank > stored.status_rank),
    )
    lower_failure = and_(
        new.failure_code.is_not(None),
        or_(stored.failure_code.is_(None), new.failure_code < stored.failure_code),
    )
    later = or_(stored.last_status_at.is_(None), new.last_status_at > stored.last_status_at)

    def pick(condition: ColumnElement[bool], column: str) -> Any:
        return case((condition, new[column]), else_=stored[column])

    kept_once_known = (
        "phone_number_id",
        "waba_id",
        "wa_id",
        "conversation_id",
        "pricing_billable",
        "pricing_model",
        "pricing_category",
        "pricing_type",
        "biz_opaque_callback_data",
    )
    return statement.on_conflict_do_update(
        index_elements=["wamid"],
        set_={
            "status_rank": pick(further, "status_rank"),
            "failure_code": pick(lower_failure, "failure_code"),
            "failure_title": pick(lower_failure, "failure_title"),
            "failure_details": pick(lower_failure, "failure_details"),
            "last_status_at": pick(later, "last_status_at"),
            **{name: func.coalesce(stored[name], new[name]) for name in kept_once_known},
        },
    )
