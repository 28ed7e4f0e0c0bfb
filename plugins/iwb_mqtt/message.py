"""MQTT messages as events: the transport fields, the `Message` view, MQTT 5 properties.

An arriving message becomes an `Event`:

- `type` `iwb.mqtt.message`, `source` `mqtt://<host>:<port>`, `subject` the topic;
- `data` the payload, exactly as received;
- `datacontenttype`: the MQTT 5 Content Type property when the message has one; otherwise
  `application/json` when the payload's first non-blank byte is `{` or `[` (a sniff, not a
  parse: a malformed JSON payload is then reported by the handler's binding as
  malformed); otherwise none (the runtime still parses a payload for a handler that asks
  for a model, so JSON scalars bind too);
- `transport`: `topic`, `qos`, `retain`, `mid`, `dup` and, for MQTT 5, `properties`
  (`user_properties` as `[name, value]` pairs in order, `content_type`, `response_topic`,
  `correlation_data` in base64, `message_expiry_interval`, `payload_format_indicator`,
  `subscription_identifiers`) — what it takes to publish the message again as it was.

`retain` is true for a message the broker kept and sent because a subscription was made
(the listener subscribes without "retain as published", so on MQTT 3.1.1 and 5 alike a
live message arrives with `retain` false even when its publisher set it).

The inject mark (`Event.extensions["iwbinject"]`) travels as the MQTT 5 user property
`iwb-inject`, which is taken off the transport fields when the message arrives.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from iwb_mqtt.topics import matches
from workbench.events import Event
from workbench.plugin import TransportView

if TYPE_CHECKING:
    from paho.mqtt.client import MQTTMessage
    from paho.mqtt.properties import Properties

__all__ = [
    "EVENT_TYPE",
    "INJECT_PROPERTY",
    "KIND",
    "Message",
    "MqttProperties",
    "MqttTransport",
    "event_from_message",
    "properties_from_transport",
    "properties_to_paho",
    "sniff_content_type",
]

KIND = "mqtt"
EVENT_TYPE = "iwb.mqtt.message"
INJECT_PROPERTY = "iwb-inject"
"""The MQTT 5 user property that carries the inject mark."""

# paho attribute → transport key, for the PUBLISH properties a message can carry.
_PAHO_NAMES = {
    "PayloadFormatIndicator": "payload_format_indicator",
    "MessageExpiryInterval": "message_expiry_interval",
    "ContentType": "content_type",
    "ResponseTopic": "response_topic",
    "CorrelationData": "correlation_data",
    "SubscriptionIdentifier": "subscription_identifiers",
    "UserProperty": "user_properties",
}
_PUBLISHABLE = {
    "payload_format_indicator": "PayloadFormatIndicator",
    "message_expiry_interval": "MessageExpiryInterval",
    "content_type": "ContentType",
    "response_topic": "ResponseTopic",
    "correlation_data": "CorrelationData",
    "user_properties": "UserProperty",
}
"""Properties a client may publish (a subscription identifier is the broker's to set)."""


class MqttProperties(BaseModel):
    """MQTT 5 properties of a message (`Event.transport["properties"]`)."""

    model_config = ConfigDict(extra="forbid")

    user_properties: list[tuple[str, str]] = Field(
        default_factory=list, description="[name, value] pairs, in order, repeats kept."
    )
    content_type: str | None = None
    response_topic: str | None = Field(
        default=None, description="Where the publisher wants a reply (request/response)."
    )
    correlation_data: str | None = Field(
        default=None, description="Correlation data of a request, base64-encoded."
    )
    message_expiry_interval: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    payload_format_indicator: Literal[0, 1] | None = Field(
        default=None, description="1: the payload is UTF-8 text."
    )
    subscription_identifiers: list[int] = Field(
        default_factory=list,
        description="Set by the broker for the matching subscriptions; not published.",
    )


class MqttTransport(BaseModel):
    """`Event.transport` of an MQTT message: what reproduces it."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(description="The topic the message was published to.")
    qos: Literal[0, 1, 2] = 0
    retain: bool = Field(default=False, description="Sent from the broker's retained store.")
    mid: int = Field(default=0, description="The packet identifier (0 for QoS 0).")
    dup: bool = Field(default=False, description="The broker sent it again (redelivery).")
    properties: MqttProperties | None = Field(default=None, description="MQTT 5 only.")


def sniff_content_type(payload: bytes) -> str | None:
    """`application/json` when the payload looks like a JSON object or array, else None."""
    head = payload[:64].lstrip()[:1]
    return "application/json" if head in (b"{", b"[") else None


def _properties_dict(props: Properties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, value in vars(props).items():
        key = _PAHO_NAMES.get(attr)
        if key is None:
            continue
        if key == "correlation_data":
            value = base64.b64encode(value).decode("ascii")
        elif key == "user_properties":
            value = [[str(k), str(v)] for k, v in value]
        out[key] = value
    return out


def event_from_message(
    message: MQTTMessage, *, artifact: str, source: str, handler: str
) -> Event:
    """The event of a received paho message (MQTT 3.1.1 or 5)."""
    payload = cast(bytes, message.payload)
    transport: dict[str, Any] = {
        "topic": message.topic,
        "qos": message.qos,
        "retain": bool(message.retain),
        "mid": message.mid,
        "dup": bool(message.dup),
    }
    content_type: str | None = None
    extensions: dict[str, Any] = {}
    props = getattr(message, "properties", None)
    if props is not None:
        fields = _properties_dict(props)
        users = fields.get("user_properties")
        if users:
            kept = [pair for pair in users if pair[0] != INJECT_PROPERTY]
            if len(kept) != len(users):
                mark = next(v for k, v in users if k == INJECT_PROPERTY)
                extensions["iwbinject"] = mark
                if kept:
                    fields["user_properties"] = kept
                else:
                    del fields["user_properties"]
        if fields:
            transport["properties"] = fields
        content_type = fields.get("content_type")
    if content_type is None:
        content_type = sniff_content_type(payload)
    return Event(
        artifact=artifact,
        kind=KIND,
        type=EVENT_TYPE,
        source=source,
        data=payload,
        transport=transport,
        handler=handler,
        subject=transport["topic"],
        datacontenttype=content_type,
        extensions=extensions,
    )


# --------------------------------------------------------------------------- publishing


def _user_pairs(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        items: Iterable[Any] = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = value
    else:
        raise ValueError(
            f"user_properties must be [name, value] pairs or a mapping, not {value!r}"
        )
    pairs: list[tuple[str, str]] = []
    for item in items:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            raise ValueError(f"user_properties: {item!r} is not a [name, value] pair")
        pairs.append((str(item[0]), str(item[1])))
    return pairs


def properties_to_paho(properties: Mapping[str, Any]) -> Properties | None:
    """paho PUBLISH properties from a mapping with the `MqttProperties` keys (correlation
    data as bytes, or text). None when the mapping sets nothing. Raises ValueError for an
    unknown key or a bad value."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    unknown = sorted(set(properties) - set(_PUBLISHABLE) - {"subscription_identifiers"})
    if unknown:
        raise ValueError(
            f"unknown MQTT property {unknown[0]!r}; use {', '.join(sorted(_PUBLISHABLE))}"
        )
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    empty = True
    for key, attr in _PUBLISHABLE.items():
        value = properties.get(key)
        if value is None or (key == "user_properties" and not value):
            continue
        if key == "user_properties":
            value = _user_pairs(value)
        elif key == "correlation_data" and isinstance(value, str):
            value = value.encode("utf-8")
        try:
            setattr(props, attr, value)
        except Exception as exc:  # paho raises MQTTException with the rule broken
            raise ValueError(f"MQTT property {key}={value!r}: {exc}") from None
        empty = False
    return None if empty else props


def properties_from_transport(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The publish form of `Event.transport["properties"]`: correlation data decoded from
    base64, the broker-set subscription identifiers left out."""
    out = {k: v for k, v in fields.items() if k in _PUBLISHABLE and v is not None}
    data = out.get("correlation_data")
    if isinstance(data, str):
        out["correlation_data"] = base64.b64decode(data)
    return out


# --------------------------------------------------------------------------- handler view


class Message(TransportView):
    """The MQTT message behind an event, for handlers that ask for it by annotation.

        @sensors.on_message
        async def record(reading: Reading, message: mqtt.Message) -> None:
            if message.response_topic:
                await main.publish(message.response_topic, {"ok": True},
                                   properties={"correlation_data": message.correlation_data})
    """

    __slots__ = (
        "content_type", "correlation_data", "dup", "message_expiry_interval", "mid",
        "payload", "payload_format_indicator", "qos", "response_topic", "retain",
        "subscription_identifiers", "topic", "user_properties",
    )

    def __init__(
        self,
        *,
        topic: str,
        payload: bytes = b"",
        qos: int = 0,
        retain: bool = False,
        mid: int = 0,
        dup: bool = False,
        user_properties: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        message_expiry_interval: int | None = None,
        payload_format_indicator: int | None = None,
        subscription_identifiers: Iterable[int] = (),
    ) -> None:
        self.topic = topic
        """The topic the message was published to."""
        self.payload = payload
        """The payload as received."""
        self.qos = qos
        """The QoS it was delivered with (the lower of the publish and subscription QoS)."""
        self.retain = retain
        """It came from the broker's retained store (sent because a subscription was made)."""
        self.mid = mid
        self.dup = dup
        """The broker sent it again: it may have been handled before."""
        self.user_properties: list[tuple[str, str]] = list(user_properties)
        """MQTT 5 user properties, in order, repeats kept."""
        self.content_type = content_type
        """MQTT 5 Content Type (as published; not the sniffed `datacontenttype`)."""
        self.response_topic = response_topic
        self.correlation_data = correlation_data
        self.message_expiry_interval = message_expiry_interval
        self.payload_format_indicator = payload_format_indicator
        self.subscription_identifiers: list[int] = list(subscription_identifiers)

    @classmethod
    def from_event(cls, event: Event) -> Message:
        t = event.transport
        props = t.get("properties") or {}
        data = props.get("correlation_data")
        return cls(
            topic=str(t.get("topic") or event.subject or ""),
            payload=event.data,
            qos=int(t.get("qos", 0)),
            retain=bool(t.get("retain", False)),
            mid=int(t.get("mid", 0)),
            dup=bool(t.get("dup", False)),
            user_properties=[(str(k), str(v)) for k, v in props.get("user_properties") or ()],
            content_type=props.get("content_type"),
            response_topic=props.get("response_topic"),
            correlation_data=base64.b64decode(data) if isinstance(data, str) else None,
            message_expiry_interval=props.get("message_expiry_interval"),
            payload_format_indicator=props.get("payload_format_indicator"),
            subscription_identifiers=props.get("subscription_identifiers") or (),
        )

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (undecodable bytes replaced)."""
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The payload parsed as JSON; raises `ValueError` when it is not JSON."""
        return json.loads(self.payload)

    def matches(self, topic_filter: str) -> bool:
        """Whether the message's topic matches `topic_filter` (`sensors/+/temp`)."""
        return matches(topic_filter, self.topic)

    def user_property(self, name: str, default: str | None = None) -> str | None:
        """The first value of the user property `name`."""
        return next((v for k, v in self.user_properties if k == name), default)

    @property
    def properties(self) -> dict[str, Any]:
        """The MQTT 5 properties to publish it again: `publish(..., properties=...)`."""
        out: dict[str, Any] = {}
        if self.user_properties:
            out["user_properties"] = list(self.user_properties)
        for key in ("content_type", "response_topic", "correlation_data",
                    "message_expiry_interval", "payload_format_indicator"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, qos={self.qos}, {len(self.payload)} bytes)"
