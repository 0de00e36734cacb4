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
The price: one number's rate is one process's (the benchmark: 98.8 % of 1,000/s on one core),
and the active consumer of a shard is the replica that subscribed first (RabbitMQ 3.x has no
priorities for it), so shards gather on one replica rather than spread.

Each recipient has its own FIFO, so one customer's messages go in order, one at a time, paced by
the pair rate, while others' go on. Held jobs are unacked, so a recipient holds only what it can
send within ``PARK_AFTER_S``; the rest wait in a wait queue (parked), not in the prefetch.

The Cloud API's answers (shared/cloudapi/errors.py):
transient: the recipient's next try after a back-off, up to ``WAPIPE_SENDER_MAX_ATTEMPTS``; a
130429 or 131048: the number waits and slows down; 131056: that recipient backs off (1, 4, 16,
64, 256 s); 4 or 80007: the number pauses, growing; a refused token or a blocked account: the
number pauses ``WAPIPE_SENDER_PAUSE_S`` (the token file is read again) and tries again, its
jobs held (parked, for a pause of ``PARK_AFTER_S`` or more); permanent: ``outbound.failed``
with the code and title.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import hashlib
import heapq
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import topology
from shared.cloudapi.client import CloudApi, GraphConfig, SentMessage
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
from shared.schemas.jobs import (
    Job,
    MarkReadJob,
    SendJob,
    api_message,
    job_decoder,
    local_file,
    routing_key,
)
from shared.schemas.outbound import OutboundAccepted, OutboundFailed, Stage
from shared.schemas.webhook import Status
from shared.settings import Settings, number_rates
from shared.storage import send_jobs
from shared.storage.database import open_database
from shared.storage.send_jobs import Change, JobRecord, NewJob
from shared.storage.templates import template_job_refusal
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
# A job whose turn is further away than this is parked in a wait queue (shared/topology.py), not
# held: held jobs are unacked, and a shard's prefetch full of jobs that wait would hold back
# every other recipient and number on the shard.
PARK_AFTER_S: Final = 10.0
PARKING_RETRY_S: Final = 5.0  # after a park could not be published (the broker away)
# A parked job this late (its wait queue purged, say) no longer holds its recipient's line. Its
# way back includes the shard's backlog: generous, as what waits behind it is parked, not held.
PARKED_OVERDUE_S: Final = 900.0
# A held job given back to the broker unacked holds its place in line this long for its
# redelivery (which another replica may have taken, with the shard).
AWAY_S: Final = 60.0
AUTH_PAUSE_MAX_S: Final = 900.0  # a token refused again and again: the pause doubles up to this
ORDER_HEADER: Final = "x-wapipe-order"  # a parked job's place in its recipient's line
ATTEMPTS_HEADER: Final = "x-wapipe-attempts"  # and its transient failures so far
WAIT_QUEUE_NAMES: Final = frozenset(queue.name for queue in topology.WAIT_QUEUES)
CALLBACK_MAX: Final = 512  # biz_opaque_callback_data's limit
MARKER: Final = "wapipe:"
STALE_SENDING_CALLS: Final = 3  # graph timeouts after which a job "sending" is unknown
# A holder's answer is written over its own mark, or over "unknown" (the truth beats a guess).
HOLDER_OR_UNKNOWN: Final = frozenset({send_jobs.SENDING, send_jobs.UNKNOWN})

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


def _seq(pending: Pending) -> int:
    return pending.seq


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


# --- the journal: claims and state changes, many per transaction -----------------------------


@dataclass
class _Write:
    """One request in a group commit: new jobs to claim, a key to mark ``sending``, or a state
    to write."""

    claim: Sequence[NewJob] = ()
    mark: str | None = None
    change: Change | None = None
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
    """Group commit, and the sender's one writer on the hot path: every claim, mark and change
    asked for while a transaction runs goes in the next one, so a thousand sends a second cost
    tens of commits, and each caller waits for its own. (Claims in transactions of their own
    would take turns with the marks for SQLite's one writer, and a send waits for its mark.)"""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._pending: list[_Write] = []
        self._wake = asyncio.Event()

    async def claim(self, rows: Sequence[NewJob]) -> dict[str, JobRecord]:
        """Insert the jobs not seen before; the records of those that were (by key)."""
        seen: dict[str, JobRecord] = await self._submit(_Write(claim=rows))
        return seen

    async def mark_sending(self, key: str) -> bool:
        """True if this holder may send the job now (it was ``queued``; it is ``sending``)."""
        return bool(await self._submit(_Write(mark=key)))

    async def write(self, change: Change) -> bool:
        """True if the job moved (it was in one of ``change.only_from``)."""
        return bool(await self._submit(_Write(change=change)))

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
        while True:
            try:
                async with transaction(self._engine) as connection:
                    seen = await send_jobs.claim(connection, rows)
                    moved = await send_jobs.change(connection, changes, at)
                    return seen, moved | await send_jobs.mark_sending(connection, keys, at)
            except Unavailable as exc:
                log.warning("database unavailable, retrying", extra={"error": str(exc)})
                await asyncio.sleep(OUTAGE_RETRY_S)


