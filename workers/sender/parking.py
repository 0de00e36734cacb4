"""Parking: where a job whose turn is far away waits, and how it finds its place when back.

Held jobs are unacked, and a shard's prefetch full of jobs that wait would hold back every
other recipient and number on the shard. So a recipient keeps only the jobs it may send within
``PARK_AFTER_S`` (workers/sender/lane.py decides which); the others are published to a wait
queue (shared/topology.py: they expire back into wa.outbound) with their place in their
recipient's line in a header, and acked once the broker has them (``Parker``; the rest of
this module is pure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final, Protocol

from prometheus_client import Counter

from wapipe.shared import topology
from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.schemas.jobs import routing_key
from wapipe.workers.sender.acks import Acks
from wapipe.workers.sender.held import Holding, Parking, Pending

log = logging.getLogger(__name__)

PARK_AFTER_S: Final = 10.0
PARKING_RETRY_S: Final = 5.0  # after a park could not be published (the broker away)
# A parked job this late (its wait queue purged, say) no longer holds its recipient's line. Its
# way back includes the shard's backlog: generous, as what waits behind it is parked, not held.
PARKED_OVERDUE_S: Final = 900.0
# A held job given back to the broker unacked holds its place in line this long for its
# redelivery (which another replica may have taken, with the shard).
AWAY_S: Final = 60.0
ORDER_HEADER: Final = "x-wapipe-order"  # a parked job's place in its recipient's line
ATTEMPTS_HEADER: Final = "x-wapipe-attempts"  # and its transient failures so far
WAIT_QUEUE_NAMES: Final = frozenset(queue.name for queue in topology.WAIT_QUEUES)


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


def headers(seq: int, attempts: int) -> dict[str, int]:
    """What a parked job carries back: its place in line and its transient failures so far."""
    return {ORDER_HEADER: seq, ATTEMPTS_HEADER: attempts}


def place_in_line(found: Mapping[str, Any] | None) -> tuple[int | None, int]:
    """A job back from a wait queue (its delivery's headers): its place in its recipient's line
    and its transient failures so far; (None, 0) for any other (the headers are believed only
    when the broker's latest x-death names a wait queue: a dead letter replayed by hand starts
    afresh)."""
    found = found or {}
    deaths = found.get("x-death")
    latest = deaths[0] if isinstance(deaths, list) and deaths else None
    queue = latest.get("queue") if isinstance(latest, dict) else None
    if isinstance(queue, bytes):
        queue = queue.decode(errors="replace")
    if not (isinstance(queue, str) and queue in WAIT_QUEUE_NAMES):
        return None, 0
    seq, attempts = found.get(ORDER_HEADER), found.get(ATTEMPTS_HEADER)
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None, 0
    return seq, attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0


class ParkedLine(Protocol):
    """What a park's outcome tells the lane the jobs came from (workers/sender/lane.py)."""

    def back(self, pending: Pending) -> None: ...

    def away(self, pending: Pending, due: float | None = None) -> None: ...


class Parker:
    """Publishes parked jobs to their wait queues and acks them; after a publish fails, parks
    nothing for ``PARKING_RETRY_S`` (the jobs stay held)."""

    def __init__(
        self, events: EventPublisher, holding: Holding, acks: Acks, parked: Counter
    ) -> None:
        self._events = events
        self._holding = holding
        self._acks = acks
        self._parked = parked
        self._paused_until = 0.0  # monotonic

    def may_park(self, now: float) -> bool:
        return now >= self._paused_until

    async def park(self, lane: ParkedLine, parked: Parking) -> None:
        """Publish each job to its wait queue with its place in line, in this order; ack them
        once the broker has them all."""
        messages = [
            Outgoing(
                queue.name,
                routing_key(pending.job.phone_number_id),
                pending.key,
                pending.deliveries[0].body,
                headers=headers(pending.seq, pending.attempts),
            )
            for pending, queue in parked
        ]
        taken = [list(pending.deliveries) for pending, _ in parked]
        try:
            await self._events.publish(messages)
        except Exception as exc:
            log.warning("cannot park jobs; held", extra={"jobs": len(parked), "error": str(exc)})
            self._paused_until = time.monotonic() + PARKING_RETRY_S
            for pending, _ in parked:  # (a copy that did reach a wait queue is a repeat)
                if pending.alive():
                    lane.back(pending)
                else:  # the connection was lost meanwhile: it comes again, to its old place
                    self._holding.forget(pending)
                    lane.away(pending)
            return
        self._parked.inc(len(parked))
        for (pending, _), deliveries in zip(parked, taken, strict=True):
            if len(pending.deliveries) > len(deliveries):
                # It came again while being parked (its own copy, back already, or a repeat):
                # that delivery may now be its only one: held, not acked with the rest.
                pending.deliveries = pending.deliveries[len(deliveries) :]
                lane.back(pending)
            else:
                self._holding.forget(pending)
            self._acks.ack(deliveries)
