"""One timer for many deadlines: late waits time out, others are left alone, and nothing is
left ticking while no deadline is pending."""

from __future__ import annotations

import asyncio

import pytest

from wapipe.ingress.deadlines import Deadlines


async def guarded(deadlines: Deadlines, waited: asyncio.Future[None]) -> str:
    number = deadlines.arm()
    try:
        await waited
    except asyncio.CancelledError:
        if deadlines.expired(number):
            return "timed out"
        raise
    finally:
        deadlines.disarm(number)
    return "done"


async def test_a_wait_past_its_deadline_times_out_and_is_not_left_cancelling() -> None:
    deadlines = Deadlines(limit_s=0.05)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(deadlines, never))
    assert await asyncio.wait_for(task, timeout=2) == "timed out"
    assert task.cancelling() == 0


async def test_a_wait_that_ends_in_time_is_not_cancelled() -> None:
    deadlines = Deadlines(limit_s=0.2)
    soon: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, soon.set_result, None)
    assert await guarded(deadlines, soon) == "done"
    deadlines.close()


async def test_a_deadline_armed_after_an_earlier_one_ended_still_expires() -> None:
    # The timer set for the first wait finds nothing due, and must be set again for the second.
    deadlines = Deadlines(limit_s=0.1)
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    loop.call_later(0.01, first.set_result, None)
    assert await guarded(deadlines, first) == "done"
    await asyncio.sleep(0.05)
    never: asyncio.Future[None] = loop.create_future()
    assert await asyncio.wait_for(guarded(deadlines, never), timeout=2) == "timed out"


async def test_no_timer_is_left_once_no_deadline_is_pending() -> None:
    deadlines = Deadlines(limit_s=0.05)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    assert await guarded(deadlines, done) == "done"
    assert deadlines._timer is not None  # set for that deadline, left to fire
    await asyncio.sleep(0.1)
    assert deadlines._timer is None  # fired, found nothing pending, not set again


async def test_a_cancel_from_elsewhere_at_the_deadline_is_not_swallowed() -> None:
    deadlines = Deadlines(limit_s=10)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(deadlines, never))
    await asyncio.sleep(0)  # let it arm
    deadlines.expire(now=asyncio.get_running_loop().time() + 11)  # the deadline cancels it...
    task.cancel()  # ...and so does someone else, before it runs again
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()


async def test_a_cancel_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    deadlines = Deadlines(limit_s=10)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(deadlines, never))
    await asyncio.sleep(0)  # let it arm
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadlines.close()
