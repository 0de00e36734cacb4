"""Storing status updates: the history, and each message's delivery state folded forward.

Two statements per batch, whatever its size:

1. every update into ``statuses``, keyed by its event key: a repeat inserts nothing, and the keys
   that did go in come back, so the caller can count duplicates;
2. one ``MessageState`` per message into ``messages``, merged with what is stored by SQL that is a
   join (the same result in any order, applied any number of times; workers/progress.py): the
   furthest status wins, the failure with the lowest code wins, conversation and pricing are
   kept once known. So two status workers writing the same message at once need no lock, and a
   batch redelivered after a crash changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final, NamedTuple

import msgspec
from sqlalchemy import ColumnElement, Dialect, and_, case, func, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.storage import schema
from shared.storage.upsert import insert_for as _insert


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


# SQLite allows 32,766 bound values a statement, PostgreSQL 32,767: 14 columns a row fit 2,000.
HISTORY_ROWS_PER_STATEMENT: Final = 1000


async def store_statuses(
    connection: AsyncConnection,
    updates: Sequence[StatusRow],
    states: Sequence[MessageState],
    conversations: Sequence[ConversationRow] = (),
) -> set[str]:
    """Write a batch in the caller's transaction; return the keys stored for the first time.

    The statements are SQLAlchemy's, compiled once per backend and batch size, then run at the
    driver with plain tuples: row by row through SQLAlchemy's parameter handling cost more than
    the database's own work (tests/bench/results/status_worker.md).
    """
    new_keys: set[str] = set()
    for start in range(0, len(updates), HISTORY_ROWS_PER_STATEMENT):
        chunk = updates[start : start + HISTORY_ROWS_PER_STATEMENT]
        history = _history(connection.dialect, len(chunk))
        params = tuple(value for row in chunk for value in history.values(row))
        result = await connection.exec_driver_sql(history.sql, params)
        new_keys.update(result.scalars())
    for prepared, rows in (
        (_merge(connection.dialect), states),
        (_conversations(connection.dialect), conversations),
    ):
        if rows:
            await connection.exec_driver_sql(prepared.sql, [prepared.values(row) for row in rows])
    return new_keys


class Prepared(NamedTuple):
    sql: str
    order: tuple[int, ...]  # the Struct's field indexes, in the order the statement binds them

    def values(self, row: msgspec.Struct) -> tuple[Any, ...]:
        fields = msgspec.structs.astuple(row)
        return tuple(fields[index] for index in self.order)


def _prepare(statement: Any, dialect: Dialect, struct: type[msgspec.Struct], **kw: Any) -> Prepared:
    compiled = statement.compile(dialect=dialect, **kw)
    fields = list(struct.__struct_fields__)
    row = list(compiled.positiontup or ())
    if sorted(row) != sorted(fields):
        raise RuntimeError(f"the statement binds {row}, not the fields of {struct.__name__}")
    return Prepared(str(compiled.string), tuple(fields.index(name) for name in row))


@lru_cache(maxsize=1024)
def _history(dialect: Dialect, rows: int) -> Prepared:
    """The history insert for ``rows`` rows in one statement (multi-row VALUES, RETURNING).

    Compiled by SQLAlchemy for one row, then its VALUES group repeated with the placeholders
    numbered on: compiling each batch size anew would cost more than the insert itself.
    """
    names = list(StatusRow.__struct_fields__)
    one = _prepare(
        _insert(dialect, schema.statuses)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(schema.statuses.c.key),
        dialect,
        StatusRow,
        column_keys=names,
    )
    head, values = one.sql.split(" VALUES (", 1)
    group, tail = values.split(") ON CONFLICT", 1)
    groups = ", ".join(f"({_renumbered(group, row * len(names))})" for row in range(rows))
    return Prepared(f"{head} VALUES {groups} ON CONFLICT{tail}", one.order)


def _renumbered(group: str, offset: int) -> str:
    """``$1, $2`` -> ``$15, $16`` for numbered placeholders; ``?`` stays as it is."""
    if not offset:
        return group
    return re.sub(r"\$(\d+)", lambda number: f"${int(number.group(1)) + offset}", group)


@lru_cache(maxsize=8)
def _merge(dialect: Dialect) -> Prepared:
    names = list(MessageState.__struct_fields__)
    return _prepare(_merge_states(dialect), dialect, MessageState, column_keys=names)


@lru_cache(maxsize=8)
def _conversations(dialect: Dialect) -> Prepared:
    names = list(ConversationRow.__struct_fields__)
    statement = _insert(dialect, schema.conversations).on_conflict_do_nothing(index_elements=["id"])
    return _prepare(statement, dialect, ConversationRow, column_keys=names)


def _merge_states(dialect: Dialect) -> Any:
    stored = schema.messages.c
    statement = _insert(dialect, schema.messages)
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
