"""Handler timeouts for many short calls, at a fraction of `asyncio.timeout`'s cost.

`asyncio.timeout` schedules and cancels a timer handle on the event loop for every call,
which costs more than a no-op handler itself. Handler timeouts are long next to the calls
(30 s by default) and need not be precise to the millisecond, so the runtime keeps one list
of running calls per timeout value instead — in start order, hence in deadline order — and
one coarse check that walks only the expired head of each list. A call costs an entry
appended and a flag set; the check runs every `granularity(seconds)` while calls are
running and cancels the task of a call past its deadline, as `asyncio.timeout` would.

    deadlines = Deadlines()
    call = deadlines.start(30.0)
    try:
        result = await handler()
    except asyncio.CancelledError:
        if call.timed_out():      # our cancellation: the handler ran out of time
            ...                   # report a timeout
        else:
            raise
    finally:
        call.end()

A call times out between `seconds` and `seconds + granularity(seconds)` after it started.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Call", "Deadlines", "granularity"]


def granularity(seconds: float) -> float:
    """How late a timeout of `seconds` may fire: a twentieth of it, 10 ms to 1 s."""
    return min(1.0, max(0.01, seconds / 20))


class Call:
    """One running call with a deadline (see `Deadlines.start`)."""

    __slots__ = ("_cancelling", "deadline", "done", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[object] | None) -> None:
        self.deadline = deadline
        self.task = task
        self._cancelling = task.cancelling() if task is not None else 0
        self.done = False
        self.expired = False

    def end(self) -> None:
        """The call returned or raised; its deadline no longer applies."""
        self.done = True

    def timed_out(self) -> bool:
        """After a `CancelledError`: True when the deadline caused it (the cancellation is
        then taken back, as `asyncio.timeout` does), False when someone else cancelled."""
        self.done = True
        if not self.expired or self.task is None:
            return False
        return self.task.uncancel() <= self._cancelling

    def settle(self) -> None:
        """After the call returned normally: take back a cancellation the deadline sent
        that the handler swallowed."""
        self.done = True
        if self.expired and self.task is not None:
            self.task.uncancel()


class Deadlines:
    """The running calls of one event loop, by timeout value (see the module docstring)."""

    __slots__ = ("_check", "_lists", "_loop")

    def __init__(self) -> None:
        self._lists: dict[float, deque[Call]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._check: asyncio.TimerHandle | None = None

    def start(self, seconds: float) -> Call:
        """Start timing a call of the current task that may run `seconds`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
            self._check = None
        call = Call(loop.time() + seconds, asyncio.current_task())
        calls = self._lists.get(seconds)
        if calls is None:
            calls = self._lists[seconds] = deque()
        else:
            while calls and calls[0].done:  # keeps the list short between two checks
                calls.popleft()
        calls.append(call)
        if self._check is None:
            self._check = loop.call_later(granularity(seconds), self._run_check)
        return call

    def _run_check(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        step = 1.0
        for seconds, calls in list(self._lists.items()):
            while calls:
                head = calls[0]
                if head.done:
                    calls.popleft()
                elif head.deadline <= now:
                    calls.popleft()
                    head.expired = True
                    if head.task is not None:
                        head.task.cancel()
                else:
                    break
            if calls:
                step = min(step, granularity(seconds))
            else:
                del self._lists[seconds]
        self._check = loop.call_later(step, self._run_check) if self._lists else None

    @property
    def running(self) -> int:
        """Calls started and not yet seen to end (ended ones leave at the next check)."""
        return sum(len(calls) for calls in self._lists.values())
