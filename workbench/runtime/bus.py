"""The runtime's event bus: what other parts (the TUI, `iwb run`'s logs) subscribe to.

Messages are small dataclasses published synchronously on the event loop; a subscriber is a
plain callable and must not block (the TUI posts a Textual message and returns). A
subscriber that raises is logged and kept; it never breaks dispatch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.events import Event, Outcome

log = logging.getLogger("iwb.bus")


@dataclass(slots=True)
class EventHandled:
    """An event was handled (or rejected) and captured."""

    event: Event
    outcome: Outcome


@dataclass(slots=True)
class ArtifactChanged:
    """An artifact's status, address or error changed."""

    name: str
    status: str
    address: str = ""
    error: str | None = None


@dataclass(slots=True)
class ReloadFinished:
    """A hot reload ran (successfully or not)."""

    report: Any
    """A `workbench.runtime.reload.ReloadReport`."""


@dataclass(slots=True)
class RuntimeLog:
    """A log line the runtime wants users to see."""

    level: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


Message = EventHandled | ArtifactChanged | ReloadFinished | RuntimeLog
Subscriber = Callable[[Message], None]


class Bus:
    """Publish/subscribe over the runtime's messages."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(message)` for every message; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, message: Message) -> None:
        for callback in tuple(self._subscribers):
            try:
                callback(message)
            except Exception:
                log.exception("bus subscriber %r failed", callback)

    async def stream(self, maxsize: int = 10_000) -> AsyncIterator[Message]:
        """Iterate over messages as they come (drops the oldest when a reader falls behind)."""
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)

        def put(message: Message) -> None:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

        unsubscribe = self.subscribe(put)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()
