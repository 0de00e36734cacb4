"""The sender's writes: claims, marks and state changes of ``send_jobs`` (and the ``messages``
row of each accepted send), many per transaction.

Group commit: every claim, mark and change asked for while a transaction runs goes in the next
one, so a thousand sends a second cost tens of commits, and each caller waits for its own.
(Claims in transactions of their own would take turns with the marks for SQLite's one writer,
and a send waits for its mark.) A database outage is waited out; a write the database refuses
fails alone, not its group.

Every transaction runs through ``Transactions`` (workers/storage.py): on SQLite the whole of it
in the database's thread, one hop between threads a commit where aiosqlite took several a
statement (its thread and the hops were nearly a quarter of the sender's loop:
tests/bench/results/sender.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from prometheus_client import Counter

from wapipe.shared.logs import Throttle
from wapipe.shared.storage import messages, send_jobs
from wapipe.shared.storage.messages import OutboundRow
from wapipe.shared.storage.send_jobs import Change, JobRecord, NewJob
from wapipe.shared.storage.statements import Connection
from wapipe.workers.retry import Unavailable
from wapipe.workers.storage import Transactions, Work

log = logging.getLogger(__name__)

T = TypeVar("T")

OUTAGE_RETRY_S: Final = 1.0  # while the database is down
outage: Final = Throttle()  # one line per 10 s of an outage, not one per try


async def until_stored(
    transactions: Transactions, work: Work[T], unavailable: Counter | None = None
) -> T:
    """``work`` in a transaction, the database's outages waited out (nothing acked meanwhile:
    the caller holds its jobs); each try that finds it down counted in ``unavailable``."""
    while True:
        try:
            return await transactions.run(work)
        except Unavailable as exc:
            if unavailable is not None:
                unavailable.inc()
            outage.warning(log, "database", "database unavailable, waiting", error=str(exc))
            await asyncio.sleep(OUTAGE_RETRY_S)


@dataclass
class _Write:
    """One request in a group commit: new jobs to claim, a key to mark ``sending``, or a state
    to write (with, for an accepted send, its message's row)."""

    claim: Sequence[NewJob] = ()
    mark: str | None = None
    change: Change | None = None
    outbound: OutboundRow | None = None  # an accepted message's row in ``messages``
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def result(self, seen: dict[str, JobRecord], moved: set[str]) -> object:
        if self.claim:
            return {
                row.idempotency_key: seen[row.idempotency_key]
                for row in self.claim
                if row.idempotency_key in seen
            }
        key = self.mark if self.mark is not None else self.change.key  # type: ignore[union-attr]
        return key in moved


class Journal:
    def __init__(self, transactions: Transactions, unavailable: Counter | None = None) -> None:
        self._transactions = transactions
        self._unavailable = unavailable
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()

    async def claim(self, rows: Sequence[NewJob]) -> dict[str, JobRecord]:
        """Insert the jobs not seen before; the records of those that were (by key)."""
        seen: dict[str, JobRecord] = await self._submit(_Write(claim=rows))
        return seen

    async def mark_sending(self, key: str) -> bool:
        """True if this holder may send the job now (``MARK``: it was ``queued``; it is
        ``sending``)."""
        return bool(await self._submit(_Write(mark=key)))

    async def write(self, change: Change, outbound: OutboundRow | None = None) -> bool:
        """True if the job moved (it was in one of ``change.only_from``). ``outbound``, an
        accepted message's row, is recorded in ``messages`` in the same commit either way."""
        return bool(await self._submit(_Write(change=change, outbound=outbound)))

    async def record(self, key: str) -> JobRecord | None:
        """The job's record as stored now (read in a transaction of its own)."""
        found = await until_stored(self._transactions, lambda c: send_jobs.records(c, [key]))
        return found.get(key)

    async def finish(self, change: Change) -> None:
        """``change`` at once, in a transaction of its own (not a send's: nothing waits on
        the group for it)."""
        await until_stored(self._transactions, lambda c: send_jobs.finish(c, change))

    async def _submit(self, write: _Write) -> Any:
        self._pending.append(write)
        self._wake.set()
        return await write.done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            writes, self._pending = self._pending, []
            if writes:
                await self._commit_group(writes)

    async def _commit_group(self, writes: list[_Write]) -> None:
        try:
            seen, moved = await self._commit(writes, time.time())
        except Exception as exc:
            if len(writes) == 1:  # the data's fault: its caller hears of it
                if not writes[0].done.done():
                    writes[0].done.set_exception(exc)
                return
            for write in writes:  # one bad write must not fail the others: each alone
                await self._commit_group([write])
            return
        for write in writes:
            if not write.done.done():  # its caller may be gone (cancelled at shutdown)
                write.done.set_result(write.result(seen, moved))

    async def _commit(
        self, writes: Sequence[_Write], at: float
    ) -> tuple[dict[str, JobRecord], set[str]]:
        """The records of the claimed jobs seen before, and the keys moved or marked. An outage
        is waited out, the group tried again with the same mark token ``at`` (its first commit
        may have happened)."""
        rows = [row for w in writes for row in w.claim]
        changes = [w.change for w in writes if w.change is not None]
        keys = [w.mark for w in writes if w.mark is not None]

        async def commit(connection: Connection) -> tuple[dict[str, JobRecord], set[str]]:
            seen = await send_jobs.claim(connection, rows)
            moved = await send_jobs.change(connection, changes, at)
            # A message Meta accepted, whatever became of its job since (a failed status may
            # have come first): its type and body.
            sent = [w.outbound for w in writes if w.outbound is not None]
            if sent:
                await messages.record_outbound(connection, sent)
            return seen, moved | await send_jobs.mark_sending(connection, keys, at)

        return await until_stored(self._transactions, commit, self._unavailable)
