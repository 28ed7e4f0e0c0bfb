"""Test support for the RabbitMQ plugin: the session broker, a publisher, queue helpers,
projects on disk and a collector of the runtime's outcomes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from rabbit_node import RabbitNode

from workbench.events import Event, Outcome


@dataclass
class Broker:
    """The broker of the session: its URL, and the node when the tests started it."""

    url: str
    node: RabbitNode | None

    def restartable(self) -> RabbitNode:
        if self.node is None:
            pytest.skip("the broker named by IWB_TEST_RABBITMQ cannot be restarted by tests")
        return self.node


def unique(prefix: str) -> str:
    """A name no other test uses (queues and exchanges outlive a test on a shared broker)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def connections_toml(url: str, name: str = "main") -> str:
    return (
        f'[{name}]\nkind = "rabbitmq"\nurl = "{url}"\nconnect_timeout = 3\nheartbeat = 5\n'
        "publish_timeout = 5\n"
    )


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` on the event loop until it holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.02)


async def publish(
    url: str,
    bodies: Iterable[bytes],
    *,
    routing_key: str,
    exchange: str = "",
    batch: int = 500,
    headers: dict[str, Any] | None = None,
    **properties: Any,
) -> int:
    """Publish persistent messages with publisher confirms; the number published."""
    properties.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
    properties.setdefault("content_type", "application/json")
    conn = await aio_pika.connect(url)
    count = 0
    try:
        channel = await conn.channel(publisher_confirms=True)
        target = (
            channel.default_exchange if not exchange
            else await channel.get_exchange(exchange, ensure=False)
        )
        pending: list[Any] = []
        for body in bodies:
            message = aio_pika.Message(body, headers=dict(headers or {}), **properties)
            pending.append(target.publish(message, routing_key))
            if len(pending) >= batch:
                await asyncio.gather(*pending)
                count += len(pending)
                pending = []
        if pending:
            await asyncio.gather(*pending)
            count += len(pending)
    finally:
        await conn.close()
    return count


async def declare(url: str, queue: str, **kwargs: Any) -> None:
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        await channel.declare_queue(queue, durable=kwargs.pop("durable", True), **kwargs)
    finally:
        await conn.close()


async def depth(url: str, queue: str) -> int:
    """Messages ready in `queue` (not counting unacknowledged ones)."""
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await conn.close()


async def take(url: str, queue: str, count: int, timeout: float = 10.0) -> list[Taken]:
    """Consume (and acknowledge) `count` messages from `queue`."""
    conn = await aio_pika.connect(url)
    got: list[Taken] = []
    try:
        channel = await conn.channel()
        declared = await channel.declare_queue(queue, passive=True)
        async with asyncio.timeout(timeout):
            async with declared.iterator() as it:
                async for message in it:
                    got.append(Taken.of(message))
                    await message.ack()
                    if len(got) >= count:
                        break
    except TimeoutError:
        raise AssertionError(
            f"only {len(got)} of {count} message(s) arrived in {queue!r} within {timeout} s"
        ) from None
    finally:
        await conn.close()
    return got


@dataclass
class Taken:
    """A message consumed by a test."""

    body: bytes
    headers: dict[str, Any]
    routing_key: str | None
    exchange: str | None
    correlation_id: str | None
    content_type: str | None
    message_id: str | None
    delivery_mode: int

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> Taken:
        return cls(
            message.body, dict(message.headers or {}), message.routing_key, message.exchange,
            message.correlation_id, message.content_type, message.message_id,
            int(message.delivery_mode),
        )


@dataclass
class Outcomes:
    """Every event the runtime handled for one artifact, in order."""

    artifact: str
    seen: list[tuple[Event, Outcome]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def __call__(self, message: Any) -> None:
        from workbench.runtime.bus import ArtifactChanged, EventHandled

        if isinstance(message, EventHandled) and message.event.artifact == self.artifact:
            self.seen.append((message.event, message.outcome))
        elif isinstance(message, ArtifactChanged) and message.name == self.artifact:
            self.statuses.append(message.status)

    @property
    def ok(self) -> list[tuple[Event, Outcome]]:
        return [(e, o) for e, o in self.seen if o.status == "ok"]

    def bodies(self, status: str | None = None) -> list[bytes]:
        return [e.data for e, o in self.seen if status is None or o.status == status]


def listener_project(
    make_project: Callable[[dict[str, str]], Path], url: str, artifacts: dict[str, str],
    extra: dict[str, str] | None = None,
) -> Path:
    files = {"connections.toml": connections_toml(url)}
    files.update({f"artifacts/{name}.py": text for name, text in artifacts.items()})
    files.update(extra or {})
    return make_project(files)


class IwbRun:
    """`iwb run PROJECT` as a child process, with its admin port for /readyz."""

    def __init__(self, project: Path) -> None:
        import os
        import subprocess
        import sys

        from procs import free_port

        self.project = project
        self.admin = free_port()
        iwb = str(Path(sys.executable).parent / "iwb")
        self.log = project / "iwb-run.log"
        self._log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [iwb, "run", str(project), "--admin-port", str(self.admin)],
            stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )

    def ready(self) -> bool:
        import httpx

        if self.proc.poll() is not None:
            raise AssertionError(
                f"iwb run exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._log.close()
        return self.proc.returncode


def lines_of(path: Path) -> list[str]:
    """Complete lines of a file that a handler appends to (a missing file has none)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
