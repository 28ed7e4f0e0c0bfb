"""Kafka records → events, and events → records to produce (inject, dead letters).

A record becomes one event (`iwb.kafka.record`):

- `source` is `kafka://<bootstrap servers>/<topic>`, `subject` the key when it is UTF-8
  text (else None), `time` the record's timestamp, `data` the value bytes (empty for a
  tombstone), `transport` as described in `iwb_kafka.transport`;
- `datacontenttype` is the record's `content-type` header when it has one; else the
  listener's `content_type` option when set; else `application/json` when the value is
  UTF-8 JSON; else None (the bytes are opaque: a handler that expects a model then gets a
  `MalformedPayload` outcome);
- an `iwb-inject` header (set by `inject`) becomes `extensions["iwbinject"]` and is left
  out of the transport headers.

A batch (`on_batch` handlers) becomes one event (`iwb.kafka.batch`) for up to `max_batch`
consecutive records of one partition. Its `data` is a JSON array with one element per
record, in offset order: the value itself when it is UTF-8 JSON (spliced in byte for
byte), a JSON string holding the text when it is other UTF-8 text, a JSON string holding
the base64 of the bytes otherwise, and `null` for a tombstone; `transport.records[i]
.value_encoding` (`json`, `text`, `base64`, `null`) tells which. So a handler can take
`list[Order]` (validated as one payload) and/or `list[kafka.Record]` (the records with
their keys, headers and offsets). `subject` is `<topic>/<partition>@<first>-<last>`,
`time` the first record's timestamp, `datacontenttype` `application/json`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic_core import from_json

from iwb_kafka.transport import decode_bytes, decode_headers, encode_bytes
from workbench.events import Event, new_id

__all__ = [
    "BATCH_TYPE",
    "INJECT_HEADER",
    "RECORD_TYPE",
    "EventFactory",
    "OutgoingRecord",
    "RecordLike",
    "batch_values",
    "outgoing_records",
]

RECORD_TYPE = "iwb.kafka.record"
BATCH_TYPE = "iwb.kafka.batch"
INJECT_HEADER = "iwb-inject"
"""Header `inject` adds; its value becomes the received event's `iwbinject` extension."""
JSON = "application/json"


class RecordLike(Protocol):
    """What the factory reads of a record (an aiokafka `ConsumerRecord` fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def timestamp_type(self) -> int: ...


def _time(timestamp: int | None) -> datetime:
    if timestamp is None or timestamp < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(timestamp / 1000.0, UTC)


def _is_json(value: bytes) -> bool:
    """UTF-8 JSON (pydantic's parser: five times faster than json.loads here, and it does
    not take UTF-16/32 as json.loads would)."""
    try:
        from_json(value)
    except ValueError:
        return False
    return True


class EventFactory:
    """Builds the events of one listener (its name, cluster, group and content type)."""

    __slots__ = ("_sources", "artifact", "bootstrap", "content_type", "group_id")

    def __init__(
        self, artifact: str, bootstrap: str, group_id: str | None, content_type: str | None
    ) -> None:
        self.artifact = artifact
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.content_type = content_type
        self._sources: dict[str, str] = {}

    def source(self, topic: str) -> str:
        """`kafka://<bootstrap>/<topic>`."""
        src = self._sources.get(topic)
        if src is None:
            src = self._sources[topic] = f"kafka://{self.bootstrap}/{topic}"
        return src

    def _headers(self, record: RecordLike) -> tuple[list[list[Any]], str | None, str | None]:
        """Transport headers, the content-type header and the inject mark."""
        out: list[list[Any]] = []
        content_type: str | None = None
        mark: str | None = None
        for name, value in record.headers:
            if name == INJECT_HEADER:
                mark = value.decode("utf-8", "replace") if value is not None else ""
                continue
            if content_type is None and value is not None and name.lower() == "content-type":
                content_type = value.decode("latin-1")
            out.append([name, encode_bytes(value)])
        return out, content_type, mark

    def record(self, record: RecordLike) -> Event:
        """One event for one record."""
        if record.headers:
            headers, content_type, mark = self._headers(record)
        else:
            headers, content_type, mark = [], None, None
        value = record.value
        data = b"" if value is None else value
        if content_type is None:
            content_type = self.content_type
            if content_type is None and data and _is_json(data):
                content_type = JSON
        key = record.key
        encoded_key = None if key is None else encode_bytes(key)
        transport: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": encoded_key,
            "headers": headers,
            "timestamp": record.timestamp,
            "timestamp_type": record.timestamp_type,
            "group_id": self.group_id,
        }
        if value is None:
            transport["tombstone"] = True
        return Event(
            artifact=self.artifact,
            kind="kafka",
            type=RECORD_TYPE,
            source=self.source(record.topic),
            data=data,
            transport=transport,
            handler="record",
            subject=encoded_key if isinstance(encoded_key, str) else None,
            datacontenttype=content_type,
            id=new_id(),
            time=_time(record.timestamp),
            extensions={} if mark is None else {"iwbinject": mark},
        )

    def batch(self, records: Sequence[RecordLike]) -> Event:
        """One event for consecutive records of one partition (see the module docstring)."""
        first, last = records[0], records[-1]
        parts: list[bytes] = []
        entries: list[dict[str, Any]] = []
        mark: str | None = None
        for record in records:
            headers, _, record_mark = self._headers(record) if record.headers else ([], None, None)
            if mark is None and record_mark is not None:
                mark = record_mark
            value = record.value
            if value is None:
                encoding, part = "null", b"null"
            else:
                try:
                    text = value.decode("utf-8")
                except UnicodeDecodeError:
                    encoding = "base64"
                    part = b'"' + base64.b64encode(value) + b'"'
                else:
                    if _is_json(value):
                        encoding, part = "json", value
                    else:
                        encoding, part = "text", json.dumps(text).encode("utf-8")
            parts.append(part)
            key = record.key
            entries.append({
                "offset": record.offset,
                "key": None if key is None else encode_bytes(key),
                "headers": headers,
                "timestamp": record.timestamp,
                "timestamp_type": record.timestamp_type,
                "value_encoding": encoding,
            })
        topic, partition = first.topic, first.partition
        return Event(
            artifact=self.artifact,
            kind="kafka",
            type=BATCH_TYPE,
            source=self.source(topic),
            data=b"[" + b",".join(parts) + b"]",
            transport={
                "topic": topic,
                "partition": partition,
                "offset": first.offset,
                "last_offset": last.offset,
                "group_id": self.group_id,
                "records": entries,
            },
            handler="batch",
            subject=f"{topic}/{partition}@{first.offset}-{last.offset}",
            datacontenttype=JSON,
            id=new_id(),
            time=_time(first.timestamp),
            extensions={} if mark is None else {"iwbinject": mark},
        )


@dataclass(slots=True)
class OutgoingRecord:
    """A record to produce."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] | None = None
    partition: int | None = None


