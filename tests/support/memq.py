"""An in-memory queue trigger for runtime tests.

It has the shape of a broker consumer (ack/reject after the outcome, a connection that can
fail) without a broker, so the runtime's own behaviour can be tested exactly: dispatch,
policies, dispositions, listener failure and backoff, reload. Registered with
`Runtime(plugins={"memq": QueueTrigger})`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from workbench.errors import WorkbenchError
from workbench.events import Event
from workbench.plugin import (
    Artifact,
    ConnectionKind,
    Dispatch,
    Health,
    Sample,
    TransportView,
    Trigger,
)


class QueueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: str
    connection: str | None = None
    fail_starts: int = 0
    """How many times serve() fails before it connects (to test backoff)."""


@dataclass
class Broker:
    queues: dict[str, asyncio.Queue[Event]] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)
    serving: set[str] = field(default_factory=set)
    logs: dict[str, list[Event]] = field(default_factory=dict)
    """Every message published to a queue, in order (what `reread` reads again)."""

    def queue(self, name: str) -> asyncio.Queue[Event]:
        return self.queues.setdefault(name, asyncio.Queue())

    def reset(self) -> None:
        self.queues.clear()
        self.acked.clear()
        self.rejected.clear()
        self.starts.clear()
        self.serving.clear()
        self.logs.clear()


BROKER = Broker()


class Queue(Artifact[QueueConfig]):
    kind = "memq"
    config_model = QueueConfig

    def on_message(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return self.add_handler("message", func)

    def address(self) -> str:
        return f"memq:{self.config.queue}"


class Message(TransportView):
    def __init__(self, queue: str, body: bytes) -> None:
        self.queue = queue
        self.body = body

    @classmethod
    def from_event(cls, event: Event) -> Message:
        return cls(event.transport.get("queue", ""), event.data)


class BrokerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    password: str = ""


class BrokerConnection(ConnectionKind[Broker]):
    """A connection to the in-memory broker; healthy when its url starts with memq://."""

    kind = "memq"
    config_model = BrokerConfig

    async def open(self) -> Broker:
        return BROKER

    async def health(self) -> Health:
        url = self.config.url  # type: ignore[attr-defined]
        ok = str(url).startswith("memq://")
        return Health(ok, f"{url} {'answers' if ok else 'is not a memq:// url'}", 0.1)


class QueueTrigger(Trigger[QueueConfig]):
    kind = "memq"
    artifact_class = Queue
    connection_kinds = (BrokerConnection,)

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        name = self.config.queue
        BROKER.starts[name] = BROKER.starts.get(name, 0) + 1
        if BROKER.starts[name] <= self.config.fail_starts:
            raise ConnectionError(f"broker refused connection #{BROKER.starts[name]}")
        queue = BROKER.queue(name)
        self.context.set_address(f"memq:{name}")
        BROKER.serving.add(name)
        ready()
        try:
            while True:
                event = await queue.get()
                outcome = await dispatch(event)
                (BROKER.acked if outcome.disposition == "ack" else BROKER.rejected).append(
                    event.id
                )
        finally:
            BROKER.serving.discard(name)

    async def inject(self, event: Event) -> None:
        await publish(self.config.queue, event.data, extensions=dict(event.extensions))

    async def reread(self, position: str, count: int) -> list[Event]:
        """The queue's log from index `position` (a whole number), as fresh events."""
        try:
            start = int(position)
        except ValueError:
            raise WorkbenchError(
                f"{position!r} is not a log index", title="Re-read failed"
            ) from None
        log = BROKER.logs.get(self.config.queue, [])
        return [
            Event(artifact=self.name, kind="memq", type=e.type, source=e.source, data=e.data,
                  datacontenttype=e.datacontenttype, handler=e.handler,
                  transport=dict(e.transport), extensions={"iwbreread": position})
            for e in log[start : start + max(count, 0)]
        ]

    def log_match(self, event: Event) -> dict[str, Any] | None:
        if "index" not in event.transport:
            return None
        return {"queue": event.transport["queue"], "index": event.transport["index"]}

    def samples(self) -> list[Sample]:
        return [
            Sample(
                "hello", "a small JSON message",
                Event(artifact=self.name, kind="memq", type="test.message",
                      source=f"memq:{self.config.queue}", data=b'{"n": 1}',
                      datacontenttype="application/json", handler="message",
                      transport={"queue": self.config.queue}),
            )
        ]


async def publish(queue: str, body: bytes, **kwargs: Any) -> Event:
    log = BROKER.logs.setdefault(queue, [])
    event = Event(
        artifact="", kind="memq", type="test.message", source=f"memq:{queue}", data=body,
        datacontenttype=kwargs.pop("datacontenttype", "application/json"),
        handler="message", transport={"queue": queue, "index": len(log)}, **kwargs,
    )
    log.append(event)
    await BROKER.queue(queue).put(event)
    return event
