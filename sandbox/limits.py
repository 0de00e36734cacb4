"""The Cloud API's send limits, counted exactly from real traffic. Pure: time is passed in.

- Throughput, per business phone number (docs/cloudapi/limits.md): at most ``rate_per_s``
  messages in any one-second window, inbound and outbound together; the send that would make it
  ``rate_per_s + 1`` is refused with 130429 (inbound messages are never refused, but they fill
  the window). The window slides, so no second, wherever it starts, holds more than the limit.
- Pair rate, per (phone number, recipient) (docs/cloudapi/limits.md): one message every
  ``interval_s`` (6 s) sustained, bursts of up to ``burst`` (45) that borrow from later; modelled
  as GCRA, so the message that breaks it gets 131056, and not one before.

Refused messages do not count against either limit (Meta counts what it accepted).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

THROUGHPUT_WINDOW_S: Final = 1.0


@dataclass
class Throughput:
    """Messages accepted per phone number, in a sliding one-second window."""

    rate_per_s: int
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    per_second: dict[str, Counter[int]] = field(default_factory=dict)  # sends accepted, by second
    inbound_per_second: dict[str, Counter[int]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)

    def admit(self, phone_number_id: str, now: float) -> bool:
        """Count the message if it fits; False means 130429."""
        if not self.has_room(phone_number_id, now):
            self.refused[phone_number_id] += 1
            return False
        self.record(phone_number_id, now)
        return True

    def has_room(self, phone_number_id: str, now: float) -> bool:
        recent = self._recent.setdefault(phone_number_id, deque())
        while recent and recent[0] <= now - THROUGHPUT_WINDOW_S:
            recent.popleft()
        return len(recent) < self.rate_per_s

    def record(self, phone_number_id: str, now: float) -> None:
        self._recent.setdefault(phone_number_id, deque()).append(now)
        self.per_second.setdefault(phone_number_id, Counter())[int(now)] += 1

    def record_inbound(self, phone_number_id: str, now: float) -> None:
        """A customer's message: it takes room in the window, refused or not."""
        recent = self._recent.setdefault(phone_number_id, deque())
        # Keep the window in time order: an inbound message lands where it belongs.
        index = len(recent)
        while index and recent[index - 1] > now:
            index -= 1
        recent.insert(index, now)
        self.inbound_per_second.setdefault(phone_number_id, Counter())[int(now)] += 1

    def busiest_second(self, phone_number_id: str) -> int:
        """The most messages accepted in one calendar second (the sliding window bounds it)."""
        counts = self.per_second.get(phone_number_id)
        return max(counts.values()) if counts else 0


@dataclass
class PairRate:
    """GCRA per (phone number, recipient): ``tat`` is when the pair's bucket is empty again."""

    interval_s: float = 6.0
    burst: int = 45
    _tat: dict[tuple[str, str], float] = field(default_factory=dict)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)

    def admit(self, phone_number_id: str, recipient: str, now: float) -> bool:
        """Count the message if the pair may have it; False means 131056."""
        if not self.allows(phone_number_id, recipient, now):
            self.refused[(phone_number_id, recipient)] += 1
            return False
        self.record(phone_number_id, recipient, now)
        return True

    def allows(self, phone_number_id: str, recipient: str, now: float) -> bool:
        tat = max(self._tat.get((phone_number_id, recipient), now), now)
        return tat - now <= (self.burst - 1) * self.interval_s

    def record(self, phone_number_id: str, recipient: str, now: float) -> None:
        pair = (phone_number_id, recipient)
        self._tat[pair] = max(self._tat.get(pair, now), now) + self.interval_s

    def wait_s(self, phone_number_id: str, recipient: str, now: float) -> float:
        """How long until the pair may have one more message."""
        tat = self._tat.get((phone_number_id, recipient), now)
        return max(0.0, tat - now - (self.burst - 1) * self.interval_s)


def admit_send(
    throughput: Throughput, pair_rate: PairRate, phone_number_id: str, recipient: str, now: float
) -> int | None:
    """Check both limits, then count the send in both; or the code of the one it breaks (the
    throughput first), counting it in neither."""
    if not throughput.has_room(phone_number_id, now):
        throughput.refused[phone_number_id] += 1
        return 130429
    if not pair_rate.allows(phone_number_id, recipient, now):
        pair_rate.refused[(phone_number_id, recipient)] += 1
        return 131056
    throughput.record(phone_number_id, now)
    pair_rate.record(phone_number_id, recipient, now)
    return None
