"""What a Kafka listener promises when things go wrong: `iwb run` killed with -9 mid-stream,
two `iwb run` processes sharing a group (one killed), and the broker going away and coming
back. Every message is counted.

About the broker restart: tansu keeps its data in memory only, so a restarted broker has
no topics, records or committed offsets left. What is meaningful to test — and tested — is
the listener's side: it notices the loss (`disconnected-retrying`), reconnects on its own
once the broker is back (`listening`), and records produced after that flow again.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka_support import (
    CONNECTIONS,
    FAST,
    IwbRun,
    TansuBroker,
    committed,
    create_topic,
    eventually,
    lines,
    produce,
    unique,
    wait_for,
)

from workbench.runtime import Runtime
from workbench.runtime.bus import ArtifactChanged, EventHandled, Message

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

SINK = """
    import asyncio
    import os
    from pathlib import Path

    import iwb_kafka as kafka

    sink = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                          offset_reset="earliest", commit_interval_ms=200,
                          session_timeout_ms=3000, heartbeat_interval_ms=500,
                          probe_interval_ms=1000)
    OUT = Path({out!r}).open("a", buffering=1)  # one write() per line: kill -9 keeps whole lines

    @sink.on_record
    async def handle(body: bytes) -> None:
        await asyncio.sleep({delay})
        OUT.write(f"{{body.decode()}} {{os.getpid()}}\\n")
