"""Storing inbound messages and the contacts who sent them; tracking which were handled.

A message is written once, keyed by its wamid (a repeat inserts nothing). Its contact is merged:
the latest profile name wins, first and last seen are kept. ``handled_at`` is set once the
business logic (the user's handlers) has had the message, so a message stored but not handled
(a crash in between) is handled when it comes again, and one handled is not handled twice.

An outbound message is recorded by the sender once the Cloud API accepts it (``record_outbound``):
its type and body, merged with whatever its statuses wrote first, never moving its state back.
``conversation`` reads both directions with one customer, in order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, Final

import msgspec
from sqlalchemy import Dialect, and_, bindparam, case, func, or_, select, update

from wapipe.shared.schemas.jobs import SendJob, customer_of, message_type
from wapipe.shared.storage import schema
from wapipe.shared.storage.customers import identities_of
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    execute_many,
    in_ids,
    insert_for,
    insert_new,
    prepare,
    select_in,
)


class InboundRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``messages`` for a message a customer sent."""

    wamid: str
    direction: str = "in"
    phone_number_id: str | None
    waba_id: str
    wa_id: str | None  # the sender (wa_id, or user id for a username user)
    type: str
    timestamp: int | None
    received_at: float
    payload: str  # the message object, verbatim JSON
    context_wamid: str | None
    context_from: str | None
    forwarded: bool | None
    frequently_forwarded: bool | None
    referral: str | None  # JSON
    errors: str | None  # JSON


class OutboundRow(msgspec.Struct, frozen=True, kw_only=True):
    """What the sender knows of a message the Cloud API accepted."""

    wamid: str
    direction: str = "out"
    phone_number_id: str
    wa_id: str | None  # the recipient, as the answer named them (else as the job did)
    type: str
    payload: str  # the job's message object, JSON
    received_at: float  # when the Cloud API accepted it
    status_rank: int = 0  # accepted; statuses only ever move it forward


def outbound_row(job: SendJob, wamid: str, wa_id: str | None, at: float) -> OutboundRow:
    """The row of a job the Cloud API accepted as ``wamid`` (``wa_id``: as its answer named the
    recipient), at ``at``. Pure."""
    return OutboundRow(
        wamid=wamid,
        phone_number_id=job.phone_number_id,
        wa_id=wa_id or customer_of(job),
        type=message_type(job.message),
        payload=msgspec.json.encode(job.message).decode(),
        received_at=at,
    )


class ConversationLine(msgspec.Struct, frozen=True, kw_only=True):
    """One message of a conversation, either way."""

    wamid: str
    direction: str
    type: str | None
    payload: str | None
    status: str | None
    failure_code: int | None
    failure_title: str | None
    at: float | None
    job: str | None = None  # the send job that made an outbound message, as published


class ContactRow(msgspec.Struct, frozen=True, kw_only=True):
    contact_id: str
    wa_id: str | None
    user_id: str | None
    profile_name: str | None
    first_seen_at: float
    last_seen_at: float


async def store_inbound(
    connection: Connection, messages: Sequence[InboundRow], contacts: Sequence[ContactRow]
) -> set[str]:
    """Write a batch in the caller's transaction; return the wamids stored for the first time."""
    new = await insert_new(connection, schema.messages, messages, key="wamid")
    await execute_many(connection, _merge_contacts(connection.dialect), contacts, key="contact_id")
    return new


async def unhandled(connection: Connection, wamids: Collection[str]) -> set[str]:
    return {row.wamid for row in await select_in(connection, _UNHANDLED, sorted(wamids))}


_UNHANDLED: Final = select(schema.messages.c.wamid).where(
    in_ids(schema.messages.c.wamid), schema.messages.c.handled_at.is_(None)
)


class Handled(msgspec.Struct, frozen=True):
    key: str  # the wamid (a bound name may not be a column's in an UPDATE)
    at: float


async def mark_handled(connection: Connection, wamids: Collection[str], at: float) -> None:
    """One statement compiled once, run for each wamid (the driver's executemany)."""
    rows = [Handled(wamid, at) for wamid in wamids]
    await execute_many(connection, _mark_handled(connection.dialect), rows, key="key")


async def record_outbound(connection: Connection, rows: Sequence[OutboundRow]) -> None:
    """Record accepted sends in the caller's transaction. Idempotent; a row its statuses made
    first keeps its state (never moved back) and gains the type and body."""
    await execute_many(connection, _merge_outbound(connection.dialect), rows, key="wamid")


async def conversation(
    connection: Connection, customer: str, limit: int = 200
) -> list[ConversationLine]:
    """The last ``limit`` messages with this customer (named by any of their ids: a phone
    number, a BSUID, one they had before; shared/storage/customers.py), both directions, oldest
    first; an outbound one with the send job that made it, if any (its body, before the sender
    records it in ``messages``)."""
    ids = await identities_of(connection, customer)
    table = schema.messages.c
    jobs = schema.send_jobs
    # Meta's timestamps are whole seconds: a reply and what it answers would tie. Ours are not.
    at = func.coalesce(table.received_at, jobs.c.created_at, table.timestamp, table.last_status_at)
    query = (
        select(
            table.wamid,
            table.direction,
            table.type,
            table.payload,
            table.status,
            table.failure_code,
            table.failure_title,
            at.label("at"),
            jobs.c.job,
        )
        .select_from(schema.messages.outerjoin(jobs, jobs.c.wamid == table.wamid))
        .where(table.wa_id.in_(ids))
        .order_by(at.desc(), table.wamid)
        .limit(limit)
    )
    rows = (await connection.execute(query)).all()
    return [ConversationLine(**row._asdict()) for row in reversed(rows)]


@lru_cache(maxsize=8)
def _mark_handled(dialect: Dialect) -> Prepared:
    table = schema.messages
    statement = update(table).where(table.c.wamid == bindparam("key"))
    return prepare(statement.values(handled_at=bindparam("at")), dialect, Handled)


@lru_cache(maxsize=8)
def _merge_outbound(dialect: Dialect) -> Prepared:
    stored = schema.messages.c
    statement = insert_for(dialect, schema.messages)
    new = statement.excluded
    keep = ("phone_number_id", "wa_id", "type", "payload", "received_at", "status_rank")
    return prepare(
        statement.on_conflict_do_update(
            index_elements=["wamid"],
            set_={name: func.coalesce(stored[name], new[name]) for name in keep},
        ),
        dialect,
        OutboundRow,
    )


@lru_cache(maxsize=8)
def _merge_contacts(dialect: Dialect) -> Prepared:
    stored = schema.contacts.c
    statement = insert_for(dialect, schema.contacts)
    new = statement.excluded
    later = or_(stored.last_seen_at.is_(None), new.last_seen_at >= stored.last_seen_at)
    named_later = and_(later, new.profile_name.is_not(None))

    def pick(condition: Any, column: str) -> Any:
        return case((condition, new[column]), else_=stored[column])

    return prepare(
        statement.on_conflict_do_update(
            index_elements=["contact_id"],
            set_={
                "profile_name": pick(named_later, "profile_name"),
                "last_seen_at": pick(later, "last_seen_at"),
                "first_seen_at": case(
                    (new.first_seen_at < stored.first_seen_at, new.first_seen_at),
                    else_=stored.first_seen_at,
                ),
                "wa_id": func.coalesce(stored.wa_id, new.wa_id),
                "user_id": func.coalesce(stored.user_id, new.user_id),
            },
        ),
        dialect,
        ContactRow,
    )
