"""Settling what a send's answer did not: unknown outcomes, and failures after a 200.

    unknown (its answer lost) ──> a status carrying its callback data arrived? accepted | failed
                              └─> none for WAPIPE_SENDER_SETTLE_S: failed, stage "unknown"
    wa.send.status (failed statuses: 131047, 131026, 131049, 131050 ... after a 200)
                              ──> the job that sent that wamid (or carried that callback data,
                                  when the status beat the answer): failed

Each change is conditional (shared/storage/send_jobs.py): several replicas may settle or link
the same job, and one wins. Events are published before the commit: repeated, never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.schemas.events import event_decoder
from wapipe.shared.schemas.jobs import SendJob, job_decoder
from wapipe.shared.schemas.outbound import OutboundFailed
from wapipe.shared.schemas.webhook import Status
from wapipe.shared.settings import Settings
from wapipe.shared.storage import messages, send_jobs
from wapipe.shared.storage.messages import outbound_row
from wapipe.shared.storage.send_jobs import Change, Evidence, JobRecord
from wapipe.workers.retry import Reject
from wapipe.workers.runtime import Outcome
from wapipe.workers.sender.events import event_of_record, outgoing
from wapipe.workers.storage import transaction

log = logging.getLogger(__name__)

STALE_SENDING_CALLS: Final = 3  # graph timeouts after which a job "sending" is unknown

_status_decoder: Final = msgspec.json.Decoder(Status)


def settlement(
    record: JobRecord, found: Evidence | None, now: float, settle_s: float
) -> Change | None:
    """How an unknown outcome ends, given the status found for it (if any); None: not yet."""
    key = record.idempotency_key
    if found is not None and found.status == "failed":
        return send_jobs.SETTLE_FAILED(
            key,
            now,
            wamid=found.wamid,
            error_code=found.failure_code,
            error_title=found.failure_title or "failed",
            error_details=found.failure_details,
        )
    if found is not None:
        return send_jobs.SETTLE_ACCEPTED(key, now, wamid=found.wamid)
    if now - record.updated_at >= settle_s:
        return send_jobs.SETTLE_FAILED(
            key,
            now,
            error_title="outcome unknown",
            error_details="the send was not answered and no status of it came; "
            "it was not sent again",
        )
    return None


class Settler:
    def __init__(self, engine: AsyncEngine, events: EventPublisher, settings: Settings) -> None:
        self._engine = engine
        self._events = events
        self._settings = settings

    async def settle_once(self) -> int:
        """Look for a status of each send whose outcome is unknown; fail those too old. Each
        in a short transaction of its own (SQLite has one writer)."""
        now = time.time()
        # A send cannot be in flight longer than an upload and a call: a job ``sending`` for
        # longer lost its holder, and maybe its delivery too: its outcome is unknown.
        stale = now - STALE_SENDING_CALLS * self._settings.graph_timeout_s
        async with transaction(self._engine) as connection:
            await send_jobs.unknown_since(connection, stale, now)
            waiting = await send_jobs.unknown(connection)
        settled = 0
        for record in waiting:
            async with transaction(self._engine) as connection:
                if await self._settle(connection, record, now):
                    settled += 1
        return settled

    async def _settle(self, connection: AsyncConnection, record: JobRecord, now: float) -> bool:
        found = None
        if record.callback_data is not None:
            found = await send_jobs.evidence(
                connection, record.phone_number_id, record.callback_data
            )
        change = settlement(record, found, now, self._settings.sender_settle_s)
        if change is None:
            return False
        moved = await send_jobs.finish(connection, change)
        if moved is None:
            return False
        job = job_decoder.decode(moved.job)
        if isinstance(job, SendJob) and moved.wamid is not None:  # its message is known now
            # Sent about when its outcome was lost, not now (``wapipe conversation``'s order).
            row = outbound_row(job, moved.wamid, None, record.updated_at)
            await messages.record_outbound(connection, [row])
        event = event_of_record(moved, now)
        if found is None and isinstance(event, OutboundFailed):
            event = msgspec.structs.replace(event, stage="unknown")
        if event is not None:
            await self._events.publish([outgoing(event)])
        log.info(
            "unknown outcome settled", extra={"key": record.idempotency_key, "state": moved.state}
        )
        return True


class FailedStatuses:
    """``wa.send.status``'s batch handler (workers/runtime.py): a ``failed`` status of a
    message a job sent ends the job as failed."""

    def __init__(self, engine: AsyncEngine, events: EventPublisher) -> None:
        self._engine = engine
        self._events = events

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        statuses = [self._decode(message) for message in batch]
        linked = 0
        now = time.time()
        async with transaction(self._engine) as connection:
            events: list[Outgoing] = []
            for number, status in statuses:
                if status.status != "failed":
                    continue
                record = await self._job_of(connection, number, status)
                if record is None:
                    continue  # not one of ours
                if record.state == send_jobs.FAILED:
                    if record.wamid == status.id and (event := event_of_record(record, now)):
                        events.append(outgoing(event))  # linked before; its event again
                    continue
                moved = await send_jobs.finish(connection, _failure(record, status, now))
                if moved is not None and (event := event_of_record(moved, now)) is not None:
                    events.append(outgoing(event))
                    linked += 1
            # Before the commit: if the publish fails, the batch is tried again and the jobs
            # are found unlinked; an event may repeat, never go missing.
            await self._events.publish(events)
        return Outcome(stored=linked, duplicates=len(batch) - linked)

    @staticmethod
    async def _job_of(
        connection: AsyncConnection, number: str | None, status: Status
    ) -> JobRecord | None:
        record = await send_jobs.by_wamid(connection, status.id)
        if record is not None or not status.biz_opaque_callback_data or not number:
            return record
        # No job has this wamid yet: a send whose answer was lost (unknown), or whose answer
        # is not recorded yet (sending: the status beat it). Its callback data names it.
        found = await send_jobs.by_callback(connection, number, status.biz_opaque_callback_data)
        waiting = [r for r in found if r.state in (send_jobs.SENDING, send_jobs.UNKNOWN)]
        return waiting[0] if len(waiting) == 1 else None

    @staticmethod
    def _decode(message: AbstractIncomingMessage) -> tuple[str | None, Status]:
        try:
            event = event_decoder.decode(message.body)
            return event.phone_number_id, _status_decoder.decode(event.payload)
        except msgspec.DecodeError as exc:
            raise Reject(f"undecodable status event: {exc}") from None


def _failure(record: JobRecord, status: Status, now: float) -> Change:
    error = status.errors[0] if status.errors else None
    # From sending too: its holder's answer, when it comes, finds it failed.
    return send_jobs.FAIL_BY_STATUS(
        record.idempotency_key,
        now,
        wamid=status.id,
        error_code=error.code if error else None,
        error_title=(error.title or error.message or "failed") if error else "failed",
        error_details=error.error_data.details if error and error.error_data else None,
    )
