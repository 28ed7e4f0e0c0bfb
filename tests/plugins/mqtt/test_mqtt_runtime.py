"""The MQTT trigger through the real Runtime and a real Mosquitto: subscriptions, events,
properties, retained messages, dead letters, inject, samples, publishing, health."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from mqtt_support import Endpoint, async_wait_for, client, collect, publish_many

from iwb_mqtt import MqttConnection, MqttConnectionConfig
from workbench.events import Event, Outcome
from workbench.runtime import Runtime
from workbench.runtime.bus import ArtifactChanged, EventHandled

pytestmark = pytest.mark.broker

READING = """
    from pydantic import BaseModel, Field

    class Reading(BaseModel):
        sensor: str = Field(examples=["s-1"])
        value: float
"""


def unique(prefix: str) -> str:
    """A topic root no other test uses (retained messages and sessions outlive a test)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Outcomes:
    """Every event the runtime handled for one artifact, and its status changes."""

    artifact: str
    seen: list[tuple[Event, Outcome]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def __call__(self, message: Any) -> None:
        if isinstance(message, EventHandled) and message.event.artifact == self.artifact:
            self.seen.append((message.event, message.outcome))
        elif isinstance(message, ArtifactChanged) and message.name == self.artifact:
            self.statuses.append(message.status)

    async def wait(self, count: int, timeout: float = 10.0) -> list[tuple[Event, Outcome]]:
        await async_wait_for(lambda: len(self.seen) >= count, timeout,
                             f"{count} outcomes of {self.artifact!r} (have {len(self.seen)})")
        return self.seen


Start = Callable[..., Any]


@pytest.fixture
async def start_project(make_project: Callable[[dict[str, str]], Path]
                        ) -> AsyncIterator[Start]:
    runtimes: list[Runtime] = []

    async def start(files: dict[str, str], artifact: str, *, wait: bool = True
                    ) -> tuple[Runtime, Outcomes]:
        root = make_project(files)
        runtime = Runtime(root)
        outcomes = Outcomes(artifact)
        runtime.bus.subscribe(outcomes)
        runtimes.append(runtime)
        await runtime.start()
        if wait:
            await runtime.wait_ready(15)
        return runtime, outcomes

    yield start
    for runtime in runtimes:
        await runtime.stop(2)


def listener_module(root: str, *, options: str = "", body: str = "") -> str:
    return f"""
        import iwb_mqtt as mqtt
        from workbench.config import connection
        from workbench.events import Event
        from project.types.reading import Reading

        main = connection("main")
        sensors = mqtt.Listener(connection="main", topics=["{root}/sensors/+/temp",
                                "{root}/alerts/#"], {options})

        @sensors.on_message
        async def record(reading: Reading, message: mqtt.Message, event: Event) -> dict:
            {body or "pass"}
            return {{"sensor": reading.sensor, "topic": message.topic, "qos": message.qos,
                     "retain": message.retain}}
    """


def project(endpoint: Endpoint, root: str, *, protocol: str = "3.1.1", options: str = "qos=1",
            body: str = "") -> dict[str, str]:
    return {
        "connections.toml": endpoint.connections_toml(protocol=protocol),
        "types/reading.py": READING,
        "artifacts/sensors.py": listener_module(root, options=options, body=body),
    }


def reading(sensor: str, value: float = 21.5) -> bytes:
    return json.dumps({"sensor": sensor, "value": value}).encode()


# --------------------------------------------------------------------------- subscriptions


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_wildcard_subscriptions_deliver_matching_topics_as_events(
    mqtt_broker: Endpoint, start_project: Start, protocol: str
) -> None:
    root = unique("wild")
    runtime, outcomes = await start_project(project(mqtt_broker, root, protocol=protocol),
                                            "sensors")
    state = runtime.artifacts["sensors"]
    assert state.status == "listening"
    assert f"{root}/sensors/+/temp" in state.address
    sent = [
        (f"{root}/sensors/s1/temp", reading("s1")),
        (f"{root}/sensors/s1/humidity", reading("no")),     # + is one level, not temp
        (f"{root}/sensors/a/b/temp", reading("no")),        # + is exactly one level
        (f"{root}/alerts", reading("a0")),                  # # matches the parent level
        (f"{root}/alerts/fire/floor/2", reading("a1")),
        (f"{root}/other", reading("no")),
        (f"{root}/sensors/s2/temp", reading("s2")),
    ]
    await publish_many(mqtt_broker, sent, qos=1)
    seen = await outcomes.wait(4)
    await asyncio.sleep(0.2)  # anything that should not arrive would by now
    assert sorted(e.subject or "" for e, _ in seen) == sorted([
        f"{root}/sensors/s1/temp", f"{root}/alerts", f"{root}/alerts/fire/floor/2",
        f"{root}/sensors/s2/temp",
    ])
    event, outcome = next((e, o) for e, o in seen if e.subject == f"{root}/sensors/s1/temp")
    assert outcome.status == "ok", outcome.error
    assert outcome.result == {"sensor": "s1", "topic": event.subject, "qos": 1,
                              "retain": False}
    assert event.kind == "mqtt" and event.type == "iwb.mqtt.message"
    assert event.source == f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}"
    assert event.datacontenttype == "application/json"  # sniffed: no content type sent
    assert event.transport["topic"] == event.subject
    assert event.transport["qos"] == 1 and event.transport["retain"] is False
    assert event.transport["dup"] is False and event.transport["mid"] > 0
    assert "properties" not in event.transport
    assert event.handler == "message"


