"""The sender's limits as arithmetic: a number's throughput, a recipient's pair rate, back-offs.
Pure: time is passed in, nothing sleeps here (workers/sender/lane.py does the waiting).

Throughput (docs/cloudapi/limits.md: at most N per second per number, 130429 past it). Meta counts
a send when it arrives, which the sender cannot see: only that it arrived after the request left
and before the answer came. So a send holds its slot from before it leaves until one second
after its answer, and a new send leaves only while fewer than N slots are held. Then no second,
wherever it starts, can hold N + 1 arrivals, whatever the network's jitter: the last of them to
leave would have found the other N holding their slots. The cost is the round trip: the paced
rate is N / (1 s + round trip), 99.5 % of the limit at a 5 ms round trip (against Meta, some
100 ms away, about 90 %: the price of a guarantee that does not depend on the network). Sends
also keep an even pace (one every 1/N s, 20 ms' worth together): a window's sends leaving in
one burst would queue at the server, and the last answer, coming late, would hold every slot
longer.

A send is committed as ``sending`` before it leaves (workers/sender/send.py), and that commit takes
time (milliseconds, tens of them at 1,000/s). It is done ahead: up to ``ahead()`` sends
(``AHEAD_S`` worth of the limit) are marked and wait in line for a slot, so that a slot is
taken the moment it frees, not a commit later; the round trip is then the only price.

After a 130429 anyway (inbound messages fill the same window, or another system sends from the
number), the number waits a second and its limit is halved, then grows back over a minute.

Pair rate (docs/cloudapi/limits.md: one per 6 s to one user, bursts allowed, 131056 past): GCRA
per recipient, counted from each answer (when Meta had surely counted it). After a 131056
anyway, that recipient alone waits 1, 4, 16, 64, then 256 s (Meta's advice), the others go on.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Final

WINDOW_S: Final = 1.001  # Meta's second, and a millisecond against rounding and clock skew
SLOWED_FLOOR: Final = 0.1  # the lowest fraction of its limit a number is slowed to
RECOVERY_S: Final = 60.0  # from the floor back to the whole limit
THROUGHPUT_PAUSE_S: Final = 1.0  # after a 130429: let the window empty
SMOOTHING_S: Final = 0.02  # sends within this much of the even pace leave together
# Sends marked ahead of their slot. Enough to cover a commit; few, as those marked when their
# process dies count as unknown (workers/sender/intake.py), never sent again.
AHEAD_S: Final = 0.05
PAIR_BACKOFF_S: Final = (1.0, 4.0, 16.0, 64.0, 256.0)
_RNG: Final = random.Random()  # noqa: S311 - jitter, not secrecy


@dataclass
class Throughput:
    """One number's sends: slots held from before each send leaves until a second after its
    answer, at most ``limit()`` at once; and between them an even pace (a send every
    1/limit s, up to ``smoothing_s`` of them together), so that a window's sends do not leave
    in one burst whose last answer, queued behind the others, holds every slot longer."""

    rate_per_s: float
    smoothing_s: float = SMOOTHING_S
    in_flight: int = 0
    answered: deque[float] = field(default_factory=deque)  # answer times, oldest first
    _slowed_at: float | None = None
    _slowed_to: float = 1.0
    _blocked_until: float = 0.0
    _tat: float = 0.0  # the even pace's next send time (GCRA)

    def limit(self, now: float) -> int:
        return max(1, int(self.rate_per_s * self._factor(now)))

    def _factor(self, now: float) -> float:
        if self._slowed_at is None:
            return 1.0
        grown = self._slowed_to + (1.0 - self._slowed_to) * (now - self._slowed_at) / RECOVERY_S
        if grown >= 1.0:
            self._slowed_at = None
            return 1.0
        return grown

    def wait_s(self, now: float) -> float | None:
        """0 if a send may start now (its even pace, and a slot free); else how long until it
        may (None: when an answer comes, every slot being in flight)."""
        room = self.room_s(now)
        pace = self._tat - self.smoothing_s - now
        return None if room is None else max(room, pace, 0.0)

    def room_s(self, now: float) -> float | None:
        """0 if a slot is free now; else how long until one frees (None: at an answer)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        answered = self.answered
        while answered and answered[0] + WINDOW_S <= now:
            answered.popleft()
        held = self.in_flight + len(answered)
        limit = self.limit(now)
        if held < limit:
            return 0.0
        if len(answered) > held - limit:  # enough slots free up as answers age
            return answered[held - limit] + WINDOW_S - now
        return None

    def block_until(self, until: float) -> None:
        """Nothing leaves before ``until``."""
        self._blocked_until = max(self._blocked_until, until)

    def ahead(self, now: float) -> int:
        """How many sends may be on their way to a slot: being marked, or waiting in line."""
        return max(1, math.ceil(self.limit(now) * AHEAD_S))

    def take(self, now: float) -> None:
        """A send leaves now (``wait_s`` said 0): it holds a slot, and the next is due 1/limit
        s later in the even pace."""
        self.in_flight += 1
        self._tat = max(self._tat, now) + 1.0 / self.limit(now)

    def release(self, answered_at: float | None) -> None:
        """The send is over: answered at ``answered_at``, or never reached Meta (None)."""
        self.in_flight -= 1
        if answered_at is not None:
            # In answer order, which is not always release order (one send's answer is
            # recorded faster than another's): ``room_s`` reads the deque as sorted.
            bisect.insort(self.answered, answered_at)

    def refused(self, now: float) -> None:
        """A 130429: wait for the window to empty, then go on at half the pace (once: the
        refusals of the sends already in flight are the same excess, not more)."""
        if now < self._blocked_until:
            return
        self._slowed_to = max(SLOWED_FLOOR, self._factor(now) / 2)
        self._slowed_at = now
        self._blocked_until = now + THROUGHPUT_PAUSE_S


