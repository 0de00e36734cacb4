"""Where the sender parks a job whose turn is far: back no later than its turn."""

from __future__ import annotations

import pytest

from workers.sender import wait_queue


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
