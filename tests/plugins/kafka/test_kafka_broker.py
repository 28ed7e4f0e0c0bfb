"""Kafka listeners end to end on a real broker (tansu): the Runtime in-process, a project on
disk, real topics, consumer groups, commits, dead letters, inject, re-read, publish."""

from __future__ import annotations

import asyncio
import json
import logging
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kafka_support import (
    CONNECTIONS,
    FAST,
    committed,
    create_topic,
    eventually,
    produce,
    read_topic,
    unique,
)
from procs import free_port, port_open

from workbench.errors import WorkbenchError
from workbench.events import Event, Outcome
from workbench.runtime import Runtime
from workbench.runtime.bus import ArtifactChanged, EventHandled, Message

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

TYPES = """
    from pydantic import BaseModel, Field

    class Order(BaseModel):
        id: int
        qty: int = Field(default=1, ge=1)
"""


class Watch:
    """Outcomes and status changes of a runtime, as they happen."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.handled: list[tuple[Event, Outcome]] = []
        self.statuses: list[tuple[str, str]] = []
        rt.bus.subscribe(self._on)

    def _on(self, message: Message) -> None:
        if isinstance(message, EventHandled):
            self.handled.append((message.event, message.outcome))
        elif isinstance(message, ArtifactChanged):
            self.statuses.append((message.name, message.status))

    def of(self, artifact: str) -> list[tuple[Event, Outcome]]:
        return [(e, o) for e, o in self.handled if e.artifact == artifact]

    async def wait(self, artifact: str, count: int, timeout: float = 20) -> list[
            tuple[Event, Outcome]]:
        await eventually(lambda: len(self.of(artifact)) >= count, timeout,
                         f"{count} outcomes of {artifact}")
        return self.of(artifact)

    def status_of(self, artifact: str) -> list[str]:
        return [s for name, s in self.statuses if name == artifact]


def order(i: int, **extra: Any) -> bytes:
    return json.dumps({"id": i, "qty": 1, **extra}).encode()


@pytest.fixture
def kafka_project(
    make_project: ProjectFactory, kafka_bootstrap: str
) -> Callable[[str], Path]:
    def make(artifacts: str) -> Path:
        return make_project({
            "types/orders.py": TYPES,
            "artifacts/kafka_app.py": artifacts,
            "connections.toml": CONNECTIONS.format(bootstrap=kafka_bootstrap),
        })

    return make


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Path], Any]]:
    runtimes: list[Runtime] = []

    async def start(root: Path) -> tuple[Runtime, Watch]:
        rt = Runtime(root)
        runtimes.append(rt)
        watch = Watch(rt)
        await rt.start()
        await rt.wait_ready(20)
        return rt, watch

    yield start
    for rt in runtimes:
        await rt.stop(2)


async def test_records_flow_in_order_per_partition_and_offsets_are_committed(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=3)
    group = unique("g")
    root = kafka_project(f"""
        import asyncio
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", {FAST})
        RUNNING: dict[int, int] = {{}}

        @orders.on_record
        async def handle(order: Order, record: kafka.Record) -> dict:
            RUNNING[record.partition] = RUNNING.get(record.partition, 0) + 1
            at_once = sum(RUNNING.values())
            same = RUNNING[record.partition]
            await asyncio.sleep(0.002)
            RUNNING[record.partition] -= 1
            return {{"id": order.id, "p": record.partition, "o": record.offset,
                     "at_once": at_once, "same": same}}
    """)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(300)],
                  keys=[f"k{i}".encode() for i in range(300)],
                  headers=[[("n", str(i).encode())] for i in range(300)],
                  partition=lambda i: i % 3)
    handled = await watch.wait("orders", 300)
    assert all(o.status == "ok" for _, o in handled)
    results = [o.result for _, o in handled]
    for p in range(3):
        offsets = [r["o"] for r in results if r["p"] == p]
        assert offsets == list(range(100)), f"partition {p} out of order: {offsets[:10]}"
    assert max(r["same"] for r in results) == 1  # one at a time within a partition
    assert max(r["at_once"] for r in results) > 1  # partitions at once
    event = next(e for e, o in handled if o.result["id"] == 7)
    assert event.subject == "k7" and event.transport["headers"] == [["n", "7"]]
    assert event.transport["partition"] == 1 and event.transport["offset"] == 2
    assert event.source == f"kafka://{kafka_bootstrap}/{topic}"
    assert rt.artifacts["orders"].status == "listening"
    await eventually(
        lambda: committed(kafka_bootstrap, group, topic, 3), 10, "commits",
    )
    offsets = await eventually(
        _committed_is(kafka_bootstrap, group, topic, {0: 100, 1: 100, 2: 100}), 10,
        "commits of every record",
    )
    assert offsets
    assert rt.capture is not None
    await rt.capture.flush()
    assert rt.capture.count(artifact="orders") == 300


def _committed_is(bootstrap: str, group: str, topic: str, want: dict[int, int]
                  ) -> Callable[[], Any]:
    async def check() -> bool:
        return await committed(bootstrap, group, topic, max(want) + 1) == want

    return check


async def test_failing_records_are_retried_dead_lettered_and_the_rest_flow(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=3)
    dlq = await create_topic(kafka_bootstrap, f"{topic}.dlq", partitions=1)
    group = unique("g")
    root = kafka_project(f"""
        import iwb_kafka as kafka
        from workbench.plugin import Policy
        from project.types.orders import Order

        orders = kafka.Listener(
            connection="main", topics=["{topic}"], group_id="{group}",
            offset_reset="earliest", dead_letter_topic="{dlq}",
            policy=Policy(retries=2, retry_backoff=0.01), {FAST})
        CALLS: dict[int, int] = {{}}

        @orders.on_record
        async def handle(order: Order) -> int:
            CALLS[order.id] = CALLS.get(order.id, 0) + 1
            if order.id % 10 == 3:
                raise ValueError(f"order {{order.id}} is cursed")
            return CALLS[order.id]
    """)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(100)],
                  keys=[str(i).encode() for i in range(100)], partition=lambda i: i % 3)
    handled = await watch.wait("orders", 100)
    failed = [(e, o) for e, o in handled if o.status != "ok"]
    assert len(failed) == 10 and len(handled) == 100
    assert all(o.attempts == 3 and o.disposition == "reject" for _, o in failed)
    assert all(o.error is not None and o.error.type == "ValueError" for _, o in failed)
    assert all(o.result == 1 for _, o in handled if o.status == "ok")
    assert all(o.sent == [{"kind": "kafka.dead_letter", "topic": dlq, "records": 1,
                           "source": f"{topic}/{e.transport['partition']}@"
                                     f"{e.transport['offset']}"}] for e, o in failed)

    letters = await read_topic(kafka_bootstrap, dlq, 10)
    assert len(letters) == 10
    by_event = {e.id: e for e, _ in failed}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        event = by_event[headers["iwb-event-id"]]
        assert letter.value == event.data and letter.key == event.subject.encode()
        assert headers["iwb-error-type"] == "ValueError"
        assert headers["iwb-error-message"] == f"order {json.loads(event.data)['id']} is cursed"
        assert headers["iwb-original-topic"] == topic
        assert int(headers["iwb-original-partition"]) == event.transport["partition"]
        assert int(headers["iwb-original-offset"]) == event.transport["offset"]
        assert headers["iwb-attempts"] == "3" and headers["iwb-artifact"] == "orders"
    assert rt.artifacts["orders"].status == "listening"
    assert "disconnected-retrying" not in watch.status_of("orders")
    await eventually(_committed_is(kafka_bootstrap, group, topic, {0: 34, 1: 33, 2: 33}),
                     10, "every record committed")
    # the listener keeps going after the failures
    await produce(kafka_bootstrap, topic, [order(1000)], partition=lambda i: 0)
    await watch.wait("orders", 101)
    assert watch.of("orders")[-1][1].status == "ok"


async def test_malformed_payloads_are_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    dlq = await create_topic(kafka_bootstrap, f"{topic}.dlq", partitions=1)
    group = unique("g")
    root = kafka_project(f"""
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", dead_letter_topic="{dlq}", {FAST})

        @orders.on_record
        async def handle(order: Order, record: kafka.Record) -> int:
            return record.offset
    """)
    rt, watch = await running(root)
    values = [order(0), b'{"id": ', order(2), order(3, qty=0), b"hello", b"\xff\xfe",
              order(6), None, order(8)]
    await produce(kafka_bootstrap, topic, values, keys=[b"k"] * len(values))
    handled = await watch.wait("orders", len(values))
    kinds = [o.error.type if o.error else o.status for _, o in handled]
    assert kinds == ["ok", "MalformedPayload", "ok", "ValidationError", "MalformedPayload",
                     "MalformedPayload", "ok", "ValidationError", "ok"]
    assert [o.result for _, o in handled if o.status == "ok"] == [0, 2, 6, 8]
    assert all(o.attempts == 1 for _, o in handled)  # a payload that cannot bind: no retry
    letters = await read_topic(kafka_bootstrap, dlq, 5)
    assert [dict(r.headers)["iwb-error-type"] for r in letters] == [
        b"MalformedPayload", b"ValidationError", b"MalformedPayload", b"MalformedPayload",
        b"ValidationError"]
    assert [r.value for r in letters] == [b'{"id": ', order(3, qty=0), b"hello", b"\xff\xfe",
                                          None]
    await eventually(_committed_is(kafka_bootstrap, group, topic, {0: 9}), 10, "commit")
    assert rt.artifacts["orders"].status == "listening"


async def test_without_a_dead_letter_topic_failures_are_logged_and_committed(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("g")
    root = kafka_project(f"""
        import iwb_kafka as kafka

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", {FAST})

        @orders.on_record
        async def handle(body: bytes) -> None:
            if body == b"bad":
                raise RuntimeError("no")
    """)
    caplog.set_level(logging.WARNING, logger="iwb.kafka")
    _, watch = await running(root)
    await produce(kafka_bootstrap, topic, [b"good", b"bad", b"good"])
    handled = await watch.wait("orders", 3)
    assert [o.status for _, o in handled] == ["ok", "error", "ok"]
    assert handled[1][1].sent == []
    await eventually(_committed_is(kafka_bootstrap, group, topic, {0: 3}), 10, "commit")
    assert any("no dead_letter_topic is set" in r.getMessage() and f"{topic}/0@1" in
               r.getMessage() for r in caplog.records)


async def test_inject_and_replay_go_through_the_broker(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=3)
    root = kafka_project(f"""
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                                {FAST})
        many = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                              {FAST})

        @orders.on_record
        async def handle(order: Order, record: kafka.Record) -> dict:
            return {{"id": order.id, "key": record.key_text, "p": record.partition,
                     "h": record.header_text("h")}}

        @many.on_batch
        async def handle_many(orders: list[Order]) -> list[int]:
            return [o.id for o in orders]
    """)
    rt, watch = await running(root)
    event = Event(artifact="orders", kind="kafka", type="iwb.kafka.record", source="test",
                  data=order(5), transport={"key": "k5", "partition": 2,
                                            "headers": [["h", "v"], ["bin", {"base64": "/w=="}]]})
    outcome = await rt.inject("orders", event, via="transport", timeout=15)
    assert outcome.status == "ok" and outcome.result == {"id": 5, "key": "k5", "p": 2, "h": "v"}
    received = next(e for e, o in watch.of("orders") if o.event_id == outcome.event_id)
    assert received.extensions["iwbinject"] == event.extensions["iwbinject"]
    assert received.transport["headers"] == [["h", "v"], ["bin", {"base64": "/w=="}]]
    assert (received.transport["topic"], received.transport["partition"]) == (topic, 2)

    # replay the captured event through the transport: same record, new offset
    assert rt.capture is not None
    await rt.capture.flush()
    [result] = await rt.replay([received.id], via="transport")
    assert result.new.status == "ok" and not result.changed, result.diff
    again = next(e for e, o in watch.of("orders") if o.event_id == result.new.event_id)
    assert again.transport["offset"] == received.transport["offset"] + 1
    assert again.transport["headers"] == received.transport["headers"]

    # a batch listener takes a batch event as records (and shares the topic)
    batch = Event(artifact="many", kind="kafka", type="iwb.kafka.batch", source="test",
                  data=b'[{"id": 1}, {"id": 2}]', transport={"partition": 0})
    outcome = await rt.inject("many", batch, via="transport", timeout=15)
    assert outcome.status == "ok" and outcome.result == [1, 2]

    with pytest.raises(Exception, match="does not consume topic"):
        await rt.inject("orders", Event(artifact="orders", kind="kafka", type="x", source="s",
                                        transport={"topic": "elsewhere"}), via="transport")


async def test_reread_replays_a_stretch_of_a_partition_and_diffs_it(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("g")
    handler = f"""
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", {FAST})

        @orders.on_record
        async def handle(order: Order, record: kafka.Record) -> list[int]:
            return [order.id, record.offset]
    """
    root = kafka_project(handler)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(10)], partition=lambda i: 1)
    await watch.wait("orders", 10)
    await eventually(_committed_is(kafka_bootstrap, group, topic, {1: 10}), 10, "commit")
    originals = {e.transport["offset"]: e.id for e, o in watch.of("orders")}

    results = await rt.replay_log("orders", "1@3", 4)
    assert [r.new.result for r in results] == [[3, 3], [4, 4], [5, 5], [6, 6]]
    assert [r.capture_id for r in results] == [originals[i] for i in range(3, 7)]
    assert all(r.same for r in results)
    reread = [e for e, o in watch.of("orders")[10:]]
    assert [e.extensions.get("iwbreread") for e in reread] == [f"{topic}/1@3"] * 4

    # the new code runs on the old records, and the diff shows what changed
    (root / "artifacts" / "kafka_app.py").write_text(textwrap.dedent(handler).replace(
        "return [order.id, record.offset]", "return [order.id, record.offset, 2]"))
    report = await rt.reload()
    assert not report.errors
    tail = await rt.replay_log("orders", f"{topic}/1@8", 100)
    assert [r.new.result for r in tail] == [[8, 8, 2], [9, 9, 2]]
    assert [r.changed for r in tail] == [["result"], ["result"]]
    assert "recorded" in tail[0].diff and "2" in tail[0].diff
    assert await committed(kafka_bootstrap, group, topic, 2) == {1: 10}  # untouched

    # partition 0 holds nothing: nothing to re-read; a bad position says how to write it
    assert await rt.replay_log("orders", "0@0", 5) == []
    with pytest.raises(WorkbenchError, match=r"partition@offset"):
        await rt.replay_log("orders", "1:3", 1)
    with pytest.raises(WorkbenchError, match="consumes"):
        await rt.replay_log("orders", "elsewhere/1@3", 1)


async def test_publish_is_recorded_and_a_sandboxed_replay_does_not_send(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    out = await create_topic(kafka_bootstrap, f"{topic}.out", partitions=1)
    root = kafka_project(f"""
        import iwb_kafka as kafka
        from workbench.config import connection
        from project.types.orders import Order

        main = connection("main")
        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                                offset_reset="earliest", {FAST})

        @orders.on_record
        async def handle(order: Order) -> int | None:
            sent = await main.publish("{out}", order, key=str(order.id),
                                      headers={{"source": "billing"}})
            return sent.offset
    """)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(4)])
    [(event, outcome)] = await watch.wait("orders", 1)
    assert outcome.status == "ok" and outcome.result == 0
    [sent] = outcome.sent
    assert sent["kind"] == "kafka.publish" and sent["topic"] == out and sent["offset"] == 0
    assert sent["key"] == "4" and sent["headers"] == [["source", "billing"]]
    assert json.loads(sent["value"]) == {"id": 4, "qty": 1} and sent["partition"] == 0
    [record] = await read_topic(kafka_bootstrap, out, 1)
    assert record.key == b"4" and record.headers == (("source", b"billing"),)

    assert rt.capture is not None
    await rt.capture.flush()
    [result] = await rt.replay([event.id], sandboxed=True)
    assert result.new.status == "ok" and result.new.result is None
    assert result.new.sent[0]["sandboxed"] is True and result.new.sent[0]["offset"] is None
    [result] = await rt.replay([event.id])  # not sandboxed: sent, the next offset
    assert result.new.result == 1
    assert len(await read_topic(kafka_bootstrap, out, 2)) == 2  # the sandboxed one never went


async def test_connection_health_against_the_broker(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path]
) -> None:
    from iwb_kafka.connection import KafkaConnection, KafkaConnectionConfig

    await create_topic(kafka_bootstrap, partitions=1)
    conn = KafkaConnection("main", KafkaConnectionConfig(bootstrap_servers=kafka_bootstrap))
    health = await conn.health()
    assert health.ok, health.detail
    assert "1 broker(s)" in health.detail and health.latency_ms > 0


async def test_a_rebalance_shows_rebalancing_commits_and_resumes(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    from aiokafka import AIOKafkaConsumer

    topic = await create_topic(kafka_bootstrap, partitions=4)
    group = unique("g")
    root = kafka_project(f"""
        import iwb_kafka as kafka

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", {FAST})

        @orders.on_record
        async def handle(body: bytes) -> None:
            return None
    """)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(40)], partition=lambda i: i % 4)
    await watch.wait("orders", 40)
    before = len(watch.status_of("orders"))
    other = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group,
                             enable_auto_commit=False, session_timeout_ms=2000,
                             heartbeat_interval_ms=400, auto_offset_reset="earliest")
    await other.start()  # joins: the listener gives up half of the partitions
    try:
        await eventually(lambda: watch.status_of("orders")[before:][-2:] == [
            "rebalancing", "listening"], 15, "rebalancing then listening")
        mine = rt.artifacts["orders"].trigger.loop.assigned
        assert len(mine) == 2 and not (mine & other.assignment())
        # what the listener handled before the revoke was committed during it
        assert await committed(kafka_bootstrap, group, topic, 4) == {p: 10 for p in range(4)}
        fetched = await other.getmany(timeout_ms=1000)
        assert sum(len(v) for v in fetched.values()) == 0  # nothing left to redo
    finally:
        await other.stop()
    # alone again: all partitions come back, new records flow
    # (the assignment is taken first, `listening` reported once its positions are known)
    await eventually(lambda: len(rt.artifacts["orders"].trigger.loop.assigned) == 4
                     and rt.artifacts["orders"].status == "listening",
                     15, "every partition back, listening")
    await produce(kafka_bootstrap, topic, [order(i) for i in range(8)], partition=lambda i: i % 4)
    await watch.wait("orders", 48)


async def test_batches_bind_models_and_records_and_fail_as_a_whole(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    dlq = await create_topic(kafka_bootstrap, f"{topic}.dlq", partitions=1)
    root = kafka_project(f"""
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                                offset_reset="earliest", dead_letter_topic="{dlq}",
                                max_batch=10, {FAST})

        @orders.on_batch
        async def handle(orders: list[Order], records: list[kafka.Record]) -> list[int]:
            if any(o.id == 13 for o in orders):
                raise ValueError("13 in the batch")
            assert [r.offset for r in records] == sorted(r.offset for r in records)
            return [r.offset for r in records]
    """)
    _, watch = await running(root)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(50)],
                  keys=[str(i).encode() for i in range(50)])

    def records_seen() -> int:
        return sum(len(e.transport["records"]) for e, _ in watch.of("orders"))

    await eventually(lambda: records_seen() >= 50, 20, "50 records in batches")
    handled = watch.of("orders")
    assert all(len(e.transport["records"]) <= 10 for e, _ in handled)
    assert all(e.type == "iwb.kafka.batch" for e, _ in handled)
    ok = [offset for _, o in handled if o.status == "ok" for offset in o.result]
    [(bad_event, bad)] = [(e, o) for e, o in handled if o.status != "ok"]
    assert bad.error is not None and bad.error.type == "ValueError"
    bad_offsets = [r["offset"] for r in bad_event.transport["records"]]
    assert 13 in bad_offsets and sorted(ok + bad_offsets) == list(range(50))
    letters = await read_topic(kafka_bootstrap, dlq, len(bad_offsets))
    assert [int(dict(r.headers)["iwb-original-offset"]) for r in letters] == bad_offsets
    assert [r.key for r in letters] == [str(o).encode() for o in bad_offsets]
    assert {dict(r.headers)["iwb-event-id"] for r in letters} == {bad_event.id.encode()}


async def test_stopping_drains_running_work_commits_it_and_loses_nothing(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path]
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    group = unique("g")
    root = kafka_project(f"""
        import asyncio
        import iwb_kafka as kafka
        from project.types.orders import Order

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                                offset_reset="earliest", commit_interval_ms=60000, {FAST.replace(
                                    "commit_interval_ms=100, ", "")})

        @orders.on_record
        async def handle(order: Order) -> int:
            await asyncio.sleep(0.4)
            return order.id
    """)
    rt = Runtime(root)
    watch = Watch(rt)
    await rt.start()
    await rt.wait_ready(20)
    await produce(kafka_bootstrap, topic, [order(i) for i in range(6)])
    await watch.wait("orders", 1)
    await asyncio.sleep(0.1)  # the second record is being handled now
    await rt.stop(5)
    done = [o.result for _, o in watch.of("orders")]
    assert done == [0, 1] and all(o.status == "ok" for _, o in watch.of("orders"))
    # the commit interval is a minute: only the drain committed this
    assert await committed(kafka_bootstrap, group, topic, 1) == {0: 2}

    rt2 = Runtime(root)
    watch2 = Watch(rt2)
    await rt2.start()
    try:
        await rt2.wait_ready(20)
        rest = await watch2.wait("orders", 4)
        assert [o.result for _, o in rest] == [2, 3, 4, 5]
    finally:
        await rt2.stop(5)


async def test_a_dev_broker_starts_with_the_connection_and_stops_with_it(
    make_project: ProjectFactory, broker_factory: Any
) -> None:
    port = free_port()
    root = make_project({
        "artifacts/dev.py": f"""
            import iwb_kafka as kafka

            echo = kafka.Listener(connection="local", topics=["dev-topic"],
                                  offset_reset="earliest", {FAST})

            @echo.on_record
            async def handle(body: bytes) -> str:
                return body.decode()
        """,
        "connections.toml": f"""
            [local]
            kind = "kafka"
            bootstrap_servers = "127.0.0.1:{port}"
            dev_broker = true
        """,
    })
    rt = Runtime(root)
    watch = Watch(rt)
    await rt.start()
    try:
        assert port_open("127.0.0.1", port)
        await rt.wait_ready(20)
        health = await rt.connections["local"].health()
        assert health.ok, health.detail
        outcome = await rt.inject("echo", Event(artifact="echo", kind="kafka", type="x",
                                                source="s", data=b"hi"), via="transport")
        assert outcome.result == "hi"
        assert (root / ".iwb" / "kafka-dev-local.log").exists()
        assert len(watch.of("echo")) == 1
    finally:
        await rt.stop(5)
    assert not port_open("127.0.0.1", port)


async def test_a_pattern_listener_consumes_every_matching_topic(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    prefix = unique("pat")
    first = await create_topic(kafka_bootstrap, f"{prefix}.eu", partitions=1)
    second = await create_topic(kafka_bootstrap, f"{prefix}.us", partitions=2)
    await create_topic(kafka_bootstrap, f"{prefix}-other", partitions=1)
    root = kafka_project(f"""
        import iwb_kafka as kafka

        regions = kafka.Listener(connection="main", pattern=r"{prefix}\\..*",
                                 offset_reset="earliest", {FAST})

        @regions.on_record
        async def handle(body: bytes, record: kafka.Record) -> str:
            return f"{{record.topic}}:{{body.decode()}}"
    """)
    rt, watch = await running(root)
    assert rt.artifacts["regions"].address.endswith(f"/{prefix}\\..*/ (group regions)")
    await produce(kafka_bootstrap, first, [b"a"])
    await produce(kafka_bootstrap, second, [b"b", b"c"])
    await produce(kafka_bootstrap, f"{prefix}-other", [b"ignored"])
    handled = await watch.wait("regions", 3)
    assert sorted(o.result for _, o in handled) == [f"{first}:a", f"{second}:b", f"{second}:c"]


async def test_a_handler_edit_is_swapped_in_without_restarting_the_consumer(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=1)
    source = f"""
        import iwb_kafka as kafka

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                                offset_reset="earliest", {FAST})

        @orders.on_record
        async def handle(body: bytes) -> str:
            return "v1:" + body.decode()
    """
    root = kafka_project(source)
    rt, watch = await running(root)
    await produce(kafka_bootstrap, topic, [b"x"])
    await watch.wait("orders", 1)
    loop_before = rt.artifacts["orders"].trigger.loop
    module = root / "artifacts" / "kafka_app.py"
    module.write_text(module.read_text("utf-8").replace('"v1:"', '"v2:"'), "utf-8")
    report = await rt.reload([module])
    assert report.swapped == ["orders"] and report.restarted == []
    await produce(kafka_bootstrap, topic, [b"y"])
    handled = await watch.wait("orders", 2)
    assert [o.result for _, o in handled] == ["v1:x", "v2:y"]
    assert rt.artifacts["orders"].trigger.loop is loop_before
    assert rt.artifacts["orders"].restarts == 0


async def test_a_partition_with_a_backlog_does_not_hold_up_the_others(
    kafka_bootstrap: str, kafka_project: Callable[[str], Path], running: Any
) -> None:
    topic = await create_topic(kafka_bootstrap, partitions=2)
    root = kafka_project(f"""
        import asyncio
        import iwb_kafka as kafka

        orders = kafka.Listener(connection="main", topics=["{topic}"], group_id="{unique()}",
                                offset_reset="earliest", max_inflight=20, {FAST})

        @orders.on_record
        async def handle(body: bytes, record: kafka.Record) -> str:
            await asyncio.sleep(0.005)
            return f"{{record.partition}}:{{body.decode()}}"
    """)
    _, watch = await running(root)
    await produce(kafka_bootstrap, topic, [str(i).encode() for i in range(300)],
                  partition=lambda i: 0)  # a backlog of 1.5 s on partition 0
    await watch.wait("orders", 10)
    await produce(kafka_bootstrap, topic, [b"late"], partition=lambda i: 1)
    await watch.wait("orders", 301, timeout=30)
    results = [o.result for _, o in watch.of("orders")]
    # the record of partition 1 did not wait behind partition 0's backlog
    assert results.index("1:late") < 100, results.index("1:late")
