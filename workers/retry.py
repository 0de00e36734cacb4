"""What a worker does with a message that failed: pure policy, no broker (STYLE.md, dramatiq).

Handlers never ack. They return, or raise:

- ``Reject(reason)``: the message can never succeed (undecodable, against the contract): it goes
  to its dead-letter queue at once;
- ``Retry(delay_s)``: try again after at least ``delay_s``;
- ``Unavailable(reason)``: something the handler needs (the database) is down. That is no fault
  of the messages: the runtime waits and calls again with the same batch, as long as it takes,
  and counts no attempt, so an outage never empties a queue into its dead-letter queue;
- anything else: an unexpected failure, tried again with exponential back-off.

After ``max_attempts`` tries a message is dead-lettered with the last error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final


class Reject(Exception):
    """This message can never be handled: dead-letter it now, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retry(Exception):
    """This message may succeed later: try again after ``delay_s`` or more."""

    def __init__(self, reason: str, delay_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


class Unavailable(Exception):
    """A dependency is down: call again later with the same messages."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before try ``attempt + 1``: exponential, capped, with "equal jitter" so that
        messages that failed together do not all come back at the same instant."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(attempt - 1, 0))
        return float(ceiling / 2 + (rng or _RNG).uniform(0, ceiling / 2))


_RNG: Final = random.Random()  # noqa: S311 - jitter, not secrecy


@dataclass(frozen=True)
class DeadLetter:
    reason: str


@dataclass(frozen=True)
class TryAgain:
    delay_s: float


def after_failure(
    error: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random | None = None
) -> DeadLetter | TryAgain:
    """The next step for a message whose ``attempt``-th try (1-based) raised ``error``."""
    reason = describe(error)
    if isinstance(error, Reject) or attempt >= policy.max_attempts:
        return DeadLetter(reason)
    delay_s = policy.backoff_s(attempt, rng)
    if isinstance(error, Retry):
        delay_s = max(delay_s, error.delay_s)
    return TryAgain(delay_s)


def describe(error: BaseException) -> str:
    if isinstance(error, Reject | Retry):
        return error.reason
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
