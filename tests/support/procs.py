"""Start and stop real servers for tests: processes on loopback ports of their own.

Each broker's fixture (tests/plugins/<kind>/conftest.py) uses these helpers; an environment
variable naming an existing server (e.g. IWB_TEST_KAFKA=127.0.0.1:9092) skips the start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from testkit import free_port as free_port  # re-exported for the broker fixtures


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll `check` until it is true; fail with the server's log when it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    code = proc.poll() if proc is not None else None
    raise RuntimeError(f"{what} did not come up in {timeout:g} s (exit code {code}).\n{tail}")


class Server:
    """A server process started for the tests, stopped (and its group killed) at the end."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, cwd=cwd,
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_port(self, host: str, port: int, timeout: float = 30) -> None:
        wait_until(lambda: port_open(host, port), timeout, self.name, self.proc, self.log)

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()

    def kill(self) -> None:
        """kill -9 the whole process group (for crash tests)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
