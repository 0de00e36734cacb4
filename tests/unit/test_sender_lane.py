"""A number's lane (workers/sender/lane.py), with no broker: its host recorded, its clock set.

The prose invariants of the sender, as tests: a recipient's jobs go in order, one at a time,
across parking and give-backs; a busy recipient holds nobody back; slots go in line order, also
after a 130429; a paused number sends nothing, parks what waits long, then probes with one send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import uvloop
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.helpers import wait_until
from wapipe.shared import topology
from wapipe.shared.schemas.jobs import SendJob, text_message
from wapipe.workers.pacing import PairRate, Throughput
from wapipe.workers.sender.held import Pending
from wapipe.workers.sender.lane import Again, Go, Lane
from wapipe.workers.sender.parking import PARK_AFTER_S
from wapipe.workers.sender.slots import Slots, Turn

NUMBER = "109876000000001"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Host:
    """Records what the lane asks for, and does it at once."""

    def __init__(self) -> None:
        self.stopping = False
        self.parks: list[list[Pending]] = []
        self.dispatched: list[Pending] = []
        self.pauses: list[bool] = []

    def may_park(self, now: float) -> bool:
        return not self.stopping

    def park(self, lane: Lane, parking: Sequence[tuple[Pending, topology.WaitQueue]]) -> None:
        self.parks.append([pending for pending, _ in parking])

    def dispatch(self, lane: Lane, go: Go) -> None:
        self.dispatched.append(go.pending)

    def paused(self, lane: Lane, paused: bool) -> None:
        self.pauses.append(paused)

    @property
    def parked(self) -> list[Pending]:
        return [pending for batch in self.parks for pending in batch]


def pending(seq: int, to: str = "16315551181") -> Pending:
    job = SendJob(
        idempotency_key=f"{to}-{seq}",
        phone_number_id=NUMBER,
        to=to,
        message=text_message(f"message {seq}"),
    )
    return Pending(job, [], seq)


def lane_of(
    *, rate_per_s: float = 1000, interval_s: float = 6.0, burst: int = 20
) -> tuple[Lane, Host, Clock]:
    host, clock = Host(), Clock()
    lane = Lane(host, NUMBER, Throughput(rate_per_s), PairRate(interval_s, burst), clock)
    return lane, host, clock


def dispatch(lane: Lane, host: Host, clock: Clock) -> Pending | None:
    """Run the lane's decisions at ``clock.now`` until one is a send, or a wait; the send
    leaves at once (no longer counted ahead)."""
    while True:
        decided = lane.step(clock.now)
        if isinstance(decided, Go):
            host.dispatch(lane, decided)
            decided.turn.end()
            return decided.pending
        if decided != 0:
            return None


def seq_of(job: Pending | None) -> int | None:
    return None if job is None else job.seq


def sent(lane: Lane, clock: Clock, job: Pending | None) -> None:
    assert job is not None
    lane.sent(job.recipient, clock.now)
    lane.done(job)


def test_a_recipients_jobs_leave_in_order_one_at_a_time() -> None:
    lane, host, clock = lane_of()
    for seq in (1, 2, 3):
        lane.add(pending(seq))
    first = dispatch(lane, host, clock)
    assert first is not None
    assert first.seq == 1
    assert dispatch(lane, host, clock) is None  # its send is in flight
    sent(lane, clock, first)
    assert seq_of(dispatch(lane, host, clock)) == 2
    assert [p.seq for p in host.dispatched] == [1, 2]


def test_a_busy_recipient_holds_nobody_back() -> None:
    lane, host, clock = lane_of()
    lane.add(pending(1, "a"))
    lane.add(pending(2, "a"))
    lane.add(pending(3, "b"))
    assert [dispatch(lane, host, clock) for _ in range(3)][-1] is None
    assert [(p.recipient, p.seq) for p in host.dispatched] == [("a", 1), ("b", 3)]


def test_jobs_whose_turn_is_far_are_parked_and_come_back_to_their_place() -> None:
    lane, host, clock = lane_of(interval_s=6.0, burst=1)  # turns: 0, 6, 12, 18 ... s
    for seq in range(1, 6):
        lane.add(pending(seq))
    assert [p.seq for p in lane.fifos["16315551181"]] == [1, 2]
    assert [p.seq for p in host.parked] == [3, 4, 5]
    # Each park batch oldest first: a wait queue gives them back in the order it took them.
    assert all([p.seq for p in batch] == sorted(p.seq for p in batch) for batch in host.parks)
    first = dispatch(lane, host, clock)
    assert first is not None
    sent(lane, clock, first)
    second = dispatch(lane, host, clock)
    assert second is None  # the pair rate: the next is 6 s away
    clock.now += 6.0
    second = dispatch(lane, host, clock)
    assert seq_of(second) == 2
    sent(lane, clock, second)
    clock.now += 6.0
    back = host.parked[0]  # 3, back from its wait queue
    lane.back(back)
    third = dispatch(lane, host, clock)
    assert seq_of(third) == 3


def test_a_recipient_sends_nothing_while_an_older_job_is_away() -> None:
    lane, host, clock = lane_of()
    first, second = pending(1), pending(2)
    lane.add(first)
    lane.add(second)
    assert dispatch(lane, host, clock) is first
    lane.away(first)  # given back to the broker unacked (an unexpected error)
    lane.done(first)
    assert dispatch(lane, host, clock) is None  # 2 waits for 1's redelivery
    lane.back(first)
    assert dispatch(lane, host, clock) is first


def test_a_job_overdue_from_its_wait_queue_stops_holding_the_line() -> None:
    lane, host, clock = lane_of()
    first, second = pending(1), pending(2)
    lane.add(first)
    lane.add(second)
    lane.fifos[first.recipient].popleft()
    lane.away(first, due=clock.now + 10)  # parked, due back in 10 s
    assert dispatch(lane, host, clock) is None
    clock.now += 10 + 900 + 1  # never came back (its wait queue purged)
    lane.tend()
    assert dispatch(lane, host, clock) is second


async def test_slots_are_given_in_line_order_also_after_a_130429() -> None:
    lane, _, clock = lane_of(rate_per_s=2)
    shares = [lane.slots.turn(paced=True) for _ in range(4)]
    turns = [asyncio.ensure_future(share.take()) for share in shares[:3]]
    await wait_until(lambda: lane.slots.waiting == 3)
    assert not any(turn.done() for turn in turns)  # a new lane starts with a second's silence
    clock.now += 1.0
    lane.slots.give()
    await wait_until(turns[0].done)
    assert [turn.done() for turn in turns] == [True, False, False]  # the even pace: 0.5 s
    clock.now += 0.5
    lane.slots.give()
    await wait_until(turns[1].done)
    assert not turns[2].done()  # 2 a second: both slots in flight
    lane.slow_down()  # a 130429 anyway: the window empties, then half the pace
    late = asyncio.ensure_future(shares[3].take())
    await wait_until(lambda: lane.slots.waiting == 2)
    shares[0].answered(clock.now)
    shares[1].answered(clock.now)
    clock.now += 0.5
    lane.slots.give()
    assert not turns[2].done()  # the window emptying
    clock.now += 1.0
    lane.slots.give()
    await wait_until(turns[2].done)
    assert turns[2].result() is True
    assert not late.done()  # one a second now, the older one first
    shares[2].answered(clock.now)
    clock.now += 1.1
    lane.slots.give()
    await wait_until(late.done)
    assert await late is True


async def test_a_paused_number_sends_nothing_parks_what_waits_long_then_probes() -> None:
    lane, host, clock = lane_of()
    clock.now += 1.0  # past the new lane's silence
    in_line = asyncio.ensure_future(lane.slots.turn(paced=True).take())
    await wait_until(lambda: in_line.done())  # a slot at once
    waiting = asyncio.ensure_future(lane.slots.turn(paced=True).take())
    for seq, to in ((1, "a"), (2, "a"), (3, "b")):
        lane.add(pending(seq, to))
    lane.pause(30.0, "190: token expired")
    assert host.pauses == [True]
    await wait_until(waiting.done)
    assert waiting.result() is False  # the send in line does not leave
    assert sorted(p.seq for p in host.parked) == [1, 2, 3]  # 30 s > PARK_AFTER_S: all parked
    assert lane.step(clock.now) == 30.0
    clock.now += 30.0
    for job in host.parked:  # back from the wait queues after the pause
        lane.back(job)
    probe = dispatch(lane, host, clock)
    assert host.pauses == [True, False]
    assert seq_of(probe) == 1
    assert dispatch(lane, host, clock) is None  # one probe alone, though "b" is free
    sent(lane, clock, probe)
    assert dispatch(lane, host, clock) is not None  # accepted: the number goes on
    assert lane.pause_strikes == 0
    in_line.cancel()


def test_refusals_of_the_sends_in_flight_are_one_pause_not_more() -> None:
    lane, host, clock = lane_of()
    for _ in range(8):  # an expired token answers every send on its way
        lane.pause(30.0 * 2**lane.pause_strikes, "190: token expired")
    assert lane.pause_strikes == 1
    assert lane.step(clock.now) == 30.0
    assert host.pauses == [True]
    clock.now += 30.0
    lane.pause(30.0 * 2**lane.pause_strikes, "190: token expired")  # its probe, refused again
    assert lane.pause_strikes == 2
    assert lane.step(clock.now) == 60.0


def test_a_short_pause_holds_jobs_rather_than_park_them() -> None:
    lane, host, clock = lane_of()
    lane.add(pending(1))
    lane.pause(PARK_AFTER_S / 2, "rate limit 4")
    assert host.parked == []
    assert lane.step(clock.now) == PARK_AFTER_S / 2


# --- the ordering rules, each kept by one verb ----------------------------------------------


def test_a_send_to_be_tried_again_goes_before_its_recipients_younger_jobs() -> None:
    lane, host, clock = lane_of()
    first = pending(1)
    lane.add(first)
    assert dispatch(lane, host, clock) is first
    lane.add(pending(2))  # a younger job arrives while the first is in flight
    lane.done(first, Again())  # refused, requeued: first in line, then its recipient free
    assert dispatch(lane, host, clock) is first


def test_a_send_to_be_tried_again_later_holds_its_recipient_alone() -> None:
    lane, host, clock = lane_of()
    first = pending(1, "a")
    lane.add(first)
    assert dispatch(lane, host, clock) is first
    lane.add(pending(2, "b"))
    lane.done(first, Again(delay_s=5.0))  # a back-off
    assert seq_of(dispatch(lane, host, clock)) == 2  # the others go on
    assert dispatch(lane, host, clock) is None
    clock.now += 5.0
    assert dispatch(lane, host, clock) is first


def test_a_job_away_that_comes_back_done_unblocks_its_line() -> None:
    lane, host, clock = lane_of()
    first, second = pending(1), pending(2)
    lane.add(first)
    lane.add(second)
    assert dispatch(lane, host, clock) is first
    lane.away(first)
    lane.done(first)
    assert host.parked == [second]  # behind one away: it waits outside the prefetch
    lane.back(second)  # back from its wait queue, the older one still away: parked again
    assert host.parked == [second, second]
    lane.returned(first.recipient, first.key)  # redelivered, its record says done
    lane.back(second)
    assert dispatch(lane, host, clock) is second


def test_paced_sends_dispatched_are_counted_ahead_until_they_leave() -> None:
    lane, _, clock = lane_of(rate_per_s=20)  # ahead: ceil(20 x 0.05) = 1
    lane.add(pending(1, "a"))
    lane.add(pending(2, "b"))
    go = lane.step(clock.now)
    assert isinstance(go, Go)
    assert lane.slots.ahead == 1
    assert lane.step(clock.now) is None  # no room ahead until it leaves
    go.turn.end()
    assert lane.slots.ahead == 0
    assert isinstance(lane.step(clock.now), Go)


async def test_a_turn_frees_its_place_ahead_and_its_slot_once_however_it_ends() -> None:
    lane, _, clock = lane_of(rate_per_s=2)
    clock.now += 1.0  # past the new lane's silence
    throughput = lane.slots.throughput
    answered = lane.slots.turn(paced=True)
    assert await answered.take() is True
    assert (lane.slots.ahead, throughput.in_flight) == (0, 1)
    answered.answered(clock.now)
    answered.end()  # after its answer: nothing more to free
    assert (lane.slots.ahead, throughput.in_flight) == (0, 0)
    clock.now += 0.5  # the even pace: 2 a second
    unanswered = lane.slots.turn(paced=True)
    assert await unanswered.take() is True
    unanswered.end()  # an error, no answer: the slot held from now
    unanswered.end()
    assert (lane.slots.ahead, throughput.in_flight) == (0, 0)
    assert len(throughput.answered) == 2
    waiting = lane.slots.turn(paced=True)  # both slots held for a second: it waits
    task = asyncio.ensure_future(waiting.take())
    await wait_until(lambda: lane.slots.waiting == 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    waiting.end()
    assert (lane.slots.ahead, throughput.in_flight) == (0, 0)


def test_sends_paced_less_than_a_millisecond_apart_all_leave_on_uvloop() -> None:
    """The worker's loop: uvloop hands back a plain Handle for a timer due within its
    millisecond (at 2,000/s the even pace is 0.5 ms), which the slots' timer must take."""

    async def main() -> list[bool]:
        host = Host()
        lane = Lane(host, NUMBER, Throughput(2000), PairRate(6.0, 20), time.monotonic)
        shares = [lane.slots.turn(paced=True) for _ in range(200)]

        async def send(share: Turn) -> bool:
            left = await share.take()
            share.answered(time.monotonic())
            share.end()
            return left

        async with asyncio.timeout(10):
            return await asyncio.gather(*(send(share) for share in shares))

    assert uvloop.run(main()) == [True] * 200


