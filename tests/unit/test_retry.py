"""The runtime's failure policy: bounded attempts, capped back-off with jitter."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from wapipe.workers.retry import DeadLetter, Reject, Retry, RetryPolicy, TryAgain, after_failure

POLICY = RetryPolicy(max_attempts=4, base_delay_s=0.5, max_delay_s=4.0)


@given(attempt=st.integers(min_value=1, max_value=60), seed=st.integers())
def test_backoff_doubles_within_half_and_whole_of_its_capped_ceiling(
    attempt: int, seed: int
) -> None:
    ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
    delay = POLICY.backoff_s(attempt, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_an_unexpected_error_is_tried_again_until_the_last_attempt() -> None:
    error = RuntimeError("database is locked")
    steps = [after_failure(error, attempt, POLICY) for attempt in (1, 2, 3, 4)]
    assert [type(step) for step in steps] == [TryAgain, TryAgain, TryAgain, DeadLetter]
    assert steps[-1] == DeadLetter("RuntimeError: database is locked")


def test_a_reject_is_dead_lettered_at_once_with_its_reason() -> None:
    assert after_failure(Reject("undecodable"), 1, POLICY) == DeadLetter("undecodable")


def test_a_retry_waits_at_least_what_it_asks() -> None:
    step = after_failure(Retry("rate limited", delay_s=10.0), 1, POLICY)
    assert step == TryAgain(10.0)


def test_an_error_without_text_is_named_by_its_type() -> None:
    assert after_failure(TimeoutError(), 9, POLICY) == DeadLetter("TimeoutError")
