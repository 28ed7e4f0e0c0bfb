"""Sample events for the inject console: one per subscribed topic.

The value comes from the handler's payload type (`workbench.samples.payload_example`: a
pydantic model, `list[Model]` for a batch handler, a dataclass, `dict`, ...), so the sample
binds without edits; a handler that takes `bytes`, `str` or no payload gets the text
`example`. Keys and headers start empty; the partition is left to the producer.
"""

from __future__ import annotations

import json
from collections import abc
from typing import Annotated, Any, get_args, get_origin

from iwb_kafka.events import BATCH_TYPE, RECORD_TYPE
from iwb_kafka.listener import ListenerConfig
from iwb_kafka.record import Record
from workbench.events import Event
from workbench.plugin import HandlerSpec, Sample, Trigger
from workbench.samples import NO_PAYLOAD, payload_example

__all__ = ["build_samples", "record_list_annotation"]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def record_list_annotation(annotation: Any) -> bool:
    """`list[kafka.Record]` (or a Sequence/tuple of them, optional or not)."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    if get_origin(annotation) not in (list, tuple, abc.Sequence):
        return False
    items = [a for a in get_args(annotation) if a is not Ellipsis]
    return len(items) == 1 and items[0] is Record


def _record_value(example: Any) -> tuple[bytes, str]:
    if example is NO_PAYLOAD or isinstance(example, str):
        return (b"example" if example is NO_PAYLOAD else example.encode("utf-8")), TEXT
    if isinstance(example, bytes):
        return example, "application/octet-stream"
    return json.dumps(example, indent=2).encode("utf-8"), JSON


def _batch_values(example: Any) -> tuple[list[Any], str]:
    if example is NO_PAYLOAD or isinstance(example, str | bytes):
        return ["example"], "text"
    return (example if isinstance(example, list) else [example]), "json"


def build_samples(
    name: str,
    config: ListenerConfig,
    handlers: dict[str, HandlerSpec],
    bootstrap: str,
    trigger_cls: type[Trigger[Any]],
) -> list[Sample]:
    """One sample per topic (one for a pattern listener, with the topic left to fill in)."""
    batch = "batch" in handlers
    spec = handlers.get("batch" if batch else "record")
    example = payload_example(spec, trigger_cls) if spec is not None else NO_PAYLOAD
    group_id = config.group_id or name
    samples: list[Sample] = []
    for topic in config.topics or [""]:
        transport: dict[str, Any] = {
            "topic": topic, "partition": None, "offset": None, "key": None, "headers": [],
            "timestamp": None, "timestamp_type": None, "group_id": group_id,
        }
        if batch:
            values, encoding = _batch_values(example)
            transport["records"] = [
                {"offset": None, "key": None, "headers": [], "timestamp": None,
                 "timestamp_type": None, "value_encoding": encoding}
                for _ in values
            ]
            data, content_type = json.dumps(values, indent=2).encode("utf-8"), JSON
        else:
            data, content_type = _record_value(example)
        event = Event(
            artifact=name,
            kind="kafka",
            type=BATCH_TYPE if batch else RECORD_TYPE,
            source=f"kafka://{bootstrap}/{topic}",
            data=data,
            transport=transport,
            handler="batch" if batch else "record",
            datacontenttype=content_type,
        )
        where = topic or f"a topic matching /{config.pattern}/ (set transport.topic)"
        what = "a batch of records" if batch else "a record"
        samples.append(Sample(
            topic or "record",
            f"{what} on {where}" + (f" for {spec.ref}" if spec is not None else ""),
            event,
        ))
    return samples
