"""The sender's pacing arithmetic: throughput slots, the pair rate's GCRA, back-offs."""

from __future__ import annotations

import random

import pytest

from wapipe.sandbox.limits import Throughput as MetaWindow
from wapipe.workers.pacing import PAIR_BACKOFF_S, PairRate, Throughput, backoff_s


def test_a_number_sends_up_to_its_limit_then_waits_a_second_from_the_first_answer() -> None:
    pace = Throughput(3, smoothing_s=1.0)  # the window alone
    for _ in range(3):
        assert pace.wait_s(0.0) == 0.0
        pace.take(0.0)
    assert pace.wait_s(0.0) is None  # all in flight: only an answer frees a slot
    pace.release(0.010)
    pace.release(0.020)
    assert pace.wait_s(0.5) == pytest.approx(0.511)  # the first answer, a second (and 1 ms) on
    pace.release(0.030)
    assert pace.wait_s(1.011) == 0.0
    pace.take(1.011)
    assert pace.wait_s(1.011) == pytest.approx(0.01)


def test_between_windows_sends_leave_at_an_even_pace() -> None:
    pace = Throughput(100, smoothing_s=0.02)
    sent = 0
    while pace.wait_s(0.0) == 0.0:  # what leaves at once: the smoothing's worth
        pace.take(0.0)
        sent += 1
    assert sent == 3
    assert pace.wait_s(0.0) == pytest.approx(0.01)


def test_a_send_that_never_reached_meta_gives_its_slot_back_at_once() -> None:
    pace = Throughput(1, smoothing_s=1.0)
    pace.take(0.0)
    pace.release(None)
    assert pace.wait_s(0.0) == 0.0


def test_sends_are_marked_ahead_of_their_slot_by_a_fraction_of_a_second_at_least_one() -> None:
    assert Throughput(1000).ahead(0.0) == 50
    assert Throughput(80).ahead(0.0) == 4
    assert Throughput(1).ahead(0.0) == 1
    slowed = Throughput(1000)
    slowed.refused(0.0)
    assert slowed.ahead(0.0) == 25  # it follows the limit


def test_a_slot_is_free_while_the_pace_still_waits() -> None:
    pace = Throughput(10, smoothing_s=0.0)
    pace.take(0.0)
    assert pace.room_s(0.0) == 0.0
    assert pace.wait_s(0.0) == pytest.approx(0.1)


def test_answers_recorded_out_of_order_free_their_slots_in_answer_order() -> None:
    pace = Throughput(2, smoothing_s=1.0)
    pace.take(0.0)
    pace.take(0.0)
    pace.release(0.5)  # recorded first, answered last
    pace.release(0.1)
    assert pace.wait_s(1.2) == 0.0  # the one answered at 0.1 is a second old
    pace.take(1.2)
    assert pace.wait_s(1.2) == pytest.approx(0.301)  # the other, at 0.5 + 1.001


def test_a_130429_pauses_a_second_halves_the_limit_and_it_grows_back() -> None:
    pace = Throughput(80)
    pace.refused(10.0)
    assert pace.wait_s(10.5) == pytest.approx(0.5)
    assert pace.limit(11.0) == pytest.approx(40, abs=1)
    assert 40 < pace.limit(40.0) < 80
    assert pace.limit(71.0) == 80


@pytest.mark.parametrize("latency_s", [0.0, 0.002, 0.05])
@pytest.mark.parametrize("jitter_s", [0.0, 0.02])
def test_paced_sends_never_put_more_than_the_limit_in_any_second_meta_counts(
    latency_s: float, jitter_s: float
) -> None:
    """Simulated: each send reaches Meta somewhere between leaving and its answer; Meta's sliding
    window (the sandbox's model) must never refuse one, and the pace stays near the limit."""
    rng = random.Random(7)
    limit, sends = 20, 400
    pace, meta = Throughput(limit), MetaWindow(limit)
    now = 0.0
    in_flight: list[tuple[float, float]] = []  # (answer time, arrival time)
    arrivals: list[float] = []
    sent = 0
    while sent < sends or in_flight:
        in_flight.sort()
        wait = pace.wait_s(now) if sent < sends else None
        if wait == 0.0:
            pace.take(now)
            trip = latency_s + rng.uniform(0, jitter_s)
            in_flight.append((now + trip, now + rng.uniform(0, trip)))
            sent += 1
            continue
        next_answer = in_flight[0][0] if in_flight else float("inf")
        now = min(next_answer, now + wait) if wait is not None else next_answer
        while in_flight and in_flight[0][0] <= now:
            answered, arrived = in_flight.pop(0)
            arrivals.append(arrived)
            pace.release(answered)
    for arrived in sorted(arrivals):
        assert meta.admit("number", arrived), f"refused at {arrived}"
    # Not slower than needed: a window of sends per second plus a round trip.
    assert max(arrivals) - min(arrivals) <= sends / limit * (1 + latency_s + jitter_s)


def test_a_recipient_gets_its_burst_then_one_per_interval() -> None:
    pairs = PairRate(interval_s=6.0, burst=3)
    for _ in range(3):
        assert pairs.wait_s("a", 0.0) == 0.0
        pairs.sent("a", 0.0)
    assert pairs.wait_s("a", 0.0) == pytest.approx(6.0)
    assert pairs.wait_s("b", 0.0) == 0.0  # another recipient is not held back
    assert pairs.wait_s("a", 6.0) == 0.0


def test_a_131056_backs_the_recipient_off_1_4_16_64_256_seconds_then_resets() -> None:
    pairs = PairRate(interval_s=6.0, burst=45)
    waits = [pairs.refused("a", 0.0) for _ in range(6)]
    assert waits == [*PAIR_BACKOFF_S, PAIR_BACKOFF_S[-1]]
    assert pairs.wait_s("a", 0.0) == PAIR_BACKOFF_S[-1]
    pairs.sent("a", 300.0)
    assert pairs.refused("a", 300.0) == PAIR_BACKOFF_S[0]


def test_idle_recipients_and_old_holds_are_forgotten() -> None:
    pairs = PairRate(interval_s=6.0, burst=2)
    pairs.sent("a", 0.0)
    pairs.refused("b", 0.0)
    pairs.hold("c", 1000.0)
    pairs.forget_idle(400.0)
    assert (pairs._tat, set(pairs._blocked)) == ({}, {"c"})


def test_a_hold_delays_without_counting_as_a_131056() -> None:
    pairs = PairRate(interval_s=6.0, burst=45)
    pairs.hold("a", 30.0)
    assert pairs.wait_s("a", 0.0) == 30.0
    assert pairs.refused("a", 31.0) == PAIR_BACKOFF_S[0]


def test_refusals_of_sends_already_in_flight_slow_the_number_once() -> None:
    pace = Throughput(80)
    for _ in range(5):
        pace.refused(10.0)
    assert pace.limit(10.0) == 40


def test_backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() -> None:
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (10, 60.0)]:
        delays = [backoff_s(attempt) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1


def test_a_recipients_later_messages_come_after_the_burst_one_interval_apart() -> None:
    pairs = PairRate(interval_s=6.0, burst=3)
    assert [pairs.turn_s("a", 0.0, place) for place in range(5)] == [0, 0, 0, 6.0, 12.0]
    pairs.sent("a", 0.0)  # one of the burst used
    assert [pairs.turn_s("a", 0.0, place) for place in range(4)] == [0, 0, 6.0, 12.0]
    pairs.refused("a", 0.0)  # a 131056: 1 s before anything
    assert pairs.turn_s("a", 0.0, 0) == 1.0
    assert pairs.turn_s("a", 0.0, 3) == 12.0
