"""The Kafka plugin without a broker: configuration, records ↔ events, binding through the
real runtime (direct dispatch), samples, dead-letter headers, the connection's checks,
sandboxed publish and import hygiene."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from procs import free_port

import iwb_kafka as kafka
from iwb_kafka.deadletter import dead_letter_records
from iwb_kafka.events import EventFactory, batch_values, outgoing_records
from workbench.errors import TriggerConfigError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import BindingError, current_outcome, sandbox
from workbench.runtime import Runtime
from workbench.samples import payload_annotation

ProjectFactory = Callable[[dict[str, str]], Path]


@dataclass
class Rec:
    """A consumer record as aiokafka gives it."""

    topic: str = "orders"
    partition: int = 1
    offset: int = 41
    key: bytes | None = b"order-7"
    value: bytes | None = b'{"id": 7, "qty": 2}'
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_718_000_000_000
    timestamp_type: int = 0


FACTORY = EventFactory("orders", "127.0.0.1:9092", "billing", None)


# ------------------------------------------------------------------ configuration


def test_listener_config_is_checked_when_declared() -> None:
    ok = kafka.Listener(connection="main", topics=["orders"], group_id="billing")
    assert ok.config.offset_reset == "latest" and ok.config.group_id == "billing"
    assert ok.address() == "kafka://main/orders"
    assert kafka.Listener(connection="main", pattern=r"orders\..*").address() == (
        r"kafka://main//orders\..*/"
    )
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "either topics"),
        ({"topics": ["a"], "pattern": "a"}, "either topics"),
        ({"topics": ["a"], "dead_letter_topic": "a"}, "consumed by this listener"),
        ({"pattern": "orders.*", "dead_letter_topic": "orders.dlq"}, "consumed by this"),
        ({"pattern": "("}, "not a regular expression"),
        ({"topics": ["a"], "session_timeout_ms": 2000, "heartbeat_interval_ms": 2000},
         "heartbeat_interval_ms"),
        ({"topics": ["a"], "consumer_options": {"group_id": "x"}}, "may not set group_id"),
        ({"topics": ["a"], "offset_reset": "middle"}, "offset_reset"),
        ({"topics": ["a"], "topcs": ["b"]}, "topcs"),
    ]
    for options, needle in bad:
        with pytest.raises(TriggerConfigError) as info:
            kafka.Listener(connection="main", **options)
        assert needle in str(info.value), (options, str(info.value))


def test_one_handler_per_listener_and_the_batch_flag_is_enforced() -> None:
    listener = kafka.Listener(connection="main", topics=["a"])

    @listener.on_record
    async def one(data: bytes) -> None: ...

    assert listener.mode == "record" and list(listener.handlers) == ["record"]
    with pytest.raises(TriggerConfigError, match="one handler"):
        @listener.on_batch
        async def two(data: bytes) -> None: ...

    strict = kafka.Listener(connection="main", topics=["a"], batch=True)
    with pytest.raises(TriggerConfigError, match="must use @on_batch"):
        @strict.on_record
        async def three(data: bytes) -> None: ...

    @strict.on_batch
    async def four(data: bytes) -> None: ...

    assert strict.mode == "batch"
    # the handler kind is listener configuration: switching restarts the consumer
    assert listener.fingerprint() != strict.fingerprint()


def test_connection_config_is_checked() -> None:
    from iwb_kafka.connection import KafkaConnectionConfig

    cfg = KafkaConnectionConfig(bootstrap_servers="b1:9092, b2:9093")
    assert cfg.servers == ["b1:9092", "b2:9093"]
    assert KafkaConnectionConfig(bootstrap_servers=["b1:9092"]).servers == ["b1:9092"]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"bootstrap_servers": "nohost"}, "not host:port"),
        ({"bootstrap_servers": ""}, "names no broker"),
        ({"bootstrap_servers": "b:1", "security_protocol": "SASL_SSL"}, "needs sasl_mechanism"),
        ({"bootstrap_servers": "b:1", "sasl_mechanism": "PLAIN"}, "use SASL_PLAINTEXT"),
        ({"bootstrap_servers": "b:1", "security_protocol": "TLS"}, "security_protocol"),
        ({"bootstrap_servers": "a:1,b:2", "dev_broker": True}, "exactly one loopback"),
    ]
    for options, needle in bad:
        with pytest.raises(ValueError) as info:
            KafkaConnectionConfig(**options)
        assert needle in str(info.value), (options, str(info.value))


def test_connection_options_and_masked_description() -> None:
    from iwb_kafka.connection import KafkaConnectionConfig

    cfg = KafkaConnectionConfig(
        bootstrap_servers="b1:9092", security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512", sasl_username="billing", sasl_password="s3cret",
        request_timeout=7,
    )
    conn = kafka.KafkaConnection("main", cfg)
    options = conn.client_options()
    assert options == {
        "bootstrap_servers": ["b1:9092"], "client_id": "iwb", "request_timeout_ms": 7000,
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "billing", "sasl_plain_password": "s3cret",
    }
    shown = conn.describe()
    assert shown["sasl_password"] == "****" and shown["sasl_username"] == "billing"


def test_tls_files_are_looked_up_in_the_project(tmp_path: Path) -> None:
    from iwb_kafka.connection import KafkaConnectionConfig
    from workbench.config import set_project_root
    from workbench.errors import ConnectionConfigError

    conn = kafka.KafkaConnection("main", KafkaConnectionConfig(
        bootstrap_servers="b:9093", security_protocol="SSL", ssl_cafile="certs/ca.pem"))
    set_project_root(tmp_path)
    try:
        with pytest.raises(ConnectionConfigError) as info:
            conn.client_options()
    finally:
        set_project_root(None)
    assert "ssl_cafile 'certs/ca.pem' does not exist" in str(info.value)
    assert str(tmp_path / "certs" / "ca.pem") in str(info.value)


async def test_health_reports_an_unreachable_cluster() -> None:
    from iwb_kafka.connection import KafkaConnectionConfig

    closed = free_port()
    conn = kafka.KafkaConnection("main", KafkaConnectionConfig(
        bootstrap_servers=f"127.0.0.1:{closed}", health_timeout=3))
    health = await conn.health()
    assert not health.ok
    assert f"127.0.0.1:{closed}" in health.detail and "not reachable" in health.detail


# ------------------------------------------------------------------ records → events


def test_a_record_becomes_an_event() -> None:
    event = FACTORY.record(Rec(headers=(("trace", b"\xff\x01"), ("x", b"y"))))
    assert event.kind == "kafka" and event.type == "iwb.kafka.record"
    assert event.source == "kafka://127.0.0.1:9092/orders" and event.subject == "order-7"
    assert event.data == b'{"id": 7, "qty": 2}' and event.datacontenttype == "application/json"
    assert event.handler == "record" and event.extensions == {}
    assert event.time.timestamp() == 1_718_000_000.0 and len(event.id) == 32
    assert event.transport == {
        "topic": "orders", "partition": 1, "offset": 41, "key": "order-7",
        "headers": [["trace", {"base64": "/wE="}], ["x", "y"]],
        "timestamp": 1_718_000_000_000, "timestamp_type": 0, "group_id": "billing",
    }
    kafka.KafkaTransport.model_validate(event.transport)


def test_content_type_binary_keys_tombstones_and_the_inject_mark() -> None:
    text = FACTORY.record(Rec(value=b"plain words"))
    assert text.datacontenttype is None and text.data == b"plain words"
    utf16 = FACTORY.record(Rec(value='{"a": 1}'.encode("utf-16")))
    assert utf16.datacontenttype is None  # JSON only when it is UTF-8
    header = FACTORY.record(Rec(value=b"a,b", headers=(("Content-Type", b"text/csv"),)))
    assert header.datacontenttype == "text/csv"
    fixed = EventFactory("o", "b:1", "g", "application/x-protobuf").record(Rec(value=b"\x08\x01"))
    assert fixed.datacontenttype == "application/x-protobuf"
    binary_key = FACTORY.record(Rec(key=b"\xff\xfe"))
    assert binary_key.subject is None and binary_key.transport["key"] == {"base64": "//4="}
    tomb = FACTORY.record(Rec(key=None, value=None))
    assert tomb.data == b"" and tomb.transport["tombstone"] is True and tomb.subject is None
    marked = FACTORY.record(Rec(headers=(("iwb-inject", b"abc123"), ("h", b"v"))))
    assert marked.extensions == {"iwbinject": "abc123"}
    assert marked.transport["headers"] == [["h", "v"]]


def test_a_batch_event_holds_every_value_in_order_and_reproduces_them() -> None:
    records = [
        Rec(offset=10, value=b'{"id": 1, "qty": 1}', key=b"k1"),
        Rec(offset=11, value=b"plain text", key=None, headers=(("h", b"v"),)),
        Rec(offset=12, value=b"\x00\xff", key=b"\xff"),
        Rec(offset=13, value=None),
        Rec(offset=14, value=b' "a json string" '),
    ]
    event = FACTORY.batch(records)
    assert event.type == "iwb.kafka.batch" and event.handler == "batch"
    assert event.subject == "orders/1@10-14" and event.datacontenttype == "application/json"
    assert json.loads(event.data) == [
        {"id": 1, "qty": 1}, "plain text", base64.b64encode(b"\x00\xff").decode(), None,
        "a json string",
    ]
    assert event.data.startswith(b'[{"id": 1, "qty": 1},')  # JSON values spliced as they are
    entries = event.transport["records"]
    assert [e["value_encoding"] for e in entries] == ["json", "text", "base64", "null", "json"]
    assert [e["offset"] for e in entries] == [10, 11, 12, 13, 14]
    assert entries[2]["key"] == {"base64": "/w=="} and entries[1]["headers"] == [["h", "v"]]
    assert (event.transport["offset"], event.transport["last_offset"]) == (10, 14)
    kafka.KafkaTransport.model_validate(event.transport)

    out = outgoing_records(event, None, mark="m1")
    assert [r.value for r in out] == [
        b'{"id": 1, "qty": 1}', b"plain text", b"\x00\xff", None, b'"a json string"',
    ]
    assert [r.key for r in out] == [b"k1", None, b"\xff", b"order-7", b"order-7"]
    assert all(r.topic == "orders" and r.partition == 1 for r in out)
    assert out[1].headers == [("h", b"v"), ("iwb-inject", b"m1")]

    batch = kafka.Batch.from_event(event)
    assert len(batch) == 5 and (batch.first_offset, batch.last_offset) == (10, 14)
    assert [r.value for r in batch.records][:3] == [
        b'{"id": 1, "qty": 1}', b"plain text", b"\x00\xff"]
    assert batch.records[3].value is None and batch.records[0].json() == {"id": 1, "qty": 1}


def test_record_events_reproduce_their_record() -> None:
    event = FACTORY.record(Rec(headers=(("trace", b"\xff\x01"), ("iwb-inject", b"old"))))
    [out] = outgoing_records(event, None, mark="new")
    assert (out.topic, out.partition, out.key, out.value) == (
        "orders", 1, b"order-7", b'{"id": 7, "qty": 2}')
    assert out.headers == [("trace", b"\xff\x01"), ("iwb-inject", b"new")]
    # a hand-made event: the default topic, text content type carried as a header
    made = Event(artifact="o", kind="kafka", type="x", source="s", data=b"hello",
                 datacontenttype="text/plain")
    [out] = outgoing_records(made, "orders")
    assert out.topic == "orders" and out.partition is None and out.key is None
    assert out.headers == [("content-type", b"text/plain")]
    tomb = FACTORY.record(Rec(value=None))
    assert outgoing_records(tomb, None)[0].value is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "names no topic"),
        ({"topic": "t", "partition": -1}, "partition number"),
        ({"topic": "t", "key": {"base64": "***"}}, "not valid base64"),
        ({"topic": "t", "headers": [["h"]]}, "pairs"),
        ({"topic": "t", "key": 5}, "key must be text"),
    ]
    for transport, needle in cases:
        with pytest.raises(ValueError, match=needle):
            outgoing_records(Event(artifact="o", kind="kafka", type="x", source="s",
                                   transport=transport), None)
    bad_batch = Event(artifact="o", kind="kafka", type="iwb.kafka.batch", source="s",
                      data=b"[1, 2]", transport={"topic": "t", "records": [{}]})
    with pytest.raises(ValueError, match="must match one to one"):
        batch_values(bad_batch)


def test_record_views_refuse_what_they_cannot_read() -> None:
    record = kafka.Record.from_event(FACTORY.record(Rec(headers=(("a", b"1"), ("a", b"2")))))
    assert record.header("a") == b"1" and record.header_text("missing", "d") == "d"
    assert record.key_text == "order-7" and record.json() == {"id": 7, "qty": 2}
    batch_event = FACTORY.batch([Rec()])
    with pytest.raises(BindingError, match="batch event"):
        kafka.Record.from_event(batch_event)
    broken = Event(artifact="o", kind="kafka", type="iwb.kafka.record", source="s",
                   transport={"topic": "t", "offset": "seven"})
    with pytest.raises(BindingError, match="offset must be an integer"):
        kafka.Record.from_event(broken)
    single = kafka.Batch.from_event(FACTORY.record(Rec()))
    assert len(single) == 1 and single.records[0].offset == 41


def test_dead_letters_carry_the_error_in_headers() -> None:
    records = [Rec(headers=(("trace", b"t1"), ("iwb-error-type", b"Old"),
                            ("iwb-inject", b"m")))]
    event = FACTORY.record(records[0])
    outcome = Outcome(event.id, status="error", disposition="reject", attempts=3,
                      error=ErrorInfo("ValueError", "x" * 5000))
    [letter] = dead_letter_records("orders.dlq", event, outcome, records)
    headers = dict(letter.headers or [])
    assert letter.topic == "orders.dlq" and letter.key == b"order-7"
    assert letter.value == records[0].value and letter.partition is None
    assert headers["trace"] == b"t1" and "iwb-inject" not in headers
    assert headers["iwb-error-type"] == b"ValueError"
    assert len((headers["iwb-error-message"] or b"").decode()) == 4000
    assert (headers["iwb-original-topic"], headers["iwb-original-partition"],
            headers["iwb-original-offset"]) == (b"orders", b"1", b"41")
    assert headers["iwb-event-id"] == event.id.encode() and headers["iwb-attempts"] == b"3"
    assert [k for k, _ in letter.headers or []].count("iwb-error-type") == 1
    [empty] = dead_letter_records("d", event, outcome, [Rec(key=None, value=None)])
    assert empty.value == b"" and ("iwb-original-tombstone", b"true") in (empty.headers or [])


# ------------------------------------------------------------------ binding, samples


TYPES = """
    from pydantic import BaseModel, Field

    class Order(BaseModel):
        id: int
        qty: int = Field(ge=1, examples=[3])
