"""Where the sender parks a job whose turn is far (back no later than its turn), and what it
believes of a job coming back."""

from __future__ import annotations

from typing import Any

import pytest

from wapipe.shared import topology
from wapipe.workers.sender.parking import ATTEMPTS_HEADER, ORDER_HEADER, place_in_line, wait_queue

WAIT_QUEUE = topology.WAIT_QUEUES[0].name


@pytest.mark.parametrize(
    ("turn_s", "seconds"),
    [(10.0, 10), (11.0, 10), (59.9, 10), (60.0, 60), (256.0, 60), (899.0, 300), (6000.0, 900)],
)
def test_a_parked_job_waits_in_the_longest_queue_not_past_its_turn(
    turn_s: float, seconds: int
) -> None:
    assert wait_queue(turn_s).seconds == seconds


def test_a_turn_sooner_than_the_shortest_wait_takes_the_shortest() -> None:
    assert wait_queue(3.0).seconds == 10  # only parked past PARK_AFTER_S (10 s) anyway


@pytest.mark.parametrize(
    ("turn_s", "not_before_s", "seconds"),
    [(12.0, 55.0, 60), (12.0, 5.0, 10), (70.0, 250.0, 300), (12.0, 1000.0, 900)],
)
def test_a_job_parked_behind_one_away_comes_back_no_sooner_than_that_one(
    turn_s: float, not_before_s: float, seconds: int
) -> None:
    assert wait_queue(turn_s, not_before_s).seconds == seconds


def back_from(queue: str | bytes, **headers: Any) -> dict[str, Any]:
    """A delivery's headers after it expired out of ``queue`` (the broker's x-death)."""
    return {"x-death": [{"queue": queue, "reason": "expired", "count": 1}], **headers}


def test_a_job_back_from_a_wait_queue_keeps_its_place_and_its_attempts() -> None:
    headers = back_from(WAIT_QUEUE, **{ORDER_HEADER: 1234, ATTEMPTS_HEADER: 2})
    assert place_in_line(headers) == (1234, 2)


def test_a_wait_queue_named_in_bytes_is_believed_too() -> None:
    headers = back_from(WAIT_QUEUE.encode(), **{ORDER_HEADER: 7, ATTEMPTS_HEADER: 0})
    assert place_in_line(headers) == (7, 0)


def test_a_job_with_no_attempts_header_has_failed_no_attempt() -> None:
    assert place_in_line(back_from(WAIT_QUEUE, **{ORDER_HEADER: 7})) == (7, 0)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {ORDER_HEADER: 7, ATTEMPTS_HEADER: 1},  # never in a wait queue: a publisher's headers
        back_from("wa.send.0.dlq", **{ORDER_HEADER: 7}),  # a dead letter replayed by hand
        back_from(WAIT_QUEUE),  # no place in line
        back_from(WAIT_QUEUE, **{ORDER_HEADER: "7"}),
        back_from(WAIT_QUEUE, **{ORDER_HEADER: True}),
        {"x-death": "not a list", ORDER_HEADER: 7},
        {"x-death": [], ORDER_HEADER: 7},
    ],
)
def test_any_other_job_starts_afresh(headers: dict[str, Any] | None) -> None:
    assert place_in_line(headers) == (None, 0)


def test_only_the_latest_death_counts() -> None:
    latest_first = [{"queue": "wa.send.0"}, {"queue": WAIT_QUEUE}]
    assert place_in_line({"x-death": latest_first, ORDER_HEADER: 7}) == (None, 0)


def test_an_attempts_header_that_is_no_count_counts_none() -> None:
    headers = back_from(WAIT_QUEUE, **{ORDER_HEADER: 7, ATTEMPTS_HEADER: True})
    assert place_in_line(headers) == (7, 0)
