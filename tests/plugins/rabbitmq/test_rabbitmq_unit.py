"""The RabbitMQ plugin without a broker: configuration, AMQP ↔ JSON, events, the `Message`
view, samples, the ack books and the failure rules."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader
from pydantic import BaseModel, Field

import iwb_rabbitmq as rabbitmq
from iwb_rabbitmq.acks import Acker
from iwb_rabbitmq.connection import Endpoint, encode_body
from iwb_rabbitmq.message import (
    event_from_delivery,
    headers_from_json,
    headers_to_json,
    outgoing_properties,
    properties_of,
    source_of,
)
from iwb_rabbitmq.samples import example_routing_key
from iwb_rabbitmq.trigger import is_permanent
from workbench.errors import TriggerConfigError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import BindingError, Cursor, TriggerContext
from workbench.samples import NO_PAYLOAD, payload_annotation, payload_example


class Order(BaseModel):
    id: int
    sku: str = Field(min_length=3, examples=["TEA-01"])
    qty: int = Field(default=1, ge=1)


def context(tmp_path: Path, connections: dict[str, Any] | None = None) -> TriggerContext:
    state = tmp_path / ".iwb" / "state"
    return TriggerContext(
        name="orders", project_root=tmp_path, state_dir=state,
        cursor=Cursor(state / "orders.json"), connections=connections or {},
    )


# ----------------------------------------------------------------------------- authoring


def test_importing_the_plugin_loads_no_amqp_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, iwb_rabbitmq\n"
        "print([m for m in ('aio_pika', 'aiormq', 'pamqp') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_listener_defaults_and_handler_registration() -> None:
    orders = rabbitmq.Listener(connection="main", queue="orders")
    cfg = orders.config
    assert isinstance(cfg, rabbitmq.ListenerConfig)
    assert cfg.declare == rabbitmq.Queue(durable=True)
    assert (cfg.prefetch, cfg.ordered, cfg.max_redeliveries) == (32, False, 3)
    assert cfg.dead_letter_exchange is None and cfg.bindings == []

    @orders.on_message
    async def bill(order: Order) -> None:
        return None

    assert list(orders.handlers) == ["message"]
    assert orders.handlers["message"].func is bill
    assert orders.address() == "queue orders"
    assert orders.connection_names() == ["main"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"prefetch": 0}, "prefetch"),
        ({"max_redeliveries": -1}, "max_redeliveries"),
        ({"dead_letter_queue": "dead"}, "needs a dead_letter_exchange"),
        ({"dead_letter_exchange": ""}, "default exchange"),
        ({"queue": "amq.mine"}, "reserved"),
        ({"prefech": 3}, "prefech"),
        ({"bindings": [{"exchange": ""}]}, "bindings.0.exchange"),
        ({"bindings": [{"exchange": "x", "exchange_type": "fan"}]}, "exchange_type"),
    ],
)
def test_listener_rejects_bad_configuration(kwargs: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"connection": "main", "queue": "orders", **kwargs}
    with pytest.raises(TriggerConfigError) as err:
        rabbitmq.Listener(**args)
    assert needle in str(err.value)


def test_existing_queue_named_amq_is_allowed_without_declare() -> None:
    listener = rabbitmq.Listener(connection="main", queue="amq.existing", declare=None)
    assert listener.config.declare is None


# ----------------------------------------------------------------------------- connection


def test_url_is_parsed_into_an_endpoint() -> None:
    ep = Endpoint.parse("amqp://shop:p%40ss@rabbit.internal:5673/billing%2Feu")
    assert (ep.host, ep.port, ep.username, ep.password, ep.virtual_host, ep.tls) == (
        "rabbit.internal", 5673, "shop", "p@ss", "billing/eu", False,
    )
    assert Endpoint.parse("amqps://h").port == 5671
    default = Endpoint.parse("amqp://h/")
    assert (default.virtual_host, default.username, default.password) == ("/", "guest", "guest")
    assert Endpoint.parse("amqp://h/%2F").virtual_host == "/"
    assert ep.display() == "amqp://rabbit.internal:5673/billing%2Feu"
    url = ep.url(heartbeat=30, name="iwb main listener orders")
    assert url.startswith("amqp://shop:p%40ss@rabbit.internal:5673/billing%2Feu?heartbeat=30")
    assert "****" in ep.url(heartbeat=30, name="x", masked=True)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"url": "http://h"}, "amqp://"),
        ({"url": "amqp://"}, "names no host"),
        ({"url": "amqp://h/?heartbeat=5"}, "query string"),
        ({"url": "amqp://h", "host": "other"}, "either url or host"),
        ({"certfile": "/c.pem"}, "need ssl"),
        ({"port": 0}, "port"),
        ({"heartbeat": -1}, "heartbeat"),
    ],
)
def test_connection_config_errors_name_the_problem(fields: dict[str, Any], needle: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        rabbitmq.RabbitConnectionConfig(**fields)
    assert needle in str(err.value)


def test_connection_fields_and_masked_description() -> None:
    by_fields = rabbitmq.RabbitConnection(
        "main", rabbitmq.RabbitConnectionConfig(
            host="mq", ssl=True, username="u", password="secret", virtual_host="v",
        ),
    )
    assert by_fields.endpoint == Endpoint("mq", 5671, "u", "secret", "v", True)
    shown = by_fields.describe()
    assert shown["password"] == "****" and "secret" not in json.dumps(shown)
    by_url = rabbitmq.RabbitConnection(
        "main", rabbitmq.RabbitConnectionConfig(url="amqp://u:topsecret@mq:5672/"),
    )
    assert "topsecret" not in json.dumps(by_url.describe())
    assert by_url.describe()["url"] == "amqp://u:****@mq:5672/"


def test_encode_body() -> None:
    assert encode_body(b"\x00raw") == (b"\x00raw", None)
    assert encode_body("héllo") == ("héllo".encode(), "text/plain; charset=utf-8")
    assert encode_body(Order(id=1, sku="TEA-01")) == (
        b'{"id":1,"sku":"TEA-01","qty":1}', "application/json",
    )
    assert encode_body({"a": [1, 2]}) == (b'{"a":[1,2]}', "application/json")
    assert encode_body(None) == (b"null", "application/json")
    assert encode_body({"a": 1}, "application/vnd.x+json")[1] == "application/vnd.x+json"


# ----------------------------------------------------------------------------- AMQP ↔ JSON


def test_headers_survive_the_json_round_trip_with_their_amqp_types() -> None:
    when = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    headers = {
        "tenant": "acme", "n": 7, "ratio": 0.5, "flag": True, "none": None,
        "raw": b"\xff\x00", "text_bytes": b"plain", "when": when, "price": Decimal("1.50"),
        "x-death": [{"count": 1, "time": when, "routing-keys": ["a"]}],
    }
    as_json = headers_to_json(headers)
    json.dumps(as_json)  # JSON-able
    assert as_json["raw"] == {"$bytes": "/wA="}
    assert as_json["text_bytes"] == "plain"
    assert as_json["when"] == {"$timestamp": int(when.timestamp())}
    assert as_json["price"] == {"$decimal": "1.50"}
    back = headers_from_json(as_json)
    assert back["raw"] == b"\xff\x00" and back["when"] == when
    assert back["price"] == Decimal("1.50")
    assert back["x-death"] == [{"count": 1, "time": when, "routing-keys": ["a"]}]
    assert back["tenant"] == "acme" and back["flag"] is True


def test_properties_round_trip_through_json() -> None:
    stamp = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    props = Basic.Properties(
        content_type="application/json", content_encoding="gzip", headers={"h": "v"},
        delivery_mode=2, priority=5, correlation_id="c-1", reply_to="replies",
        expiration="60000", message_id="m-1", timestamp=stamp, message_type="order",
        user_id="guest", app_id="shop",
    )
    as_json = properties_of(props)
    assert as_json == {
        "content_type": "application/json", "content_encoding": "gzip", "headers": {"h": "v"},
        "delivery_mode": 2, "priority": 5, "correlation_id": "c-1", "reply_to": "replies",
        "expiration": "60000", "message_id": "m-1", "timestamp": int(stamp.timestamp()),
        "type": "order", "user_id": "guest", "app_id": "shop",
    }
    again = outgoing_properties(as_json, login="guest")
    assert properties_of(again) == as_json
    assert outgoing_properties(as_json, login="other").user_id is None
    assert properties_of(Basic.Properties()) == {"delivery_mode": 1}


def delivered(
    body: bytes, *, exchange: str = "shop", routing_key: str = "order.created",
    headers: dict[str, Any] | None = None, tag: int = 7, redelivered: bool = False, **props: Any,
) -> DeliveredMessage:
    return DeliveredMessage(
        delivery=Basic.Deliver(
            consumer_tag="ctag", delivery_tag=tag, redelivered=redelivered,
            exchange=exchange, routing_key=routing_key,
        ),
        header=ContentHeader(
            properties=Basic.Properties(headers=headers, **props), body_size=len(body)
        ),
        body=body,
        channel=None,  # type: ignore[arg-type]
    )


def test_a_delivery_becomes_an_event() -> None:
    source = source_of("127.0.0.1", 5672, "/", "orders")
    assert source == "amqp://127.0.0.1:5672/%2F/orders"
    message = delivered(
        b'{"id": 1, "sku": "TEA-01"}', headers={"tenant": "acme", "x-iwb-inject": "mark-1"},
        content_type="application/json", delivery_mode=2, message_id="m-1", redelivered=True,
    )
    event = event_from_delivery(
        message, artifact="orders", queue="orders", source=source, handler="message",
    )
    assert (event.kind, event.type, event.source) == (
        "rabbitmq", "iwb.rabbitmq.message", source,
    )
    assert (event.subject, event.datacontenttype, event.handler) == (
        "order.created", "application/json", "message",
    )
    assert event.extensions == {"iwbinject": "mark-1"}
    assert event.transport == {
        "exchange": "shop", "routing_key": "order.created", "queue": "orders",
        "redelivered": True, "delivery_tag": 7,
        "properties": {
            "delivery_mode": 2, "content_type": "application/json", "message_id": "m-1",
            "headers": {"tenant": "acme"},
        },
    }
    rabbitmq.RabbitTransport.model_validate(event.transport)


def test_a_requeued_copy_shows_where_the_message_was_first_published() -> None:
    message = delivered(
        b"{}", exchange="", routing_key="orders",
        headers={"x-iwb-retries": 2, "x-iwb-exchange": "shop",
                 "x-iwb-routing-key": "order.created"},
    )
    event = event_from_delivery(message, artifact="o", queue="orders", source="s", handler="")
    assert (event.transport["exchange"], event.transport["routing_key"]) == (
        "shop", "order.created",
    )
    assert event.subject == "order.created"
    assert rabbitmq.Message.from_event(event).retries == 2


def test_message_view_reads_the_transport() -> None:
    event = Event(
        artifact="orders", kind="rabbitmq", type="iwb.rabbitmq.message", source="s",
        data=b'{"id": 3}', datacontenttype="application/json",
        transport={
            "exchange": "shop", "routing_key": "order.paid", "queue": "orders",
            "redelivered": False, "delivery_tag": 4,
            "properties": {"delivery_mode": 2, "headers": {"x-iwb-retries": 1, "t": "a"},
                           "timestamp": 1718000000, "reply_to": "r", "correlation_id": "c"},
        },
    )
    message = rabbitmq.Message.from_event(event)
    assert (message.exchange, message.routing_key, message.queue) == (
        "shop", "order.paid", "orders",
    )
    assert message.content_type == "application/json" and message.delivery_mode == 2
    assert message.timestamp == datetime.fromtimestamp(1718000000, tz=UTC)
    assert (message.reply_to, message.correlation_id, message.retries) == ("r", "c", 1)
    assert message.json() == {"id": 3} and message.text == '{"id": 3}'
    assert message.priority is None and message.headers["t"] == "a"
    assert message.event is event
    empty = rabbitmq.Message.from_event(Event("a", "rabbitmq", "t", "s", data=b"x"))
    assert (empty.queue, empty.delivery_mode, empty.headers, empty.retries) == ("", 1, {}, 0)


# ----------------------------------------------------------------------------- failures


def outcome(status: str = "error", error: str | None = "ValueError", **kw: Any) -> Outcome:
    return Outcome(
        "e1", status=status,  # type: ignore[arg-type]
        error=ErrorInfo(error, "boom") if error else None, disposition="reject", **kw,
    )


def test_permanent_failures_are_the_ones_that_never_bound() -> None:
    assert not is_permanent(outcome())
    assert not is_permanent(outcome(error="HandlerTimeout"))
    assert is_permanent(outcome(error="ValidationError", exception=BindingError("validation", "x")))
    assert is_permanent(outcome(error="MalformedPayload"))
    assert is_permanent(outcome(error="NoHandler"))
    assert is_permanent(outcome(status="rejected", error="TooLarge"))
    # a handler raising pydantic's ValidationError itself is a handler failure: retried
    assert not is_permanent(outcome(error="ValidationError", exception=ValueError("x")))


# ----------------------------------------------------------------------------- acks


class RecordingChannel:
    """Stands in for the aiormq channel: records the frames it is asked to send."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, int, bool]] = []

    async def basic_ack(self, tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.frames.append(("ack", tag, multiple))

    async def basic_reject(self, tag: int, *, requeue: bool = True) -> None:
        self.frames.append(("reject", tag, requeue))


async def test_acks_are_coalesced_without_crossing_an_unfinished_delivery() -> None:
    channel = RecordingChannel()
    errors: list[BaseException] = []
    acker = Acker(channel, errors.append)  # type: ignore[arg-type]
    for tag in range(1, 8):
        acker.track(tag)
    for tag in (1, 2, 3, 5):
        acker.ack(tag)
    await acker.flush()
    assert channel.frames == [("ack", 3, True), ("ack", 5, False)]
    await acker.reject(4, requeue=False)
    acker.ack(7)
    await acker.flush()
    assert channel.frames[2:] == [("reject", 4, False), ("ack", 7, False)]
    assert acker.pending == 1  # 6 is still being handled
    acker.ack(6)
    await asyncio.sleep(0)
    await acker.flush()
    assert channel.frames[4:] == [("ack", 6, False)]
    acker.ack(6)  # settled twice: nothing more is sent
    await acker.flush()
    assert len(channel.frames) == 5 and acker.pending == 0 and not errors


# ----------------------------------------------------------------------------- samples


def test_example_routing_keys_match_their_patterns() -> None:
    assert example_routing_key("order.*") == "order.example"
    assert example_routing_key("#.created") == "example.created"
    assert example_routing_key("order.created") == "order.created"
    assert example_routing_key("") == ""


def test_samples_bind_to_the_handler_payload(tmp_path: Path) -> None:
    listener = rabbitmq.Listener(
        name="orders", connection="main", queue="orders",
        bindings=[rabbitmq.Binding(exchange="shop", routing_key="order.*",
                                   exchange_type="topic")],
    )

    @listener.on_message
    async def bill(order: Order, message: rabbitmq.Message) -> dict[str, int]:
        return {"id": order.id}

    trigger = rabbitmq.RabbitTrigger(listener, context(tmp_path))
    samples = trigger.samples()
    assert [s.name for s in samples] == ["message", "request"]
    first = samples[0].event
    assert Order.model_validate_json(first.data) == Order(id=1, sku="TEA-01", qty=1)
    assert (first.transport["exchange"], first.transport["routing_key"]) == (
        "shop", "order.example",
    )
    assert first.source == "amqp://localhost:5672/%2F/orders"
    rabbitmq.RabbitTransport.model_validate(first.transport)
    request = samples[1].event.transport["properties"]
    assert request["reply_to"] == "orders.replies" and request["correlation_id"]


def test_samples_without_bindings_go_straight_to_the_queue(tmp_path: Path) -> None:
    listener = rabbitmq.Listener(name="raw", connection="main", queue="inbox")

    @listener.on_message
    async def keep(body: bytes) -> None:
        return None

    samples = rabbitmq.RabbitTrigger(listener, context(tmp_path)).samples()
    assert len(samples) == 1
    event = samples[0].event
    assert (event.transport["exchange"], event.transport["routing_key"]) == ("", "inbox")
    assert event.data == b"example"


def test_payload_example_follows_the_binding_rules() -> None:
    async def model(event: Event, message: rabbitmq.Message, order: Order) -> None: ...
    async def text(payload: str) -> None: ...
    async def nothing(event: Event) -> None: ...

    from workbench.plugin import HandlerSpec

    trigger = rabbitmq.RabbitTrigger
    assert payload_annotation(HandlerSpec("m", model), trigger) is Order
    assert payload_example(HandlerSpec("m", model), trigger)["sku"] == "TEA-01"
    assert payload_example(HandlerSpec("m", text), trigger) == "example"
    assert payload_example(HandlerSpec("m", nothing), trigger) is NO_PAYLOAD
