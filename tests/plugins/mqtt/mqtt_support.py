"""Test support for the MQTT plugin: a private Mosquitto, MQTT clients, `iwb run` processes.

`Mosquitto` runs the Debian broker on a loopback port of its own, in a temporary directory,
with persistence (so persistent sessions survive a broker restart: SIGTERM saves the
database, `autosave_interval 1` saves it every second too), no limit on the messages queued
for an offline session, and optionally a TLS listener with a throw-away CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
from procs import Server, free_port, port_open
from tls import make_certificates


def ensure_installed() -> str | None:
    """Install mosquitto when missing and we may; return why not, or None when it is there."""
    if shutil.which("mosquitto"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "mosquitto is not installed (apt-get install -y mosquitto)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "mosquitto"]
    if subprocess.run(install, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run(install, capture_output=True, env=env)
    return None if shutil.which("mosquitto") else "installing mosquitto failed"


class Mosquitto:
    """A private Mosquitto broker (start/stop/kill/start again on the same port)."""

    def __init__(self, folder: Path, *, tls: bool = False,
                 users: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.users = users
        self.folder.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port: int | None = None
        self.tls_files = make_certificates(folder / "tls") if tls else None
        if self.tls_files is not None:
            self.tls_port = free_port()
        self.config = folder / "mosquitto.conf"
        self._write_config()
        self.server: Server | None = None
        self.starts = 0

    def _write_config(self) -> None:
        auth = ["allow_anonymous true"]
        if self.users:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password],
                               check=True, capture_output=True)
            auth = ["allow_anonymous false", f"password_file {passwords}"]
        lines = [
            "per_listener_settings false",
            *auth,
            "persistence true",
            f"persistence_location {self.folder}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "user root",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} {self.host}",
        ]
        if self.tls_files is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls_files.ca}",
                f"certfile {self.tls_files.cert}",
                f"keyfile {self.tls_files.key}",
            ]
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self.starts += 1
        self.server = Server(
            "mosquitto", ["mosquitto", "-c", str(self.config)],
            log=self.folder / f"mosquitto-{self.starts}.log",
        )
        self.server.wait_port(self.host, self.port, timeout=15)
        if self.tls_port is not None:
            self.server.wait_port(self.host, self.tls_port, timeout=15)

    def stop(self) -> None:
        """SIGTERM: the broker saves its persistence database and exits."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def log(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.folder.glob("mosquitto-*.log"))
        )


@dataclass
class Endpoint:
    """Where the tests' broker listens."""

    host: str
    port: int
    broker: Mosquitto | None = None

    def connections_toml(self, name: str = "main", protocol: str = "3.1.1", **extra: Any
                         ) -> str:
        lines = [f"[{name}]", 'kind = "mqtt"', f'host = "{self.host}"', f"port = {self.port}",
                 f'protocol = "{protocol}"', "connect_timeout = 5"]
        for key, value in extra.items():
            lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"


def client(endpoint: Endpoint, protocol: str = "3.1.1", **kwargs: Any) -> aiomqtt.Client:
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(endpoint.host, endpoint.port, protocol=version, timeout=10, **kwargs)


async def publish_many(
    endpoint: Endpoint, messages: Iterable[tuple[str, bytes]], *, qos: int = 1,
    protocol: str = "3.1.1", properties: Any = None, retain: bool = False,
) -> int:
    """Publish every (topic, payload), waiting for each confirmation (QoS 1/2)."""
    count = 0
    async with client(endpoint, protocol) as pub:
        for topic, payload in messages:
            await pub.publish(topic, payload, qos=qos, properties=properties, retain=retain)
            count += 1
    return count


async def collect(
    endpoint: Endpoint, topic: str, count: int, *, timeout: float = 10.0,
    protocol: str = "3.1.1", ready: asyncio.Event | None = None,
) -> list[aiomqtt.Message]:
    """Subscribe to `topic` and return the first `count` messages (fewer on timeout)."""
    got: list[aiomqtt.Message] = []
    async with client(endpoint, protocol) as sub:
        await sub.subscribe(topic, qos=1)
        if ready is not None:
            ready.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in sub.messages:
                    got.append(message)
                    if len(got) >= count:
                        break
    return got


def publisher_process(endpoint: Endpoint, topic_prefix: str, count: int, *, qos: int = 1,
                      topics: int = 4, log: Path) -> subprocess.Popen[bytes]:
    """A separate process that publishes `count` messages `{"n": i}` to
    `<prefix>/<i % topics>`, waiting for each confirmation, and rides out a broker restart
    (it reconnects and publishes again what was not confirmed)."""
    code = f"""
import asyncio, json, sys
import aiomqtt

async def main():
    i = 0
    while i < {count}:
        try:
            async with aiomqtt.Client({endpoint.host!r}, {endpoint.port}, timeout=5) as c:
                while i < {count}:
                    await c.publish(f"{topic_prefix}/{{i % {topics}}}",
                                    json.dumps({{"n": i}}).encode(), qos={qos})
                    i += 1
        except aiomqtt.MqttError as exc:
            print("publisher: reconnecting after", exc, flush=True)
            await asyncio.sleep(0.2)
    print("published", i, flush=True)

asyncio.run(main())
"""
    with log.open("wb") as out:  # the child has its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-c", code], stdout=out,
                                stderr=subprocess.STDOUT)


# --------------------------------------------------------------------------- iwb run


class IwbRun:
    """`iwb run PROJECT` as a subprocess with an admin port (for kill -9 and replicas)."""

    def __init__(self, project: Path, *, env: dict[str, str] | None = None,
                 args: Iterable[str] = ()) -> None:
        self.project = project
        self.admin = free_port()
        self.log = project / f"iwb-run-{self.admin}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "iwb"), "run", str(project),
             "--admin-port", str(self.admin), *args],
            stdout=self._log_file, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )

    def ready(self) -> bool:
        if not port_open("127.0.0.1", self.admin):
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.admin}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"iwb run exited {self.proc.returncode}:\n{self.output()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise AssertionError(f"iwb run not ready in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """kill -9."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log_file.close()

    def terminate(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._log_file.close()
        return code


@dataclass
class Ledger:
    """The lines a test handler appends to a file (one `n` per handled message)."""

    path: Path

    def read(self) -> list[int]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        # a line cut short by kill -9 is not a handled message
        return [int(line) for line in lines if line.strip().isdigit()]

    def wait_for(self, check: Callable[[list[int]], bool], timeout: float, what: str) -> list[int]:
        deadline = time.monotonic() + timeout
        values = self.read()
        while not check(values):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: not reached in {timeout} s ({len(values)} lines, "
                    f"{len(set(values))} distinct)"
                )
            time.sleep(0.05)
            values = self.read()
        return values


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        time.sleep(0.02)


async def async_wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        await asyncio.sleep(0.01)