async def test_messages_of_one_topic_are_handled_in_order_topics_in_parallel(
    mqtt_broker: Endpoint, start_project: Start
) -> None:
    root = unique("order")
    body = ("import asyncio; await asyncio.sleep(0.05 if message.topic.endswith('/slow/temp')"
            " else 0)")
    _, outcomes = await start_project(project(mqtt_broker, root, body=body), "sensors")
    sent = []
    for i in range(10):
        sent.append((f"{root}/sensors/slow/temp", reading(f"slow-{i}")))
        sent.append((f"{root}/sensors/fast/temp", reading(f"fast-{i}")))
    await publish_many(mqtt_broker, sent, qos=1)
    seen = await outcomes.wait(20)
    order = [o.result["sensor"] for _, o in seen]
    assert [s for s in order if s.startswith("slow")] == [f"slow-{i}" for i in range(10)]
    assert [s for s in order if s.startswith("fast")] == [f"fast-{i}" for i in range(10)]
    # the fast topic did not wait for the slow one
    assert order.index("fast-9") < order.index("slow-5")


# --------------------------------------------------------------------------- MQTT 5


async def test_v5_properties_reach_the_handler_and_survive_a_transport_replay(
    mqtt_broker: Endpoint, start_project: Start
) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    root = unique("props")
    body = "event.extensions.setdefault('seen_users', list(message.user_properties))"
    runtime, outcomes = await start_project(
        project(mqtt_broker, root, protocol="5", body=body), "sensors")
    props: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = [("trace", "abc"), ("trace", "def"), ("tenant", "t1")]
    props.ContentType = "application/json; charset=utf-8"
    props.ResponseTopic = f"{root}/replies/1"
    props.CorrelationData = b"\x00\x01corr"
    props.MessageExpiryInterval = 300
    props.PayloadFormatIndicator = 1
    await publish_many(mqtt_broker, [(f"{root}/sensors/s9/temp", reading("s9"))],
                       qos=1, protocol="5", properties=props)
    (event, outcome), = await outcomes.wait(1)
    assert outcome.status == "ok", outcome.error
    assert event.datacontenttype == "application/json; charset=utf-8"
    properties = event.transport["properties"]
    assert properties["user_properties"] == [["trace", "abc"], ["trace", "def"],
                                             ["tenant", "t1"]]
    assert properties["content_type"] == "application/json; charset=utf-8"
    assert properties["response_topic"] == f"{root}/replies/1"
    assert base64.b64decode(properties["correlation_data"]) == b"\x00\x01corr"
    assert 0 < properties["message_expiry_interval"] <= 300
    assert properties["payload_format_indicator"] == 1
    assert event.extensions["seen_users"] == [("trace", "abc"), ("trace", "def"),
                                              ("tenant", "t1")]

    # the captured event, replayed through the broker, arrives with the same properties
    results = await runtime.replay([event.id], via="transport")
    assert results[0].new.status == "ok"
    replayed = outcomes.seen[-1][0]
    assert replayed.extensions.get("replayof") or replayed.extensions.get("iwbinject")
    again = replayed.transport["properties"]
    assert again["user_properties"] == properties["user_properties"]  # the mark is gone
    for key in ("content_type", "response_topic", "correlation_data",
                "payload_format_indicator"):
        assert again[key] == properties[key]
    assert replayed.data == event.data


