"""`iwb run` processes on a real broker: killed with -9 mid-stream and started again,
and two processes competing for one queue, one of them killed. Every message is handled at
least once; the duplicates are counted and bounded by the prefetch window."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from procs import wait_until
from rabbit_support import (
    Broker,
    IwbRun,
    declare,
    depth,
    lines_of,
    listener_project,
    publish,
    unique,
)

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

SINK = """
    import asyncio
    import os

    import iwb_rabbitmq as rabbitmq
    from workbench.config import project_path

    OUT = os.open(project_path("handled.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    sink = rabbitmq.Listener(connection="main", queue="{queue}", prefetch={prefetch})


    @sink.on_message
    async def handle(body: bytes) -> None:
        await asyncio.sleep({delay})
        os.write(OUT, body + b"\\n")  # one write: a kill never leaves half a line
"""


def fill(url: str, queue: str, count: int) -> None:
    """Declare the queue (as the listener will) and put `count` messages in it."""

    async def go() -> None:
        await declare(url, queue)
        await publish(url, [str(i).encode() for i in range(count)], routing_key=queue)

    asyncio.run(go())


def test_kill_9_mid_stream_then_restart_handles_every_message(
    broker: Broker, make_project: ProjectFactory,
) -> None:
    queue, total, prefetch = unique("crash"), 10_000, 32
    root = listener_project(make_project, broker.url, {
        "sink": SINK.format(queue=queue, prefetch=prefetch, delay=0),
    })
    log = root / "handled.log"
    fill(broker.url, queue, total)
    first = IwbRun(root)
    wait_until(first.ready, 30, "iwb run (first)")
    wait_until(lambda: len(lines_of(log)) >= 2000, 60, "2,000 messages handled")
    first.kill()
    before = lines_of(log)
    assert len(set(before)) < total, "killed mid-stream"
    left = asyncio.run(depth(broker.url, queue))
    assert left > 0 and left + len(set(before)) >= total

    second = IwbRun(root)
    wait_until(second.ready, 30, "iwb run (second)")
    wait_until(lambda: len(set(lines_of(log))) >= total, 90, "every message handled")
    assert second.stop() == 0
    counts = Counter(lines_of(log))
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nkill -9: {len(set(before))} handled before the kill, "
          f"{sum(counts.values())} handlings of {total} messages, {duplicates} duplicate(s)")
    assert set(counts) == {str(i) for i in range(total)}, "every message handled"
    assert duplicates <= prefetch, "only what was in flight at the kill is handled twice"
    assert asyncio.run(depth(broker.url, queue)) == 0


def test_competing_processes_split_the_work_and_one_takes_over(
    broker: Broker, make_project: ProjectFactory,
) -> None:
    queue, total, prefetch = unique("shared"), 3000, 4
    files = {"sink": SINK.format(queue=queue, prefetch=prefetch, delay=0.01)}
    roots = [listener_project(make_project, broker.url, files) for _ in range(2)]
    logs = [root / "handled.log" for root in roots]
    fill(broker.url, queue, total)
    runs = [IwbRun(root) for root in roots]
    for run in runs:
        wait_until(run.ready, 30, "iwb run")
    wait_until(
        lambda: all(len(lines_of(log)) >= 100 for log in logs), 60,
        "both processes took work",
    )
    runs[0].kill()
    killed_had = len(lines_of(logs[0]))
    survivor_had = len(lines_of(logs[1]))
    assert killed_had + survivor_had < total, "killed mid-stream"

    def union() -> set[str]:
        return set(lines_of(logs[0])) | set(lines_of(logs[1]))

    wait_until(lambda: len(union()) >= total, 90, "the survivor handled the rest")
    assert runs[1].stop() == 0
    first, second = Counter(lines_of(logs[0])), Counter(lines_of(logs[1]))
    both = first + second
    duplicates = sum(n - 1 for n in both.values())
    print(f"\ncompeting consumers: {sum(first.values())} by the killed process, "
          f"{survivor_had} by the survivor before the kill and {sum(second.values())} "
          f"in all, {duplicates} duplicate(s)")
    assert set(both) == {str(i) for i in range(total)}, "nothing lost"
    assert sum(second.values()) > survivor_had, "the survivor took over"
    assert duplicates <= prefetch, "only the killed process's in-flight window twice"
    assert asyncio.run(depth(broker.url, queue)) == 0