@dataclass
class PairRate:
    """GCRA per recipient: one message per ``interval_s``, bursts of up to ``burst``."""

    interval_s: float
    burst: int
    _tat: dict[str, float] = field(default_factory=dict)  # when the recipient's bucket is full
    _blocked: dict[str, tuple[float, int]] = field(default_factory=dict)  # until, strikes

    def wait_s(self, recipient: str, now: float) -> float:
        """How long until the recipient's next message may go."""
        return self.turn_s(recipient, now, 0)

    def turn_s(self, recipient: str, now: float, place: int) -> float:
        """How long until the recipient's ``place``-th next message may go (0: the next one),
        each going as soon as it may: what is left of the burst, then one per interval."""
        tat = max(self._tat.get(recipient, now), now)
        wait = tat - now + (place - self.burst + 1) * self.interval_s
        blocked = self._blocked.get(recipient)
        if blocked is not None:
            wait = max(wait, blocked[0] - now)
        return max(0.0, wait)

    def sent(self, recipient: str, answered_at: float) -> None:
        self._tat[recipient] = max(self._tat.get(recipient, answered_at), answered_at)
        self._tat[recipient] += self.interval_s
        blocked = self._blocked.get(recipient)
        if blocked is not None and blocked[0] <= answered_at:
            del self._blocked[recipient]  # it went through: the next 131056 starts again at 1 s

    def refused(self, recipient: str, now: float) -> float:
        """A 131056: how long the recipient now waits (Meta's 4^x back-off)."""
        strikes = self._blocked.get(recipient, (0.0, 0))[1]
        wait = PAIR_BACKOFF_S[min(strikes, len(PAIR_BACKOFF_S) - 1)]
        self._blocked[recipient] = (now + wait, strikes + 1)
        return wait

    def hold(self, recipient: str, until: float) -> None:
        """Hold the recipient back until ``until`` for another reason (a back-off after a
        transient failure, the day's limit), its 131056 strikes as they were."""
        blocked_until, strikes = self._blocked.get(recipient, (0.0, 0))
        self._blocked[recipient] = (max(blocked_until, until), strikes)

    def forget_idle(self, now: float, quiet_s: float = 300.0) -> None:
        """Drop recipients whose bucket is full again, and holds long over (after ``quiet_s``
        a recipient's 131056 strikes start again): memory stays bounded by the active ones."""
        for recipient in [r for r, (until, _) in self._blocked.items() if until + quiet_s <= now]:
            del self._blocked[recipient]
        for recipient in [r for r, tat in self._tat.items() if tat <= now]:
            if recipient not in self._blocked:
                del self._tat[recipient]


def backoff_s(attempt: int, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Before try ``attempt + 1`` of a transient failure: doubling, capped, with full jitter in
    its upper half (replicas that failed together do not retry together)."""
    delay: float = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return delay / 2 + _RNG.uniform(0, delay / 2)