def test_a_send_waiting_less_than_a_millisecond_for_its_slot_does_not_spin_on_uvloop() -> None:
    """uvloop fires a timer due within its millisecond at once: a line woken early and looking
    again would do so hundreds of times before its moment (its loop spinning)."""

    class Counted(Slots):
        looks = 0

        def give(self) -> None:
            self.looks += 1
            super().give()

    async def main() -> tuple[bool, int]:
        pace = Throughput(2000, smoothing_s=0.0)
        slots = Counted(pace, time.monotonic, lambda _: True, lambda: None)
        slots.throughput.take(time.monotonic())  # the next may leave 0.5 ms on
        share = slots.turn(paced=True)
        async with asyncio.timeout(10):
            left = await share.take()
        share.end()
        return left, slots.looks

    left, looks = uvloop.run(main())
    assert left
    assert looks <= 4  # in line, woken (once more if a little early), and the end


def test_a_turn_of_an_unpaced_send_holds_nothing() -> None:
    lane, _, _ = lane_of()
    share: Turn = lane.slots.turn(paced=False)
    assert lane.slots.ahead == 0
    share.end()
    assert (lane.slots.ahead, lane.slots.throughput.in_flight) == (0, 0)


# --- the order of a recipient's line, whatever happens -------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "step", "answer", "refused", "give back", "return", "wait"]),
        st.integers(min_value=0, max_value=2),  # recipient, or which one
    ),
    max_size=60,
)


