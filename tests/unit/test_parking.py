"""Where the sender parks a job whose turn is far: back no later than its turn."""

from __future__ import annotations

import pytest

from workers.sender.parking import wait_queue


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