# --- lanes: one per phone number ---------------------------------------------------------


@dataclass(eq=False)
class Pending:
    """A job held until its turn, with every delivery of it (all acked when it is done)."""

    job: Job
    deliveries: list[AbstractIncomingMessage]
    seq: int  # its place in its recipient's line: when first taken in (ns), kept while parked
    attempts: int = 0  # transient failures so far, in this process

    @property
    def key(self) -> str:
        return self.job.idempotency_key

    @property
    def recipient(self) -> str:
        return recipient_of(self.job)

    @property
    def paced(self) -> bool:
        return isinstance(self.job, SendJob)

    def alive(self) -> bool:
        """Whether some delivery of it can still be acked (its channel is open)."""
        for delivery in self.deliveries:
            with contextlib.suppress(Exception):  # a closed channel raises
                if not delivery.channel.is_closed:
                    return True
        return False


class Lane:
    """One phone number's held jobs: a FIFO per recipient, the recipients whose turn it is in a
    heap by when they may go, one send at a time per recipient, the number's throughput shared.

    A paced send is marked ``sending`` ahead of its slot (workers/pacing.py), then waits in
    line for one (``slot``); at most ``Throughput.ahead()`` are on their way at once.

    A recipient keeps in memory only the jobs it may send within ``PARK_AFTER_S``; the others
    are parked in a wait queue (``Sender.park``) and come back with their place in line (their
    ``seq``, in a header). Its line stays in order: a recipient sends nothing while an older job
    of theirs is parked; it goes first when it is back.

    After a pause, one send goes alone (a probe) until one is accepted: a token still refused
    costs one call, not a window's worth.
    """

    def __init__(self, sender: Sender, number: str, rate_per_s: float) -> None:
        self.sender = sender
        self.number = number
        self.throughput = Throughput(rate_per_s)
        self.warm_up()
        settings = sender.settings
        self.pairs = PairRate(settings.sender_pair_interval_s, settings.sender_pair_burst)
        self.fifos: dict[str, deque[Pending]] = {}
        self.busy: set[str] = set()  # recipients with a send in flight
        self.heap: list[tuple[float, int, str]] = []  # (may go at, head's seq, recipient)
        self.in_heap: set[str] = set()
        # recipient -> their jobs away (parked, or given back to the broker): idempotency key
        # -> (seq, due back, forgotten at), monotonic
        self.parked: dict[str, dict[str, tuple[int, float, float]]] = {}
        self.paused_until = 0.0
        self.pause_strikes = 0
        self.probing = False
        self.ahead = 0  # paced sends dispatched that have not left: being marked, or in line
        self._line: deque[asyncio.Future[bool]] = deque()  # marked sends waiting for a slot
        self._timer: asyncio.TimerHandle | None = None  # when the line's head may go
        self._wake = asyncio.Event()

    def warm_up(self) -> None:
        """A second's silence: the number may have had another owner until now, whose last
        second is unknown (a new lane, a reconnect, jobs redelivered from another holder)."""
        self.throughput.block_until(time.monotonic() + 1.0)

    def add(self, pending: Pending, *, first: bool = False) -> None:
        fifo = self.fifos.setdefault(pending.recipient, deque())
        if first:  # its turn again (tried, to be tried again)
            fifo.appendleft(pending)
        elif not fifo or fifo[-1].seq < pending.seq:
            fifo.append(pending)
        else:  # back from a wait queue, older than some held
            fifo.insert(bisect.bisect(fifo, pending.seq, key=_seq), pending)
        self._park_excess(pending.recipient)
        self._schedule(pending.recipient)

    def done(self, recipient: str) -> None:
        """The recipient's send is over (its job requeued first if it is to be tried again)."""
        self.busy.discard(recipient)
        self._park_excess(recipient)
        self._schedule(recipient)
        self._wake.set()

    def parked_seq(self, recipient: str, key: str) -> int | None:
        """The place in line of a job this lane parked, coming back (from its wait queue, or
        redelivered because its park was not acked)."""
        found = self.parked.get(recipient, {}).get(key)
        return found[0] if found is not None else None

    def returned(self, recipient: str, key: str) -> None:
        """A parked job is back: in its recipient's line again (added in the same step, with no
        await between: the lane must not see the line unblocked without it), or done."""
        parked = self.parked.get(recipient)
        if parked is not None:
            parked.pop(key, None)
            if not parked:
                del self.parked[recipient]
        self._schedule(recipient)

    def forget_overdue(self, now: float) -> None:
        """Parked jobs long overdue (their wait queue purged, say) stop holding their
        recipients' lines; should they come back after all, they go in their turn."""
        for recipient, parked in list(self.parked.items()):
            for key in [key for key, (_, _, forget) in parked.items() if forget < now]:
                log.warning("a job away did not come back", extra={"key": key})
                self.returned(recipient, key)

    def away(self, pending: Pending, due: float | None = None) -> None:
        """A job out of this process, its place in line kept: parked, back at ``due`` (the line
        waits for it until ``PARKED_OVERDUE_S`` after); or, with no ``due``, given back to the
        broker unacked, its redelivery awaited ``AWAY_S`` at most."""
        if due is None:
            due = time.monotonic()
            forget = due + AWAY_S
        else:
            forget = due + PARKED_OVERDUE_S
        self.parked.setdefault(pending.recipient, {})[pending.key] = (pending.seq, due, forget)

    def _oldest_away(self, recipient: str) -> tuple[int, float, float] | None:
        """(seq, due, forgotten at) of the recipient's oldest job away, if any."""
        away = self.parked.get(recipient)
        return min(away.values()) if away else None

    def park_waiting(self) -> None:
        """Park what waits long now (a wait that grew with no job coming or going since)."""
        for recipient in list(self.fifos):
            self._park_excess(recipient)

    def _park_excess(self, recipient: str) -> None:
        """Keep the recipient's jobs whose turn comes within ``PARK_AFTER_S`` (their pair rate
        and back-off, and the number's pause) and that no job of theirs away precedes (held,
        such jobs could fill the prefetch and keep it from coming back); park the others, each
        back no later than its turn and, if it follows one away, not before that one is due."""
        fifo = self.fifos.get(recipient)
        now = time.monotonic()
        if not fifo or self.sender.stopping or now < self.sender.parking_paused_until:
            return
        paused = self.paused_until - now
        oldest = self._oldest_away(recipient)
        sending = 1 if recipient in self.busy else 0  # its answer counts before the next
        last = len(fifo) - 1 + sending
        if oldest is None and max(paused, self.pairs.turn_s(recipient, now, last)) < PARK_AFTER_S:
            return  # the usual case, at once: even the last one's turn is near
        keep = 0
        for place, pending in enumerate(fifo, start=sending):
            if oldest is not None and pending.seq > oldest[0]:
                break
            if max(paused, self.pairs.turn_s(recipient, now, place)) >= PARK_AFTER_S:
                break
            keep += 1
        parking: list[tuple[Pending, topology.WaitQueue]] = []
        while len(fifo) > keep:
            place = len(fifo) - 1 + sending
            pending = fifo.pop()
            turn = max(paused, self.pairs.turn_s(recipient, now, place))
            queue = wait_queue(turn, oldest[1] - now if oldest is not None else 0.0)
            self.away(pending, now + queue.seconds)
            parking.append((pending, queue))
        if parking:  # oldest first: a wait queue gives them back in the order it took them
            self.sender.spawn(self.sender.park(self, parking[::-1]))

    def unpark(self, pending: Pending) -> None:
        """A park that could not be published: the job is held after all."""
        self.returned(pending.recipient, pending.key)
        self.add(pending)

    def drop(self, gone: Callable[[Pending], bool]) -> list[Pending]:
        """Take out the held jobs ``gone`` says are no longer ours; return them."""
        dropped: list[Pending] = []
        for recipient, fifo in list(self.fifos.items()):
            kept: deque[Pending] = deque()
            for pending in fifo:
                (dropped if gone(pending) else kept).append(pending)
            self.fifos[recipient] = kept
        self.heap = []
        self.in_heap = set()
        for recipient in list(self.fifos):
            self._schedule(recipient)
        return dropped

    async def slot(self) -> bool:
        """Wait in line for a throughput slot and the send's turn in the even pace. True: the
        slot is held, from now until a second after the answer (``release``). False: the
        number was paused or the sender is stopping; the send must not leave."""
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        self._give_slots()
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self.release(None)  # given as the task was cancelled: it never left
            raise

    def left(self) -> None:
        """A paced send is no longer on its way to a slot (it left, or it ended before)."""
        self.ahead -= 1
        self._wake.set()

    def release(self, answered_at: float | None) -> None:
        self.throughput.release(answered_at)
        self._give_slots()  # a slot may free sooner than the timer set says

    def _give_slots(self) -> None:
        """Give the line's head its slot while there is one, else set a timer for when there
        will be (an answer wakes it when every slot is in flight)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line, throughput = self._line, self.throughput
        while line:
            if line[0].done():  # its send was cancelled
                line.popleft()
                continue
            now = time.monotonic()
            if self.sender.stopping or now < self.paused_until:
                line.popleft().set_result(False)
                continue
            wait = throughput.wait_s(now)
            if wait is None:
                return
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait, self._give_slots)
                return
            throughput.take(now)
            line.popleft().set_result(True)

    def pause(self, seconds: float, reason: str) -> None:
        until = time.monotonic() + seconds
        self.probing = True
        if until > self.paused_until:
            self.paused_until = until
            log.warning(
                "number paused",
                extra={"phone_number_id": self.number, "for_s": seconds, "reason": reason},
            )
        self.sender.metrics.paused.labels(self.number).set(1)
        self._give_slots()  # the sends in line go back to their recipients' lines
        # A long pause: its jobs wait outside the prefetch. A recipient with a send in flight
        # parks when it ends (its job, if refused, rejoins the line first: one batch, in order).
        for recipient in [r for r in self.fifos if r not in self.busy]:
            self._park_excess(recipient)

    def accepted(self) -> None:
        self.pause_strikes = 0
        if self.probing:
            self.probing = False
            self._wake.set()

    def _head(self, recipient: str) -> Pending | None:
        """The recipient's next job; None if none is held, or if an older job of theirs is
        parked (it goes first, once it is back)."""
        fifo = self.fifos.get(recipient)
        if not fifo:
            return None
        oldest = self._oldest_away(recipient)
        return None if oldest is not None and oldest[0] < fifo[0].seq else fifo[0]

    def _schedule(self, recipient: str) -> None:
        if not self.fifos.get(recipient):
            self.fifos.pop(recipient, None)
            return
        if recipient in self.busy or recipient in self.in_heap:
            return
        head = self._head(recipient)
        if head is None:
            return
        now = time.monotonic()
        # A read receipt has no pair rate, but a back-off after a failure holds it too.
        heapq.heappush(self.heap, (now + self.pairs.wait_s(recipient, now), head.seq, recipient))
        self.in_heap.add(recipient)
        self._wake.set()

    async def _sleep(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _resting_s(self, now: float) -> float | None:
        """0 if sends may leave now; else for how long nothing leaves (None: until woken)."""
        if self.sender.stopping:
            return None  # nothing more leaves; held jobs go back unacked
        if now < self.paused_until:
            return self.paused_until - now
        if self.paused_until:  # the pause is over
            self.paused_until = 0.0
            self.sender.metrics.paused.labels(self.number).set(0)
            self.sender.api.reload_token()
        return 0.0

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            if (rest := self._resting_s(now)) != 0:
                await self._sleep(rest)
                continue
            if not self.heap or (self.probing and self.busy):
                await self._sleep(None)
                continue
            at, seq, recipient = self.heap[0]
            head = self._head(recipient)
            if head is None:  # parked since it was scheduled
                heapq.heappop(self.heap)
                self.in_heap.discard(recipient)
                continue
            if at > now:
                await self._sleep(at - now)
                continue
            wait = self.pairs.wait_s(recipient, now)
            if wait > 0:  # held back since it was scheduled (a 131056, a back-off)
                heapq.heapreplace(self.heap, (now + wait, seq, recipient))
                continue
            if head.paced:
                if self.ahead >= self.throughput.ahead(now):
                    await self._sleep(None)  # until one of those on their way leaves
                    continue
                self.ahead += 1
            heapq.heappop(self.heap)
            self.in_heap.discard(recipient)
            pending = self.fifos[recipient].popleft()
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
        self.parked = Counter(
            "wapipe_sender_parked",
            "Jobs parked in a wait queue, their turn far away.",
            registry=registry,
        )
        self.paused = Gauge(
            "wapipe_sender_paused",
            "1 while a number is paused.",
            ["phone_number_id"],
            registry=registry,
        )


class SenderFailed(RuntimeError):
    """A task the sender cannot do without died: the process stops, to be restarted."""


class Sender:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        api: CloudApi,
        events: EventPublisher,
        metrics: SenderMetrics,
        stop: asyncio.Event,
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
        self.stopping = False
        self.failure: BaseException | None = None
        self._stop = stop
        self._rates = number_rates(settings)
        self._files = (
            Path(settings.sender_files_dir).resolve() if settings.sender_files_dir else None
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._seq = 0
        self.parking_paused_until = 0.0  # monotonic

    def spawn(self, work: Coroutine[object, object, None], *, send: bool = False) -> None:
        task = asyncio.ensure_future(work)
        for tasks in (self._tasks, self._sends) if send else (self._tasks,):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A task that dies of an error stops the process (a send's errors are all handled:
        one that escapes is a bug): better restarted than silently not consuming."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.critical("sender task failed, stopping", exc_info=error)
        if self.failure is None:
            self.failure = error
        self._stop.set()

    def stop_sending(self) -> None:
        """Nothing more leaves (before the shards are handed to a standby replica)."""
        self.stopping = True
        for lane in self.lanes.values():
            lane._give_slots()  # the sends in line do not leave
            lane._wake.set()

    def on_reconnect(self, *_: object) -> None:
        """The broker connection came back: the deliveries held are dead (RabbitMQ gave them
        back to the queue, maybe to another replica now active on the shard); drop the jobs
        that have no live delivery, and let every number be silent for a second."""
        for lane in self.lanes.values():
            for pending in lane.drop(lambda p: not p.alive()):
                self._forget(pending)
                lane.away(pending)
            lane.warm_up()
        log.warning("broker connection restored; held jobs dropped, to come again")

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

    def _decode(self, message: AbstractIncomingMessage) -> Job | str:
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

    async def admit(self, batch: Sequence[AbstractIncomingMessage]) -> None:
        fresh: dict[str, Pending] = {}
        for message in batch:
            job = self._decode(message)
            if isinstance(job, str):
                await self._invalid(message, job)
                continue
            lane = self._lane(job.phone_number_id)
            seq, attempts = _parked(message)
            # Its place in line: as this lane parked it, else as its header says (parked by
            # another process), else now.
            seq = lane.parked_seq(recipient_of(job), job.idempotency_key) or seq
            held = self.holding.get(job.idempotency_key) or fresh.get(job.idempotency_key)
            if held is not None:  # the same job again while we hold it: acked with it
                held.deliveries.append(message)
                self.metrics.repeats.inc()
                continue
            fresh[job.idempotency_key] = Pending(
                job, [message], seq or self._next_seq(), attempts=attempts
            )
        if not fresh:
            return
        seen = await self._claim(fresh)
        for key, pending in fresh.items():
            record = seen.get(key)
            lane = self._lane(pending.job.phone_number_id)
            if lane.parked_seq(pending.recipient, key) is not None:
                # Back: its line unblocked in the same step as it rejoins it (or is done).
                lane.returned(pending.recipient, key)
            if record is not None and record.state != send_jobs.QUEUED:
                self.metrics.repeats.inc()
                await self._seen(pending, record)
                continue
            self.holding[key] = pending
            if any(m.redelivered for m in pending.deliveries):
                lane.warm_up()  # its last holder may have been another replica
            lane.add(pending)
        self.metrics.held.set(len(self.holding))

    def _next_seq(self) -> int:
        # When it was taken in: a line's order holds across the replicas a job is parked by.
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    async def _claim(self, fresh: dict[str, Pending]) -> dict[str, JobRecord]:
        """Claim the keys; the records of those seen before. A row the database refuses (a NUL
        byte on PostgreSQL) fails its job as invalid, not the batch, nor the worker."""
        rows = [_new_job(p.job, p.deliveries[0].body) for p in fresh.values()]
        try:
            return await self.journal.claim(rows)
        except Exception:
            log.exception("claiming a batch failed; claiming its jobs one by one")
        # One group again, which fails again and is then committed claim by claim.
        claims = [self.journal.claim([row]) for row in rows]
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
            change = Change(
                key=pending.key,
                state=send_jobs.UNKNOWN,
                at=time.time(),
                only_from=frozenset({send_jobs.SENDING}),
            )
            await self._until_stored(lambda c: send_jobs.finish(c, change))
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
        with contextlib.suppress(Exception):  # the dead letter keeps it; the event is a courtesy
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

    # --- parking ---

    async def park(self, lane: Lane, parking: Sequence[tuple[Pending, topology.WaitQueue]]) -> None:
        """Publish each job to its wait queue with its place in line, in this order; ack them
        once the broker has them all."""
        parked = [
            OutgoingEvent(
                queue.name,
                routing_key(pending.job.phone_number_id),
                pending.key,
                pending.deliveries[0].body,
                headers={ORDER_HEADER: pending.seq, ATTEMPTS_HEADER: pending.attempts},
            )
            for pending, queue in parking
        ]
        taken = [list(pending.deliveries) for pending, _ in parking]
        try:
            await self.events.publish(parked)
        except Exception as exc:
            log.warning("cannot park jobs; held", extra={"jobs": len(parking), "error": str(exc)})
            self.parking_paused_until = time.monotonic() + PARKING_RETRY_S
            for pending, _ in parking:  # (a copy that did reach a wait queue is a repeat)
                if pending.alive():
                    lane.unpark(pending)
                else:  # the connection was lost meanwhile: it comes again, to its old place
                    self._forget(pending)
                    lane.away(pending)
            return
        self.metrics.parked.inc(len(parking))
        for (pending, _), deliveries in zip(parking, taken, strict=True):
            if len(pending.deliveries) > len(deliveries):
                # It came again while being parked (its own copy, back already, or a repeat):
                # that delivery may now be its only one: held, not acked with the rest.
                pending.deliveries = pending.deliveries[len(deliveries) :]
                lane.returned(pending.recipient, pending.key)
                lane.add(pending)
            else:
                self._forget(pending)
            await _ack_all(deliveries)

    # --- one send ---

    async def send(self, lane: Lane, pending: Pending) -> None:
        job = pending.job
        answered_at: float | None = None
        ahead = pending.paced  # counted in lane.ahead until it leaves or ends
        slot = False
        try:
            refusal = self._refusal(job) or await template_job_refusal(
                self.settings, self.engine, job
            )
            if refusal is not None:
                stage, reason = refusal
                await self._fail(pending, stage, reason, only_from=frozenset({send_jobs.QUEUED}))
                return
            if not await self.journal.mark_sending(pending.key):
                # Sent or being sent by another holder (a replica that took the shard over).
                await self._ack(pending)
                return
            if pending.paced:
                slot = await lane.slot()
                ahead = False
                lane.left()
                if not slot:  # paused or stopping meanwhile: back to its line, unsent
                    await self._again(lane, pending)
                    return
            try:
                sent = await self._call(job)
            except CloudApiError as error:
                answered_at = time.monotonic()
                await self._refused(lane, pending, error)
                return
            answered_at = time.monotonic()
            await self._accepted(lane, pending, sent, answered_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A record or an event that cannot be written, or a bug: hand the job back to the
            # queue rather than hold it forever (redelivered, its record decides; the delivery
            # limit ends a loop in the dead-letter queue).
            log.exception("send failed unexpectedly", extra={"key": pending.key})
            await self._give_back(pending)
        finally:
            if ahead:
                lane.left()
            if slot:  # unanswered (an error, cancelled): it may have reached Meta as late as now
                lane.release(answered_at or time.monotonic())
            lane.done(pending.recipient)

    def _refusal(self, job: Job) -> tuple[Stage, str] | None:
        """Why the job must not be sent at all, checked before it is marked."""
        expires_at = getattr(job, "expires_at", None)
        if expires_at is not None and time.time() >= expires_at:
            return "expired", "expired before it could be sent"
        if isinstance(job, SendJob) and (file := local_file(job)) is not None:
            return self._file_refusal(file.path)
        return None

    def _file_refusal(self, path: Path) -> tuple[Stage, str] | None:
        # Any system may publish jobs: only files under WAPIPE_SENDER_FILES_DIR may leave.
        if self._files is None:
            return "invalid", "local files are not allowed: set WAPIPE_SENDER_FILES_DIR"
        resolved = path.resolve()
        if not resolved.is_relative_to(self._files):
            return "invalid", f"{path} is not under WAPIPE_SENDER_FILES_DIR"
        if not resolved.is_file():
            return "invalid", f"{path}: no such file"
        return None

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
        lane.accepted()
        if isinstance(job, SendJob) and sent is not None:
            lane.pairs.sent(pending.recipient, answered_at)
            change = Change(
                key=pending.key,
                state=send_jobs.ACCEPTED,
                at=now,
                wamid=sent.wamid,
                only_from=HOLDER_OR_UNKNOWN,
            )
            if await self.journal.write(change):
                await self.events.publish([outgoing(accepted_event(job, sent, now))])
                self.metrics.accepted.inc()
            else:  # settled meanwhile (a failed status came first): its own event stands
                await self._republish(pending.key)
        else:  # a read receipt: done, no event
            change = Change(
                key=pending.key, state=send_jobs.ACCEPTED, at=now, only_from=HOLDER_OR_UNKNOWN
            )
            await self.journal.write(change)
        await self._ack(pending)

    async def _refused(self, lane: Lane, pending: Pending, error: CloudApiError) -> None:
        now = time.monotonic()
        code = error.code
        self.metrics.refused.labels(str(code)).inc()
        if isinstance(error, OutcomeUnknown) and isinstance(pending.job, MarkReadJob):
            pending.attempts += 1
            await self._again(lane, pending, backoff_s(pending.attempts))  # harmless twice
        elif isinstance(error, OutcomeUnknown):
            change = Change(
                key=pending.key,
                state=send_jobs.UNKNOWN,
                at=time.time(),
                error_title=error.title,
                error_details=error.message,
                only_from=frozenset({send_jobs.SENDING}),
            )
            await self.journal.write(change)
            await self._ack(pending)
        elif isinstance(error, RateLimited):
            if error.scope is Scope.NUMBER:
                lane.throughput.refused(now)
                await self._again(lane, pending)
            elif error.scope is Scope.RECIPIENT:
                lane.pairs.refused(pending.recipient, now)
                await self._again(lane, pending)
            elif error.scope is Scope.DAY:
                await self._again(lane, pending, DAY_LIMIT_DELAY_S)
            else:  # the app's or the WABA's calls: the whole number waits, longer each time
                lane.pause_strikes += 1
                wait = min(ACCOUNT_PAUSE_MAX_S, 4.0 ** (lane.pause_strikes - 1))
                lane.pause(wait, f"rate limit {code}")
                await self._again(lane, pending)
        elif isinstance(error, AuthError) or (
            isinstance(error, PermanentError) and error.scope is Scope.ACCOUNT
        ):
            lane.pause_strikes += 1
            wait = self.settings.sender_pause_s * 2.0 ** (lane.pause_strikes - 1)
            lane.pause(min(AUTH_PAUSE_MAX_S, wait), f"{code}: {error.title}")
            self.api.reload_token()
            await self._again(lane, pending)
        elif isinstance(error, PermanentError):
            await self._fail(pending, "send", _title(error), code=code, details=error.details)
        else:  # transient: Meta said it did not happen
            pending.attempts += 1
            if pending.attempts >= self.settings.sender_max_attempts:
                await self._fail(pending, "send", _title(error), code=code, details=error.details)
            else:
                await self._again(lane, pending, backoff_s(pending.attempts))

    async def _again(self, lane: Lane, pending: Pending, delay_s: float = 0.0) -> None:
        """Not sent: back to ``queued`` and to the front of its recipient's line."""
        change = Change(
            key=pending.key,
            state=send_jobs.QUEUED,
            at=time.time(),
            only_from=frozenset({send_jobs.SENDING}),
        )
        if not await self.journal.write(change):  # settled meanwhile (the sweep): not ours
            await self._ack(pending)
            return
        if delay_s:
            lane.pairs.hold(pending.recipient, time.monotonic() + delay_s)
        lane.add(pending, first=True)

    async def _fail(
        self,
        pending: Pending,
        stage: Stage,
        title: str,
        *,
        code: int | None = None,
        details: str | None = None,
        only_from: frozenset[str] = HOLDER_OR_UNKNOWN,
    ) -> None:
        now = time.time()
        change = Change(
            key=pending.key,
            state=send_jobs.FAILED,
            at=now,
            error_code=code,
            error_title=title,
            error_details=details,
            only_from=only_from,
        )
        if await self.journal.write(change):
            event = failed_event(pending.job, stage, title, now, code=code, details=details)
            await self.events.publish([outgoing(event)])
            self.metrics.failed.labels(stage).inc()
        else:  # another holder has it, or it is done: its own event stands
            await self._republish(pending.key)
        await self._ack(pending)

    async def _republish(self, key: str) -> None:
        found = await self._until_stored(lambda c: send_jobs.records(c, [key]))
        record = found.get(key)
        if record is not None and (event := event_of_record(record, time.time())) is not None:
            await self.events.publish([outgoing(event)])

    async def _give_back(self, pending: Pending) -> None:
        self._forget(pending)
        if (lane := self.lanes.get(pending.job.phone_number_id)) is not None:
            lane.away(pending)
        for delivery in pending.deliveries:
            with contextlib.suppress(Exception):
                await delivery.nack(requeue=True)

    def _forget(self, pending: Pending) -> None:
        if self.holding.get(pending.key) is pending:
            del self.holding[pending.key]
        self.metrics.held.set(len(self.holding))

    async def _ack(self, pending: Pending) -> None:
        self._forget(pending)
        await _ack_all(pending.deliveries)

    # --- settling unknown outcomes ---

    async def settle(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_EVERY_S)
            for lane in self.lanes.values():  # memory bounded by the recipients active now
                lane.pairs.forget_idle(time.monotonic())
                lane.forget_overdue(time.monotonic())
                lane.park_waiting()
            try:
                await self.settle_once()
            except Exception:  # the database or the broker away: next time
                log.exception("cannot settle unknown outcomes now")

    async def settle_once(self) -> int:
        """Look for a status of each send whose outcome is unknown; fail those too old. Each
        in a short transaction of its own (SQLite has one writer), its event published before
        the commit (repeated, never lost)."""
        now = time.time()
        # A send cannot be in flight longer than an upload and a call: a job ``sending`` for
        # longer lost its holder, and maybe its delivery too: its outcome is unknown.
        stale = now - STALE_SENDING_CALLS * self.settings.graph_timeout_s
        async with transaction(self.engine) as connection:
            await send_jobs.unknown_since(connection, stale, now)
            waiting = await send_jobs.unknown(connection)
        settled = 0
        for record in waiting:
            async with transaction(self.engine) as connection:
                found = None
                if record.callback_data is not None:
                    found = await send_jobs.evidence(
                        connection, record.phone_number_id, record.callback_data
                    )
                change = self._settlement(record, found, now)
                if change is None:
                    continue
                moved = await send_jobs.finish(connection, change)
                if moved is None:
                    continue
                event = event_of_record(moved, now)
                if found is None and isinstance(event, OutboundFailed):
                    event = msgspec.structs.replace(event, stage="unknown")
                if event is not None:
                    await self.events.publish([outgoing(event)])
                settled += 1
                log.info(
                    "unknown outcome settled",
                    extra={"key": record.idempotency_key, "state": moved.state},
                )
        return settled

    def _settlement(
        self, record: JobRecord, found: send_jobs.Evidence | None, now: float
    ) -> Change | None:
        key, only = record.idempotency_key, frozenset({send_jobs.UNKNOWN})
        if found is not None and found.status == "failed":
            return Change(
                key=key,
                state=send_jobs.FAILED,
                at=now,
                wamid=found.wamid,
                error_code=found.failure_code,
                error_title=found.failure_title or "failed",
                error_details=found.failure_details,
                only_from=only,
            )
        if found is not None:
            return Change(
                key=key, state=send_jobs.ACCEPTED, at=now, wamid=found.wamid, only_from=only
            )
        if now - record.updated_at >= self.settings.sender_settle_s:
            return Change(
                key=key,
                state=send_jobs.FAILED,
                at=now,
                error_title="outcome unknown",
                error_details="the send was not answered and no status of it came; "
                "it was not sent again",
                only_from=only,
            )
        return None

    # --- running ---

    async def drain(self, timeout_s: float) -> None:
        """Wait for the sends in flight (bounded); held jobs go back to the queue unacked."""
        if self._sends:
            await asyncio.wait(self._sends, timeout=timeout_s)

    async def cancel(self) -> None:
        """Cancel every task and let each end (a transaction rolled back) before the engine
        is disposed of; bounded, so that a stuck one cannot keep the process alive."""
        for _ in range(2):  # once more for one that awaited again while ending
            tasks = [task for task in self._tasks if not task.done()]
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_S)


