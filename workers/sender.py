"""The sender: send jobs from ``wa.send.<shard>`` to the Cloud API, each once, within every limit.

    wa.send.0..7 ──> intake: decode, claim the keys (send_jobs) ──> one lane per phone number
                                                                     │ recipient FIFOs, paced
    wa.send.status (failed statuses) ──> link to the job             ▼
                                                 mark "sending" ─> POST /messages ─> record ─>
                                                 outbound.accepted | outbound.failed ─> ack

Once per key: a job is claimed in ``send_jobs`` when it arrives and marked ``sending``
(committed, and only from ``queued``, so of two holders one sends) before its call leaves;
its answer is recorded before the ack. Whatever comes again (a redelivery, a repeat, a replica
taking over a shard) finds its record: done jobs publish their event again and are acked; a job
found ``sending`` lost its answer with its holder and becomes ``unknown``: never sent again
blindly, it is settled by the status Meta sends for it, which carries the callback data the
sender set (the job's own, or ``wapipe:<idempotency key>``), or failed after
``WAPIPE_SENDER_SETTLE_S`` without one. A call that times out is ``unknown`` the same way.

Pacing across replicas: each number's jobs hash to one shard queue, and a shard has one active
consumer (RabbitMQ's single active consumer, shared/topology.py). So one process owns a number
at a time and paces it exactly with local state (workers/pacing.py), with no shared limiter on
the hot path; more replicas stand by and take over a shard within seconds of its owner's death.
A new owner starts a number with a second's silence, as the old owner's last second is unknown.
The price: one number's rate is one process's (the benchmark: 1,000/s is within one's reach),
and the active consumer of a shard is the replica that subscribed first (RabbitMQ 3.x has no
priorities for it), so shards gather on one replica rather than spread.

Each recipient has its own FIFO, so one customer's messages go in order, one at a time, paced by
the pair rate, while others' go on. The Cloud API's answers (shared/cloudapi/errors.py):
transient: the recipient's next try after a back-off, up to ``WAPIPE_SENDER_MAX_ATTEMPTS``; a
130429 or 131048: the number waits and slows down; 131056: that recipient backs off (1, 4, 16,
64, 256 s); 4 or 80007: the number pauses, growing; a refused token or a blocked account: the
number pauses ``WAPIPE_SENDER_PAUSE_S`` (the token file is read again) and tries again, its
jobs held; permanent: ``outbound.failed`` with the code and title.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import topology
from shared.cloudapi.client import CloudApi, SentMessage
from shared.cloudapi.errors import (
    AuthError,
    CloudApiError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    Scope,
)
from shared.schemas import outbound
from shared.schemas.events import event_decoder
from shared.schemas.jobs import Job, MarkReadJob, SendJob, api_message, job_decoder, local_file
from shared.schemas.outbound import OutboundAccepted, OutboundFailed, Stage
from shared.schemas.webhook import Status
from shared.settings import Settings, number_rates
from shared.storage import send_jobs
from shared.storage.database import open_database
from shared.storage.send_jobs import Change, JobRecord, NewJob
from workers.events import EventPublisher, OutgoingEvent
from workers.main import (
    WorkerKind,
    batching,
    close_connection,
    connect,
    retry_policy,
    unless_stopped,
)
from workers.metrics import WorkerMetrics, serve_metrics
from workers.pacing import PairRate, Throughput, backoff_s
from workers.retry import Reject, Unavailable
from workers.runtime import SHUTDOWN_STEP_S, Consumer, Outcome
from workers.storage import transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

SHARD_QUEUES: Final = tuple(
    queue.name for queue in topology.QUEUES if queue.exchange == topology.SEND_SHARDS_EXCHANGE
)
METRICS_PORT: Final = 9105
INTAKE_BATCH: Final = 500  # jobs claimed in one transaction
INTAKE_WAIT_S: Final = 0.005  # how long a claim waits for more jobs after its first
SETTLE_EVERY_S: Final = 2.0  # how often unknown outcomes are looked for in the statuses
OUTAGE_RETRY_S: Final = 1.0  # while the database is down
ACCOUNT_PAUSE_MAX_S: Final = 300.0  # the longest pause after app or WABA rate limits (4, 80007)
DAY_LIMIT_DELAY_S: Final = 900.0  # a recipient held after 131064 (the day's messaging limit)
CALLBACK_MAX: Final = 512  # biz_opaque_callback_data's limit
MARKER: Final = "wapipe:"
STALE_SENDING_CALLS: Final = 3  # graph timeouts after which a job "sending" is unknown

_encoder: Final = msgspec.json.Encoder()
_status_decoder: Final = msgspec.json.Decoder(Status)


class _KeyOnly(msgspec.Struct):
    """What an invalid job may still tell: its key, for its failure to name."""

    idempotency_key: str | None = None


_key_decoder: Final = msgspec.json.Decoder(_KeyOnly)


def callback_data(job: SendJob) -> str:
    """What the send carries as biz_opaque_callback_data: the job's own, else a marker naming
    the job, so that a status can always be traced back to it."""
    if job.callback_data is not None:
        return job.callback_data
    marker = MARKER + job.idempotency_key
    if len(marker) > CALLBACK_MAX:
        marker = MARKER + hashlib.sha256(job.idempotency_key.encode()).hexdigest()
    return marker


def _title(error: CloudApiError) -> str:
    return error.title or error.message or f"error {error.code}"


def recipient_of(job: Job) -> str:
    """The pacing key: the customer; a read receipt is its own (it paces nothing)."""
    return job.to if isinstance(job, SendJob) else f"read:{job.message_id}"


# --- events ---------------------------------------------------------------------------------


def accepted_event(job: SendJob, sent: SentMessage, at: float) -> OutboundAccepted:
    return OutboundAccepted(
        key=job.idempotency_key,
        phone_number_id=job.phone_number_id,
        to=job.to,
        wamid=sent.wamid,
        wa_id=sent.wa_id,
        message_status=sent.message_status,
        callback_data=callback_data(job),
        metadata=job.metadata,
        at=at,
    )


def failed_event(
    job: Job | None,
    stage: Stage,
    title: str,
    at: float,
    *,
    code: int | None = None,
    details: str | None = None,
    wamid: str | None = None,
    key: str = "",
) -> OutboundFailed:
    send = job if isinstance(job, SendJob) else None
    return OutboundFailed(
        key=job.idempotency_key if job is not None else key,
        phone_number_id=job.phone_number_id if job is not None else None,
        to=send.to if send is not None else None,
        stage=stage,
        code=code,
        title=title,
        details=details,
        wamid=wamid,
        callback_data=callback_data(send) if send is not None else None,
        metadata=send.metadata if send is not None else {},
        at=at,
    )


def outgoing(event: OutboundAccepted | OutboundFailed) -> OutgoingEvent:
    name = outbound.ACCEPTED if isinstance(event, OutboundAccepted) else outbound.FAILED
    return OutgoingEvent(
        topology.EVENTS_EXCHANGE,
        name,
        f"{event.key}:{name.rpartition('.')[2]}",
        _encoder.encode(event),
        mandatory=False,  # followed or not, it ends somewhere (wa.sink)
    )


def event_of_record(record: JobRecord, at: float) -> OutboundAccepted | OutboundFailed | None:
    """The event of a job done already (published again when the job comes again)."""
    job = job_decoder.decode(record.job)
    if record.state == send_jobs.ACCEPTED and isinstance(job, SendJob) and record.wamid:
        return accepted_event(job, SentMessage(record.wamid, None, None), at)
    if record.state == send_jobs.FAILED:
        return failed_event(
            job,
            "status" if record.wamid else "send",
            record.error_title or "failed",
            at,
            code=record.error_code,
            details=record.error_details,
            wamid=record.wamid,
        )
    return None


# --- the journal: state changes, many per transaction ----------------------------------------


@dataclass
class _Write:
    change: Change | None = None  # a state to write
    mark: str | None = None  # or a key to mark "sending"
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Journal:
    """Group commit: every change asked for while a transaction runs goes in the next one, so
    a thousand sends a second cost tens of commits, and each caller waits for its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()

    async def mark_sending(self, key: str) -> bool:
        """True if this holder may send the job now (it was ``queued``; it is ``sending``)."""
        return await self._submit(_Write(mark=key))

    async def write(self, change: Change) -> None:
        await self._submit(_Write(change=change))

    async def _submit(self, write: _Write) -> bool:
        self._pending.append(write)
        self._wake.set()
        return await write.done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            writes, self._pending = self._pending, []
            if not writes:
                continue
            while True:
                try:
                    marked = await self._commit(writes)
                except Unavailable as exc:
                    log.warning("database unavailable, retrying", extra={"error": str(exc)})
                    await asyncio.sleep(OUTAGE_RETRY_S)
                    continue
                except Exception as exc:  # the data's fault: each caller hears of it
                    for write in writes:
                        if not write.done.done():
                            write.done.set_exception(exc)
                    break
                for write in writes:
                    if not write.done.done():
                        write.done.set_result(write.mark is None or write.mark in marked)
                break

    async def _commit(self, writes: Sequence[_Write]) -> set[str]:
        changes = [w.change for w in writes if w.change is not None]
        keys = [w.mark for w in writes if w.mark is not None]
        now = time.time()
        async with transaction(self._engine) as connection:
            await send_jobs.change(connection, changes)
            return await send_jobs.mark_sending(connection, keys, now)


