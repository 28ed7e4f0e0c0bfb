"""What every benchmark needs: free ports, child processes that die with the benchmark,
polling with a deadline, percentiles, and the report (human lines, one JSON line, exit code).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from workbench.errors import WorkbenchError

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent
IWB = str(BIN / "iwb")
PEERS = REPO / ".bench"
"""Where `scripts/bench --install-peers` puts peers that are not Python packages."""


class BenchError(WorkbenchError):
    """A benchmark could not run (a process did not start, a response never came)."""

    title = "Benchmark failed"


def say(line: str) -> None:
    """One human-readable line, on stderr (stdout carries the JSON line)."""
    print(line, file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.005) -> float:
    """Poll `check` until it is true; returns the seconds it took.

    Raises:
        BenchError: `check` was still false after `timeout` seconds.
    """
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise BenchError(f"{what}: not within {timeout:.0f} s")
        time.sleep(step)
    return time.perf_counter() - start


def http_status(
    port: int, path: str = "/", method: str = "GET", body: bytes | None = None
) -> int | None:
    """The status of one request to 127.0.0.1:`port`, or None when it could not be made."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def child_env() -> dict[str, str]:
    """The environment of measured processes: this one, but with Python's bytecode cache on,
    as on a developer's machine (PYTHONDONTWRITEBYTECODE would make every start compile
    iwb from source, and would hide what a reload does with stale `__pycache__` files)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) with linear interpolation between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def tool(name: str) -> str | None:
    """A peer program: from `.bench/` (installed by `scripts/bench --install-peers`) or PATH."""
    local = PEERS / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)


# ---------------------------------------------------------------------------- processes


class Processes:
    """Starts child processes in their own process group, with output in log files, and
    stops every group that is still running on exit (also on SIGTERM and Ctrl-C)."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv`; its stdout and stderr go to `<logdir>/<name>.log`."""
        with open(self.logdir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**child_env(), **(env or {})}, cwd=cwd, start_new_session=True,
            )
        self.running[name] = proc
        return proc

    def log(self, name: str, tail: int = 20) -> str:
        """The last `tail` lines that `name` printed."""
        path = self.logdir / f"{name}.log"
        lines = path.read_text("utf-8", "replace").splitlines() if path.exists() else []
        return "\n".join(lines[-tail:])

    def lines(self, name: str) -> list[str]:
        path = self.logdir / f"{name}.log"
        return path.read_text("utf-8", "replace").splitlines() if path.exists() else []

    def stop(self, name: str, timeout: float = 15) -> int:
        """SIGTERM the process group of `name`, SIGKILL it after `timeout` s; the exit code."""
        proc = self.running.pop(name)
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        # children of the leader (a reloader's worker) go with it
        _signal_group(proc, signal.SIGKILL)
        return proc.returncode

    def wait_ready(self, name: str, check: Callable[[], bool], timeout: float = 60) -> float:
        """Poll `check` until it is true while `name` runs; seconds it took.

        Raises:
            BenchError: the process exited, or `check` stayed false, with its log.
        """
        proc = self.running[name]

        def ready() -> bool:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited {proc.returncode}:\n{self.log(name)}")
            return check()

        try:
            return wait_until(ready, timeout, f"{name} ready")
        except BenchError as exc:
            if proc.poll() is None:
                raise BenchError(f"{exc}\n{self.log(name)}") from None
            raise

    def __enter__(self) -> Processes:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for name in list(self.running):
            self.stop(name, timeout=5)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the children


@contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for projects and logs, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="iwb-bench-") as tmp:
        yield Path(tmp)


# ---------------------------------------------------------------------------- report


@dataclass
class Check:
    """One target: `status` is "pass", "FAIL" or "skipped"."""

    name: str
    value: float | None
    target: str
    status: str
    note: str = ""


@dataclass
class Report:
    """The figures and checks of one benchmark."""

    bench: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, value: float, op: str, limit: float, unit: str = "") -> bool:
        """Record whether `value op limit` holds (op: "<=", "<", ">=", "==")."""
        ok = {
            "<=": value <= limit, "<": value < limit, ">=": value >= limit, "==": value == limit,
        }[op]
        self.checks.append(
            Check(name, round(value, 4), f"{op} {limit:g}{unit}", "pass" if ok else "FAIL")
        )
        return ok

    def fail(self, name: str, target: str, note: str) -> None:
        """A target that could not be measured because iwb (or the setup) failed."""
        self.checks.append(Check(name, None, target, "FAIL", note))

    def skip(self, name: str, target: str, note: str) -> None:
        """A target that needs a missing optional peer."""
        self.checks.append(Check(name, None, target, "skipped", note))

    @property
    def ok(self) -> bool:
        return all(c.status != "FAIL" for c in self.checks)

    def finish(self) -> int:
        """Print the checks and the JSON line; the exit code (1 when a target is missed)."""
        for c in self.checks:
            shown = "-" if c.value is None else f"{c.value:g}"
            note = f"  ({c.note})" if c.note else ""
            say(f"  [{c.status:>7}] {self.bench} {c.name} = {shown} (target {c.target}){note}")
        line = {"bench": self.bench, **self.figures, "checks": [asdict(c) for c in self.checks],
                "ok": self.ok}
        print(json.dumps(line), flush=True)
        return 0 if self.ok else 1


def run(bench: str, main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s code; a benchmark that cannot run prints its error, a JSON line
    that says so, and exits 1."""
    try:
        code = main()
    except BenchError as exc:
        say(f"{bench}: FAILED: {exc}")
        print(json.dumps({"bench": bench, "ok": False, "error": str(exc)}), flush=True)
        code = 1
    sys.exit(code)