async def _ack_all(deliveries: Sequence[AbstractIncomingMessage]) -> None:
    for delivery in deliveries:
        # A delivery from before a reconnect cannot be acked; its redelivery is ours too.
        with contextlib.suppress(Exception):
            await delivery.ack()


def wait_queue(turn_s: float, not_before_s: float = 0.0) -> topology.WaitQueue:
    """Where a job whose turn is ``turn_s`` away waits: the longest wait queue not past its turn
    (so it is back in time; parked again if its turn is still far then), else the shortest;
    but not shorter than ``not_before_s`` (the job away that it follows is due back then),
    else the longest."""
    queues = topology.WAIT_QUEUES
    fitting = [queue for queue in queues if queue.seconds <= turn_s]
    chosen = max(fitting, key=lambda queue: queue.seconds, default=queues[0])
    if chosen.seconds < not_before_s:
        later = [queue for queue in queues if queue.seconds >= not_before_s]
        chosen = min(later, key=lambda queue: queue.seconds, default=queues[-1])
    return chosen


def _parked(message: AbstractIncomingMessage) -> tuple[int | None, int]:
    """A job back from a wait queue: its place in its recipient's line and its transient
    failures so far; (None, 0) for any other (the headers are believed only when the broker's
    latest x-death names a wait queue: a dead letter replayed by hand starts afresh)."""
    headers = message.headers or {}
    deaths = headers.get("x-death")
    latest = deaths[0] if isinstance(deaths, list) and deaths else None
    queue = latest.get("queue") if isinstance(latest, dict) else None
    if isinstance(queue, bytes):
        queue = queue.decode(errors="replace")
    if not (isinstance(queue, str) and queue in WAIT_QUEUE_NAMES):
        return None, 0
    seq, attempts = headers.get(ORDER_HEADER), headers.get(ATTEMPTS_HEADER)
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None, 0
    return seq, attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0