# --------------------------------------------------------------------------- retained


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_retained_messages_are_flagged_or_ignored(
    mqtt_broker: Endpoint, start_project: Start, protocol: str
) -> None:
    root = unique("retained")
    topic = f"{root}/sensors/r1/temp"
    await publish_many(mqtt_broker, [(topic, reading("kept"))], qos=1, retain=True)
    _, outcomes = await start_project(project(mqtt_broker, root, protocol=protocol), "sensors")
    (event, outcome), = await outcomes.wait(1)
    assert event.transport["retain"] is True and outcome.result["retain"] is True
    # a live message to the same topic is not flagged
    await publish_many(mqtt_broker, [(topic, reading("live"))], qos=1, retain=False)
    seen = await outcomes.wait(2)
    assert seen[1][0].transport["retain"] is False

    root2 = unique("ignored")
    topic2 = f"{root2}/sensors/r1/temp"
    await publish_many(mqtt_broker, [(topic2, reading("kept"))], qos=1, retain=True)
    _, outcomes2 = await start_project(
        project(mqtt_broker, root2, protocol=protocol, options="qos=1, ignore_retained=True"),
        "sensors")
    await publish_many(mqtt_broker, [(topic2, reading("live"))], qos=1)
    (event2, _), = await outcomes2.wait(1)
    await asyncio.sleep(0.2)
    assert len(outcomes2.seen) == 1 and json.loads(event2.data)["sensor"] == "live"
    await publish_many(mqtt_broker, [(topic, b""), (topic2, b"")], qos=1, retain=True)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_failing_and_malformed_messages_are_dead_lettered_and_the_rest_flow(
    mqtt_broker: Endpoint, start_project: Start, protocol: str
) -> None:
    root = unique("dlq")
    body = "if reading.value < 0: raise ValueError(f'negative reading {reading.value}')"
    options = f'qos=1, retries=1, dead_letter_topic="{root}/dead/{{topic}}"'
    runtime, outcomes = await start_project(
        project(mqtt_broker, root, protocol=protocol, options=options, body=body), "sensors")
    ready = asyncio.Event()
    dead_task = asyncio.create_task(
        collect(mqtt_broker, f"{root}/dead/#", 3, protocol=protocol, ready=ready))
    await ready.wait()
    topic = f"{root}/sensors/s1/temp"
    sent = [
        (topic, reading("ok-1")),
        (topic, reading("bad", -1)),
        (topic, b"{not json"),
        (topic, json.dumps({"sensor": "s1"}).encode()),  # value missing
        (topic, reading("ok-2")),
    ]
    await publish_many(mqtt_broker, sent, qos=1, protocol=protocol)
    seen = await outcomes.wait(5)
    statuses = [(json.loads(e.data).get("sensor") if e.data.startswith(b'{"') else "raw",
                 o.status, o.error.type if o.error else None, o.attempts) for e, o in seen]
    assert statuses == [
        ("ok-1", "ok", None, 1),
        ("bad", "error", "ValueError", 2),            # retried once by the runtime policy
        ("raw", "error", "MalformedPayload", 1),      # never retried: it will never bind
        ("s1", "error", "ValidationError", 1),
        ("ok-2", "ok", None, 1),                      # the topic kept moving
    ]
    dead = await dead_task
    assert len(dead) == 3
    assert {m.topic.value for m in dead} == {f"{root}/dead/{topic}"}
    failed_ids = [e.id for e, o in seen if o.status != "ok"]
    if protocol == "5":
        users = [dict(cast(Any, m.properties).UserProperty) for m in dead]
        assert [u["iwb-error-type"] for u in users] == [
            "ValueError", "MalformedPayload", "ValidationError"]
        assert users[0]["iwb-error-message"] == "negative reading -1.0"
        assert users[0]["iwb-attempts"] == "2" and users[0]["iwb-topic"] == topic
        assert users[0]["iwb-error-where"].endswith(".py:" + users[0]["iwb-error-where"]
                                                     .rsplit(":", 1)[1])
        assert [u["iwb-event-id"] for u in users] == failed_ids
        assert [m.payload for m in dead] == [sent[1][1], sent[2][1], sent[3][1]]
    else:
        docs = [json.loads(m.payload) for m in dead]
        assert [d["error"]["type"] for d in docs] == [
            "ValueError", "MalformedPayload", "ValidationError"]
        assert docs[0]["topic"] == topic and docs[0]["attempts"] == 2
        assert docs[1]["payload"] == "{not json"
        assert [d["event_id"] for d in docs] == failed_ids
    assert runtime.artifacts["sensors"].status == "listening"
    assert "disconnected-retrying" not in outcomes.statuses


