"""Messages: the transport fields of an event, the `Message` view handlers ask for, and the
conversions between AMQP properties and JSON.

`Event.transport` of a RabbitMQ event holds everything needed to publish the message again
as it arrived:

    {"exchange": "shop", "routing_key": "order.created", "queue": "orders",
     "redelivered": false, "delivery_tag": 7,
     "properties": {"content_type": "application/json", "content_encoding": null,
                    "headers": {"tenant": "acme"}, "delivery_mode": 2, "priority": 0,
                    "correlation_id": null, "reply_to": null, "expiration": null,
                    "message_id": "m-1", "timestamp": 1718000000, "type": null,
                    "user_id": null, "app_id": "shop"}}

`expiration` is the AMQP string of milliseconds and `timestamp` POSIX seconds. Header
values that JSON cannot hold keep their AMQP type through a one-key marker object:
`{"$bytes": "<base64>"}`, `{"$timestamp": 1718000000}`, `{"$decimal": "1.50"}`. Bytes
that are UTF-8 read as a string; other bytes are published back as an AMQP byte array.

A message the listener put back on the queue after a failure (see `iwb_rabbitmq.trigger`)
arrives through the default exchange; its event still shows the exchange and routing key it
was first published with (kept in the `x-iwb-exchange` / `x-iwb-routing-key` headers).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from workbench.events import Event, new_id
from workbench.plugin import TransportView

if TYPE_CHECKING:
    from aiormq.abc import DeliveredMessage
    from pamqp.commands import Basic

__all__ = [
    "BOOKKEEPING_HEADERS",
    "EVENT_TYPE",
    "INJECT_HEADER",
    "KIND",
    "Message",
    "RabbitProperties",
    "RabbitTransport",
    "event_from_delivery",
    "headers_from_json",
    "headers_to_json",
    "outgoing_properties",
    "properties_of",
    "retries_of",
    "source_of",
]

KIND = "rabbitmq"
EVENT_TYPE = "iwb.rabbitmq.message"

INJECT_HEADER = "x-iwb-inject"
"""Carries `Event.extensions["iwbinject"]` of an injected event to the received one."""
RETRIES_HEADER = "x-iwb-retries"
"""How many times the listener has put the message back after its handler failed."""
EXCHANGE_HEADER = "x-iwb-exchange"
"""The exchange a requeued or dead-lettered message was first published to."""
ROUTING_KEY_HEADER = "x-iwb-routing-key"
"""The routing key a requeued or dead-lettered message was first published with."""
ERROR_HEADERS = (
    "x-iwb-error-type", "x-iwb-error-message", "x-iwb-error-where", "x-iwb-event-id",
    "x-iwb-handler", "x-iwb-queue",
)
BOOKKEEPING_HEADERS = frozenset(
    {INJECT_HEADER, RETRIES_HEADER, EXCHANGE_HEADER, ROUTING_KEY_HEADER, *ERROR_HEADERS}
)
"""Headers the listener itself writes; `inject` leaves them out, so a replayed message
starts afresh."""

PROPERTY_NAMES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority",
    "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
    "user_id", "app_id",
)


class RabbitProperties(BaseModel):
    """The AMQP basic properties of a message."""

    model_config = ConfigDict(extra="forbid")

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] = Field(
        default_factory=dict,
        description="Application headers; non-JSON AMQP values as {'$bytes': base64}, "
        "{'$timestamp': seconds} or {'$decimal': text}.",
    )
    delivery_mode: int = Field(
        default=2, ge=1, le=2, description="1: transient, 2: persistent."
    )
    priority: int | None = Field(default=None, ge=0, le=255)
    correlation_id: str | None = None
    reply_to: str | None = Field(
        default=None, description="Queue the handler's return value goes to."
    )
    expiration: str | None = Field(
        default=None, description="Per-message TTL in milliseconds, as AMQP writes it ('60000')."
    )
    message_id: str | None = None
    timestamp: int | None = Field(default=None, description="POSIX seconds.")
    type: str | None = None
    user_id: str | None = Field(
        default=None, description="Must be the publishing connection's user, or left out."
    )
    app_id: str | None = None


class RabbitTransport(BaseModel):
    """`Event.transport` of a RabbitMQ message: what publishes it again as it arrived."""

    model_config = ConfigDict(extra="forbid")

    exchange: str = Field(
        default="", description="The exchange it was published to ('' is the default exchange)."
    )
    routing_key: str = Field(
        default="", description="The routing key it was published with."
    )
    queue: str = Field(default="", description="The queue it was consumed from.")
    redelivered: bool = False
    delivery_tag: int | None = None
    properties: RabbitProperties = Field(default_factory=lambda: RabbitProperties())


# --------------------------------------------------------------------------- headers

_SCALARS = (str, int, float, bool, type(None))


def _value_to_json(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"$bytes": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$timestamp": int(stamp.timestamp())}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {str(k): _value_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value_to_json(v) for v in value]
    return str(value)


def headers_to_json(headers: dict[str, Any] | None) -> dict[str, Any]:
    """AMQP headers as JSON values (see the module docstring for the markers)."""
    if not headers:
        return {}
    out: dict[str, Any] = {}
    for key, value in headers.items():
        out[key] = value if isinstance(value, _SCALARS) else _value_to_json(value)
    return out


def _value_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((marker, inner),) = value.items()
            if marker == "$bytes" and isinstance(inner, str):
                return bytearray(base64.b64decode(inner))  # AMQP byte array ('x')
            if marker == "$timestamp" and isinstance(inner, int | float):
                return datetime.fromtimestamp(inner, tz=UTC)
            if marker == "$decimal" and isinstance(inner, str):
                return Decimal(inner)
        return {str(k): _value_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value_from_json(v) for v in value]
    return value


def headers_from_json(headers: dict[str, Any] | None) -> dict[str, Any]:
    """The inverse of `headers_to_json`: AMQP header values to publish."""
    if not headers:
        return {}
    return {str(k): _value_from_json(v) for k, v in headers.items()}


def retries_of(headers: dict[str, Any] | None) -> int:
    """The listener's retry count of a message (its `x-iwb-retries` header)."""
    if not headers:
        return 0
    value = headers.get(RETRIES_HEADER, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


# --------------------------------------------------------------------------- events


def source_of(host: str, port: int, vhost: str, queue: str) -> str:
    """The CloudEvents `source` of a queue's events: `amqp://host:port/<vhost>/<queue>`,
    the virtual host percent-encoded (`/` is `%2F`)."""
    return f"amqp://{host}:{port}/{quote(vhost, safe='')}/{queue}"


def properties_of(props: Basic.Properties) -> dict[str, Any]:
    """AMQP basic properties as JSON (the transport's `properties`): the properties the
    message has; one it does not have is left out (read it as None, headers as {})."""
    out: dict[str, Any] = {"delivery_mode": props.delivery_mode or 1}
    for name, attr in _PROPERTY_ATTRS:
        value = getattr(props, attr)
        if value is not None:
            out[name] = value
    headers = props.headers
    if headers:
        out["headers"] = headers_to_json(headers)
    stamp = props.timestamp
    if stamp is not None:
        out["timestamp"] = int(stamp.timestamp())
    return out


_PROPERTY_ATTRS = (
    ("content_type", "content_type"), ("content_encoding", "content_encoding"),
    ("priority", "priority"), ("correlation_id", "correlation_id"),
    ("reply_to", "reply_to"), ("expiration", "expiration"), ("message_id", "message_id"),
    ("type", "message_type"), ("user_id", "user_id"), ("app_id", "app_id"),
)


def event_from_delivery(
    message: DeliveredMessage,
    *,
    artifact: str,
    queue: str,
    source: str,
    handler: str,
    event_id: str | None = None,
) -> Event:
    """The event of one delivered message (`event_id`: a fresh one when None)."""
    props = message.header.properties
    properties = properties_of(props)
    headers = properties.get("headers")
    delivery = message.delivery
    exchange: str = getattr(delivery, "exchange", "") or ""
    routing_key: str = getattr(delivery, "routing_key", "") or ""
    extensions: dict[str, Any] = {}
    if headers:
        original = headers.get(EXCHANGE_HEADER)
        if isinstance(original, str):
            exchange = original
            routing_key = str(headers.get(ROUTING_KEY_HEADER, routing_key))
        mark = headers.pop(INJECT_HEADER, None)
        if mark is not None:
            extensions["iwbinject"] = str(mark)
    return Event(
        id=event_id or new_id(),
        artifact=artifact,
        kind=KIND,
        type=EVENT_TYPE,
        source=source,
        data=message.body,
        handler=handler,
        subject=routing_key,
        datacontenttype=props.content_type,
        transport={
            "exchange": exchange,
            "routing_key": routing_key,
            "queue": queue,
            "redelivered": bool(getattr(delivery, "redelivered", False)),
            "delivery_tag": getattr(delivery, "delivery_tag", None),
            "properties": properties,
        },
        extensions=extensions,
    )


# --------------------------------------------------------------------------- the view


@dataclass(slots=True)
class Message(TransportView):
    """The delivery behind an event: ask for it by annotation (`message: rabbitmq.Message`).

    Built from the event's transport fields, so a replayed or injected event gives the
    handler what the original delivery did.
    """

    body: bytes
    exchange: str
    routing_key: str
    queue: str
    redelivered: bool
    delivery_tag: int | None
    content_type: str | None
    content_encoding: str | None
    headers: dict[str, Any]
    delivery_mode: int
    priority: int | None
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None
    message_id: str | None
    timestamp: datetime | None
    type: str | None
    user_id: str | None
    app_id: str | None
    event: Event = field(repr=False)

    @classmethod
    def from_event(cls, event: Event) -> Message:
        t = event.transport
        p: dict[str, Any] = t.get("properties") or {}
        stamp = p.get("timestamp")
        return cls(
            body=event.data,
            exchange=str(t.get("exchange") or ""),
            routing_key=str(t.get("routing_key") or ""),
            queue=str(t.get("queue") or ""),
            redelivered=bool(t.get("redelivered", False)),
            delivery_tag=t.get("delivery_tag"),
            content_type=p.get("content_type", event.datacontenttype),
            content_encoding=p.get("content_encoding"),
            headers=dict(p.get("headers") or {}),
            delivery_mode=int(p.get("delivery_mode") or 1),
            priority=p.get("priority"),
            correlation_id=p.get("correlation_id"),
            reply_to=p.get("reply_to"),
            expiration=p.get("expiration"),
            message_id=p.get("message_id"),
            timestamp=None if stamp is None else datetime.fromtimestamp(stamp, tz=UTC),
            type=p.get("type"),
            user_id=p.get("user_id"),
            app_id=p.get("app_id"),
            event=event,
        )

    @property
    def retries(self) -> int:
        """How many times the listener has put this message back after a failure."""
        return retries_of(self.headers)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return json.loads(self.body)


# --------------------------------------------------------------------------- outbound


def outgoing_properties(properties: dict[str, Any], *, login: str | None = None) -> Any:
    """AMQP basic properties (`pamqp.commands.Basic.Properties`) from their JSON form (as
    in the transport).

    `user_id` is kept only when it is `login` (the publishing connection's user): the broker
    refuses any other.
    """
    from pamqp.commands import Basic

    stamp = properties.get("timestamp")
    expiration = properties.get("expiration")
    user_id = properties.get("user_id")
    return Basic.Properties(
        content_type=properties.get("content_type"),
        content_encoding=properties.get("content_encoding"),
        headers=headers_from_json(properties.get("headers")),
        delivery_mode=int(properties.get("delivery_mode") or 1),
        priority=properties.get("priority"),
        correlation_id=properties.get("correlation_id"),
        reply_to=properties.get("reply_to"),
        expiration=None if expiration in (None, "") else str(expiration),
        message_id=properties.get("message_id"),
        timestamp=None if stamp is None else datetime.fromtimestamp(stamp, tz=UTC),
        message_type=properties.get("type"),
        user_id=user_id if user_id is not None and user_id == login else None,
        app_id=properties.get("app_id"),
    )
