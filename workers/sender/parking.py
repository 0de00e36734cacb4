"""Parking: where a job whose turn is far away waits, and how it finds its place when back.

Held jobs are unacked, and a shard's prefetch full of jobs that wait would hold back every
other recipient and number on the shard. So a recipient keeps only the jobs it may send within
``PARK_AFTER_S`` (workers/sender/lane.py decides which); the others are published to a wait
queue (shared/topology.py: they expire back into wa.outbound) with their place in their
recipient's line in a header, and acked once the broker has them. Pure: no broker here.
"""

from __future__ import annotations

from typing import Final

from aio_pika.abc import AbstractIncomingMessage

from shared import topology

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


def place_in_line(message: AbstractIncomingMessage) -> tuple[int | None, int]:
    """A job back from a wait queue: its place in its recipient's line and its transient
    failures so far; (None, 0) for any other (the headers are believed only when the broker's
    latest x-death names a wait queue: a dead letter replayed by hand starts afresh)."""
    found = message.headers or {}
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