async def test_without_a_dead_letter_topic_failures_are_recorded_and_acknowledged(
    mqtt_broker: Endpoint, start_project: Start
) -> None:
    root = unique("nodlq")
    options = 'qos=1, client_id="' + root + '", clean_session=False'
    runtime, outcomes = await start_project(
        project(mqtt_broker, root, options=options, body="raise RuntimeError('boom')"),
        "sensors")
    await publish_many(mqtt_broker, [(f"{root}/sensors/s/temp", reading("x"))], qos=1)
    (_, outcome), = await outcomes.wait(1)
    assert outcome.status == "error" and outcome.disposition == "reject"
    await runtime.stop(2)
    # acknowledged: the persistent session does not deliver it again
    runtime2 = Runtime(runtime.root)
    again = Outcomes("sensors")
    runtime2.bus.subscribe(again)
    await runtime2.start()
    try:
        await runtime2.wait_ready(15)
        await publish_many(mqtt_broker, [(f"{root}/sensors/s/temp", reading("y"))], qos=1)
        (event, _), = await again.wait(1)
        await asyncio.sleep(0.2)
        assert len(again.seen) == 1 and json.loads(event.data)["sensor"] == "y"
    finally:
        await runtime2.stop(2)


# --------------------------------------------------------------------------- inject, samples


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_inject_through_the_broker_and_samples(
    mqtt_broker: Endpoint, start_project: Start, protocol: str
) -> None:
    root = unique("inject")
    runtime, outcomes = await start_project(project(mqtt_broker, root, protocol=protocol),
                                            "sensors")
    samples = runtime.samples("sensors")
    assert [s.name for s in samples] == [f"{root}/sensors/example/temp",
                                         f"{root}/alerts/example"]
    sample = samples[0].event
    assert json.loads(sample.data) == {"sensor": "s-1", "value": 1.0}
    assert sample.transport["topic"] == f"{root}/sensors/example/temp"
    assert sample.transport["qos"] == 1
    if protocol == "5":
        assert sample.transport["properties"] == {"content_type": "application/json"}

    outcome = await runtime.inject("sensors", sample, via="transport", timeout=10)
    assert outcome.status == "ok", outcome.error
    assert outcome.result["topic"] == f"{root}/sensors/example/temp"
    received = outcomes.seen[-1][0]
    assert received.extensions["iwbinject"]  # carried (v5: user property; 3.1.1: matched)
    assert "properties" not in received.transport or not any(
        k == "iwb-inject" for k, _ in received.transport["properties"].get("user_properties",
                                                                          []))
    direct = await runtime.inject("sensors", samples[1].event, via="direct")
    assert direct.status == "ok" and direct.result["topic"] == f"{root}/alerts/example"


# --------------------------------------------------------------------------- publishing


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_handlers_publish_through_the_connection_recorded_and_sandboxed(
    mqtt_broker: Endpoint, start_project: Start, protocol: str
) -> None:
    root = unique("pub")
    props = ', properties={"user_properties": [("from", "iwb")]}' if protocol == "5" else ""
    body = (f'await main.publish("{root}/out/" + reading.sensor, '
            f'{{"seen": reading.sensor}}, qos=1{props})')
    runtime, outcomes = await start_project(
        project(mqtt_broker, root, protocol=protocol, body=body), "sensors")
    ready = asyncio.Event()
    out = asyncio.create_task(collect(mqtt_broker, f"{root}/out/#", 2, timeout=10,
                                      protocol=protocol, ready=ready))
    await ready.wait()
    await publish_many(mqtt_broker, [(f"{root}/sensors/s1/temp", reading("s1"))], qos=1)
    (_, outcome), = await outcomes.wait(1)
    assert outcome.status == "ok", outcome.error
    (sent,) = outcome.sent
    assert sent["kind"] == "mqtt.publish" and sent["topic"] == f"{root}/out/s1"
    assert sent["qos"] == 1 and sent["retain"] is False
    assert json.loads(sent["payload"]) == {"seen": "s1"} and "sandboxed" not in sent
    assert sent["duration_ms"] >= 0
    if protocol == "5":
        assert sent["properties"]["user_properties"] == [["from", "iwb"]]
        assert sent["properties"]["content_type"] == "application/json"

    # a sandboxed replay records the publish but does not send it
    event = outcomes.seen[0][0]
    replayed = await runtime.replay([event.id], via="direct", sandboxed=True)
    (sandboxed_sent,) = replayed[0].new.sent
    assert sandboxed_sent["sandboxed"] is True and sandboxed_sent["topic"] == f"{root}/out/s1"
    # so does a sandboxed inject through the broker (3.1.1: the mark is matched on arrival)
    injected = await runtime.inject("sensors", event.copy(), via="transport", sandboxed=True,
                                    timeout=10)
    assert injected.status == "ok", injected.error
    assert [s["sandboxed"] for s in injected.sent] == [True]
    # a marker published after all that: anything sandboxing let through comes before it
    await publish_many(mqtt_broker, [(f"{root}/out/end", b'{"seen": "end"}')], qos=1)
    received = await out
    assert [json.loads(m.payload) for m in received] == [{"seen": "s1"}, {"seen": "end"}]
    if protocol == "5":
        assert cast(Any, received[0].properties).UserProperty == [("from", "iwb")]


