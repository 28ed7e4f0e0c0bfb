"""Sample events for the inject console, built from the handler's payload type.

One sample per binding (published to that exchange with a routing key that matches its
pattern), or one through the default exchange to the queue when the listener has no
bindings; plus a request sample (with `reply_to` and `correlation_id`) when the handler
returns something. The body is an example of the handler's payload type
(`workbench.samples.payload_example`), so the sample binds without edits.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from typing import Any

from iwb_rabbitmq.listener import HANDLER_KEY, ListenerConfig
from iwb_rabbitmq.message import EVENT_TYPE, KIND
from workbench.events import Event
from workbench.plugin import HandlerSpec, Sample, Trigger
from workbench.samples import NO_PAYLOAD, payload_example

__all__ = ["build_samples", "example_routing_key"]


def example_routing_key(pattern: str) -> str:
    """A routing key that a topic binding pattern matches (`order.*` → `order.example`,
    `#.created` → `example.created`)."""
    words = ["example" if word in ("*", "#") else word for word in pattern.split(".")]
    return ".".join(words) if pattern else ""


def _body(example: Any) -> tuple[bytes, str | None]:
    if example is NO_PAYLOAD:
        return b"", None
    if isinstance(example, bytes):
        return example, "application/octet-stream"
    if isinstance(example, str):
        return example.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(example, indent=2).encode("utf-8"), "application/json"


def _returns_value(spec: HandlerSpec) -> bool:
    annotation = inspect.signature(spec.func).return_annotation
    return annotation not in (None, "None", inspect.Signature.empty)


def _event(
    name: str, cfg: ListenerConfig, source: str, exchange: str, routing_key: str,
    body: bytes, content_type: str | None, extra: Mapping[str, Any] | None = None,
) -> Event:
    properties: dict[str, Any] = {
        "content_type": content_type,
        "content_encoding": None,
        "headers": {},
        "delivery_mode": 2,
        "priority": None,
        "correlation_id": None,
        "reply_to": None,
        "expiration": None,
        "message_id": None,
        "timestamp": None,
        "type": None,
        "user_id": None,
        "app_id": None,
        **(extra or {}),
    }
    return Event(
        artifact=name,
        kind=KIND,
        type=EVENT_TYPE,
        source=source,
        data=body,
        handler=HANDLER_KEY,
        subject=routing_key,
        datacontenttype=content_type,
        transport={
            "exchange": exchange,
            "routing_key": routing_key,
            "queue": cfg.queue,
            "redelivered": False,
            "delivery_tag": None,
            "properties": properties,
        },
    )


def build_samples(
    name: str,
    cfg: ListenerConfig,
    handlers: Mapping[str, HandlerSpec],
    source: str,
    trigger_cls: type[Trigger[Any]],
) -> list[Sample]:
    """The listener's sample events (none when it has no handler yet)."""
    spec = handlers.get(HANDLER_KEY)
    if spec is None:
        return []
    body, content_type = _body(payload_example(spec, trigger_cls))
    routes: list[tuple[str, str, str]] = []
    for binding in cfg.bindings:
        key = example_routing_key(binding.routing_key)
        routes.append((
            binding.exchange, key,
            f"published to exchange {binding.exchange!r} with routing key {key!r}",
        ))
    if not routes:
        routes.append(("", cfg.queue, f"sent straight to queue {cfg.queue!r}"))
    samples: list[Sample] = []
    for i, (exchange, key, how) in enumerate(routes):
        event = _event(name, cfg, source, exchange, key, body, content_type)
        label = "message" if i == 0 else f"message-{exchange or 'default'}-{i}"
        samples.append(Sample(label, f"A message {how}", event))
    if _returns_value(spec):
        exchange, key, how = routes[0]
        event = _event(
            name, cfg, source, exchange, key, body, content_type,
            {"reply_to": f"{cfg.queue}.replies", "correlation_id": "sample-1"},
        )
        samples.append(Sample(
            "request",
            f"A request {how}; the handler's return value is published to reply_to",
            event,
        ))
    return samples
