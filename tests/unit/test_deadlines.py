"""One periodic check for many deadlines: late waits time out, others are left alone."""

from __future__ import annotations

import asyncio
import contextlib

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
    watcher = asyncio.create_task(deadlines.watch())
    try:
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(guarded(deadlines, never))
        assert await asyncio.wait_for(task, timeout=2) == "timed out"
        assert task.cancelling() == 0
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_a_wait_that_ends_in_time_is_not_cancelled() -> None:
    deadlines = Deadlines(limit_s=0.2)
    watcher = asyncio.create_task(deadlines.watch())
    try:
        soon: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, soon.set_result, None)
        assert await guarded(deadlines, soon) == "done"
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_a_cancel_from_elsewhere_at_the_deadline_is_not_swallowed() -> None:
    deadlines = Deadlines(limit_s=10)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(deadlines, never))
    await asyncio.sleep(0)  # let it arm
    deadlines.expire(now=asyncio.get_running_loop().time() + 11)  # the deadline cancels it...
    task.cancel()  # ...and so does someone else, before it runs again
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    deadlines = Deadlines(limit_s=10)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(guarded(deadlines, never))
    await asyncio.sleep(0)  # let it arm
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
