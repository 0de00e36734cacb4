"""A message's state from its statuses: every order, with duplicates, ends the same."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from wapipe.workers.progress import FAILED, Failure, Progress, advance

WINDOW = Failure(131047, "Re-engagement message")


def run(updates: list[tuple[str, Failure | None]]) -> Progress:
    state: Progress | None = None
    for status, failure in updates:
        state = advance(state, status, failure)
    assert state is not None
    return state


def test_every_order_of_sent_delivered_read_ends_in_read() -> None:
    for order in itertools.permutations(["sent", "delivered", "read"]):
        assert run([(status, None) for status in order]).status == "read"


@given(
    st.lists(st.sampled_from(["sent", "delivered", "read", "sent", "read"]), min_size=1),
    st.randoms(),
)
def test_duplicates_and_order_change_nothing(statuses: list[str], rng: random.Random) -> None:
    shuffled = list(statuses)
    rng.shuffle(shuffled)
    assert run([(s, None) for s in statuses]) == run([(s, None) for s in shuffled])


@given(st.permutations(["sent", "failed", "delivered", "failed", "weird"]))
def test_a_late_delivered_after_a_failure_is_shown_and_flagged(order: list[str]) -> None:
    failures = iter([WINDOW, Failure(131026)])
    state = run([(s, next(failures) if s == FAILED else None) for s in order])
    assert state.status == "delivered"
    assert state.delivered_despite_failure
    assert state.failure == Failure(131026)  # the lowest code, whichever came first


def test_a_failure_after_sent_shows_failed_with_its_error() -> None:
    state = run([("sent", None), (FAILED, WINDOW)])
    assert (state.status, state.failure) == (FAILED, WINDOW)
    assert not state.delivered_despite_failure


def test_an_unknown_status_moves_nothing_and_a_first_status_creates_the_record() -> None:
    assert advance(None, "warning").status == "accepted"
    assert advance(advance(None, "read"), "warning").status == "read"
    assert advance(None, "delivered").status == "delivered"
