"""The live feed: events from the runtime's bus, buffered for the screen.

The bus calls `LiveFeed.add` once per handled event, on the event loop, while the runtime
is dispatching; it must stay O(1): it appends to a bounded deque and bumps counters. The
screen drains the feed on a timer (every 100 ms) and renders the batch at once, so a flood
of events costs one table update per tick, not one per event. When the screen falls behind,
the deque keeps only the newest `window` events; the older ones are still in the capture
store, where scrolling up finds them.

`StreamItem` is one row of the event stream, built from a live event (event and outcome in
memory) or from a capture record (loaded from the store).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from workbench.events import Event, Outcome

if TYPE_CHECKING:
    from workbench.runtime.capture import CaptureRecord

RATE_SECONDS = 60
"""How many seconds of history a `RateMeter` keeps (the sparkline's width)."""
RATE_AVERAGE = 5
"""The events/s figure is averaged over this many whole seconds."""


class RateMeter:
    """Events per second over the last `RATE_SECONDS` seconds, in one-second bins."""

    __slots__ = ("_counts", "_stamps")

    def __init__(self) -> None:
        self._counts = [0] * RATE_SECONDS
        self._stamps = [-1] * RATE_SECONDS

    def add(self, now: float, count: int = 1) -> None:
        """Count `count` events at unix time `now` (O(1))."""
        second = int(now)
        slot = second % RATE_SECONDS
        if self._stamps[slot] != second:
            self._stamps[slot] = second
            self._counts[slot] = 0
        self._counts[slot] += count

    def series(self, now: float) -> list[float]:
        """Events in each of the last `RATE_SECONDS` seconds, oldest first (the current,
        unfinished second last)."""
        current = int(now)
        out: list[float] = []
        for second in range(current - RATE_SECONDS + 1, current + 1):
            slot = second % RATE_SECONDS
            out.append(float(self._counts[slot]) if self._stamps[slot] == second else 0.0)
        return out

    def rate(self, now: float) -> float:
        """Events per second, averaged over the last `RATE_AVERAGE` whole seconds."""
        current = int(now)
        total = 0
        for second in range(current - RATE_AVERAGE, current):
            slot = second % RATE_SECONDS
            if self._stamps[slot] == second:
                total += self._counts[slot]
        return total / RATE_AVERAGE


@dataclass(slots=True)
class StreamItem:
    """One row of the event stream."""

    id: str
    """The event id (also the capture id)."""
    received: float
    """When the runtime handled it (unix seconds): the time column."""
    artifact: str
    kind: str
    summary: str
    status: str
    duration_ms: float
    error_type: str | None = None
    seq: int | None = None
    """The capture store's sequence number, when the item came from the store."""
    live_event: Event | None = field(default=None, repr=False)
    live_outcome: Outcome | None = field(default=None, repr=False)
    record: CaptureRecord | None = field(default=None, repr=False)

    @classmethod
    def live(cls, event: Event, outcome: Outcome, received: float) -> StreamItem:
        """An item for an event that just arrived on the bus."""
        return cls(
            id=event.id, received=received, artifact=event.artifact, kind=event.kind,
            summary=event.summary(200), status=outcome.status,
            duration_ms=outcome.duration_ms,
            error_type=outcome.error.type if outcome.error else None,
            live_event=event, live_outcome=outcome,
        )

    @classmethod
    def captured(cls, record: CaptureRecord) -> StreamItem:
        """An item for a capture read from the store."""
        return cls(
            id=record.id, received=record.time, artifact=record.artifact, kind=record.kind,
            summary=record.summary, status=record.status, duration_ms=record.duration_ms,
            error_type=record.error_type, seq=record.seq, record=record,
        )

    @property
    def event(self) -> Event:
        """The event (parsed from the store on first use for a captured item)."""
        if self.live_event is not None:
            return self.live_event
        assert self.record is not None
        return self.record.event

    @property
    def outcome(self) -> Outcome:
        """The outcome (parsed from the store on first use for a captured item)."""
        if self.live_outcome is not None:
            return self.live_outcome
        assert self.record is not None
        return self.record.outcome

    @property
    def replay_of(self) -> str | None:
        """The capture id this event replays, if it is a replay."""
        if self.record is not None:
            return self.record.replay_of
        value = self.event.extensions.get("replayof")
        return str(value) if value else None

    @property
    def time_text(self) -> str:
        """The time column: local wall-clock time with milliseconds."""
        stamp = datetime.fromtimestamp(self.received, UTC).astimezone()
        return stamp.strftime("%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"

    def haystack(self) -> str:
        """The text a free-text filter searches in a live item: summary, attributes,
        transport, payload and error (what the store's SQL filter searches)."""
        event, outcome = self.event, self.outcome
        parts = [self.summary, event.id, event.type, event.source, event.subject or "",
                 event.handler, event.text]
        try:
            parts.append(json.dumps(event.transport, default=str))
        except (TypeError, ValueError):
            pass
        if outcome.error is not None:
            parts.extend((outcome.error.type, outcome.error.message))
        return "\n".join(parts)


class LiveFeed:
    """Buffers handled events between screen refreshes and keeps per-artifact rates.

    Args:
        window: the most events kept between two drains (the stream's window).
        clock: the time source (unix seconds).
    """

    def __init__(self, window: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._pending: deque[tuple[Event, Outcome, float]] = deque(maxlen=window)
        self.dropped = 0
        """Events pushed out of the buffer before a drain (they are in the store)."""
        self.total = 0
        """Events seen since the feed started."""
        self.errors = 0
        """Events seen whose outcome was not ok."""
        self.rates: dict[str, RateMeter] = {}
        """Per-artifact rate meters."""
        self.overall = RateMeter()

    def add(self, event: Event, outcome: Outcome) -> None:
        """Take one handled event (called by the bus; O(1))."""
        now = self.clock()
        pending = self._pending
        if len(pending) == self.window:
            self.dropped += 1
        pending.append((event, outcome, now))
        self.total += 1
        if outcome.status != "ok":
            self.errors += 1
        meter = self.rates.get(event.artifact)
        if meter is None:
            meter = self.rates[event.artifact] = RateMeter()
        meter.add(now)
        self.overall.add(now)

    @property
    def pending(self) -> int:
        """Events waiting for the next drain."""
        return len(self._pending)

    def drain(self) -> tuple[list[StreamItem], int]:
        """The events buffered since the last drain, oldest first, and how many were
        dropped from the buffer since then."""
        pending = self._pending
        if not pending:
            dropped, self.dropped = self.dropped, 0
            return [], dropped
        batch = list(pending)
        pending.clear()
        dropped, self.dropped = self.dropped, 0
        return [StreamItem.live(e, o, t) for e, o, t in batch], dropped

    def rate(self, artifact: str | None = None) -> float:
        """Events per second of one artifact, or of all."""
        now = self.clock()
        if artifact is None:
            return self.overall.rate(now)
        meter = self.rates.get(artifact)
        return meter.rate(now) if meter is not None else 0.0

    def series(self, artifact: str) -> list[float]:
        """The last minute of one artifact's events per second, for a sparkline."""
        meter = self.rates.get(artifact)
        now = self.clock()
        return meter.series(now) if meter is not None else [0.0] * RATE_SECONDS