"""


def sink_project(make_project: ProjectFactory, bootstrap: str, topic: str, group: str,
                 out: Path, delay: float) -> Path:
    return make_project({
        "artifacts/sink.py": SINK.format(topic=topic, group=group, out=str(out), delay=delay),
        "connections.toml": CONNECTIONS.format(bootstrap=bootstrap),
    })


def handled(out: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in lines(out)]  # type: ignore[misc]


def test_kill_9_mid_stream_then_restart_handles_every_message_at_least_once(
    make_project: ProjectFactory, kafka_bootstrap: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    total = 10_000
    topic = asyncio.run(create_topic(kafka_bootstrap, partitions=3))
    out = tmp_path / "handled.txt"
    group = unique("g")
    root = sink_project(make_project, kafka_bootstrap, topic, group, out, 0.0005)
    asyncio.run(produce(kafka_bootstrap, topic, [str(i).encode() for i in range(total)],
                        partition=lambda i: i % 3))

    def some_committed() -> bool:
        # the kill must come after a commit, or there is nothing to keep the restart from
        # starting over (a commit during the group's first rebalance may not go through)
        return len(lines(out)) >= 3000 and any(
            asyncio.run(committed(kafka_bootstrap, group, topic, 3)).values()
        )

    first = IwbRun(root, tmp_path / "run1.log")
    try:
        first.wait_ready()
        wait_for(some_committed, 60, "3000 messages handled, some committed")
        first.kill()  # kill -9, mid-stream
    finally:
        first.stop()
    before = len(lines(out))
    assert before < total, "the stream was over before the kill; nothing was tested"

    second = IwbRun(root, tmp_path / "run2.log")
    try:
        second.wait_ready(60)
        wait_for(lambda: len({v for v, _ in handled(out)}) >= total, 90,
                 f"all {total} messages handled")
    finally:
        assert second.stop() == 0, second.output()
    rows = handled(out)
    values = collections.Counter(v for v, _ in rows)
    assert set(values) == {str(i) for i in range(total)}
    duplicates = len(rows) - total
    record_property("handled_before_kill", before)
    record_property("duplicates", duplicates)
    print(f"kill -9 after {before} of {total}: {duplicates} handled twice after the restart")
    # only what was handled but not yet committed is handled again: a commit interval's worth
    assert duplicates < before, f"{duplicates} duplicates: the commits did not work"
    assert max(values.values()) <= 2


def test_two_processes_split_a_group_and_one_takes_over_when_the_other_dies(
    make_project: ProjectFactory, kafka_bootstrap: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    total = 3000
    topic = asyncio.run(create_topic(kafka_bootstrap, partitions=4))
    out = tmp_path / "handled.txt"
    root = sink_project(make_project, kafka_bootstrap, topic, unique("g"), out, 0.002)
    a = IwbRun(root, tmp_path / "a.log")
    b = IwbRun(root, tmp_path / "b.log")
    try:
        a.wait_ready()
        b.wait_ready()
        # both members are in the group once each is listening after the join
        wait_for(lambda: a.readyz() == 200 and b.readyz() == 200, 30, "both listening")
        asyncio.run(produce(kafka_bootstrap, topic, [str(i).encode() for i in range(total)],
                            partition=lambda i: i % 4))
        def by_pid() -> collections.Counter[str]:
            return collections.Counter(pid for _, pid in handled(out))

        wait_for(lambda: by_pid()[str(a.proc.pid)] >= 100 and by_pid()[str(b.proc.pid)] >= 100,
                 60, "both processes handling records")
        a.kill()
        a_count = by_pid()[str(a.proc.pid)]
        wait_for(lambda: len({v for v, _ in handled(out)}) >= total, 90,
                 f"all {total} messages handled")
    finally:
        a.stop()
        assert b.stop() == 0, b.output()
    rows = handled(out)
    assert {v for v, _ in rows} == {str(i) for i in range(total)}
    counts = collections.Counter(pid for _, pid in rows)
    b_count = counts[str(b.proc.pid)]
    assert 0 < a_count < total and b_count > 0
    # b took over a's partitions: it handled more than its own half
    assert b_count > total // 2
    record_property("split", {"a_before_kill": a_count, "b": b_count,
                              "duplicates": len(rows) - total})
    print(f"a handled {a_count} before kill -9, b {b_count}; {len(rows) - total} duplicates")


async def test_broker_restart_listener_reconnects_and_new_messages_flow(
    make_project: ProjectFactory, broker_factory: Callable[[], TansuBroker],
) -> None:
    broker = broker_factory()
    broker.start()
    topic = await create_topic(broker.bootstrap, name=unique(), partitions=2)
    root = make_project({
        "artifacts/orders.py": f"""
            import iwb_kafka as kafka

            orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="g",
                                    offset_reset="earliest", {FAST})

            @orders.on_record
            async def handle(body: bytes) -> str:
                return body.decode()
        """,
        "connections.toml": CONNECTIONS.format(bootstrap=broker.bootstrap),
    })
    rt = Runtime(root)
    results: list[Any] = []
    statuses: list[str] = []

    def on(message: Message) -> None:
        if isinstance(message, EventHandled):
            results.append(message.outcome.result)
        elif isinstance(message, ArtifactChanged) and message.name == "orders":
            statuses.append(message.status)

    rt.bus.subscribe(on)
    await rt.start()
    try:
        await rt.wait_ready(20)
        await produce(broker.bootstrap, topic, [b"before-1", b"before-2"])
        await eventually(lambda: len(results) == 2, 10, "records before the restart")

        broker.kill()
        await eventually(lambda: rt.artifacts["orders"].status == "disconnected-retrying",
                         15, "the listener notices")
        assert "lost the Kafka cluster" in (rt.artifacts["orders"].error or "")
        broker.start()  # same port, empty: the topic is created again
        try:
            await create_topic(broker.bootstrap, name=topic, partitions=2)
        except Exception as exc:  # the reconnecting listener may have auto-created it
            assert "TopicAlreadyExists" in type(exc).__name__, exc
        await eventually(lambda: rt.artifacts["orders"].status == "listening", 60,
                         "listening again")
        await produce(broker.bootstrap, topic, [b"after-1", b"after-2", b"after-3"])
        await eventually(lambda: len(results) >= 5, 20, "records after the restart")
    finally:
        await rt.stop(2)
    assert sorted(results[:2]) == ["before-1", "before-2"]
    assert sorted(results[2:]) == ["after-1", "after-2", "after-3"]
    i = statuses.index("disconnected-retrying")
    assert "listening" in statuses[i:]
    assert json.dumps(statuses)  # the whole sequence, for the failure message above
