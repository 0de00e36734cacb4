"""One phone number's held jobs: its recipients' lines, its throughput slots, its pauses.

    add(job) ──> the recipient's FIFO ──> heap of recipients by when they may go ──> step(now)
                      │ the turn far away: parked (host.park)              one send per recipient
                      ▼                                                     at a time, dispatched
              back from its wait queue, in its old place                   (host.dispatch)

A paced send is marked ``sending`` ahead of its slot, then waits in line for one: the slot
protocol is workers/sender/slots.py (``lane.slots``, a send's ``Turn``).

A recipient keeps in memory only the jobs it may send within ``PARK_AFTER_S``; the others are
parked in a wait queue and come back with their place in line (their ``seq``, in a header). Its
line stays in order: a recipient sends nothing while an older job of theirs is away (parked, or
given back to the broker); it goes first when it is back.

After a pause, one send goes alone (a probe) until one is accepted: a token still refused costs
one call, not a window's worth.

The order a recipient's line keeps rests on a few rules, each kept by a verb that does the
whole step (no await in it, so the lane never sees the line half changed):

    back(job)           a job away comes back: no longer awaited, and in its line, at once
    done(job, again)    a send is over: requeued first if it is to be tried again (``Again``),
                        and only then its recipient free for the next
    away(job)           a job out of this process keeps its place: its recipient's younger
                        jobs wait for it (until it is back, or forgotten)

The lane knows nothing of the broker or the database: it decides, and its ``LaneHost`` acts.
Time comes from ``clock`` (monotonic seconds), so that tests can set it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from wapipe.shared import topology
from wapipe.workers.pacing import PairRate, Throughput
from wapipe.workers.sender.held import Parking, Pending
from wapipe.workers.sender.parking import AWAY_S, PARK_AFTER_S, PARKED_OVERDUE_S, wait_queue
from wapipe.workers.sender.slots import TIMER_SLACK_S, Clock, Slots, Turn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Again:
    """How a send that did not happen ends (requeued): first in its recipient's line again,
    the recipient held ``delay_s`` (a back-off) before it goes."""

    delay_s: float = 0.0


@dataclass(frozen=True)
class Go:
    """A lane's decision to send: the job, taken off its line (its recipient busy), and its
    share of the number's throughput (counted ahead already, so the next decision sees it)."""

    pending: Pending
    turn: Turn


class LaneHost(Protocol):
    """What a lane asks of the process that holds it."""

    @property
    def stopping(self) -> bool:
        """Nothing more may leave."""
        ...

    def may_park(self, now: float) -> bool: ...

    def park(self, lane: Lane, parking: Parking) -> None:
        """Publish these jobs to their wait queues, in this order, then ack them."""

    def dispatch(self, lane: Lane, go: Go) -> None:
        """Send this job now, in its turn (it ends with ``turn.end`` and ``lane.done``)."""

    def paused(self, lane: Lane, paused: bool) -> None:
        """The number's pause began, or is over."""