def _new_job(job: Job, body: bytes) -> NewJob:
    now = time.time()
    return NewJob(
        idempotency_key=job.idempotency_key,
        phone_number_id=job.phone_number_id,
        recipient=recipient_of(job),
        state=send_jobs.QUEUED,
        callback_data=callback_data(job) if isinstance(job, SendJob) else None,
        job=body.decode(),  # as published: decoded already, no need to encode it again
        created_at=now,
        updated_at=now,
    )


# --- failed statuses, linked to their jobs ------------------------------------------------------


class FailedStatuses:
    """``wa.send.status``: a ``failed`` status of a message a job sent ends the job as failed
    (131047, 131026, 131049, 131050 ... come this way after a 200)."""

    def __init__(self, engine: AsyncEngine, events: EventPublisher) -> None:
        self._engine = engine
        self._events = events

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        statuses = [self._decode(message) for message in batch]
        linked = 0
        now = time.time()
        async with transaction(self._engine) as connection:
            events: list[OutgoingEvent] = []
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
                error = status.errors[0] if status.errors else None
                change = Change(
                    key=record.idempotency_key,
                    state=send_jobs.FAILED,
                    at=now,
                    wamid=status.id,
                    error_code=error.code if error else None,
                    error_title=(error.title or error.message or "failed") if error else "failed",
                    error_details=error.error_data.details if error and error.error_data else None,
                    # From sending too: its holder's answer, when it comes, finds it failed.
                    only_from=frozenset({send_jobs.ACCEPTED, *HOLDER_OR_UNKNOWN}),
                )
                moved = await send_jobs.finish(connection, change)
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


