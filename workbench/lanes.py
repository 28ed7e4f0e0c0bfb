"""Ordered lanes: dispatch events concurrently across keys, in order within a key.

Broker consumers need the same loop: a Kafka partition, an MQTT topic or a RabbitMQ queue
must see its messages handled in order, while different partitions run at once, with a
bound on how much is in flight (backpressure to the consumer) and a settle step (commit,
ack, dead-letter) that runs only after the outcome is known, in order per key.

    lanes = Lanes(dispatch, settle=settle, max_inflight=256)
    async for record in consumer:
        await lanes.submit((record.topic, record.partition), event, record)
    ...
    await lanes.drain()      # everything submitted is handled and settled
    await lanes.close()

`settle(event, outcome, token)` receives the outcome of each event in submission order for
its key; `token` is whatever the consumer passed to `submit` (a record, a message).

Public: plugins may import this module (it imports only the contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from workbench.events import Event, Outcome
from workbench.plugin import Dispatch

log = logging.getLogger("iwb.lanes")

Settle = Callable[[Event, Outcome, Any], Awaitable[None]]


class Lanes:
    """Per-key FIFO lanes over one `Dispatch`.

    Args:
        dispatch: the runtime's dispatch for the artifact.
        settle: called after each outcome, in order within its key.
        max_inflight: events submitted but not yet settled, across all keys; `submit`
            waits while the bound is reached.
        idle_lane_seconds: a lane with nothing to do for this long is closed.
    """

    def __init__(
        self,
        dispatch: Dispatch,
        *,
        settle: Settle,
        max_inflight: int = 256,
        idle_lane_seconds: float = 30.0,
    ) -> None:
        self._dispatch = dispatch
        self._settle = settle
        self._slots = asyncio.Semaphore(max_inflight)
        self._lanes: dict[Hashable, asyncio.Queue[tuple[Event, Any] | None]] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._idle_after = idle_lane_seconds
        self.failed: BaseException | None = None
        """The first exception a settle step raised (the lanes stop taking work)."""

    @property
    def pending(self) -> int:
        """Events submitted and not yet settled."""
        return self._pending

    async def submit(self, key: Hashable, event: Event, token: Any = None) -> None:
        """Queue `event` on the lane of `key`; waits while `max_inflight` are pending."""
        if self.failed is not None:
            raise RuntimeError("a settle step failed; the lanes take no more work") from (
                self.failed
            )
        await self._slots.acquire()
        self._pending += 1
        self._idle.clear()
        queue = self._lanes.get(key)
        if queue is None:
            queue = self._lanes[key] = asyncio.Queue()
            self._tasks[key] = asyncio.create_task(self._run(key, queue), name=f"lane-{key}")
        queue.put_nowait((event, token))

    async def _run(self, key: Hashable, queue: asyncio.Queue[tuple[Event, Any] | None]) -> None:
        while True:
            if queue.empty():
                try:
                    async with asyncio.timeout(self._idle_after):
                        item = await queue.get()
                except TimeoutError:
                    if queue.empty():  # nothing can be queued between this check and del
                        del self._lanes[key]
                        del self._tasks[key]
                        return
                    continue
            else:
                item = queue.get_nowait()
            if item is None:
                return
            event, token = item
            try:
                outcome = await self._dispatch(event)
                await self._settle(event, outcome, token)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("settling an event of lane %r failed", key)
                if self.failed is None:
                    self.failed = exc
            finally:
                self._pending -= 1
                self._slots.release()
                if self._pending == 0:
                    self._idle.set()

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted event is settled; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop every lane (events not yet handled are dropped: they were never settled,
        so the broker redelivers them)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lanes.clear()
        self._tasks.clear()