class Lane:
    def __init__(
        self,
        host: LaneHost,
        number: str,
        throughput: Throughput,
        pairs: PairRate,
        clock: Clock = time.monotonic,
    ) -> None:
        self.host = host
        self.number = number
        self.throughput = throughput
        self.pairs = pairs
        self.clock = clock
        self.fifos: dict[str, deque[Pending]] = {}
        self.busy: set[str] = set()  # recipients with a send in flight
        self.heap: list[tuple[float, int, str]] = []  # (may go at, head's seq, recipient)
        self.in_heap: set[str] = set()
        # recipient -> their jobs away (parked, or given back to the broker): idempotency key
        # -> (seq, due back, forgotten at), by the clock
        self.parked: dict[str, dict[str, tuple[int, float, float]]] = {}
        self.paused_until = 0.0
        self.pause_strikes = 0  # pauses since the last accepted send
        self.probing = False
        self._wake = asyncio.Event()
        self.slots = Slots(throughput, clock, self._may_leave, self._wake.set)
        self.warm_up()

    def warm_up(self) -> None:
        """A second's silence: the number may have had another owner until now, whose last
        second is unknown (a new lane, a reconnect, jobs redelivered from another holder)."""
        self.throughput.block_until(self.clock() + 1.0)

    # --- the recipients' lines ---

    def _line_of(self, recipient: str) -> deque[Pending]:
        return self.fifos.setdefault(recipient, deque())

    def add(self, pending: Pending) -> None:
        """A job taken in, in its place in its recipient's line (by ``seq``)."""
        fifo = self._line_of(pending.recipient)
        if not fifo or fifo[-1].seq < pending.seq:
            fifo.append(pending)
        else:  # back from a wait queue, older than some held
            fifo.insert(bisect.bisect(fifo, pending.seq, key=Pending.order), pending)
        self._park_excess(pending.recipient)
        self._schedule(pending.recipient)

    def done(self, pending: Pending, again: Again | None = None) -> None:
        """The job's send is over. ``again``: it did not happen and the job was requeued: it
        goes first in its line, before its recipient is free (one step: no younger job of
        theirs can slip in between)."""
        recipient = pending.recipient
        if again is not None:
            if again.delay_s:
                self.pairs.hold(recipient, self.clock() + again.delay_s)
            self._line_of(recipient).appendleft(pending)
        self.busy.discard(recipient)
        self._park_excess(recipient)
        self._schedule(recipient)
        self._wake.set()

    def sent(self, recipient: str, answered_at: float | None) -> None:
        """A send was accepted (answered at ``answered_at``; None for a read receipt)."""
        self.pause_strikes = 0
        if answered_at is not None:
            self.pairs.sent(recipient, answered_at)
        if self.probing:
            self.probing = False
            self._wake.set()

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

    # --- jobs away: parked, or given back ---

    def parked_seq(self, recipient: str, key: str) -> int | None:
        """The place in line of a job this lane parked, coming back (from its wait queue, or
        redelivered because its park was not acked)."""
        found = self.parked.get(recipient, {}).get(key)
        return found[0] if found is not None else None

    def back(self, pending: Pending) -> None:
        """A job away is back and held again (from its wait queue, redelivered, or a park that
        could not be published): no longer awaited, and in its line, in one step (the lane must
        not see its line unblocked without it)."""
        self.returned(pending.recipient, pending.key)
        self.add(pending)

    def returned(self, recipient: str, key: str) -> None:
        """A job away came back done (its record says so): no longer awaited. One to be held
        again comes ``back`` instead."""
        parked = self.parked.get(recipient)
        if parked is not None:
            parked.pop(key, None)
            if not parked:
                del self.parked[recipient]
        self._schedule(recipient)

    def away(self, pending: Pending, due: float | None = None) -> None:
        """A job out of this process, its place in line kept: parked, back at ``due`` (the line
        waits for it until ``PARKED_OVERDUE_S`` after); or, with no ``due``, given back to the
        broker unacked, its redelivery awaited ``AWAY_S`` at most."""
        if due is None:
            due = self.clock()
            forget = due + AWAY_S
        else:
            forget = due + PARKED_OVERDUE_S
        self.parked.setdefault(pending.recipient, {})[pending.key] = (pending.seq, due, forget)

    def tend(self) -> None:
        """Now and then: forget what is long over, and park what waits long now."""
        now = self.clock()
        self.pairs.forget_idle(now)  # memory bounded by the recipients active now
        for recipient, parked in list(self.parked.items()):
            # Long overdue (their wait queue purged, say): they stop holding their line;
            # should they come back after all, they go in their turn.
            for key in [key for key, (_, _, forget) in parked.items() if forget < now]:
                log.warning("a job away did not come back", extra={"key": key})
                self.returned(recipient, key)
        for recipient in list(self.fifos):  # a wait that grew with no job coming or going
            self._park_excess(recipient)

    def _oldest_away(self, recipient: str) -> tuple[int, float, float] | None:
        """(seq, due, forgotten at) of the recipient's oldest job away, if any."""
        away = self.parked.get(recipient)
        return min(away.values()) if away else None

    def _turn_s(self, recipient: str, now: float, place: int) -> float:
        return max(self.paused_until - now, self.pairs.turn_s(recipient, now, place))

    def _park_excess(self, recipient: str) -> None:
        """Keep the recipient's jobs whose turn comes within ``PARK_AFTER_S`` (their pair rate
        and back-off, and the number's pause) and that no job of theirs away precedes (held,
        such jobs could fill the prefetch and keep it from coming back); park the others, each
        back no later than its turn and, if it follows one away, not before that one is due."""
        fifo = self.fifos.get(recipient)
        now = self.clock()
        if not fifo or not self.host.may_park(now):
            return
        oldest = self._oldest_away(recipient)
        sending = 1 if recipient in self.busy else 0  # its answer counts before the next
        last = len(fifo) - 1 + sending
        if oldest is None and self._turn_s(recipient, now, last) < PARK_AFTER_S:
            return  # the usual case, at once: even the last one's turn is near
        keep = 0
        for place, pending in enumerate(fifo, start=sending):
            if oldest is not None and pending.seq > oldest[0]:
                break
            if self._turn_s(recipient, now, place) >= PARK_AFTER_S:
                break
            keep += 1
        parking: list[tuple[Pending, topology.WaitQueue]] = []
        while len(fifo) > keep:
            place = len(fifo) - 1 + sending
            pending = fifo.pop()
            turn = self._turn_s(recipient, now, place)
            queue = wait_queue(turn, oldest[1] - now if oldest is not None else 0.0)
            self.away(pending, now + queue.seconds)
            parking.append((pending, queue))
        if parking:  # oldest first: a wait queue gives them back in the order it took them
            self.host.park(self, parking[::-1])

    # --- the number: throughput and pauses ---

    def slow_down(self) -> None:
        """A 130429: the number waits for its window to empty, then goes on slower."""
        self.throughput.refused(self.clock())

    def back_off(self, recipient: str) -> None:
        """A 131056: that recipient alone waits (1, 4, 16 ... s); the others go on."""
        self.pairs.refused(recipient, self.clock())

    def pause(self, seconds: float, reason: str) -> None:
        """Nothing leaves for ``seconds``; then one probe. The sends in flight when it began
        come back refused too: the same strike, not more (else one expired token, answered
        to the dozens of sends on their way, would pause the number for the longest)."""
        now = self.clock()
        if now < self.paused_until:
            return
        self.pause_strikes += 1
        self.probing = True
        self.paused_until = now + seconds
        log.warning(
            "number paused",
            extra={"phone_number_id": self.number, "for_s": seconds, "reason": reason},
        )
        self.host.paused(self, True)
        self.slots.give()  # the sends in line go back to their recipients' lines
        # A long pause: its jobs wait outside the prefetch. A recipient with a send in flight
        # parks when it ends (its job, if refused, rejoins the line first: one batch, in order).
        for recipient in [r for r in self.fifos if r not in self.busy]:
            self._park_excess(recipient)

    def stop(self) -> None:
        """Nothing more leaves (the host is stopping): the sends in line are refused."""
        self.slots.give()
        self._wake.set()

    def _may_leave(self, now: float) -> bool:
        return not self.host.stopping and now >= self.paused_until

    # --- the loop ---

    def _head(self, recipient: str) -> Pending | None:
        """The recipient's next job; None if none is held, or if an older job of theirs is
        away (it goes first, once it is back)."""
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
        now = self.clock()
        # A read receipt has no pair rate, but a back-off after a failure holds it too.
        heapq.heappush(self.heap, (now + self.pairs.wait_s(recipient, now), head.seq, recipient))
        self.in_heap.add(recipient)
        self._wake.set()

    def _resting_s(self, now: float) -> float | None:
        """0 if sends may leave now; else for how long nothing leaves (None: until woken)."""
        if self.host.stopping:
            return None  # nothing more leaves; held jobs go back unacked
        if now < self.paused_until:
            return self.paused_until - now
        if self.paused_until:  # the pause is over
            self.paused_until = 0.0
            self.host.paused(self, False)
        return 0.0

    def step(self, now: float) -> Go | float | None:
        """One decision: the job to send now (taken off its line, its recipient busy); else
        how long nothing may leave (0: decide again at once; None: until something changes)."""
        if (rest := self._resting_s(now)) != 0:
            return rest
        if not self.heap or (self.probing and self.busy):
            return None
        at, seq, recipient = self.heap[0]
        head = self._head(recipient)
        if head is None:  # parked since it was scheduled
            heapq.heappop(self.heap)
            self.in_heap.discard(recipient)
            return 0.0
        if at > now:
            return at - now
        wait = self.pairs.wait_s(recipient, now)
        if wait > 0:  # held back since it was scheduled (a 131056, a back-off)
            heapq.heapreplace(self.heap, (now + wait, seq, recipient))
            return 0.0
        if head.paced and not self.slots.room_ahead(now):
            return None  # until one of those on their way leaves
        heapq.heappop(self.heap)
        self.in_heap.discard(recipient)
        pending = self.fifos[recipient].popleft()
        self.busy.add(recipient)
        return Go(pending, self.slots.turn(pending.paced))

    async def run(self) -> None:
        while True:
            self._wake.clear()
            decided = self.step(self.clock())
            if isinstance(decided, Go):
                self.host.dispatch(self, decided)
            elif decided is None:  # until something changes (no timer to set and cancel)
                await self._wake.wait()
            elif decided != 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(decided + TIMER_SLACK_S):
                        await self._wake.wait()