# --- the process ---------------------------------------------------------------------------


async def serve(kind: WorkerKind, settings: Settings, stop: asyncio.Event) -> None:
    metrics = SenderMetrics()
    # The sender paces and retries itself: a retry inside the client would bypass the pacing.
    api_config = GraphConfig.from_settings(settings, retries=0)
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
        api = await stack.enter_async_context(CloudApi(api_config))
        port = settings.metrics_port or kind.metrics_port
        await stack.enter_async_context(serve_metrics(metrics, settings.metrics_host, port))
        sender = Sender(settings, engine, api, events, metrics, stop)
        # What start-up made lives as long as the process: out of the collector's sight, a
        # full collection takes milliseconds, not the tens that stall every send at 1,000/s.
        gc.collect()
        gc.freeze()
        stack.push_async_callback(sender.cancel)
        connection.reconnect_callbacks.add(sender.on_reconnect)
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
            # Stop sending before the shards go to a standby, which starts sending at once.
            sender.stop_sending()
        # The sends in flight end and are recorded (their answers are on the way).
        await sender.drain(settings.graph_timeout_s)
    if sender.failure is not None:
        raise SenderFailed("a sender task failed") from sender.failure
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
            with contextlib.suppress(Exception):  # bounded: the broker may be away
                async with asyncio.timeout(SHUTDOWN_STEP_S):
                    await shard.cancel(tag)


KIND: Final = WorkerKind("sender", SHARD_QUEUES[0], METRICS_PORT, serve=serve)
