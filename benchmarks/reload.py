"""bench-reload: from saving a handler to the new handler answering requests.

A small HTTP service (GET / answers `{"version": VERSION}`) runs with `iwb run --reload`.
The driver rewrites the VERSION line of the handler's file N times, with short pauses, and
measures the time from the write (after fsync and close) to the first response that shows
the new version. A steady request loop on one keep-alive connection polls as fast as it can
through the whole run and counts failed requests and requests slower than 100 ms. The same
experiment runs against `uvicorn --reload` serving an equivalent Starlette app.

Targets (iwb): p50 <= 50 ms, p99 <= 150 ms, every version live, 0 failed and 0 stalled
requests while reloading.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import random
import re
import shutil
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    APPS,
    BIN,
    IWB,
    BenchError,
    Processes,
    Report,
    free_port,
    http_status,
    median,
    percentile,
    run,
    say,
    workdir,
)

STALL_S = 0.100
"""A request slower than this counts as stalled."""
LIVE_TIMEOUT_S = 3.0
"""How long one saved version may take to be served before it counts as never served
(uvicorn --reload takes about 0.5 s)."""
MAX_MISSES = 10
"""Stop an experiment after this many versions that were never served."""
VERSION_LINE = re.compile(r'^VERSION = "v\d{4}"$', re.MULTILINE)


class Poller(threading.Thread):
    """A steady GET loop on one keep-alive connection: notes when each version is first
    served, counts failed requests and requests slower than `STALL_S`."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.first_seen: dict[str, float] = {}
        self.requests = 0
        self.failed = 0
        self.stalled = 0
        self.slowest_s = 0.0
        self._seen = threading.Condition()
        self._halt = threading.Event()

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._halt.is_set():
            start = time.perf_counter()
            version = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    version = json.loads(body)["version"]
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                if conn is not None:
                    conn.close()
                conn = None
            end = time.perf_counter()
            self.requests += 1
            self.slowest_s = max(self.slowest_s, end - start)
            if end - start > STALL_S:
                self.stalled += 1
            if version is None:
                self.failed += 1
                time.sleep(0.001)  # a refused connection fails at once: don't spin on it
            elif version not in self.first_seen:
                with self._seen:
                    self.first_seen[version] = end
                    self._seen.notify_all()
        if conn is not None:
            conn.close()

    def wait_for(self, version: str, timeout: float) -> float | None:
        """When `version` was first served (perf_counter), or None if not within `timeout`."""
        with self._seen:
            self._seen.wait_for(lambda: version in self.first_seen, timeout)
            return self.first_seen.get(version)

    def stop(self) -> None:
        self._halt.set()
        self.join(15)


@dataclass
class Result:
    """One experiment: save→live seconds per served version, and the request loop's counts."""

    latencies: list[float]
    missed: int
    requests: int
    failed: int
    stalled: int
    slowest_s: float

    def figures(self, prefix: str) -> dict[str, float | int | None]:
        ms = [x * 1000 for x in self.latencies]
        return {
            f"{prefix}_p50_ms": round(median(ms), 2) if ms else None,
            f"{prefix}_p99_ms": round(percentile(ms, 99), 2) if ms else None,
            f"{prefix}_max_ms": round(max(ms), 2) if ms else None,
            f"{prefix}_saves": len(ms) + self.missed,
            f"{prefix}_missed": self.missed,
            f"{prefix}_requests": self.requests,
            f"{prefix}_failed": self.failed,
            f"{prefix}_stalled": self.stalled,
            f"{prefix}_slowest_request_ms": round(self.slowest_s * 1000, 1),
        }


def save(path: Path, text: str) -> float:
    """Write `text` to `path` as an editor saves in place; perf_counter after the close."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return time.perf_counter()


def stale_bytecode_note(source: Path) -> str:
    """Why a saved version may never be served: Python's timestamp-based bytecode cache
    takes a `.pyc` as current when its recorded source mtime (whole seconds) and size match,
    so a same-size save within the second of the previous import can run the old code."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    try:
        header = pyc.read_bytes()[:16]
    except FileNotFoundError:
        return ""
    flags, mtime, size = struct.unpack("<III", header[4:16])
    stat = source.stat()
    if flags == 0 and mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size:
        return (f" ({pyc.name} records this file's mtime {mtime} s and size {size} B, "
                "so the import reused the previous version's bytecode)")
    return ""


def experiment(handler: Path, port: int, saves: int, pause: float, seed: int) -> Result:
    """Rewrite `handler` `saves` times and time each new version going live on `port`."""
    template = handler.read_text("utf-8")
    rng = random.Random(seed)
    poller = Poller(port)
    poller.start()
    latencies: list[float] = []
    missed = 0
    try:
        if poller.wait_for("v0000", LIVE_TIMEOUT_S) is None:
            raise BenchError(f"the first version was never served on port {port}")
        for i in range(1, saves + 1):
            time.sleep(rng.uniform(pause / 2, pause * 1.5))  # the developer's think time
            version = f"v{i:04d}"
            written = save(handler, VERSION_LINE.sub(f'VERSION = "{version}"', template))
            seen = poller.wait_for(version, LIVE_TIMEOUT_S)
            if seen is None:
                missed += 1
                say(f"    {version}: not served within {LIVE_TIMEOUT_S:.0f} s of the save"
                    f"{stale_bytecode_note(handler)}")
                if missed >= MAX_MISSES:
                    break
            else:
                latencies.append(seen - written)
    finally:
        poller.stop()
    return Result(latencies, missed, poller.requests, poller.failed, poller.stalled,
                  poller.slowest_s)


