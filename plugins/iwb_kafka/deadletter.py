"""Dead letters: records whose outcome is an error, produced to the dead-letter topic.

Each record keeps its key and value; its headers are the original ones plus:

| header                   | value                                                  |
| ------------------------ | ------------------------------------------------------ |
| `iwb-error-type`         | the error type: `ValueError`, `ValidationError`,       |
|                          | `MalformedPayload`, `HandlerTimeout`, ...              |
| `iwb-error-message`      | the error message (at most 4000 characters)            |
| `iwb-original-topic`     | where the record was consumed                          |
| `iwb-original-partition` |                                                        |
| `iwb-original-offset`    |                                                        |
| `iwb-original-timestamp` | its timestamp (ms)                                     |
| `iwb-event-id`           | the id of the event (find its capture with it)         |
| `iwb-artifact`           | the listener                                           |
| `iwb-attempts`           | how many times the handler ran                         |

A record with neither key nor value (which a producer cannot send again) is dead-lettered
with an empty value and the header `iwb-original-tombstone: true`.

Headers of an earlier dead-lettering (`iwb-error-*`, `iwb-original-*`, ...) and the
`iwb-inject` mark are replaced, so a record that fails again after being re-driven from the
dead-letter topic carries only its latest error.
"""

from __future__ import annotations

from collections.abc import Sequence

from iwb_kafka.events import INJECT_HEADER, OutgoingRecord, RecordLike
from workbench.events import Event, Outcome

__all__ = ["MAX_MESSAGE", "dead_letter_records"]

MAX_MESSAGE = 4000
_OWN = frozenset({INJECT_HEADER, "iwb-event-id", "iwb-artifact", "iwb-attempts"})


def _own(name: str) -> bool:
    return name in _OWN or name.startswith(("iwb-error-", "iwb-original-"))


def dead_letter_records(
    topic: str, event: Event, outcome: Outcome, records: Sequence[RecordLike]
) -> list[OutgoingRecord]:
    """The dead letters of the records behind `event` (one, or a whole batch)."""
    error = outcome.error
    if error is not None:
        error_type, message = error.type, error.message
    else:
        error_type = "Rejected" if outcome.status == "rejected" else "Error"
        message = f"the outcome was {outcome.status!r} with disposition {outcome.disposition!r}"
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    common = [
        ("iwb-error-type", error_type.encode("utf-8")),
        ("iwb-error-message", message.encode("utf-8")),
    ]
    tail = [
        ("iwb-event-id", event.id.encode("utf-8")),
        ("iwb-artifact", event.artifact.encode("utf-8")),
        ("iwb-attempts", str(outcome.attempts).encode("ascii")),
    ]
    out: list[OutgoingRecord] = []
    for record in records:
        headers: list[tuple[str, bytes | None]] = [
            (name, value) for name, value in record.headers if not _own(name)
        ]
        headers.extend(common)
        headers.extend([
            ("iwb-original-topic", record.topic.encode("utf-8")),
            ("iwb-original-partition", str(record.partition).encode("ascii")),
            ("iwb-original-offset", str(record.offset).encode("ascii")),
            ("iwb-original-timestamp", str(record.timestamp).encode("ascii")),
        ])
        headers.extend(tail)
        value = record.value
        if value is None and record.key is None:
            value = b""
            headers.append(("iwb-original-tombstone", b"true"))
        out.append(OutgoingRecord(topic, value, record.key, headers, None))
    return out