class Model:
    """The lane and what its host and the broker do with its jobs, one operation at a time."""

    def __init__(self) -> None:
        self.lane, self.host, self.clock = lane_of(interval_s=1.0, burst=3)
        self.seq = 0
        self.added: list[Pending] = []
        self.flying: list[Pending] = []
        self.away: list[Pending] = []  # given back, to be redelivered
        self.accepted: dict[str, list[int]] = {}

    def do(self, op: str, which: int) -> None:
        if op == "add":
            self.seq += 1
            job = pending(self.seq, to=f"r{which}")
            self.added.append(job)
            self.lane.add(job)
        elif op == "step":
            if (ready := dispatch(self.lane, self.host, self.clock)) is not None:
                self.flying.append(ready)
        elif op == "wait":
            self.clock.now += 0.5 * (which + 1)
        elif op == "return":
            self.come_back(which)
        elif self.flying:
            self.end(op, self.flying.pop(which % len(self.flying)))

    def end(self, op: str, job: Pending) -> None:
        if op == "answer":
            self.accepted.setdefault(job.recipient, []).append(job.seq)
            sent(self.lane, self.clock, job)
        elif op == "refused":  # to be tried again: first in its line
            self.lane.done(job, Again())
        else:  # given back to the broker unacked
            self.lane.away(job)
            self.lane.done(job)
            self.away.append(job)

    def come_back(self, which: int = 0) -> None:
        """Every job away comes back (from the broker or its wait queue), in any order."""
        returning = self.away + [p for p in self.host.parked if p not in self.away]
        self.host.parks.clear()
        self.away.clear()
        for job in returning[which:] + returning[:which]:
            self.lane.back(job)

    def drain(self) -> None:
        for _ in range(10 * len(self.added) + 10):
            self.come_back()
            while (job := dispatch(self.lane, self.host, self.clock)) is not None:
                self.flying.append(job)
            while self.flying:
                self.end("answer", self.flying.pop(0))
            self.clock.now += 1.0


@given(operations)
@example([("add", 0), ("add", 0), ("step", 0), ("refused", 0)])
@example([("add", 0), ("add", 0), ("step", 0), ("give back", 0), ("add", 0), ("return", 0)])
@settings(max_examples=300, deadline=None)
def test_each_recipients_jobs_are_sent_once_and_in_order(steps: list[tuple[str, int]]) -> None:
    """Jobs added, sent, refused, given back to the broker, parked and returned in any order:
    each recipient's jobs are accepted in the order they were taken in, each exactly once."""
    model = Model()
    for op, which in steps:
        model.do(op, which)
    model.drain()
    for recipient, seqs in model.accepted.items():
        assert seqs == sorted(seqs), recipient
    done = sorted(seq for seqs in model.accepted.values() for seq in seqs)
    assert done == [job.seq for job in model.added]
