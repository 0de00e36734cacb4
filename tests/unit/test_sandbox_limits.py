"""The sandbox's limits, counted exactly: throughput per number and pair rate per recipient."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wapipe.sandbox.limits import PairRate, Throughput, admit_send


def test_the_81st_message_in_one_second_is_refused_at_80_per_second() -> None:
    limit = Throughput(rate_per_s=80)
    answers = [limit.admit("number", 1000.0 + i / 100) for i in range(81)]  # 0.8 s
    assert answers == [True] * 80 + [False]
    assert limit.refused["number"] == 1
    assert limit.busiest_second("number") == 80


def test_the_window_slides_and_numbers_count_apart() -> None:
    limit = Throughput(rate_per_s=2)
    assert limit.admit("a", 10.0)
    assert limit.admit("a", 10.5)
    assert not limit.admit("a", 10.9)
    assert limit.admit("b", 10.9)  # another number
    assert limit.admit("a", 11.0)  # 10.0 left the window (10.0, 11.0]
    assert not limit.admit("a", 11.4)


@given(st.lists(st.floats(0, 5, allow_nan=False), max_size=300), st.integers(1, 20))
def test_no_one_second_window_ever_holds_more_than_the_limit(
    offsets: list[float], rate: int
) -> None:
    limit = Throughput(rate_per_s=rate)
    accepted = [t for t in sorted(offsets) if limit.admit("n", t)]
    for start in accepted:
        assert sum(1 for t in accepted if start <= t < start + 1.0) <= rate


def test_pair_rate_refuses_the_message_that_breaks_the_burst_and_not_before() -> None:
    pair = PairRate(interval_s=6.0, burst=45)
    answers = [pair.admit("n", "customer", 0.0) for _ in range(46)]
    assert answers == [True] * 45 + [False]
    assert pair.admit("n", "someone else", 0.0)  # other recipients are not held back
    assert pair.wait_s("n", "customer", 0.0) == 6.0
    assert not pair.admit("n", "customer", 5.9)
    assert pair.admit("n", "customer", 6.0)


def test_pair_rate_sustains_one_message_per_interval() -> None:
    pair = PairRate(interval_s=6.0, burst=1)
    assert all(pair.admit("n", "c", 6.0 * i) for i in range(10))
    assert not pair.admit("n", "c", 6.0 * 9 + 1)


def test_inbound_messages_fill_the_window_that_sends_are_counted_in() -> None:
    limit = Throughput(rate_per_s=3)
    limit.record_inbound("n", 10.0)
    limit.record_inbound("n", 10.1)
    assert limit.admit("n", 10.2)
    assert not limit.admit("n", 10.3)  # 2 inbound + 1 sent: the window is full
    assert limit.admit("n", 11.05)  # 10.0 has left it
    assert limit.busiest_second("n") == 1  # sends only: inbound is counted apart
    assert sum(limit.inbound_per_second["n"].values()) == 2


def test_a_send_refused_by_one_limit_counts_in_neither() -> None:
    throughput, pair = Throughput(rate_per_s=10), PairRate(interval_s=6.0, burst=2)
    codes = [admit_send(throughput, pair, "n", "c", 0.0) for _ in range(5)]
    assert codes == [None, None, 131056, 131056, 131056]
    assert throughput.busiest_second("n") == 2  # the three refusals took no room
    assert [admit_send(throughput, pair, "n", f"other{i}", 0.1) for i in range(9)] == [None] * 8 + [
        130429
    ]
    assert pair.refused[("n", "c")] == 3
