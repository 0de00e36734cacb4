"""One timer for many deadlines of the same length.

``asyncio.timeout()`` arms a timer per call: about 6 µs of CPU a publish, some 4 % of what a
webhook costs the ingress (tests/bench/results/publish_cost.md: aiormq against aiormq+timer).
Every confirm waits for the same ``limit_s``, so deadlines expire in the order they were armed:
one timer, set for the oldest deadline, cancels each task past its deadline; the task, seeing
``expired()``, turns that cancellation into its own error (and ``uncancel``s, as
``asyncio.timeout`` does). A deadline may fire up to one tick late: ``limit_s / 20``.

The timer is set only while a deadline is pending, at most once a tick: an idle ingress, or one
at a few requests a second, is not woken ten times a second for nothing (a periodic check was;
tests/bench/results/ingress.md, 2026-12-05).

    number = deadlines.arm()
    try:
        await something()
    except asyncio.CancelledError:
        if deadlines.expired(number):
            raise TimeoutError from None
        raise
    finally:
        deadlines.disarm(number)
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Final

TICKS_PER_LIMIT: Final = 20


class Deadlines:
    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._tick_s = limit_s / TICKS_PER_LIMIT
        # number -> (deadline, task, how many cancellations the task had pending when armed)
        self._pending: dict[int, tuple[float, asyncio.Task[object], int]] = {}  # oldest first
        self._expired: dict[int, int] = {}  # number -> cancellations pending when armed
        self._numbers = itertools.count()
        self._timer: asyncio.TimerHandle | None = None  # set while a deadline is pending

    def arm(self) -> int:
        """Start a deadline for the current task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        loop = task.get_loop()
        number = next(self._numbers)
        deadline = loop.time() + self.limit_s
        self._pending[number] = (deadline, task, task.cancelling())
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check, loop)
        return number

    def expired(self, number: int) -> bool:
        """True when this deadline, and nothing else, cancelled the task, which is then no
        longer cancelling. A cancellation from elsewhere at the same time wins: False."""
        cancelling_before = self._expired.pop(number, None)
        if cancelling_before is None:
            return False
        task = asyncio.current_task()
        return task is not None and task.uncancel() <= cancelling_before

    def disarm(self, number: int) -> None:
        # The timer stays: when it fires it finds nothing due, and is set again only for
        # what is still pending.
        self._pending.pop(number, None)
        self._expired.pop(number, None)

    def close(self) -> None:
        """Stop the timer (at shutdown, once nothing waits any more)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        self.expire(now)
        if self._pending:
            oldest = next(iter(self._pending.values()))[0]
            # Not sooner than a tick from now: under a stuck broker, one check a tick expires
            # the many deadlines due in it at once.
            self._timer = loop.call_at(max(oldest, now + self._tick_s), self._check, loop)

    def expire(self, now: float) -> None:
        """Cancel the tasks whose deadline is at or before ``now``."""
        for number, (deadline, task, cancelling) in list(self._pending.items()):
            if deadline > now:
                break  # the rest were armed later, so expire later
            del self._pending[number]
            self._expired[number] = cancelling
            task.cancel()
