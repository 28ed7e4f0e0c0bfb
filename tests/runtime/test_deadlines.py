"""Handler deadlines: a call past its timeout is cancelled and reported, others are not."""

from __future__ import annotations

import asyncio
import time

import pytest

from workbench.runtime.deadlines import Deadlines, granularity


async def timed(deadlines: Deadlines, seconds: float, work: float) -> str:
    call = deadlines.start(seconds)
    try:
        await asyncio.sleep(work)
    except asyncio.CancelledError:
        if call.timed_out():
            return "timeout"
        raise
    else:
        call.settle()
        return "done"
    finally:
        call.end()


def test_granularity_is_a_twentieth_within_bounds() -> None:
    assert granularity(0.05) == 0.01
    assert granularity(2.0) == pytest.approx(0.1)
    assert granularity(300.0) == 1.0


async def test_a_call_past_its_deadline_is_cancelled_within_the_granularity() -> None:
    deadlines = Deadlines()
    started = time.monotonic()
    assert await timed(deadlines, 0.2, 5.0) == "timeout"
    took = time.monotonic() - started
    assert 0.2 <= took < 0.2 + granularity(0.2) + 0.1
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our cancellation was taken back


async def test_calls_within_their_deadline_finish_and_leave_no_timer() -> None:
    deadlines = Deadlines()
    results = await asyncio.gather(*(timed(deadlines, 0.3, 0.01 * i) for i in range(20)))
    assert results == ["done"] * 20
    await asyncio.sleep(granularity(0.3) * 2)
    assert deadlines.running == 0 and deadlines._check is None


async def test_mixed_timeouts_expire_each_on_its_own() -> None:
    deadlines = Deadlines()
    short, long_ = await asyncio.gather(
        timed(deadlines, 0.1, 1.0), timed(deadlines, 1.0, 0.3)
    )
    assert (short, long_) == ("timeout", "done")


async def test_an_outside_cancellation_is_not_a_timeout() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(timed(deadlines, 5.0, 5.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_handler_that_swallows_the_cancellation_keeps_its_result() -> None:
    deadlines = Deadlines()

    async def stubborn() -> str:
        call = deadlines.start(0.05)
        try:
            try:
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                pass  # a handler that catches everything
            call.settle()
            return "kept"
        finally:
            call.end()

    assert await stubborn() == "kept"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
