"""RabbitMQ listeners end to end: a project on disk, the real Runtime, a real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from procs import free_port
from rabbit_support import (
    Broker,
    Outcomes,
    declare,
    depth,
    listener_project,
    publish,
    take,
    unique,
    wait_for,
)

import iwb_rabbitmq as rabbitmq
from workbench.events import Event
from workbench.plugin import sandbox
from workbench.runtime import Runtime

pytestmark = pytest.mark.broker

ProjectFactory = Callable[[dict[str, str]], Path]

MODELS = """
    from __future__ import annotations

    import asyncio

    from pydantic import BaseModel, Field

    import iwb_rabbitmq as rabbitmq
    from workbench.config import connection


    class Order(BaseModel):
        id: int
        sku: str = Field(default="TEA-01", min_length=3, examples=["TEA-01"])
        qty: int = Field(default=1, ge=1)


    class Receipt(BaseModel):
        id: int
        total: float
"""


async def run_project(root: Path, started: list[object], artifact: str) -> tuple[Runtime, Outcomes]:
    runtime = Runtime(root)
    started.append(runtime)
    seen = Outcomes(artifact)
    runtime.bus.subscribe(seen)
    await runtime.start()
    await runtime.wait_ready(20)
    return runtime, seen


def ids_of(pairs: list[tuple[Event, Any]]) -> list[int]:
    return [json.loads(e.data)["id"] for e, _ in pairs]


# ----------------------------------------------------------------------------- events


async def test_a_message_becomes_an_event_with_every_property_and_is_acknowledged(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue, exchange = unique("orders"), unique("shop")
    root = listener_project(make_project, broker.url, {"orders": MODELS + f"""

    orders = rabbitmq.Listener(
        connection="main", queue="{queue}",
        bindings=[rabbitmq.Binding(exchange="{exchange}", routing_key="order.*",
                                   exchange_type="topic")],
    )


    @orders.on_message
    async def bill(order: Order, message: rabbitmq.Message) -> dict:
        return {{"id": order.id, "routing_key": message.routing_key,
                 "tenant": message.headers.get("tenant"), "app_id": message.app_id,
                 "exchange": message.exchange, "queue": message.queue}}
    """})
    runtime, seen = await run_project(root, started, "orders")
    stamp = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    await publish(
        broker.url, [b'{"id": 1, "qty": 2}'], exchange=exchange, routing_key="order.created",
        headers={"tenant": "acme", "n": 7, "flag": True, "raw": bytearray(b"\xff\x00"),
                 "when": stamp},
        correlation_id="c-1", message_id="m-1", app_id="shop", type="order", priority=5,
        expiration=60, timestamp=stamp, content_encoding="identity", user_id="guest",
    )
    await wait_for(lambda: len(seen.seen) == 1, 10, "the message was handled")
    event, outcome = seen.seen[0]
    port = broker.url.rsplit(":", 1)[1].split("/")[0]
    assert (event.kind, event.type) == ("rabbitmq", "iwb.rabbitmq.message")
    assert event.source == f"amqp://127.0.0.1:{port}/%2F/{queue}"
    assert (event.subject, event.datacontenttype) == ("order.created", "application/json")
    t = event.transport
    assert (t["exchange"], t["routing_key"], t["queue"], t["redelivered"]) == (
        exchange, "order.created", queue, False,
    )
    assert isinstance(t["delivery_tag"], int)
    assert t["properties"] == {
        "content_type": "application/json", "content_encoding": "identity",
        "headers": {"tenant": "acme", "n": 7, "flag": True, "raw": {"$bytes": "/wA="},
                    "when": {"$timestamp": int(stamp.timestamp())}},
        "delivery_mode": 2, "priority": 5, "correlation_id": "c-1", "expiration": "60000",
        "message_id": "m-1", "timestamp": int(stamp.timestamp()), "type": "order",
        "user_id": "guest", "app_id": "shop",
    }
    rabbitmq.RabbitTransport.model_validate(t)
    assert outcome.status == "ok" and outcome.disposition == "ack"
    assert outcome.result == {"id": 1, "routing_key": "order.created", "tenant": "acme",
                              "app_id": "shop", "exchange": exchange, "queue": queue}

    assert runtime.capture is not None
    await runtime.capture.flush()
    record = runtime.capture.get(event.id)
    assert record.event.transport == json.loads(json.dumps(t))
    assert record.outcome.result == outcome.result

    await runtime.stop(5)
    assert await depth(broker.url, queue) == 0, "the message was acknowledged"


# ----------------------------------------------------------------------------- failures


async def test_a_failing_handler_is_retried_then_dead_lettered_and_the_rest_flow(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue = unique("billing")
    root = listener_project(make_project, broker.url, {"billing": MODELS + f"""

    billing = rabbitmq.Listener(
        connection="main", queue="{queue}", prefetch=16, retries=1,
        max_redeliveries=2, dead_letter_exchange="{queue}.dlx", dead_letter_queue="{queue}.dead",
    )


    @billing.on_message
    async def bill(order: Order, message: rabbitmq.Message) -> Receipt:
        if order.id % 10 == 3:
            raise ValueError(f"cannot bill order {{order.id}} (try {{message.retries}})")
        return Receipt(id=order.id, total=order.qty * 4.5)
    """})
    runtime, seen = await run_project(root, started, "billing")
    sent = await publish(
        broker.url, [json.dumps({"id": i}).encode() for i in range(100)], routing_key=queue,
    )
    assert sent == 100
    dead = await take(broker.url, f"{queue}.dead", 10, timeout=30)
    await wait_for(lambda: len(seen.seen) == 120, 10, "90 successes and 3 tries of 10")

    ok_ids = sorted(ids_of(seen.ok))
    assert ok_ids == [i for i in range(100) if i % 10 != 3]
    failed = [(e, o) for e, o in seen.seen if o.status == "error"]
    assert len(failed) == 30, "each failing message is delivered 1 + max_redeliveries times"
    assert all(o.attempts == 2 for _, o in failed), "each delivery ran 1 + retries times"
    by_id: dict[int, list[Any]] = {}
    for event, out in failed:
        by_id.setdefault(json.loads(event.data)["id"], []).append((event, out))
    assert sorted(by_id) == [i for i in range(100) if i % 10 == 3]
    for tries in by_id.values():
        retries = [rabbitmq.Message.from_event(e).retries for e, _ in tries]
        assert retries == [0, 1, 2]
        kinds = [[s["kind"] for s in o.sent] for _, o in tries]
        assert kinds == [["rabbitmq.requeue"], ["rabbitmq.requeue"], ["rabbitmq.dead_letter"]]
        assert all(e.transport["routing_key"] == queue for e, _ in tries)

    assert sorted(json.loads(d.body)["id"] for d in dead) == sorted(by_id)
    last_event_ids = {tries[-1][1].event_id for tries in by_id.values()}
    source = (root / "artifacts" / "billing.py").read_text("utf-8").splitlines()
    raised_at = next(n for n, line in enumerate(source, 1) if "raise ValueError" in line)
    for letter in dead:
        h = letter.headers
        order_id = json.loads(letter.body)["id"]
        assert h["x-iwb-error-type"] == "ValueError"
        assert h["x-iwb-error-message"] == f"cannot bill order {order_id} (try 2)"
        assert h["x-iwb-error-where"].endswith(f"billing.py:{raised_at}")
        assert h["x-iwb-retries"] == 2 and h["x-iwb-queue"] == queue
        assert (h["x-iwb-exchange"], h["x-iwb-routing-key"]) == ("", queue)
        assert h["x-iwb-event-id"] in last_event_ids
        assert h["x-iwb-handler"].endswith("billing:bill")
        assert letter.routing_key == queue and letter.delivery_mode == 2
    assert "disconnected-retrying" not in seen.statuses, "the listener never stopped"
    assert runtime.artifacts["billing"].status == "listening"
    await runtime.stop(5)
    assert await depth(broker.url, queue) == 0


async def test_malformed_and_invalid_payloads_are_recorded_and_dead_lettered_at_once(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue = unique("intake")
    root = listener_project(make_project, broker.url, {"intake": MODELS + f"""

    intake = rabbitmq.Listener(
        connection="main", queue="{queue}", ordered=True, max_redeliveries=3,
        dead_letter_exchange="{queue}.dlx", dead_letter_queue="{queue}.dead",
    )


    @intake.on_message
    async def keep(order: Order) -> int:
        return order.id
    """})
    runtime, seen = await run_project(root, started, "intake")
    await publish(broker.url, [b'{"id": 1}', b"{nope", b'{"id": "x"}'], routing_key=queue)
    await publish(broker.url, [b'{"id": 2}'], routing_key=queue, content_type="text/plain")
    await publish(broker.url, [b'{"id": 3}', b""], routing_key=queue)
    dead = await take(broker.url, f"{queue}.dead", 4)
    await wait_for(lambda: len(seen.seen) == 6, 10, "every message was handled once")

    outcomes = [(e.data, o.status, o.error.type if o.error else None) for e, o in seen.seen]
    assert outcomes == [
        (b'{"id": 1}', "ok", None),
        (b"{nope", "error", "MalformedPayload"),
        (b'{"id": "x"}', "error", "ValidationError"),
        (b'{"id": 2}', "error", "UnsupportedMediaType"),
        (b'{"id": 3}', "ok", None),
        (b"", "error", "ValidationError"),
    ], "in order (ordered=True), each delivered once"
    invalid = seen.seen[2][1].error
    assert invalid is not None and invalid.details[0]["loc"] == ["body", "id"]
    assert [d.body for d in dead] == [b"{nope", b'{"id": "x"}', b'{"id": 2}', b""]
    assert [d.headers["x-iwb-error-type"] for d in dead] == [
        "MalformedPayload", "ValidationError", "UnsupportedMediaType", "ValidationError",
    ]
    assert all(d.headers["x-iwb-retries"] == 0 for d in dead)
    assert dead[2].content_type == "text/plain"
    assert "disconnected-retrying" not in seen.statuses
    await runtime.stop(5)
    assert await depth(broker.url, queue) == 0


async def test_without_a_dead_letter_exchange_the_queue_argument_takes_over(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue, dlx = unique("plain"), unique("plain-dlx")
    conn = await aio_pika.connect(broker.url)
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(dlx, "fanout", durable=True)
        kept = await channel.declare_queue(f"{dlx}.kept", durable=True)
        await kept.bind(exchange)
    finally:
        await conn.close()
    root = listener_project(make_project, broker.url, {"plain": MODELS + f"""

    plain = rabbitmq.Listener(
        connection="main", queue="{queue}", max_redeliveries=0,
        declare=rabbitmq.Queue(arguments={{"x-dead-letter-exchange": "{dlx}"}}),
    )


    @plain.on_message
    async def fail(order: Order) -> None:
        raise RuntimeError("no")
    """})
    _runtime, seen = await run_project(root, started, "plain")
    await publish(broker.url, [b'{"id": 5}'], routing_key=queue)
    letters = await take(broker.url, f"{dlx}.kept", 1)
    assert letters[0].body == b'{"id": 5}'
    assert letters[0].headers["x-death"][0]["reason"] == "rejected"
    await wait_for(lambda: len(seen.seen) == 1 and bool(seen.seen[0][1].sent), 5, "recorded")
    assert seen.seen[0][1].sent == [{"kind": "rabbitmq.reject", "queue": queue,
                                     "requeue": False}]


# ----------------------------------------------------------------------------- ordering


@pytest.mark.parametrize("ordered", [False, True])
async def test_prefetch_bounds_concurrency_and_ordered_keeps_delivery_order(
    broker: Broker, make_project: ProjectFactory, started: list[object], ordered: bool,
) -> None:
    queue = unique("lanes")
    root = listener_project(make_project, broker.url, {"lanes": MODELS + f"""

    lanes = rabbitmq.Listener(connection="main", queue="{queue}", prefetch=8,
                              ordered={ordered})
    running = [0]


    @lanes.on_message
    async def work(order: Order) -> dict:
        running[0] += 1
        at_start = running[0]
        await asyncio.sleep(0.02)
        running[0] -= 1
        return {{"id": order.id, "running": at_start}}
    """})
    _runtime, seen = await run_project(root, started, "lanes")
    await publish(broker.url, [json.dumps({"id": i}).encode() for i in range(40)],
                  routing_key=queue)
    await wait_for(lambda: len(seen.seen) == 40, 20, "40 messages handled")
    most = max(o.result["running"] for _, o in seen.seen)
    handled = [o.result["id"] for _, o in seen.seen]
    if ordered:
        assert most == 1 and handled == list(range(40))
    else:
        assert most == 8, "up to prefetch at once"
        assert sorted(handled) == list(range(40))


# ----------------------------------------------------------------------------- replies


async def test_request_reply_round_trip(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue = unique("rates")
    root = listener_project(make_project, broker.url, {"rates": MODELS + f"""

    rates = rabbitmq.Listener(connection="main", queue="{queue}", max_redeliveries=0)


    @rates.on_message
    async def quote(order: Order) -> Receipt | str:
        if order.id < 0:
            raise LookupError(f"no rate for {{order.id}}")
        if order.id == 0:
            return "free"
        return Receipt(id=order.id, total=order.qty * 4.5)
    """})
    runtime, seen = await run_project(root, started, "rates")

    # a plain AMQP client: its own reply queue, reply_to and correlation_id
    conn = await aio_pika.connect(broker.url)
    try:
        channel = await conn.channel()
        replies = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"id": 7, "qty": 2}', content_type="application/json",
                             reply_to=replies.name, correlation_id="c-7"),
            routing_key=queue,
        )
        async with asyncio.timeout(10):
            async with replies.iterator() as it:
                reply = await it.__anext__()
                await reply.ack()
    finally:
        await conn.close()
    assert json.loads(reply.body) == {"id": 7, "total": 9.0}
    assert (reply.correlation_id, reply.content_type) == ("c-7", "application/json")
    await wait_for(lambda: bool(seen.seen and seen.seen[0][1].sent), 5, "reply recorded")
    assert seen.seen[0][1].sent == [{
        "kind": "rabbitmq.reply", "routing_key": replies.name, "correlation_id": "c-7",
        "content_type": "application/json", "headers": {}, "body": '{"id":7,"total":9.0}',
        "size": 20,
    }]

    # the connection's own RPC client (direct reply-to)
    client = runtime.connections["main"].client
    assert isinstance(client, rabbitmq.RabbitClient)
    answer = await client.request("", queue, {"id": 3, "qty": 4}, timeout=10)
    assert answer.json() == {"id": 3, "total": 18.0}
    assert answer.content_type == "application/json"
    text = await client.request("", queue, {"id": 0}, timeout=10)
    assert (text.text, text.content_type) == ("free", "text/plain; charset=utf-8")
    failed = await client.request("", queue, {"id": -1}, timeout=10)
    assert failed.json()["error"]["type"] == "LookupError"
    assert failed.json()["error"]["message"] == "no rate for -1"
    assert failed.headers == {"x-iwb-error-type": "LookupError"}
    with pytest.raises(rabbitmq.RabbitPublishError, match="No queue is bound"):
        await client.request("", unique("nobody"), {"id": 1}, timeout=2)
    handled = len(seen.seen)
    with sandbox():
        pretend = await client.request("", queue, {"id": 99}, timeout=2)
    assert pretend.json() == {} and pretend.headers == {"x-iwb-sandbox": "1"}
    await client.request("", queue, {"id": 100}, timeout=10)
    assert [json.loads(e.data)["id"] for e, _ in seen.seen[handled:]] == [100], "99 not sent"


# ----------------------------------------------------------------------------- publishing


async def test_handlers_publish_with_confirms_and_sandbox_records_without_sending(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue, target = unique("forward"), unique("forwarded")
    await declare(broker.url, target)
    root = listener_project(make_project, broker.url, {"forward": MODELS + f"""

    bus = connection("main")
    forward = rabbitmq.Listener(connection="main", queue="{queue}")


    @forward.on_message
    async def relay(order: Order) -> None:
        await bus.publish("", "{target}", {{"forwarded": order.id}},
                          headers={{"hop": 1}}, message_id=f"fwd-{{order.id}}")
    """})
    runtime, seen = await run_project(root, started, "forward")
    await publish(broker.url, [b'{"id": 1}'], routing_key=queue)
    first = await take(broker.url, target, 1)
    assert json.loads(first[0].body) == {"forwarded": 1}
    assert first[0].headers == {"hop": 1} and first[0].content_type == "application/json"
    assert first[0].message_id == "fwd-1" and first[0].delivery_mode == 2
    await wait_for(lambda: len(seen.seen) == 1, 5, "handled")
    record = seen.seen[0][1].sent[0]
    assert record["kind"] == "rabbitmq.publish" and record["confirmed"] is True
    assert (record["exchange"], record["routing_key"], record["headers"]) == ("", target,
                                                                               {"hop": 1})
    assert record["body"] == '{"forwarded":1}' and record["message_id"] == "fwd-1"

    def order(i: int) -> Event:
        return Event("forward", "rabbitmq", "iwb.rabbitmq.message", "test",
                     data=json.dumps({"id": i}).encode(), datacontenttype="application/json")

    direct = await runtime.inject("forward", order(2), "direct", sandboxed=True)
    assert direct.sent[0]["sandboxed"] is True and "confirmed" not in direct.sent[0]
    through = await runtime.inject("forward", order(3), "transport", sandboxed=True)
    assert through.status == "ok" and through.sent[0]["sandboxed"] is True
    real = await runtime.inject("forward", order(4), "direct")
    assert real.sent[0]["confirmed"] is True
    # the queue is FIFO: the sandboxed 2 and 3 would have arrived before 4
    after = await take(broker.url, target, 1)
    assert json.loads(after[0].body) == {"forwarded": 4}
    assert await depth(broker.url, target) == 0

    client = runtime.connections["main"].client
    assert isinstance(client, rabbitmq.RabbitClient)
    missing = unique("missing")
    with pytest.raises(rabbitmq.RabbitPublishError, match="Does the exchange exist"):
        await client.publish(missing, "k", {"id": 5})
    with pytest.raises(rabbitmq.RabbitPublishError, match="No queue is bound"):
        await client.publish("", unique("nobody"), {"id": 6}, mandatory=True)
    await client.publish("", target, b"\x00raw", content_type="application/octet-stream")
    raw = await take(broker.url, target, 1)
    assert (raw[0].body, raw[0].content_type) == (b"\x00raw", "application/octet-stream")


# ----------------------------------------------------------------------------- inject


async def test_inject_goes_through_the_broker_with_every_property(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue, exchange = unique("paid"), unique("shop")
    root = listener_project(make_project, broker.url, {"paid": MODELS + f"""

    paid = rabbitmq.Listener(
        connection="main", queue="{queue}",
        bindings=[rabbitmq.Binding(exchange="{exchange}", routing_key="order.paid",
                                   exchange_type="direct")],
    )


    @paid.on_message
    async def record(order: Order, message: rabbitmq.Message) -> dict:
        return {{"id": order.id, "tenant": message.headers.get("tenant")}}
    """})
    runtime, seen = await run_project(root, started, "paid")
    properties = {
        "content_type": "application/json", "headers": {"tenant": "acme", "x-iwb-retries": 2},
        "delivery_mode": 2, "priority": 3, "correlation_id": "c-9", "message_id": "m-9",
        "timestamp": 1718000000, "type": "paid", "user_id": "guest", "app_id": "shop",
        "expiration": "600000",
    }
    injected = Event(
        "paid", "rabbitmq", "iwb.rabbitmq.message", "test", data=b'{"id": 9}',
        transport={"exchange": exchange, "routing_key": "order.paid", "properties": properties},
    )
    outcome = await runtime.inject("paid", injected, "transport", timeout=10)
    assert outcome.status == "ok" and outcome.result == {"id": 9, "tenant": "acme"}
    event = next(e for e, o in seen.seen if o is outcome)
    assert event.extensions["iwbinject"] == injected.extensions["iwbinject"]
    assert (event.transport["exchange"], event.transport["routing_key"]) == (
        exchange, "order.paid",
    )
    expected = dict(properties, headers={"tenant": "acme"})  # bookkeeping headers left out
    assert event.transport["properties"] == expected

    # a replay through the transport reproduces the outcome
    assert runtime.capture is not None
    await runtime.capture.flush()
    results = await runtime.replay([event.id], via="transport")
    assert results[0].same, results[0].diff

    # a sample with no transport goes to the queue through the default exchange
    bare = Event("paid", "rabbitmq", "iwb.rabbitmq.message", "test", data=b'{"id": 10}')
    plain = await runtime.inject("paid", bare, "transport", timeout=10)
    assert plain.result == {"id": 10, "tenant": None}
    routed = next(e for e, o in seen.seen if o is plain)
    assert (routed.transport["exchange"], routed.transport["routing_key"]) == ("", queue)

    lost = Event("paid", "rabbitmq", "t", "test", data=b'{"id": 11}',
                 transport={"exchange": exchange, "routing_key": "order.lost"})
    with pytest.raises(rabbitmq.RabbitPublishError, match="no queue is bound"):
        await runtime.inject("paid", lost, "transport", timeout=5)
    assert runtime.artifacts["paid"].status == "listening"


async def test_samples_inject_and_bind(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    queue, exchange = unique("sampled"), unique("shop")
    root = listener_project(make_project, broker.url, {"sampled": MODELS + f"""

    sampled = rabbitmq.Listener(
        connection="main", queue="{queue}",
        bindings=[rabbitmq.Binding(exchange="{exchange}", routing_key="order.#",
                                   exchange_type="topic")],
    )


    @sampled.on_message
    async def bill(order: Order) -> Receipt:
        return Receipt(id=order.id, total=order.qty * 4.5)
    """})
    runtime, _seen = await run_project(root, started, "sampled")
    samples = runtime.samples("sampled")
    assert [s.name for s in samples] == ["message", "request"]
    for sample in samples:
        outcome = await runtime.inject("sampled", sample.event, "transport", timeout=10)
        assert outcome.status == "ok", outcome.error
        assert outcome.result == {"id": 1, "total": 4.5}
    reply = outcome.sent[0]
    assert reply["kind"] == "rabbitmq.reply" and reply["routing_key"] == f"{queue}.replies"
    schema = runtime.trigger_schema("sampled")
    assert set(schema["properties"]) == {
        "exchange", "routing_key", "queue", "redelivered", "delivery_tag", "properties",
    }


# ----------------------------------------------------------------------------- health


async def test_health_reports_reachable_and_unreachable_brokers(broker: Broker) -> None:
    def conn(url: str) -> rabbitmq.RabbitConnection:
        return rabbitmq.RabbitConnection(
            "main", rabbitmq.RabbitConnectionConfig(url=url, connect_timeout=3)
        )

    up = await conn(broker.url).health()
    assert up.ok and up.latency_ms > 0
    assert up.detail.startswith("connected to amqp://127.0.0.1:") and "RabbitMQ 3." in up.detail
    port = free_port()
    down = await conn(f"amqp://guest:guest@127.0.0.1:{port}/").health()
    assert not down.ok and f"127.0.0.1:{port}" in down.detail
    assert "could not connect" in down.detail
    refused = await conn(broker.url.replace("guest:guest", "guest:wrong")).health()
    assert not refused.ok and "user, password and virtual host" in refused.detail
    assert "wrong" not in refused.detail
    novhost = await conn(broker.url.rstrip("/") + "/nowhere").health()
    assert not novhost.ok and "nowhere" in novhost.detail


async def test_tls_connections_verify_the_broker(
    broker: Broker, make_project: ProjectFactory, started: list[object],
) -> None:
    node = broker.node
    if node is None or node.tls_port is None or node.ca is None:
        pytest.skip("the broker has no TLS listener (openssl missing, or IWB_TEST_RABBITMQ)")
    url = f"amqps://guest:guest@127.0.0.1:{node.tls_port}/"

    def conn(**fields: Any) -> rabbitmq.RabbitConnection:
        return rabbitmq.RabbitConnection(
            "main", rabbitmq.RabbitConnectionConfig(url=url, connect_timeout=3, **fields)
        )

    trusted = await conn(cafile=str(node.ca)).health()
    assert trusted.ok and trusted.detail.startswith("connected to amqps://127.0.0.1:")
    untrusted = await conn().health()
    assert not untrusted.ok and "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    assert (await conn(verify=False).health()).ok

    queue = unique("secure")
    root = make_project({
        "connections.toml": f'[main]\nkind = "rabbitmq"\nurl = "{url}"\ncafile = "{node.ca}"\n',
        "artifacts/secure.py": f"""
            import iwb_rabbitmq as rabbitmq

            secure = rabbitmq.Listener(connection="main", queue="{queue}")


            @secure.on_message
            async def handle(data: dict) -> dict:
                return data
        """,
    })
    runtime, seen = await run_project(root, started, "secure")
    assert runtime.artifacts["secure"].address == f"amqp://127.0.0.1:{node.tls_port}/%2F/{queue}"
    await publish(broker.url, [b'{"id": 1}'], routing_key=queue)
    await wait_for(lambda: len(seen.ok) == 1, 10, "handled over TLS")
