"""The sender's record of every send job, by idempotency key: what makes a job at most once.

    queued ──> sending ──> accepted ──> failed   (a ``failed`` status after the 200)
      ^           │   └──> failed               (refused at once, permanently)
      └───────────┤
     refused, to be tried again (transient, rate limits, a paused number)
                  └──> unknown ──> accepted | failed   (settled by a status, or by time)

A job is ``queued`` when claimed, and ``sending`` (committed) before its call leaves. So a job
found ``sending`` when it comes again (its holder died) may or may not have reached Meta: it
becomes ``unknown`` and is never sent blindly again; a status carrying its callback data settles
it as accepted (or failed), and a long silence fails it (``WAPIPE_SENDER_SETTLE_S``). A job found
``accepted`` or ``failed`` is done: its event is published again, nothing is sent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final

import msgspec
from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.storage import schema
from shared.storage.statements import insert_new

QUEUED: Final = "queued"
SENDING: Final = "sending"
ACCEPTED: Final = "accepted"
FAILED: Final = "failed"
UNKNOWN: Final = "unknown"
DONE: Final = frozenset({ACCEPTED, FAILED})

table = schema.send_jobs


class NewJob(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    phone_number_id: str
    recipient: str
    state: str
    callback_data: str | None
    job: str  # the job as published
    created_at: float
    updated_at: float


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    phone_number_id: str
    recipient: str
    state: str
    wamid: str | None
    error_code: int | None
    error_title: str | None
    error_details: str | None
    callback_data: str | None
    attempts: int
    job: str
    updated_at: float


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """A job's new state; the wamid and error fields are written as given (None clears)."""

    key: str
    state: str
    at: float
    wamid: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None


_COLUMNS: Final = [table.c[name] for name in JobRecord.__struct_fields__]


async def claim(connection: AsyncConnection, jobs: Sequence[NewJob]) -> dict[str, JobRecord]:
    """Insert the jobs not seen before; return the records of those that were (by key)."""
    inserted = await insert_new(connection, table, jobs, key="idempotency_key")
    seen = [job.idempotency_key for job in jobs if job.idempotency_key not in inserted]
    return await records(connection, seen)


async def records(connection: AsyncConnection, keys: Collection[str]) -> dict[str, JobRecord]:
    if not keys:
        return {}
    rows = await connection.execute(select(*_COLUMNS).where(table.c.idempotency_key.in_(keys)))
    return {row.idempotency_key: JobRecord(**row._mapping) for row in rows}


_CHANGE: Final = (
    update(table)
    # Inline, not bound: an executemany takes no expanding IN parameters.
    .where(
        table.c.idempotency_key == bindparam("k"),
        table.c.state != literal_column(f"'{ACCEPTED}'"),
        table.c.state != literal_column(f"'{FAILED}'"),
    )
    .values(
        state=bindparam("state"),
        wamid=bindparam("wamid"),
        error_code=bindparam("error_code"),
        error_title=bindparam("error_title"),
        error_details=bindparam("error_details"),
        updated_at=bindparam("at"),
    )
)


async def change(connection: AsyncConnection, changes: Sequence[Change]) -> None:
    """Write each job's new state, unless it is done already (in key order: concurrent writers
    never deadlock)."""
    if changes:
        params = [
            {
                "k": c.key,
                "state": c.state,
                "wamid": c.wamid,
                "error_code": c.error_code,
                "error_title": c.error_title,
                "error_details": c.error_details,
                "at": c.at,
            }
            for c in sorted(changes, key=_key)
        ]
        await connection.execute(_CHANGE, params)


async def mark_sending(connection: AsyncConnection, keys: Collection[str], at: float) -> set[str]:
    """Mark ``queued`` jobs ``sending``; return the keys marked (those another holder has
    marked, or that are done, are not: their holder must not send them)."""
    if not keys:
        return set()
    statement = (
        update(table)
        .where(table.c.idempotency_key.in_(sorted(keys)), table.c.state == QUEUED)
        .values(state=SENDING, attempts=table.c.attempts + 1, updated_at=at)
        .returning(table.c.idempotency_key)
    )
    return set((await connection.execute(statement)).scalars())


def _key(change: Change) -> str:
    return change.key


async def finish(
    connection: AsyncConnection, change: Change, *, only_from: Collection[str]
) -> JobRecord | None:
    """Move one job to ``change`` if it is in one of ``only_from``; its record if it moved.

    The condition makes it safe for several replicas to settle or link the same job: one wins.
    """
    statement = (
        update(table)
        .where(table.c.idempotency_key == change.key, table.c.state.in_(only_from))
        .values(
            state=change.state,
            wamid=change.wamid,
            error_code=change.error_code,
            error_title=change.error_title,
            error_details=change.error_details,
            updated_at=change.at,
        )
        .returning(*_COLUMNS)
    )
    row = (await connection.execute(statement)).first()
    return None if row is None else JobRecord(**row._mapping)


async def by_wamid(connection: AsyncConnection, wamid: str) -> JobRecord | None:
    row = (await connection.execute(select(*_COLUMNS).where(table.c.wamid == wamid))).first()
    return None if row is None else JobRecord(**row._mapping)


async def by_callback(
    connection: AsyncConnection, phone_number_id: str, callback_data: str, state: str
) -> list[JobRecord]:
    rows = await connection.execute(
        select(*_COLUMNS).where(
            table.c.callback_data == callback_data,
            table.c.phone_number_id == phone_number_id,
            table.c.state == state,
        )
    )
    return [JobRecord(**row._mapping) for row in rows]


async def unknown_since(connection: AsyncConnection, before: float, now: float) -> None:
    """Jobs ``sending`` since before ``before`` become ``unknown``: their holder is gone."""
    await connection.execute(
        update(table)
        .where(table.c.state == SENDING, table.c.updated_at < before)
        .values(state=UNKNOWN, updated_at=now)
    )


async def unknown(connection: AsyncConnection, limit: int = 500) -> list[JobRecord]:
    """Jobs whose send's outcome is not known yet, oldest first."""
    rows = await connection.execute(
        select(*_COLUMNS).where(table.c.state == UNKNOWN).order_by(table.c.updated_at).limit(limit)
    )
    return [JobRecord(**row._mapping) for row in rows]


class Evidence(msgspec.Struct, frozen=True):
    """What the status worker stored of a message sent with some callback data."""

    wamid: str
    status: str | None
    failure_code: int | None
    failure_title: str | None
    failure_details: str | None


async def evidence(
    connection: AsyncConnection, phone_number_id: str, callback_data: str
) -> Evidence | None:
    """The outbound message that carried ``callback_data`` from this number, if a status of it
    has arrived (statuses echo ``biz_opaque_callback_data``)."""
    messages = schema.messages
    row = (
        await connection.execute(
            select(
                messages.c.wamid,
                messages.c.status,
                messages.c.failure_code,
                messages.c.failure_title,
                messages.c.failure_details,
            ).where(
                messages.c.biz_opaque_callback_data == callback_data,
                messages.c.phone_number_id == phone_number_id,
                messages.c.direction == "out",
            )
        )
    ).first()
    return None if row is None else Evidence(*row)
