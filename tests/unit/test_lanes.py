"""Ordered lanes: concurrency across keys, order within a key, backpressure, settle."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from workbench.events import Event, Outcome
from workbench.lanes import Lanes


class SlowDispatch:
    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0

    async def __call__(self, event: Event) -> Outcome:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await asyncio.sleep(random.random() / 500)
        self.running -= 1
        return Outcome(event.id, result=event.subject)

    def reject(self, event: Event, error_type: str, message: str,
               details: Any = None) -> Outcome:
        return Outcome(event.id, status="rejected")


def ev(key: str, n: int) -> Event:
    return Event(artifact="a", kind="t", type="t", source="s", subject=f"{key}:{n}")


async def test_order_within_a_key_and_concurrency_across_keys() -> None:
    dispatch = SlowDispatch()
    settled: dict[str, list[int]] = {}

    async def settle(event: Event, outcome: Outcome, token: Any) -> None:
        key, n = str(outcome.result).split(":")
        settled.setdefault(key, []).append(int(n))
        assert token == (key, int(n))

    lanes = Lanes(dispatch, settle=settle, max_inflight=64)
    for n in range(50):
        for key in "abcd":
            await lanes.submit(key, ev(key, n), (key, n))
    assert await lanes.drain(10)
    assert settled == {k: list(range(50)) for k in "abcd"}
    assert dispatch.max_running == 4  # one at a time per key, keys at once
    assert lanes.pending == 0
    await lanes.close()


async def test_backpressure_bounds_inflight() -> None:
    dispatch = SlowDispatch()
    seen_pending: list[int] = []

    async def settle(event: Event, outcome: Outcome, token: Any) -> None:
        seen_pending.append(lanes.pending)

    lanes = Lanes(dispatch, settle=settle, max_inflight=5)
    for n in range(100):
        await lanes.submit(n % 20, ev(str(n % 20), n))
        assert lanes.pending <= 5
    assert await lanes.drain(10)
    assert max(seen_pending) <= 5
    await lanes.close()


async def test_idle_lanes_close_and_reopen() -> None:
    dispatch = SlowDispatch()
    done: list[str] = []

    async def settle(event: Event, outcome: Outcome, token: Any) -> None:
        done.append(str(outcome.result))

    lanes = Lanes(dispatch, settle=settle, idle_lane_seconds=0.01)
    await lanes.submit("k", ev("k", 1))
    assert await lanes.drain(5)
    await asyncio.sleep(0.05)
    assert lanes._lanes == {}  # the idle lane closed
    await lanes.submit("k", ev("k", 2))
    assert await lanes.drain(5)
    assert done == ["k:1", "k:2"]
    await lanes.close()


async def test_a_failing_settle_stops_taking_work() -> None:
    dispatch = SlowDispatch()

    async def settle(event: Event, outcome: Outcome, token: Any) -> None:
        raise ConnectionError("commit failed")

    lanes = Lanes(dispatch, settle=settle)
    await lanes.submit("k", ev("k", 1))
    assert await lanes.drain(5)
    assert isinstance(lanes.failed, ConnectionError)
    try:
        await lanes.submit("k", ev("k", 2))
    except RuntimeError as exc:
        assert "settle step failed" in str(exc)
    else:
        raise AssertionError("submit after a failed settle must raise")
    await lanes.close()
