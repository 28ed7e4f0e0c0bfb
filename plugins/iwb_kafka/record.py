"""What a handler can ask for by annotation: `kafka.Record` and `kafka.Batch`.

    @orders.on_record
    async def bill(order: Order, record: kafka.Record) -> None:
        log.info("order %s from partition %d offset %d", record.key_text, record.partition,
                 record.offset)

    @orders.on_batch
    async def bill_many(orders: list[Order], records: list[kafka.Record]) -> None: ...

Both are built from the event (`from_event`), so they work the same for live records,
replays and injected events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from iwb_kafka.events import BATCH_TYPE, batch_values
from iwb_kafka.transport import decode_bytes, decode_headers
from workbench.events import Event
from workbench.plugin import BindingError, TransportView

__all__ = ["Batch", "Record"]


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{what} must be an integer or null, not {value!r}")


@dataclass(frozen=True, slots=True)
class Record(TransportView):
    """One Kafka record: where it was (topic, partition, offset), its key, headers,
    timestamp and value."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    """The key bytes, or None."""
    value: bytes | None
    """The value bytes, or None for a tombstone."""
    headers: tuple[tuple[str, bytes | None], ...] = ()
    """(name, value) pairs in order; names may repeat."""
    timestamp: int | None = None
    """Milliseconds since the epoch."""
    timestamp_type: int | None = None
    """0: CreateTime (set by the producer), 1: LogAppendTime (set by the broker)."""
    group_id: str | None = None
    content_type: str | None = None
    event_id: str = field(default="", compare=False)
    """The id of the event that carried it (the `iwb-event-id` of a dead letter)."""

    @property
    def key_text(self) -> str | None:
        """The key decoded as UTF-8 (undecodable bytes replaced), or None."""
        return None if self.key is None else self.key.decode("utf-8", "replace")

    @property
    def text(self) -> str:
        """The value decoded as UTF-8 (undecodable bytes replaced); '' for a tombstone."""
        return "" if self.value is None else self.value.decode("utf-8", "replace")

    def json(self) -> Any:
        """The value parsed as JSON; raises `ValueError` if it is not JSON."""
        if self.value is None:
            raise ValueError(f"record {self.topic}/{self.partition}@{self.offset} is a tombstone")
        return json.loads(self.value)

    def header(self, name: str, default: bytes | None = None) -> bytes | None:
        """The value of the first header called `name` (exact match), else `default`."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def header_text(self, name: str, default: str | None = None) -> str | None:
        """`header(name)` decoded as UTF-8, else `default`."""
        value = self.header(name)
        return default if value is None else value.decode("utf-8", "replace")

    @classmethod
    def from_event(cls, event: Event) -> Record:
        if event.type == BATCH_TYPE or "records" in event.transport:
            raise BindingError(
                "missing",
                "This is a batch event (several records); take `list[kafka.Record]` or "
                "`kafka.Batch` instead of `kafka.Record`.",
                [{"loc": ["transport"], "msg": "batch event", "type": "missing"}],
            )
        t = event.transport
        try:
            return cls(
                topic=str(t.get("topic") or ""),
                partition=_int_or_none(t.get("partition"), "partition"),
                offset=_int_or_none(t.get("offset"), "offset"),
                key=decode_bytes(t.get("key"), "key"),
                value=None if t.get("tombstone") else event.data,
                headers=tuple(decode_headers(t.get("headers"))),
                timestamp=_int_or_none(t.get("timestamp"), "timestamp"),
                timestamp_type=_int_or_none(t.get("timestamp_type"), "timestamp_type"),
                group_id=t.get("group_id"),
                content_type=event.datacontenttype,
                event_id=event.id,
            )
        except ValueError as exc:
            raise BindingError(
                "validation", f"The event's Kafka transport fields are invalid: {exc}",
                [{"loc": ["transport"], "msg": str(exc), "type": "value_error"}],
            ) from None


@dataclass(frozen=True, slots=True)
class Batch(TransportView):
    """The records of one batch event: consecutive records of one partition, in order.
    For a record event it holds that one record."""

    topic: str
    partition: int | None
    group_id: str | None
    records: list[Record]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def first_offset(self) -> int | None:
        return self.records[0].offset if self.records else None

    @property
    def last_offset(self) -> int | None:
        return self.records[-1].offset if self.records else None

    @classmethod
    def from_event(cls, event: Event) -> Batch:
        t = event.transport
        if not (event.type == BATCH_TYPE or "records" in t):
            record = Record.from_event(event)
            return cls(record.topic, record.partition, record.group_id, [record])
        try:
            values = batch_values(event)
            topic = str(t.get("topic") or "")
            partition = _int_or_none(t.get("partition"), "partition")
            group_id = t.get("group_id")
            records = [
                Record(
                    topic=topic,
                    partition=partition,
                    offset=_int_or_none(entry.get("offset"), "offset"),
                    key=decode_bytes(entry.get("key"), "key"),
                    value=raw,
                    headers=tuple(decode_headers(entry.get("headers"))),
                    timestamp=_int_or_none(entry.get("timestamp"), "timestamp"),
                    timestamp_type=_int_or_none(entry.get("timestamp_type"), "timestamp_type"),
                    group_id=group_id,
                    event_id=event.id,
                )
                for raw, entry in values
            ]
        except ValueError as exc:
            raise BindingError(
                "validation", f"The batch event's records are invalid: {exc}",
                [{"loc": ["transport", "records"], "msg": str(exc), "type": "value_error"}],
            ) from None
        return cls(topic, partition, group_id, records)