"""

HANDLERS = """
    import iwb_kafka as kafka
    from workbench.events import Event
    from project.types.orders import Order

    single = kafka.Listener(connection="main", topics=["orders"], group_id="billing")
    many = kafka.Listener(connection="main", topics=["orders", "returns"], batch=True)
    raw = kafka.Listener(connection="main", pattern="raw\\\\..*")

    @single.on_record
    async def bill(order: Order, record: kafka.Record, event: Event) -> dict:
        return {"id": order.id, "key": record.key_text, "offset": record.offset,
                "trace": record.header_text("trace"), "type": event.type}

    @many.on_batch
    async def bill_many(orders: list[Order], records: list[kafka.Record],
                        batch: kafka.Batch) -> dict:
        return {"ids": [o.id for o in orders], "offsets": [r.offset for r in records],
                "partition": batch.partition, "n": len(batch)}

    @raw.on_record
    async def keep(body: bytes) -> int:
        return len(body)
"""


@pytest.fixture
async def offline(make_project: ProjectFactory) -> Any:
    root = make_project({
        "types/orders.py": TYPES,
        "artifacts/billing.py": HANDLERS,
        "connections.toml": f"""
            [main]
            kind = "kafka"
            bootstrap_servers = "127.0.0.1:{free_port()}"
        """,
    })
    rt = Runtime(root, capture=False)
    await rt.start(listen=False)
    try:
        yield rt
    finally:
        await rt.stop(1)


async def test_handlers_bind_payload_record_batch_and_records(offline: Runtime) -> None:
    event = FACTORY.record(Rec(headers=(("trace", b"t-1"),)))
    outcome = await offline.inject("single", event)
    assert outcome.status == "ok", outcome.error
    assert outcome.result == {"id": 7, "key": "order-7", "offset": 41, "trace": "t-1",
                              "type": "iwb.kafka.record"}

    batch = FACTORY.batch([Rec(offset=5, value=b'{"id": 1, "qty": 1}'),
                           Rec(offset=6, value=b'{"id": 2, "qty": 4}')])
    outcome = await offline.inject("many", batch)
    assert outcome.status == "ok", outcome.error
    assert outcome.result == {"ids": [1, 2], "offsets": [5, 6], "partition": 1, "n": 2}

    malformed = await offline.inject("single", FACTORY.record(Rec(value=b'{"id": ')))
    assert (malformed.status, malformed.disposition) == ("error", "reject")
    assert malformed.error is not None and malformed.error.type == "MalformedPayload"
    invalid = await offline.inject("single", FACTORY.record(Rec(value=b'{"id": 1, "qty": 0}')))
    assert invalid.error is not None and invalid.error.type == "ValidationError"
    assert invalid.error.details[0]["loc"] == ["body", "qty"]
    bad_batch = await offline.inject("many", FACTORY.batch([Rec(value=b"nope")]))
    assert bad_batch.error is not None and bad_batch.error.type == "ValidationError"


async def test_samples_bind_to_their_handlers(offline: Runtime) -> None:
    single = offline.samples("single")
    assert [s.name for s in single] == ["orders"]
    event = single[0].event
    assert event.type == "iwb.kafka.record" and json.loads(event.data) == {"id": 1, "qty": 3}
    assert event.transport["topic"] == "orders" and event.transport["group_id"] == "billing"
    kafka.KafkaTransport.model_validate(event.transport)
    outcome = await offline.inject("single", event)
    assert outcome.status == "ok", outcome.error

    many = offline.samples("many")
    assert [s.name for s in many] == ["orders", "returns"]
    assert many[1].event.type == "iwb.kafka.batch"
    assert json.loads(many[1].event.data) == [{"id": 1, "qty": 3}]
    outcome = await offline.inject("many", many[1].event)
    assert outcome.status == "ok" and outcome.result["ids"] == [1], outcome.error

    [raw] = offline.samples("raw")
    assert raw.event.transport["topic"] == "" and "raw" in raw.description
    assert raw.event.datacontenttype == "application/octet-stream"  # it takes bytes
    assert (await offline.inject("raw", raw.event)).result == len(b"example")

    schema = offline.trigger_schema("single")
    assert {"topic", "partition", "offset", "key", "headers", "records"} <= set(
        schema["properties"])
    spec = offline.artifacts["many"].artifact.handlers["batch"]
    order_type: Any = spec.func.__globals__["Order"]
    assert payload_annotation(spec, kafka.KafkaTrigger) == list[order_type]  # not the records


async def test_the_listener_needs_a_kafka_connection(make_project: ProjectFactory) -> None:
    root = make_project({
        "artifacts/x.py": """
            import iwb_kafka as kafka
            x = kafka.Listener(connection="web", topics=["t"])

            @x.on_record
            async def h(body: bytes) -> None: ...
        """,
        "connections.toml": """
            [web]
            kind = "http"
            base_url = "http://127.0.0.1:1"
        """,
    })
    rt = Runtime(root, capture=False)
    await rt.start(listen=False)
    try:
        state = rt.artifacts["x"]
        trigger = kafka.KafkaTrigger(state.artifact, rt._context(state))
        with pytest.raises(TriggerConfigError, match='needs kind = "kafka"'):
            trigger.connection()
    finally:
        await rt.stop(1)


# ------------------------------------------------------------------ publish, hygiene


async def test_publish_in_sandbox_is_recorded_and_not_sent() -> None:
    from iwb_kafka.connection import KafkaConnectionConfig

    conn = kafka.KafkaConnection("main", KafkaConnectionConfig(
        bootstrap_servers=f"127.0.0.1:{free_port()}"))  # nothing listens: sending would fail
    await conn.start()
    outcome = Outcome("e1")
    token = current_outcome.set(outcome)
    try:
        with sandbox(True):
            published = await conn.client.publish(
                "invoices", {"total": 9}, key="inv-1", headers={"h": b"\xff"})
    finally:
        current_outcome.reset(token)
        await conn.close()
    assert published == kafka.Published("invoices", None, None, sandboxed=True)
    assert outcome.sent == [{
        "kind": "kafka.publish", "topic": "invoices", "partition": None, "key": "inv-1",
        "headers": [["h", {"base64": "/w=="}]], "value": '{"total":9}', "offset": None,
        "sandboxed": True,
    }]


def test_importing_the_plugin_loads_no_kafka_client() -> None:
    code = ("import sys, iwb_kafka\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('aiokafka', 'httpx', 'quart', 'textual')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
