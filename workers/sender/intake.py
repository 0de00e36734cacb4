"""Taking jobs in: from the shard queues, decoded, claimed by key, into their number's lane.

wa.send.<shard> ──> inbox ──(up to INTAKE_BATCH, INTAKE_WAIT_S after the first)──> admit:
    not a job ──> outbound.failed (invalid), into the shard's dead-letter queue with the reason
    held already ──> one more delivery of it (acked with it)
    claimed before ──> done: its event again, acked; found sending: unknown, acked
    new ──> held, in its recipient's line
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage

from wapipe.shared import topology
from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.schemas.jobs import Job, SendJob, job_decoder, routing_key
from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.send_jobs import JobRecord, NewJob
from wapipe.workers import runtime
from wapipe.workers.sender import parking
from wapipe.workers.sender.acks import Acks
from wapipe.workers.sender.events import callback_data, event_of_record, failed_event, outgoing
from wapipe.workers.sender.held import Holding, Pending, recipient_of
from wapipe.workers.sender.journal import Journal
from wapipe.workers.sender.lane import Lane
from wapipe.workers.sender.metrics import SenderMetrics

log = logging.getLogger(__name__)

INTAKE_BATCH: Final = 500  # jobs claimed in one transaction
INTAKE_WAIT_S: Final = 0.005  # how long a claim waits for more jobs after its first


class _KeyOnly(msgspec.Struct):
    """What an invalid job may still tell: its key, for its failure to name."""

    idempotency_key: str | None = None


_key_decoder: Final = msgspec.json.Decoder(_KeyOnly)


class Intake:
    def __init__(
        self,
        *,
        lane_of: Callable[[str], Lane],
        holding: Holding,
        acks: Acks,
        journal: Journal,
        events: EventPublisher,
        metrics: SenderMetrics,
    ) -> None:
        self._lane_of = lane_of  # a number's lane, made on its first job
        self._holding = holding
        self._acks = acks
        self._journal = journal
        self._events = events
        self._metrics = metrics
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._seq = 0
        self._shards: dict[str | None, str] = {}  # consumer tag -> its shard queue

    def consumes(self, consumer_tag: str, queue: str) -> None:
        """``consumer_tag`` delivers from ``queue``: an invalid job's dead letter goes there."""
        self._shards[consumer_tag] = queue

    async def receive(self, message: AbstractIncomingMessage) -> None:
        """The shard queues' consumer callback. A coroutine function: aio-pika wraps a plain
        one in a coroutine anyway, warning on every delivery."""
        self._inbox.put_nowait(message)

    async def run(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTAKE_WAIT_S):
                    while len(batch) < INTAKE_BATCH:
                        batch.append(await self._inbox.get())
            await self.admit(batch)

    async def admit(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        fresh: dict[str, Pending] = {}
        for message in batch:
            job = decode(message)
            if isinstance(job, str):
                await self._invalid(message, job)
                continue
            held = self._holding.get(job.idempotency_key) or fresh.get(job.idempotency_key)
            if held is not None:  # the same job again while we hold it: acked with it
                held.deliveries.append(message)
                self._metrics.repeats.inc()
                continue
            fresh[job.idempotency_key] = self._pending(job, message)
        if not fresh:
            return
        seen = await self._claim(fresh)
        for key, pending in fresh.items():
            record = seen.get(key)
            lane = self._lane_of(pending.job.phone_number_id)
            if record is not None and record.state != send_jobs.QUEUED:
                lane.returned(pending.recipient, key)  # if it was away: done, not awaited
                self._metrics.repeats.inc()
                await self._seen(pending, record)
                continue
            self._holding.hold(pending)
            if any(m.redelivered for m in pending.deliveries):
                lane.warm_up()  # its last holder may have been another replica
            lane.back(pending)  # in its line; if it was away, no longer awaited (one step)

    def _pending(self, job: Job, message: AbstractIncomingMessage) -> Pending:
        """A job taken in, with its place in line: as its lane parked it, else as its header
        says (parked by another process), else now."""
        seq, attempts = parking.place_in_line(message.headers)
        lane = self._lane_of(job.phone_number_id)
        seq = lane.parked_seq(recipient_of(job), job.idempotency_key) or seq
        return Pending(job, [message], seq or self._next_seq(), attempts=attempts)

    def _next_seq(self) -> int:
        # When it was taken in: a line's order holds across the replicas a job is parked by.
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    async def _claim(self, fresh: dict[str, Pending]) -> dict[str, JobRecord]:
        """Claim the keys; the records of those seen before. A row the database refuses (a NUL
        byte on PostgreSQL) fails its job as invalid, not the batch, nor the worker."""
        journal = self._journal
        rows = [new_job(p.job, p.deliveries[0].body, time.time()) for p in fresh.values()]
        try:
            return await journal.claim(rows)
        except Exception:
            log.exception("claiming a batch failed; claiming its jobs one by one")
        # One group again, which fails again and is then committed claim by claim.
        claims = [journal.claim([row]) for row in rows]
        seen: dict[str, JobRecord] = {}
        for row, claimed in zip(
            rows, await asyncio.gather(*claims, return_exceptions=True), strict=True
        ):
            if isinstance(claimed, BaseException):
                for message in fresh.pop(row.idempotency_key).deliveries:
                    await self._invalid(message, f"cannot be recorded: {claimed}")
            else:
                seen.update(claimed)
        return seen

    async def _seen(self, pending: Pending, record: JobRecord) -> None:
        """A job with a record: done (its event again), or its send's outcome lost."""
        if record.state == send_jobs.SENDING:
            # Its holder died between marking and recording: it may have reached Meta.
            await self._journal.finish(send_jobs.LOSE(pending.key, time.time()))
        elif (event := event_of_record(record, time.time())) is not None:
            await self._events.publish([outgoing(event)])
        await self._holding.ack(pending)

    async def _invalid(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Not a job: failed with the reason, and kept in the shard's dead-letter queue."""
        try:
            key = _key_decoder.decode(message.body).idempotency_key
        except msgspec.DecodeError:
            key = None
        key = key or message.message_id or ""
        log.warning("invalid send job", extra={"reason": reason, "message_id": key})
        event = failed_event(None, "invalid", "invalid job", time.time(), details=reason, key=key)
        with contextlib.suppress(Exception):  # the dead letter keeps it; the event is a courtesy
            await self._events.publish([outgoing(event)])
        self._metrics.failed.labels("invalid").inc()
        await self._dead_letter(message, key, reason)

    async def _dead_letter(self, message: AbstractIncomingMessage, key: str, reason: str) -> None:
        """Into the shard's dead-letter queue with the reason (``wapipe dlq list`` shows it),
        then acked; rejected as it is (the broker's own dead-lettering) if that cannot be."""
        shard = self._shards.get(message.consumer_tag)
        if shard is not None:
            headers = dict(message.headers or {}) | {
                runtime.DeadLetterHeader.ERROR: reason[:1000],
                runtime.DeadLetterHeader.ATTEMPTS: 1,
                runtime.DeadLetterHeader.FAILED_AT: f"{time.time():.6f}",
                runtime.DeadLetterHeader.QUEUE: shard,
                runtime.DeadLetterHeader.ROUTING_KEY: message.routing_key or "",
            }
            dead = Outgoing(topology.DEAD_LETTER_EXCHANGE, shard, key, message.body, headers)
            try:
                await self._events.publish([dead])
            except Exception as exc:
                log.warning("dead-lettering with the reason failed", extra={"error": str(exc)})
            else:
                self._acks.ack([message])
                return
        await self._acks.reject(message)


def decode(message: AbstractIncomingMessage) -> Job | str:
    """The job, or why it is not one."""
    try:
        job = job_decoder.decode(message.body)
    except msgspec.DecodeError as exc:
        return str(exc)
    expected = routing_key(job.phone_number_id)
    if message.routing_key != expected:
        # The hash of the routing key picks the shard: any other key would give the number
        # a second owner, and its limit two pacers.
        return f"published with routing key {message.routing_key!r}, not {expected!r}"
    return job


def new_job(job: Job, body: bytes, now: float) -> NewJob:
    return NewJob(
        idempotency_key=job.idempotency_key,
        phone_number_id=job.phone_number_id,
        recipient=recipient_of(job),
        state=send_jobs.QUEUED.value,
        callback_data=callback_data(job) if isinstance(job, SendJob) else None,
        job=body.decode(),  # as published: decoded already, no need to encode it again
        created_at=now,
        updated_at=now,
    )