def batch_values(event: Event) -> list[tuple[bytes | None, dict[str, Any]]]:
    """The (value bytes, transport entry) of each record of a batch event.

    Raises:
        ValueError: data is not a JSON array matching `transport.records`.
    """
    try:
        values = json.loads(event.data) if event.data.strip() else []
    except ValueError as exc:
        raise ValueError(f"a batch event's data must be a JSON array: {exc}") from None
    if not isinstance(values, list):
        raise ValueError(
            f"a batch event's data must be a JSON array, not {type(values).__name__}"
        )
    entries = event.transport.get("records") or []
    if not isinstance(entries, list):
        raise ValueError("transport.records must be a list of record entries")
    if entries and len(entries) != len(values):
        raise ValueError(
            f"transport.records has {len(entries)} entries but data has {len(values)} "
            "values; they must match one to one"
        )
    out: list[tuple[bytes | None, dict[str, Any]]] = []
    for i, value in enumerate(values):
        entry = entries[i] if entries else {}
        if not isinstance(entry, dict):
            raise ValueError(f"transport.records[{i}] must be an object, not {entry!r}")
        encoding = entry.get("value_encoding", "json")
        raw: bytes | None
        if encoding == "json":
            raw = json.dumps(value).encode("utf-8")
        elif encoding == "null":
            raw = None
        elif encoding in ("text", "base64") and isinstance(value, str):
            raw = value.encode("utf-8") if encoding == "text" else decode_bytes(
                {"base64": value}, f"data[{i}]"
            )
        else:
            raise ValueError(
                f"data[{i}] does not fit value_encoding {encoding!r} (json, text, base64 "
                "and null are known; text and base64 hold a string)"
            )
        out.append((raw, entry))
    return out


def outgoing_records(
    event: Event,
    default_topic: str | None,
    *,
    mark: str | None = None,
    implied_content_type: str | None = None,
) -> list[OutgoingRecord]:
    """The records that re-produce `event`: one for a record event, one per element for a
    batch event. A `mark` is added as the `iwb-inject` header (earlier marks are dropped).
    The event's `datacontenttype` becomes a `content-type` header unless the headers have
    one, it is JSON (detected on arrival) or it is `implied_content_type` (the listener's
    `content_type` option).

    Raises:
        ValueError: the transport or data cannot be turned into records, or no topic.
    """
    transport = event.transport
    topic = transport.get("topic") or default_topic
    if not topic or not isinstance(topic, str):
        raise ValueError(
            "the event names no topic: set transport.topic (the listener subscribes to a "
            "pattern or several topics, so there is no default)"
        )
    partition = transport.get("partition")
    if partition is not None and (not isinstance(partition, int) or partition < 0):
        raise ValueError(f"transport.partition must be a partition number, not {partition!r}")

    def headers_of(raw: Any, content_type: str | None) -> list[tuple[str, bytes | None]]:
        headers = [(k, v) for k, v in decode_headers(raw) if k != INJECT_HEADER]
        if (
            content_type
            and content_type.split(";")[0].strip().lower() != JSON
            and content_type != implied_content_type
            and not any(k.lower() == "content-type" for k, _ in headers)
        ):
            headers.append(("content-type", content_type.encode("latin-1")))
        if mark is not None:
            headers.append((INJECT_HEADER, mark.encode("utf-8")))
        return headers

    if event.type == BATCH_TYPE or "records" in transport:
        return [
            OutgoingRecord(
                topic=topic,
                value=raw,
                key=decode_bytes(entry.get("key"), "key"),
                headers=headers_of(entry.get("headers"), None),
                partition=partition,
            )
            for raw, entry in batch_values(event)
        ]
    value: bytes | None = None if transport.get("tombstone") else event.data
    return [
        OutgoingRecord(
            topic=topic,
            value=value,
            key=decode_bytes(transport.get("key"), "key"),
            headers=headers_of(transport.get("headers"), event.datacontenttype),
            partition=partition,
        )
    ]
