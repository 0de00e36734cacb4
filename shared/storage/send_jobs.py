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
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

import msgspec
from sqlalchemy import Dialect, bindparam, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    columns_of,
    execute_in,
    execute_many,
    in_ids,
    insert_new,
    prepare,
    select_in,
    struct_of,
)


class JobState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    ACCEPTED = "accepted"
    FAILED = "failed"
    UNKNOWN = "unknown"


QUEUED: Final = JobState.QUEUED
SENDING: Final = JobState.SENDING
ACCEPTED: Final = JobState.ACCEPTED
FAILED: Final = JobState.FAILED
UNKNOWN: Final = JobState.UNKNOWN

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
    """A job's new state, written only over one of ``only_from`` (a done job never changes by
    mistake); the wamid and error fields are written as given (None clears)."""

    key: str
    state: str
    at: float
    only_from: frozenset[str]
    wamid: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    error_details: str | None = None


@dataclass(frozen=True)
class Transition:
    """A named edge of the diagram above: the state a job moves to, and the states it may move
    from (any other leaves it as it is: the change did not happen)."""

    name: str
    to: JobState
    only_from: frozenset[str]

    def __call__(
        self,
        key: str,
        at: float,
        *,
        wamid: str | None = None,
        error_code: int | None = None,
        error_title: str | None = None,
        error_details: str | None = None,
    ) -> Change:
        return Change(
            key=key,
            state=self.to.value,
            at=at,
            only_from=self.only_from,
            wamid=wamid,
            error_code=error_code,
            error_title=error_title,
            error_details=error_details,
        )


def _from(*states: JobState) -> frozenset[str]:
    return frozenset(state.value for state in states)


# Every move of a job, in one place. A holder's answer is written over its own mark, or over
# "unknown" (the truth beats a guess); a settlement only over "unknown".
MARK: Final = Transition("mark", SENDING, _from(QUEUED))  # (mark_sending: many in one UPDATE)
REFUSE: Final = Transition("refuse", FAILED, _from(QUEUED))  # never sent: expired, a bad file
REQUEUE: Final = Transition("requeue", QUEUED, _from(SENDING))  # not sent: to be tried again
ACCEPT: Final = Transition("accept", ACCEPTED, _from(SENDING, UNKNOWN))
FAIL: Final = Transition("fail", FAILED, _from(SENDING, UNKNOWN))
LOSE: Final = Transition("lose", UNKNOWN, _from(SENDING))  # its answer lost: may have been sent
SETTLE_ACCEPTED: Final = Transition("settle accepted", ACCEPTED, _from(UNKNOWN))
SETTLE_FAILED: Final = Transition("settle failed", FAILED, _from(UNKNOWN))
# A failed status after the 200, or before it (the holder's answer then finds it failed).
FAIL_BY_STATUS: Final = Transition("fail by status", FAILED, _from(ACCEPTED, SENDING, UNKNOWN))

_COLUMNS: Final = columns_of(table, JobRecord)


def _record(row: Sequence[Any]) -> JobRecord:
    return struct_of(JobRecord, row)


async def claim(connection: Connection, jobs: Sequence[NewJob]) -> dict[str, JobRecord]:
    """Insert the jobs not seen before; return the records of those that were (by key)."""
    inserted = await insert_new(connection, table, jobs, key="idempotency_key")
    seen = [job.idempotency_key for job in jobs if job.idempotency_key not in inserted]
    return await records(connection, seen)


async def records(connection: Connection, keys: Collection[str]) -> dict[str, JobRecord]:
    found = await select_in(connection, _RECORDS, sorted(keys))
    return {row.idempotency_key: _record(row) for row in found}


async def change(connection: Connection, changes: Sequence[Change], token: float) -> set[str]:
    """Write each job's new state if it is in one of the change's ``only_from`` states; return
    the keys that moved. One executemany per kind of condition (in key order: concurrent
    writers never deadlock), then one look-up of the rows stamped with ``token`` (their
    ``updated_at``: unique to this commit, and to its retries after a lost answer)."""
    if not changes:
        return set()
    if len(changes) == 1:  # a quiet moment's group: one UPDATE ... RETURNING does it
        only = msgspec.structs.replace(changes[0], at=token)
        if await finish(connection, only) is not None:
            return {only.key}
        # Not in ``only_from`` (any more): moved by another holder, or by this group's own
        # first commit, whose answer was lost (its token tells).
        return set((await execute_in(connection, _MOVED, [only.key], at=token)).scalars())
    by_condition: dict[frozenset[str], list[Change]] = {}
    for c in changes:
        by_condition.setdefault(c.only_from, []).append(c)
    for only_from, group in by_condition.items():
        # Compiled once, run with tuples (shared/storage/statements.py): SQLAlchemy's handling
        # of each row's parameters cost the sender more than SQLite's own work.
        rows = [
            _ChangeRow(c.key, c.state, c.wamid, c.error_code, c.error_title, c.error_details, token)
            for c in group
        ]
        await execute_many(connection, _prepared_change(connection.dialect, only_from), rows, "k")
    keys = [c.key for c in changes]
    return set((await execute_in(connection, _MOVED, keys, at=token)).scalars())


class _ChangeRow(msgspec.Struct, frozen=True):
    """One row of a change's executemany, named as ``_change_statement`` binds them."""

    k: str
    state: str
    wamid: str | None
    error_code: int | None
    error_title: str | None
    error_details: str | None
    at: float


# What a change writes (both ways of writing one: by executemany and ``finish``).
_CHANGED: Final[dict[str, Any]] = {
    "state": bindparam("state"),
    "wamid": bindparam("wamid"),
    "error_code": bindparam("error_code"),
    "error_title": bindparam("error_title"),
    "error_details": bindparam("error_details"),
    "updated_at": bindparam("at"),
}


