"""`Event.transport` of Kafka events: its schema and the codec of keys, headers and values.

Kafka keys, header values and values are bytes. In an event they are stored as text when
the bytes are UTF-8, and as `{"base64": "..."}` otherwise, so a captured event is readable
and still reproduces the exact bytes. `None` stays `null` (no key, a header without value,
a tombstone).

A record event (`iwb.kafka.record`) carries:

    {"topic": "orders", "partition": 2, "offset": 41, "key": "order-7",
     "headers": [["content-type", "application/json"], ["trace", {"base64": "AAE="}]],
     "timestamp": 1718000000000, "timestamp_type": 0, "group_id": "billing"}

plus `"tombstone": true` when the record has no value (its `data` is then empty).

A batch event (`iwb.kafka.batch`) carries `topic`, `partition`, `group_id`, `offset` (the
first record's), `last_offset` and `records`: one entry per record, in order, with `offset`,
`key`, `headers`, `timestamp`, `timestamp_type` and `value_encoding`, which says how the
record's value sits in the event's JSON array (see `iwb_kafka.events`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Base64Value",
    "KafkaBatchEntry",
    "KafkaTransport",
    "decode_bytes",
    "decode_headers",
    "encode_bytes",
    "encode_headers",
]

ValueEncoding = Literal["json", "text", "base64", "null"]


class Base64Value(BaseModel):
    """Bytes that are not UTF-8 text."""

    model_config = ConfigDict(extra="forbid")

    base64: str = Field(description="The bytes, base64-encoded (standard alphabet, padded).")


Encoded = str | Base64Value | None


class KafkaBatchEntry(BaseModel):
    """One record of a batch event (its value is the matching element of `data`)."""

    model_config = ConfigDict(extra="allow")

    offset: int | None = None
    key: Encoded = None
    headers: list[tuple[str, Encoded]] = Field(default_factory=list)
    timestamp: int | None = None
    timestamp_type: int | None = None
    value_encoding: ValueEncoding = Field(
        default="json",
        description="How the value sits in the event's JSON array: `json` (the value is "
        "that JSON), `text` (a string holding the UTF-8 value), `base64` (a string holding "
        "the base64 of the value) or `null` (a tombstone).",
    )


class KafkaTransport(BaseModel):
    """`Event.transport` of a Kafka record or batch: what re-produces it."""

    model_config = ConfigDict(extra="allow")

    topic: str = Field(
        default="", description="The topic; inject defaults it to the listener's only topic."
    )
    partition: int | None = Field(
        default=None, description="The partition; inject lets the producer choose when null."
    )
    offset: int | None = Field(
        default=None, description="The record's offset (a batch's first record's)."
    )
    key: Encoded = Field(default=None, description='The key: text, {"base64": ...} or null.')
    headers: list[tuple[str, Encoded]] = Field(
        default_factory=list, description="[name, value] pairs, in order, repeats kept."
    )
    timestamp: int | None = Field(default=None, description="Milliseconds since the epoch.")
    timestamp_type: int | None = Field(
        default=None,
        description="0: set by the producer (CreateTime), 1: by the broker (LogAppendTime).",
    )
    group_id: str | None = Field(
        default=None, description="The consumer group that received it."
    )
    tombstone: bool = Field(default=False, description="The record has no value (null).")
    last_offset: int | None = Field(
        default=None, description="Batch events: the last record's offset."
    )
    records: list[KafkaBatchEntry] | None = Field(
        default=None, description="Batch events: one entry per record, in order."
    )


def encode_bytes(raw: bytes | None) -> str | dict[str, str] | None:
    """Bytes as they are stored in a transport dict: text, `{"base64": ...}` or None."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def decode_bytes(value: Any, what: str) -> bytes | None:
    """The inverse of `encode_bytes`; also accepts bytes.

    Raises:
        ValueError: `value` is none of text, `{"base64": ...}`, bytes or None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{what}: {value['base64']!r} is not valid base64 ({exc})") from None
    raise ValueError(
        f"{what} must be text, {{\"base64\": \"...\"}} or null, not {value!r}"
    )


def encode_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[list[Any]]:
    """Record headers as `[[name, text | {"base64": ...} | None], ...]`."""
    return [[name, encode_bytes(value)] for name, value in headers]


def decode_headers(value: Any) -> list[tuple[str, bytes | None]]:
    """Headers of a transport dict (or a name → value mapping) as Kafka headers.

    Raises:
        ValueError: the headers are not a list of [name, value] pairs or a mapping.
    """
    if value is None:
        return []
    pairs: Iterable[Any] = value.items() if isinstance(value, Mapping) else value
    out: list[tuple[str, bytes | None]] = []
    try:
        for pair in pairs:
            name, raw = pair
            if not isinstance(name, str):
                raise ValueError(f"a header name must be text, not {name!r}")
            out.append((name, decode_bytes(raw, f"header {name!r}")))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"headers must be [[name, value], ...] pairs or a mapping: {exc}"
        ) from None
    return out