# --------------------------------------------------------------------------- health


async def test_health_is_ok_for_a_broker_and_not_for_a_closed_port(
    mqtt_broker: Endpoint,
) -> None:
    from procs import free_port

    ok = MqttConnection("main", MqttConnectionConfig(host=mqtt_broker.host,
                                                     port=mqtt_broker.port, protocol="5"))
    health = await ok.health()
    assert health.ok, health.detail
    assert "accepted an MQTT 5 connection" in health.detail
    dead = MqttConnection("down", MqttConnectionConfig(port=free_port(), connect_timeout=2))
    health = await dead.health()
    assert not health.ok
    assert "failed" in health.detail and "Is the broker running" in health.detail


# paho-mqtt 2.2 does not close the TLS socket when the handshake fails (the refused,
# untrusted case below); the garbage collector closes it and Python reports that.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
async def test_tls_connection_verifies_the_broker_certificate(mqtt_broker: Endpoint) -> None:
    broker = mqtt_broker.broker
    if broker is None or broker.tls_files is None or broker.tls_port is None:
        pytest.skip("no TLS listener (an external broker, or openssl missing)")
    cfg = MqttConnectionConfig(host="127.0.0.1", port=broker.tls_port,
                               ca_certs=str(broker.tls_files.ca))
    health = await MqttConnection("tls", cfg).health()
    assert health.ok, health.detail
    assert cfg.url.startswith("mqtts://")
    untrusted = await MqttConnection(
        "tls", MqttConnectionConfig(host="127.0.0.1", port=broker.tls_port, tls=True)
    ).health()
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    insecure = await MqttConnection(
        "tls", MqttConnectionConfig(host="127.0.0.1", port=broker.tls_port, tls_insecure=True)
    ).health()
    assert insecure.ok, insecure.detail


async def test_credentials_are_sent_and_a_refusal_is_reported(
    private_broker: Callable[..., Any], start_project: Start
) -> None:
    broker = private_broker(users={"iwb": "s3cret"})
    endpoint = Endpoint(broker.host, broker.port, broker)
    good = MqttConnectionConfig(host=broker.host, port=broker.port, username="iwb",
                                password="s3cret")
    health = await MqttConnection("main", good).health()
    assert health.ok, health.detail
    bad = good.model_copy(update={"password": "wrong"})
    health = await MqttConnection("main", bad).health()
    assert not health.ok and "Check username and password" in health.detail, health.detail
    assert "wrong" not in health.detail

    root = unique("auth")
    files = project(endpoint, root)
    files["connections.toml"] += 'username = "iwb"\npassword = "s3cret"\n'
    runtime, outcomes = await start_project(files, "sensors")
    assert runtime.connections["main"].describe()["password"] == "****"
    async with client(endpoint, username="iwb", password="s3cret") as pub:
        await pub.publish(f"{root}/sensors/x/temp", reading("x"), qos=1)
    (_, outcome), = await outcomes.wait(1)
    assert outcome.status == "ok"


async def test_a_listener_without_a_broker_is_retrying_then_connects(
    private_broker: Callable[[], Any], make_project: Callable[[dict[str, str]], Path]
) -> None:
    broker = private_broker()
    endpoint = Endpoint(broker.host, broker.port, broker)
    broker.stop()
    root = unique("down")
    runtime = Runtime(make_project(project(endpoint, root)))
    outcomes = Outcomes("sensors")
    runtime.bus.subscribe(outcomes)
    await runtime.start()
    try:
        await async_wait_for(lambda: "disconnected-retrying" in outcomes.statuses, 10,
                             "retrying status")
        state = runtime.artifacts["sensors"]
        assert state.error and "Is the broker running" in state.error
        broker.start()
        await runtime.wait_ready(20)
        await publish_many(endpoint, [(f"{root}/sensors/x/temp", reading("x"))], qos=1)
        await outcomes.wait(1)
    finally:
        await runtime.stop(2)