@lru_cache(maxsize=64)
def _prepared_change(dialect: Dialect, only_from: frozenset[str]) -> Prepared:
    return prepare(_change_statement(only_from), dialect, _ChangeRow)


def _change_statement(only_from: frozenset[str]) -> Any:
    # The condition inline, not bound: an executemany takes no expanding IN parameters.
    allowed = [table.c.state == literal_column(f"'{state}'") for state in sorted(only_from)]
    return (
        update(table)
        .where(table.c.idempotency_key == bindparam("k"), or_(*allowed))
        .values(_CHANGED)
    )


# The sender's statements, built once: compiled once by statements.execute_in (SQLAlchemy keys
# its compiled cache by the statement, and works that key out again for every statement built
# anew; the plain driver's path in workers/storage.py compiles anew whatever is not cached).
_RECORDS: Final = select(*_COLUMNS).where(in_ids(table.c.idempotency_key))
_FINISH: Final = (
    update(table)
    .where(in_ids(table.c.state), table.c.idempotency_key == bindparam("k"))
    .values(_CHANGED)
    .returning(*_COLUMNS)
)
_MOVED: Final = select(table.c.idempotency_key).where(
    in_ids(table.c.idempotency_key), table.c.updated_at == bindparam("at")
)
_MARK: Final = (
    update(table)
    # MARK, written out (as one UPDATE ... RETURNING for many keys)
    .where(in_ids(table.c.idempotency_key), table.c.state == QUEUED.value)
    .values(state=MARK.to.value, attempts=table.c.attempts + 1, updated_at=bindparam("at"))
    .returning(table.c.idempotency_key)
)
_MARKED_BY: Final = select(table.c.idempotency_key).where(
    in_ids(table.c.idempotency_key),
    table.c.state == MARK.to.value,
    table.c.updated_at == bindparam("at"),
)


async def mark_sending(connection: Connection, keys: Collection[str], at: float) -> set[str]:
    """Mark ``queued`` jobs ``sending`` at ``at``; return the keys marked (those another holder
    has marked, or that are done, are not: their holder must not send them).

    ``at`` is the mark's token: a mark tried again after a commit whose outcome was lost finds
    its own rows ``sending`` at exactly ``at``, and counts them as marked.
    """
    if not keys:
        return set()
    ordered = sorted(keys)
    marked = set((await execute_in(connection, _MARK, ordered, at=at)).scalars())
    if len(marked) < len(ordered):
        rest = [k for k in ordered if k not in marked]
        found = await execute_in(connection, _MARKED_BY, rest, at=at)
        marked.update(found.scalars())
    return marked


async def finish(connection: Connection, change: Change) -> JobRecord | None:
    """Move one job to ``change`` if it is in one of its ``only_from``; its record if it moved.

    The condition makes it safe for several holders to settle or link the same job: one wins.
    """
    rows = (
        await execute_in(
            connection,
            _FINISH,
            sorted(change.only_from),
            k=change.key,
            state=change.state,
            wamid=change.wamid,
            error_code=change.error_code,
            error_title=change.error_title,
            error_details=change.error_details,
            at=change.at,
        )
    ).all()
    return _record(rows[0]) if rows else None


async def by_wamid(connection: AsyncConnection, wamid: str) -> JobRecord | None:
    row = (await connection.execute(select(*_COLUMNS).where(table.c.wamid == wamid))).first()
    return None if row is None else _record(row)


async def by_callback(
    connection: AsyncConnection, phone_number_id: str, callback_data: str
) -> list[JobRecord]:
    rows = await connection.execute(
        select(*_COLUMNS).where(
            table.c.callback_data == callback_data,
            table.c.phone_number_id == phone_number_id,
        )
    )
    return [_record(row) for row in rows]


async def unknown_since(connection: AsyncConnection, before: float, now: float) -> None:
    """Jobs ``sending`` since before ``before`` become ``unknown`` (``LOSE``): their holder
    is gone."""
    await connection.execute(
        update(table)
        .where(table.c.state == SENDING.value, table.c.updated_at < before)
        .values(state=LOSE.to.value, updated_at=now)
    )


async def unknown(connection: AsyncConnection, limit: int = 500) -> list[JobRecord]:
    """Jobs whose send's outcome is not known yet, oldest first."""
    rows = await connection.execute(
        select(*_COLUMNS)
        .where(table.c.state == UNKNOWN.value)
        .order_by(table.c.updated_at)
        .limit(limit)
    )
    return [_record(row) for row in rows]


async def latest(
    connection: AsyncConnection, limit: int = 20, state: str | None = None
) -> list[JobRecord]:
    """The jobs last changed (in ``state``, if given), newest first: for `wapipe jobs list`."""
    query = select(*_COLUMNS).order_by(table.c.updated_at.desc()).limit(limit)
    if state is not None:
        query = query.where(table.c.state == state)
    return [_record(row) for row in await connection.execute(query)]


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
    has arrived (statuses echo ``biz_opaque_callback_data``): only if exactly one such message
    is not another job's already (callback data a publisher reused must not settle a job with
    another's message)."""
    messages = schema.messages
    rows = (
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
    ).all()
    if rows:
        wamids = [row.wamid for row in rows]
        linked = await connection.execute(select(table.c.wamid).where(table.c.wamid.in_(wamids)))
        taken = set(linked.scalars())
        rows = [row for row in rows if row.wamid not in taken]
    return Evidence(*rows[0]) if len(rows) == 1 else None