# --- lanes: one per phone number ---------------------------------------------------------


@dataclass(eq=False)
class Pending:
    """A job held until its turn, with every delivery of it (all acked when it is done)."""

    job: Job
    deliveries: list[AbstractIncomingMessage]
    seq: int
    attempts: int = 0

    @property
    def key(self) -> str:
        return self.job.idempotency_key

    @property
    def recipient(self) -> str:
        return recipient_of(self.job)

    @property
    def paced(self) -> bool:
        return isinstance(self.job, SendJob)


class Lane:
    """One phone number's held jobs: a FIFO per recipient, the recipients whose turn it is in a
    heap by when they may go, one send at a time per recipient, the number's throughput shared."""

    def __init__(self, sender: Sender, number: str, rate_per_s: float) -> None:
        self.sender = sender
        self.number = number
        now = time.monotonic()
        # A second's silence first: the previous owner's last second is unknown.
        self.throughput = Throughput(rate_per_s, _blocked_until=now + 1.0)
        settings = sender.settings
        self.pairs = PairRate(settings.sender_pair_interval_s, settings.sender_pair_burst)
        self.fifos: dict[str, deque[Pending]] = {}
        self.busy: set[str] = set()  # recipients with a send in flight
        self.heap: list[tuple[float, int, str]] = []  # (may go at, head's seq, recipient)
        self.in_heap: set[str] = set()
        self.paused_until = 0.0
        self.pause_strikes = 0
        self.held = 0
        self._wake = asyncio.Event()

    def add(self, pending: Pending, *, first: bool = False) -> None:
        fifo = self.fifos.setdefault(pending.recipient, deque())
        if first:
            fifo.appendleft(pending)
        else:
            fifo.append(pending)
        self.held += 1
        self._schedule(pending.recipient)

    def done(self, recipient: str) -> None:
        """The recipient's send is over (its job requeued first if it is to be tried again)."""
        self.busy.discard(recipient)
        self._schedule(recipient)
        self._wake.set()

    def pause(self, seconds: float, reason: str) -> None:
        until = time.monotonic() + seconds
        if until > self.paused_until:
            self.paused_until = until
            log.warning(
                "number paused",
                extra={"phone_number_id": self.number, "for_s": seconds, "reason": reason},
            )
        self.sender.metrics.paused.labels(self.number).set(1)

    def _schedule(self, recipient: str) -> None:
        fifo = self.fifos.get(recipient)
        if not fifo:
            self.fifos.pop(recipient, None)
            return
        if recipient in self.busy or recipient in self.in_heap:
            return
        now = time.monotonic()
        head = fifo[0]
        # A read receipt has no pair rate, but a back-off after a failure holds it too.
        at = now + self.pairs.wait_s(recipient, now)
        heapq.heappush(self.heap, (at, head.seq, recipient))
        self.in_heap.add(recipient)
        self._wake.set()

    async def _sleep(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            if now < self.paused_until:
                await self._sleep(self.paused_until - now)
                continue
            if self.paused_until:
                self.paused_until = 0.0
                self.sender.metrics.paused.labels(self.number).set(0)
                self.sender.api.reload_token()
            if not self.heap:
                await self._sleep(None)
                continue
            at, seq, recipient = self.heap[0]
            if at > now:
                await self._sleep(at - now)
                continue
            head = self.fifos[recipient][0]
            wait = self.pairs.wait_s(recipient, now)
            if wait > 0:  # held back since it was scheduled (a 131056, a back-off)
                heapq.heapreplace(self.heap, (now + wait, seq, recipient))
                continue
            if head.paced:
                slot = self.throughput.wait_s(now)
                if slot != 0:
                    await self._sleep(slot)
                    continue
                self.throughput.take()
            heapq.heappop(self.heap)
            self.in_heap.discard(recipient)
            pending = self.fifos[recipient].popleft()
            self.held -= 1
            self.busy.add(recipient)
            self.sender.spawn(self.sender.send(self, pending), send=True)


# --- the sender ------------------------------------------------------------------------------


class SenderMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__("sender")
        registry = self.registry
        self.accepted = Counter(
            "wapipe_sender_accepted", "Jobs the Cloud API accepted.", registry=registry
        )
        self.failed = Counter(
            "wapipe_sender_failed", "Jobs failed, by stage.", ["stage"], registry=registry
        )
        self.refused = Counter(
            "wapipe_sender_refused",
            "Sends refused and to be tried again, by error code.",
            ["code"],
            registry=registry,
        )
        self.repeats = Counter(
            "wapipe_sender_repeats",
            "Jobs that came again (redelivered or republished).",
            registry=registry,
        )
        self.held = Gauge("wapipe_sender_held", "Jobs waiting for their turn.", registry=registry)
        self.paused = Gauge(
            "wapipe_sender_paused",
            "1 while a number is paused.",
            ["phone_number_id"],
            registry=registry,
        )


class Sender:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        api: CloudApi,
        events: EventPublisher,
        metrics: SenderMetrics,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.api = api
        self.events = events
        self.metrics = metrics
        self.journal = Journal(engine)
        self.inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.lanes: dict[str, Lane] = {}
        self.holding: dict[str, Pending] = {}  # by idempotency key, from claim to ack
        self._rates = number_rates(settings)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._seq = 0

    def spawn(self, work: Coroutine[object, object, None], *, send: bool = False) -> None:
        task = asyncio.ensure_future(work)
        for tasks in (self._tasks, self._sends) if send else (self._tasks,):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _until_stored(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work`` in a transaction, the database's outages waited out."""
        while True:
            try:
                async with transaction(self.engine) as connection:
                    return await work(connection)
            except Unavailable as exc:
                log.warning("database unavailable, retrying", extra={"error": str(exc)})
                await asyncio.sleep(OUTAGE_RETRY_S)

    async def receive(self, message: AbstractIncomingMessage) -> None:
        await self.inbox.put(message)

    # --- intake ---

    async def intake(self) -> None:
        while True:
            batch = [await self.inbox.get()]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INTAKE_WAIT_S):
                    while len(batch) < INTAKE_BATCH:
                        batch.append(await self.inbox.get())
            await self.admit(batch)

    async def admit(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        fresh: dict[str, Pending] = {}
        for message in batch:
            try:
                job = job_decoder.decode(message.body)
            except msgspec.DecodeError as exc:
                await self._invalid(message, str(exc))
                continue
            held = self.holding.get(job.idempotency_key) or fresh.get(job.idempotency_key)
            if held is not None:  # the same job again while we hold it: acked with it
                held.deliveries.append(message)
                self.metrics.repeats.inc()
                continue
            self._seq += 1
            fresh[job.idempotency_key] = Pending(job, [message], self._seq)
        if not fresh:
            return
        now = time.time()
        rows = [
            NewJob(
                idempotency_key=key,
                phone_number_id=p.job.phone_number_id,
                recipient=p.recipient,
                state=send_jobs.QUEUED,
                callback_data=callback_data(p.job) if isinstance(p.job, SendJob) else None,
                job=_encoder.encode(p.job).decode(),
                created_at=now,
                updated_at=now,
            )
            for key, p in fresh.items()
        ]
        seen = await self._until_stored(lambda connection: send_jobs.claim(connection, rows))
        for key, pending in fresh.items():
            record = seen.get(key)
            if record is not None:
                pending.attempts = record.attempts
                if record.state != send_jobs.QUEUED:
                    self.metrics.repeats.inc()
                    await self._seen(pending, record)
                    continue
            self.holding[key] = pending
            self._lane(pending.job.phone_number_id).add(pending)
        self.metrics.held.set(len(self.holding))

    async def _seen(self, pending: Pending, record: JobRecord) -> None:
        """A job with a record: done (its event again), or its send's outcome lost."""
        if record.state == send_jobs.SENDING:
            # Its holder died between marking and recording: it may have reached Meta.
            change = Change(key=pending.key, state=send_jobs.UNKNOWN, at=time.time())
            await self._until_stored(
                lambda c: send_jobs.finish(c, change, only_from={send_jobs.SENDING})
            )
        elif (event := event_of_record(record, time.time())) is not None:
            await self.events.publish([outgoing(event)])
        await self._ack(pending)

    async def _invalid(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Not a job: failed with the reason, and kept in the shard's dead-letter queue."""
        try:
            key = _key_decoder.decode(message.body).idempotency_key
        except msgspec.DecodeError:
            key = None
        key = key or message.message_id or ""
        log.warning("invalid send job", extra={"reason": reason, "message_id": key})
        event = failed_event(None, "invalid", "invalid job", time.time(), details=reason, key=key)
        await self.events.publish([outgoing(event)])
        self.metrics.failed.labels("invalid").inc()
        with contextlib.suppress(Exception):
            await message.reject(requeue=False)

    def _lane(self, number: str) -> Lane:
        lane = self.lanes.get(number)
        if lane is None:
            rate = self._rates.get(number, self.settings.sender_rate_per_s)
            lane = self.lanes[number] = Lane(self, number, rate)
            self.spawn(lane.run())
        return lane

    # --- one send ---

    async def send(self, lane: Lane, pending: Pending) -> None:
        job = pending.job
        answered_at: float | None = None
        try:
            expires_at = getattr(job, "expires_at", None)
            if expires_at is not None and time.time() >= expires_at:
                await self._fail(pending, "expired", "expired before it could be sent")
                return
            if not await self.journal.mark_sending(pending.key):
                # Sent or being sent by another holder (a replica that took the shard over).
                await self._ack(pending)
                return
            try:
                sent = await self._call(job)
            finally:
                answered_at = time.monotonic()
            await self._accepted(lane, pending, sent, answered_at)
        except CloudApiError as error:
            await self._refused(lane, pending, error)
        except Exception:
            # A bug, or a record that cannot be written: hand the job back to the queue rather
            # than hold it forever (redelivered, its record decides; the delivery limit ends a
            # loop in the dead-letter queue).
            log.exception("send failed unexpectedly", extra={"key": pending.key})
            await self._give_back(pending)
        finally:
            if pending.paced:
                lane.throughput.release(answered_at)
            lane.done(pending.recipient)

    async def _call(self, job: Job) -> SentMessage | None:
        if isinstance(job, MarkReadJob):
            await self.api.mark_read(job.phone_number_id, job.message_id, typing=job.typing)
            return None
        media_id = None
        if (file := local_file(job)) is not None:
            media_id = await self.api.upload_media(
                job.phone_number_id, file.path, file.mime_type, file.path.name
            )
        body = api_message(job, media_id=media_id)
        body["biz_opaque_callback_data"] = callback_data(job)
        return await self.api.send_message(job.phone_number_id, body)

    async def _accepted(
        self, lane: Lane, pending: Pending, sent: SentMessage | None, answered_at: float
    ) -> None:
        job, now = pending.job, time.time()
        lane.pause_strikes = 0
        if isinstance(job, SendJob) and sent is not None:
            lane.pairs.sent(pending.recipient, answered_at)
            await self.journal.write(
                Change(key=pending.key, state=send_jobs.ACCEPTED, at=now, wamid=sent.wamid)
            )
            await self.events.publish([outgoing(accepted_event(job, sent, now))])
            self.metrics.accepted.inc()
        else:  # a read receipt: done, no event
            await self.journal.write(Change(key=pending.key, state=send_jobs.ACCEPTED, at=now))
        await self._ack(pending)

    async def _refused(self, lane: Lane, pending: Pending, error: CloudApiError) -> None:
        now = time.monotonic()
        code = error.code
        self.metrics.refused.labels(str(code)).inc()
        if isinstance(error, OutcomeUnknown) and isinstance(pending.job, MarkReadJob):
            await self._again(lane, pending, backoff_s(pending.attempts + 1))  # harmless twice
        elif isinstance(error, OutcomeUnknown):
            await self.journal.write(
                Change(
                    key=pending.key,
                    state=send_jobs.UNKNOWN,
                    at=time.time(),
                    error_title=error.title,
                    error_details=error.message,
                )
            )
            await self._ack(pending)
        elif isinstance(error, RateLimited):
            if error.scope is Scope.NUMBER:
                lane.throughput.refused(now)
                await self._again(lane, pending)
            elif error.scope is Scope.RECIPIENT:
                lane.pairs.refused(pending.recipient, now)
                await self._again(lane, pending)
            elif error.scope is Scope.DAY:
                lane.pairs.refused(pending.recipient, now, DAY_LIMIT_DELAY_S)
                await self._again(lane, pending)
            else:  # the app's or the WABA's calls: the whole number waits, longer each time
                lane.pause_strikes += 1
                wait = min(ACCOUNT_PAUSE_MAX_S, 4.0 ** (lane.pause_strikes - 1))
                lane.pause(wait, f"rate limit {code}")
                await self._again(lane, pending)
        elif isinstance(error, AuthError) or (
            isinstance(error, PermanentError) and error.scope is Scope.ACCOUNT
        ):
            lane.pause(self.settings.sender_pause_s, f"{code}: {error.title}")
            self.api.reload_token()
            await self._again(lane, pending)
        elif isinstance(error, PermanentError):
            await self._fail(pending, "send", _title(error), code=code, details=error.details)
        else:  # transient
            pending.attempts += 1
            if pending.attempts >= self.settings.sender_max_attempts:
                await self._fail(pending, "send", _title(error), code=code, details=error.details)
            else:
                await self._again(lane, pending, backoff_s(pending.attempts))

    async def _again(self, lane: Lane, pending: Pending, delay_s: float = 0.0) -> None:
        """Not sent: back to ``queued`` and to the front of its recipient's line."""
        await self.journal.write(Change(key=pending.key, state=send_jobs.QUEUED, at=time.time()))
        if delay_s:
            lane.pairs.refused(pending.recipient, time.monotonic(), delay_s)
        lane.add(pending, first=True)

    async def _fail(
        self,
        pending: Pending,
        stage: Stage,
        title: str,
        *,
        code: int | None = None,
        details: str | None = None,
    ) -> None:
        now = time.time()
        await self.journal.write(
            Change(
                key=pending.key,
                state=send_jobs.FAILED,
                at=now,
                error_code=code,
                error_title=title,
                error_details=details,
            )
        )
        event = failed_event(pending.job, stage, title, now, code=code, details=details)
        await self.events.publish([outgoing(event)])
        self.metrics.failed.labels(stage).inc()
        await self._ack(pending)

    async def _give_back(self, pending: Pending) -> None:
        self._forget(pending)
        for delivery in pending.deliveries:
            with contextlib.suppress(Exception):
                await delivery.nack(requeue=True)

    def _forget(self, pending: Pending) -> None:
        if self.holding.get(pending.key) is pending:
            del self.holding[pending.key]
        self.metrics.held.set(len(self.holding))

    async def _ack(self, pending: Pending) -> None:
        self._forget(pending)
        for delivery in pending.deliveries:
            # A delivery from before a reconnect cannot be acked; its redelivery is ours too.
            with contextlib.suppress(Exception):
                await delivery.ack()

    # --- settling unknown outcomes ---

    async def settle(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_EVERY_S)
            for lane in self.lanes.values():  # memory bounded by the recipients active now
                lane.pairs.forget_idle(time.monotonic())
            try:
                await self.settle_once()
            except Unavailable as exc:
                log.warning("cannot settle unknown outcomes now", extra={"error": str(exc)})

    async def settle_once(self) -> int:
        """Look for a status of each send whose outcome is unknown; fail those too old."""
        events: list[OutgoingEvent] = []
        now = time.time()
        async with transaction(self.engine) as connection:
            # A send cannot be in flight longer than an upload and a call: a job ``sending``
            # for longer lost its holder, and maybe its delivery too (a holder that lost its
            # channel, then died): its outcome is unknown.
            stale = now - STALE_SENDING_CALLS * self.settings.graph_timeout_s
            await send_jobs.unknown_since(connection, stale, now)
            for record in await send_jobs.unknown(connection):
                job = job_decoder.decode(record.job)
                found = None
                if record.callback_data is not None:
                    found = await send_jobs.evidence(
                        connection, record.phone_number_id, record.callback_data
                    )
                if found is not None and found.status == "failed":
                    change = Change(
                        key=record.idempotency_key,
                        state=send_jobs.FAILED,
                        at=now,
                        wamid=found.wamid,
                        error_code=found.failure_code,
                        error_title=found.failure_title or "failed",
                        error_details=found.failure_details,
                    )
                elif found is not None:
                    change = Change(
                        key=record.idempotency_key,
                        state=send_jobs.ACCEPTED,
                        at=now,
                        wamid=found.wamid,
                    )
                elif now - record.updated_at >= self.settings.sender_settle_s:
                    change = Change(
                        key=record.idempotency_key,
                        state=send_jobs.FAILED,
                        at=now,
                        error_title="outcome unknown",
                        error_details="the send was not answered and no status of "
                        "it came; it was not sent again",
                    )
                else:
                    continue
                moved = await send_jobs.finish(connection, change, only_from={send_jobs.UNKNOWN})
                if moved is None:
                    continue
                event = event_of_record(moved, now)
                if found is None and isinstance(event, OutboundFailed):
                    event = msgspec.structs.replace(event, stage="unknown")
                if event is not None:
                    events.append(outgoing(event))
                log.info(
                    "unknown outcome settled",
                    extra={
                        "key": record.idempotency_key,
                        "state": moved.state,
                        "job_kind": type(job).__name__,
                    },
                )
        await self.events.publish(events)
        return len(events)

    # --- running ---

    async def drain(self) -> None:
        """Wait for the sends in flight (bounded); held jobs go back to the queue unacked."""
        if self._sends:
            await asyncio.wait(self._sends, timeout=SHUTDOWN_STEP_S)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()


# --- failed statuses, linked to their jobs ------------------------------------------------------


class FailedStatuses:
    """``wa.send.status``: a ``failed`` status of a message a job sent ends the job as failed
    (131047, 131026, 131049, 131050 ... come this way after a 200)."""

    def __init__(self, engine: AsyncEngine, events: EventPublisher) -> None:
        self._engine = engine
        self._events = events

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        statuses = [self._decode(message) for message in batch]
        events: list[OutgoingEvent] = []
        now = time.time()
        async with transaction(self._engine) as connection:
            for number, status in statuses:
                if status.status != "failed":
                    continue
                record = await send_jobs.by_wamid(connection, status.id)
                if record is None and status.biz_opaque_callback_data and number:
                    # A send whose answer was lost: its callback data names it.
                    found = await send_jobs.by_callback(
                        connection, number, status.biz_opaque_callback_data, send_jobs.UNKNOWN
                    )
                    record = found[0] if len(found) == 1 else None
                if record is None or record.state == send_jobs.FAILED:
                    continue  # not one of ours, or linked already
                error = status.errors[0] if status.errors else None
                details = error.error_data.details if error and error.error_data else None
                change = Change(
                    key=record.idempotency_key,
                    state=send_jobs.FAILED,
                    at=now,
                    wamid=status.id,
                    error_code=error.code if error else None,
                    error_title=(error.title or error.message) if error else "failed",
                    error_details=details,
                )
                moved = await send_jobs.finish(
                    connection,
                    change,
                    only_from={send_jobs.ACCEPTED, send_jobs.UNKNOWN, send_jobs.SENDING},
                )
                if moved is not None and (event := event_of_record(moved, now)) is not None:
                    events.append(outgoing(event))
        await self._events.publish(events)
        return Outcome(stored=len(events), duplicates=len(batch) - len(events))

    @staticmethod
    def _decode(message: AbstractIncomingMessage) -> tuple[str | None, Status]:
        try:
            event = event_decoder.decode(message.body)
            return event.phone_number_id, _status_decoder.decode(event.payload)
        except msgspec.DecodeError as exc:
            raise Reject(f"undecodable status event: {exc}") from None


# --- the process ---------------------------------------------------------------------------


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    metrics = SenderMetrics()
    # The sender paces and retries itself: a retry inside the client would bypass the pacing.
    settings_for_api = msgspec.structs.replace(settings, graph_retries=0)
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(open_database(settings.database_url))
        name = f"wapipe-worker-sender@{socket.gethostname()}"
        connection = await unless_stopped(connect(settings.amqp_url, name), stop)
        if connection is None:
            return
        stack.push_async_callback(close_connection, connection)
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare(publishing)
        events = EventPublisher(publishing)
        api = await stack.enter_async_context(CloudApi(settings_for_api))
        port = settings.metrics_port or kind.metrics_port
        await stack.enter_async_context(serve_metrics(metrics, settings.metrics_host, port))
        sender = Sender(settings, engine, api, events, metrics)
        stack.callback(sender.cancel)
        for work in (sender.journal.run(), sender.intake(), sender.settle()):
            sender.spawn(work)
        statuses = Consumer(
            topology.SEND_STATUS_QUEUE,
            FailedStatuses(engine, events),
            metrics,
            batching(settings),
            retry_policy(settings),
        )
        async with consuming(connection, sender, settings.sender_prefetch):
            log.info("sender started", extra={"queues": SHARD_QUEUES, "metrics_port": port})
            await statuses.run(connection, stop)
        await sender.drain()
    log.info("sender stopped")


@asynccontextmanager
async def consuming(
    connection: AbstractRobustConnection, sender: Sender, prefetch: int
) -> AsyncIterator[None]:
    """Consume every shard (active on those no other replica holds) until the block ends."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queues: list[tuple[AbstractQueue, str]] = []
    for name in SHARD_QUEUES:
        queue = await channel.declare_queue(name, passive=True)
        queues.append((queue, await queue.consume(sender.receive)))
    try:
        yield
    finally:
        for shard, tag in queues:
            with contextlib.suppress(Exception):
                await shard.cancel(tag)


KIND: Final = WorkerKind("sender", SHARD_QUEUES[0], METRICS_PORT, serve=serve)