def run_iwb(
    procs: Processes, tmp: Path, saves: int, pause: float, env: dict[str, str]
) -> tuple[Result, list[float]]:
    """The experiment on `iwb run --reload`; also iwb's own reload durations (ms)."""
    project = tmp / "iwb-version"
    shutil.copytree(APPS / "iwb_version", project)
    port, admin = free_port(), free_port()
    procs.start(
        "iwb-reload",
        [IWB, "run", str(project), "--admin-port", str(admin), "--reload"],
        env={**env, "IWB_API__PORT": str(port)},
    )
    procs.wait_ready("iwb-reload", lambda: http_status(admin, "/readyz") == 200)
    result = experiment(project / "artifacts" / "api.py", port, saves, pause, seed=1)
    procs.stop("iwb-reload")
    own = []
    for line in procs.lines("iwb-reload"):
        if line.startswith("{"):
            entry = json.loads(line)
            if str(entry.get("msg", "")).startswith("reload in"):
                own.append(float(entry["duration_ms"]))
    return result, own


def run_uvicorn(
    procs: Processes, tmp: Path, saves: int, pause: float, env: dict[str, str]
) -> Result:
    """The experiment on `uvicorn --reload` serving the Starlette app."""
    app_dir = tmp / "starlette-version"
    app_dir.mkdir()
    shutil.copy(APPS / "starlette_version.py", app_dir / "app.py")
    port = free_port()
    procs.start(
        "uvicorn-reload",
        [str(BIN / "uvicorn"), "app:app", "--reload", "--reload-dir", str(app_dir),
         "--app-dir", str(app_dir), "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        cwd=app_dir, env=env,
    )
    procs.wait_ready("uvicorn-reload", lambda: http_status(port) == 200)
    result = experiment(app_dir / "app.py", port, saves, pause, seed=2)
    procs.stop("uvicorn-reload")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--saves", type=int, default=40, help="saves against iwb")
    parser.add_argument("--baseline-saves", type=int, default=10,
                        help="saves against uvicorn --reload")
    parser.add_argument("--pause", type=float, default=0.1,
                        help="mean pause between saves, seconds")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run the servers with PYTHONDONTWRITEBYTECODE=1")
    args = parser.parse_args(argv)
    env = {"PYTHONDONTWRITEBYTECODE": "1"} if args.no_bytecode_cache else {}
    report = Report("reload")
    report.figures["bytecode_cache"] = not args.no_bytecode_cache
    with workdir() as tmp, Processes(tmp) as procs:
        say(f"reload: iwb run --reload, {args.saves} saves")
        iwb, own = run_iwb(procs, tmp, args.saves, args.pause, env)
        report.figures.update(iwb.figures("iwb"))
        if own:
            report.figures["iwb_internal_reload_p50_ms"] = round(median(own), 2)
            report.figures["iwb_internal_reload_max_ms"] = round(max(own), 2)
        say(f"reload: uvicorn --reload (Starlette), {args.baseline_saves} saves")
        uv = run_uvicorn(procs, tmp, args.baseline_saves, args.pause, env)
        report.figures.update(uv.figures("uvicorn"))
    fig = report.figures
    for who, res in (("iwb", iwb), ("uvicorn --reload", uv)):
        prefix = "iwb" if who == "iwb" else "uvicorn"
        say(
            f"  {who}: save→live p50 {fig[f'{prefix}_p50_ms']} ms, "
            f"p99 {fig[f'{prefix}_p99_ms']} ms, max {fig[f'{prefix}_max_ms']} ms "
            f"over {len(res.latencies)} saves ({res.missed} never served); "
            f"{res.requests} requests, {res.failed} failed, {res.stalled} over 100 ms "
            f"(slowest {res.slowest_s * 1000:.1f} ms)"
        )
    if own:
        say(f"  iwb's own reload time (from its log): p50 {median(own):.2f} ms, "
            f"max {max(own):.2f} ms")
    if iwb.latencies and uv.latencies:
        ratio = median(uv.latencies) / median(iwb.latencies)
        fig["uvicorn_over_iwb_p50"] = round(ratio, 1)
        say(f"  iwb reaches the new code {ratio:.1f}x sooner than uvicorn --reload (p50)")
    if iwb.latencies:
        report.check("iwb save→live p50", fig["iwb_p50_ms"], "<=", 50, " ms")
        report.check("iwb save→live p99", fig["iwb_p99_ms"], "<=", 150, " ms")
    else:
        report.fail("iwb save→live p50", "<= 50 ms", "no saved version was ever served")
    report.check("iwb saves never served", iwb.missed, "==", 0)
    report.check("iwb failed requests", iwb.failed, "==", 0)
    report.check("iwb requests over 100 ms", iwb.stalled, "==", 0)
    return report.finish()


if __name__ == "__main__":
    run("reload", main)
