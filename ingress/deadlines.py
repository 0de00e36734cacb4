"""One timer for many deadlines of the same length.

``asyncio.timeout()`` arms a timer per call: about 6 µs of CPU a publish, some 4 % of what a
webhook costs the ingress (tests/bench/results/publish_cost.md: aiormq against aiormq+timer).
Every confirm waits for the same ``limit_s``, so deadlines expire in the order they were armed:
one periodic check walks the oldest and cancels each task past its deadline; the task, seeing
``expired()``, turns that cancellation into its own error (and ``uncancel``s, as
``asyncio.timeout`` does). A deadline may fire up to one tick late: ``limit_s / 20``.

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
        # number -> (deadline, task, how many cancellations the task had pending when armed)
        self._pending: dict[int, tuple[float, asyncio.Task[object], int]] = {}  # oldest first
        self._expired: dict[int, int] = {}  # number -> cancellations pending when armed
        self._numbers = itertools.count()

    def arm(self) -> int:
        """Start a deadline for the current task."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        number = next(self._numbers)
        self._pending[number] = (
            asyncio.get_running_loop().time() + self.limit_s,
            task,
            task.cancelling(),
        )
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
        self._pending.pop(number, None)
        self._expired.pop(number, None)

    async def watch(self) -> None:
        """Cancel the tasks past their deadline, forever."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limit_s / TICKS_PER_LIMIT)
            self.expire(loop.time())

    def expire(self, now: float) -> None:
        """Cancel the tasks whose deadline is at or before ``now``."""
        for number, (deadline, task, cancelling) in list(self._pending.items()):
            if deadline > now:
                break  # the rest were armed later, so expire later
            del self._pending[number]
            self._expired[number] = cancelling
            task.cancel()
