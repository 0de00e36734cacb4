"""A number's throughput slots: the whole protocol a paced send follows, in one place.

    lane.step ──dispatch──> Turn (counted ahead) ──take──> in line for a slot ──given──> call
                                   │                             └─refused: paused or stopping
                                   └─ended before taking: no longer ahead
    answer (or an end unanswered) ──> the slot held until a second after it (workers/pacing.py)

A paced send is marked ``sending`` ahead of its slot, then waits in line for one; at most
``Throughput.ahead()`` are on their way at once (``Slots.ahead``). A ``Turn`` is one send's
share: it takes its slot once, leaves the count ahead once, and frees its slot once, whatever
way the send ends; so the count and the slots held cannot drift from the sends in flight.

No I/O: time comes from ``clock``; the only awaiting is a send's wait in line.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

from wapipe.workers.pacing import Throughput

Clock = Callable[[], float]

# uvloop's timers count whole milliseconds of its loop's cached time: one due within the current
# millisecond fires at once, and a wait woken early looked again and set its timer again, some
# hundreds of times until its moment came. At 1,000 sends a second some send always waits for a
# fraction of a millisecond (Slots.give was 5 % of the busy loop's samples, tests/bench/results/
# sender.md). A millisecond more: woken late by under one, never early, never spinning.
TIMER_SLACK_S: Final = 0.001


class Slots:
    """The line of marked sends waiting for a slot, and the count of paced sends on their way
    (dispatched, not yet left)."""

    def __init__(
        self,
        throughput: Throughput,
        clock: Clock,
        may_leave: Callable[[float], bool],
        on_left: Callable[[], None],
    ) -> None:
        self.throughput = throughput
        self._clock = clock
        self._may_leave = may_leave  # False: the number is paused or the sender is stopping
        self._on_left = on_left  # a place ahead freed: the lane may dispatch another
        self.ahead = 0
        self._line: deque[asyncio.Future[bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None  # when the line's head may go

    def room_ahead(self, now: float) -> bool:
        """Whether another paced send may be dispatched (counted ahead) now."""
        return self.ahead < self.throughput.ahead(now)

    def turn(self, paced: bool) -> Turn:
        """A dispatched send's turn (counted ahead if paced, until it leaves or ends)."""
        if paced:
            self.ahead += 1
        return Turn(self, paced)

    @property
    def waiting(self) -> int:
        """Marked sends in line for a slot."""
        return sum(1 for turn in self._line if not turn.done())

    async def _wait(self) -> bool:
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        self.give()
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self._release(None)  # given as the task was cancelled: it never left
            raise

    def _left(self) -> None:
        self.ahead -= 1
        self._on_left()

    def _release(self, answered_at: float | None) -> None:
        self.throughput.release(answered_at)
        self.give()  # a slot may free sooner than the timer set says

    def give(self) -> None:
        """Give the line's head its slot while there is one (refused to all while sends may not
        leave), else set a timer for when there will be (an answer wakes it when every slot
        is in flight)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        line, throughput = self._line, self.throughput
        while line:
            if line[0].done():  # its send was cancelled
                line.popleft()
                continue
            now = self._clock()
            if not self._may_leave(now):
                line.popleft().set_result(False)
                continue
            wait = throughput.wait_s(now)
            if wait is None:
                return
            if wait > 0:
                self._timer = asyncio.get_running_loop().call_later(wait + TIMER_SLACK_S, self.give)
                return
            throughput.take(now)
            line.popleft().set_result(True)


class Turn:
    """One dispatched send's share of its number's throughput: counted ahead until it takes
    its slot (or ends), then holding the slot until a second after its answer."""

    def __init__(self, slots: Slots, paced: bool) -> None:
        self._slots = slots
        self._ahead = paced
        self._slot = False

    async def take(self) -> bool:
        """Wait in line for a slot; False if sends may not leave (the number paused, the
        sender stopping): the send must not leave."""
        try:
            self._slot = await self._slots._wait()
        finally:
            self._leave_ahead()
        return self._slot

    def answered(self, at: float) -> None:
        """The answer came at ``at``: the slot is held until a second after it."""
        if self._slot:
            self._slot = False
            self._slots._release(at)

    def end(self) -> None:
        """The send is over, however it ended (call it once, last)."""
        self._leave_ahead()
        # Unanswered (an error, cancelled): it may have reached Meta as late as now.
        self.answered(self._slots._clock())

    def _leave_ahead(self) -> None:
        if self._ahead:
            self._ahead = False
            self._slots._left()
