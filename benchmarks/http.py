"""bench-http: requests per second of a small JSON POST handler, iwb against baselines.

`wrk -t2 -c32` posts `{"name": "Ada", "qty": 2}`; the handler parses it into a pydantic
model and returns a small computed dict. All servers start first; wrk then loads one at a
time (the machine has two cores), each after a warm-up, in `--rounds` interleaved rounds:

- iwb:          `iwb run` with capture on, default server (uvicorn + httptools);
- quart:        the same handler in bare Quart on uvicorn + httptools;
- starlette:    the same handler in Starlette on uvicorn + httptools (a reference);
- node-red:     http in → function → http response, when Node-RED is installed;
- iwb-hypercorn: `iwb run --set http.server=hypercorn` (for information).

After the iwb run the capture store must hold every request, within its size bound.

Targets: iwb / Node-RED >= 1.0, iwb / bare Quart >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    APPS,
    BIN,
    IWB,
    REPO,
    BenchError,
    Processes,
    Report,
    free_port,
    http_status,
    median,
    run,
    say,
    tool,
    workdir,
)

BODY = b'{"name": "Ada", "qty": 2}'
MiB = 1024 * 1024


@dataclass
class Options:
    duration: int
    warmup: int
    threads: int
    connections: int
    loop: str
    rounds: int


@dataclass
class Target:
    """One server to measure."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    """Readiness check; by default a POST of the benchmark body answers 200."""
    project: Path | None = None
    """The iwb project directory (its capture store is checked after the run)."""


def wrk(port: int, seconds: int, opts: Options) -> dict[str, Any]:
    """One wrk run; its JSON summary (from post.lua) with `rps` added."""
    wrk_bin = tool("wrk")
    assert wrk_bin is not None
    argv = [wrk_bin, f"-t{opts.threads}", f"-c{opts.connections}", f"-d{seconds}s",
            "-s", str(APPS / "post.lua"), f"http://127.0.0.1:{port}/"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["errors"] = sum(
        summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts",
                             "bad_status")
    )
    return summary


class FileSizePeak(threading.Thread):
    """Samples the sizes of a SQLite database file and of its WAL until stopped; keeps the
    peak of each and of their sum."""

    def __init__(self, db: Path) -> None:
        super().__init__(daemon=True)
        self.files = (db, db.with_name(db.name + "-wal"))
        self.peaks = {"db": 0, "wal": 0, "total": 0}
        self._halt = threading.Event()

    def sample(self) -> None:
        sizes = []
        for path in self.files:
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:
                sizes.append(0)
        for key, size in zip(("db", "wal", "total"), (*sizes, sum(sizes)), strict=True):
            self.peaks[key] = max(self.peaks[key], size)

    def run(self) -> None:
        while not self._halt.wait(0.02):
            self.sample()

    def stop(self) -> dict[str, int]:
        self._halt.set()
        self.join()
        self.sample()
        return self.peaks


def start(procs: Processes, target: Target) -> None:
    """Start `target` and wait until it answers."""
    procs.start(target.name, target.argv, env=target.env, cwd=REPO)
    ready = target.ready or (lambda: http_status(target.port, "/", "POST", BODY) == 200)
    procs.wait_ready(target.name, ready, timeout=30)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One target's figures over its rounds: median req/s and latencies, summed counts."""
    measured = [r for r in runs if not r["warmup"]]
    return {
        "rps": median([r["rps"] for r in measured]),
        "rps_rounds": [r["rps"] for r in measured],
        "p50_us": median([r["p50_us"] for r in measured]),
        "p99_us": median([r["p99_us"] for r in measured]),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def captured(project: Path) -> dict[str, int]:
    """Rows of the project's capture store: kept now, and appended in all (the seq)."""
    db = project / ".iwb" / "captures.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kept = conn.execute("SELECT COUNT(*) FROM captures").fetchone()[0]
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'captures'").fetchone()
    finally:
        conn.close()
    size = sum(p.stat().st_size for p in db.parent.glob("captures.db*") if p.is_file())
    return {"kept": int(kept), "appended": int(row[0]) if row else 0, "file_bytes": size}


def iwb_target(name: str, tmp: Path, *options: str) -> Target:
    project = tmp / name
    shutil.copytree(APPS / "iwb_orders", project)
    port, admin = free_port(), free_port()
    return Target(
        name, [IWB, "run", str(project), "--admin-port", str(admin), *options],
        port, env={"IWB_API__PORT": str(port)},
        ready=lambda: http_status(admin, "/readyz") == 200, project=project,
    )


def uvicorn_target(name: str, app: str, loop: str) -> Target:
    port = free_port()
    return Target(name, [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port),
                         "--http", "httptools", "--loop", loop, "--log-level", "warning",
                         "--no-access-log"], port)


def node_red_target(tmp: Path, node_red: str) -> Target:
    user_dir = tmp / "node-red"
    user_dir.mkdir()
    shutil.copy(APPS / "nodered" / "flows.json", user_dir / "flows.json")
    port = free_port()
    return Target("node-red", [node_red, "-u", str(user_dir), "-s",
                               str(APPS / "nodered" / "settings.js"), "-p", str(port),
                               "--no-telemetry", str(user_dir / "flows.json")], port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds per server")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per server")
    parser.add_argument("-t", "--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("-c", "--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every server this many times, interleaved; medians")
    parser.add_argument("--baseline-loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                        help="uvicorn --loop of the baselines (auto: uvloop when installed)")
    args = parser.parse_args(argv)
    opts = Options(args.duration, args.warmup, args.threads, args.connections,
                   args.baseline_loop, args.rounds)
    report = Report("http")
    if tool("wrk") is None:
        note = "wrk is not installed (scripts/bench --install-peers installs it)"
        say(f"http: skipped: {note}")
        report.skip("iwb/quart req/s", ">= 0.85", note)
        report.skip("iwb/node-red req/s", ">= 1", note)
        return report.finish()
    node_red = tool("node-red")
    with workdir() as tmp, Processes(tmp) as procs:
        targets = [
            iwb_target("iwb", tmp),
            uvicorn_target("quart", "benchmarks.apps.quart_orders:app", opts.loop),
            uvicorn_target("starlette", "benchmarks.apps.starlette_orders:app", opts.loop),
            iwb_target("iwb-hypercorn", tmp, "--set", "http.server=hypercorn"),
        ]
        if node_red is not None:
            targets.append(node_red_target(tmp, node_red))
        results: dict[str, dict[str, Any]] = {}
        live = []
        # All start first and wait idle; wrk loads one at a time. Rounds interleave the
        # servers, so a change in the machine's load hits all of them alike.
        for target in targets:
            try:
                start(procs, target)
                live.append(target)
            except BenchError as exc:
                results[target.name] = {"error": str(exc).splitlines()[0]}
                say(f"http: {target.name}: FAILED to start: {exc}")
        iwb = targets[0]
        assert iwb.project is not None
        watcher = FileSizePeak(iwb.project / ".iwb" / "captures.db")
        watcher.start()
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in live}
        for i in range(opts.rounds):
            for target in live:
                say(f"http: round {i + 1}/{opts.rounds}: {target.name}: warm-up {opts.warmup} s, "
                    f"then wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s")
                runs[target.name].append({**wrk(target.port, opts.warmup, opts), "warmup": True})
                res = wrk(target.port, opts.duration, opts)
                runs[target.name].append({**res, "warmup": False})
                say(f"  {target.name}: {res['rps']:,.0f} req/s, latency p50 "
                    f"{res['p50_us'] / 1000:.2f} ms, p99 {res['p99_us'] / 1000:.2f} ms, "
                    f"{res['errors']} errors")
        for target in live:
            results[target.name] = combine(runs[target.name])
            # iwb flushes its capture store on SIGTERM
            results[target.name]["exit_code"] = procs.stop(target.name)
        peaks = watcher.stop()
        if "error" not in results["iwb"]:
            results["iwb"].update(capture=captured(iwb.project), peaks=peaks)
        bound = tomllib.loads((iwb.project / "iwb.toml").read_text())["capture"]["max_mb"] * MiB
    return judge(report, results, bound, opts)


def ratio(iwb: dict[str, Any], other: dict[str, Any]) -> float:
    """iwb's req/s over another server's: the median of the rounds' ratios (each round
    measures both under about the same machine load)."""
    pairs = zip(iwb["rps_rounds"], other["rps_rounds"], strict=True)
    return median([mine / theirs for mine, theirs in pairs])


def judge(
    report: Report, results: dict[str, dict[str, Any]], bound: float, opts: Options
) -> int:
    """Figures, ratios and checks of the measured servers."""
    fig = report.figures
    fig.update(duration_s=opts.duration, rounds=opts.rounds, baseline_loop=opts.loop)
    for name, res in results.items():
        key = name.replace("-", "_")
        if "error" in res:
            fig[f"{key}_error"] = res["error"]
            continue
        fig.update({
            f"{key}_rps": round(res["rps"]),
            f"{key}_p99_ms": round(res["p99_us"] / 1000, 2),
            f"{key}_errors": res["errors"],
        })
        report.check(f"{name} wrk errors", res["errors"], "==", 0)
    iwb = results["iwb"]
    for base, limit in (("quart", 0.85), ("node-red", 1.0)):
        name = f"iwb/{base} req/s"
        other = results.get(base)
        if other is None:
            report.skip(name, f">= {limit:g}", "Node-RED is not installed "
                        "(scripts/bench --install-peers installs it into .bench/)")
        elif "error" in iwb or "error" in other:
            report.fail(name, f">= {limit:g}", iwb.get("error") or other["error"])
        else:
            report.check(name, ratio(iwb, other), ">=", limit)
    for base, other in results.items():
        if base != "iwb" and "error" not in iwb and "error" not in other:
            fig[f"iwb_over_{base.replace('-', '_')}"] = round(ratio(iwb, other), 3)
            say(f"  iwb / {base} = {ratio(iwb, other):.3f}")
    if "error" in results["iwb-hypercorn"]:
        report.fail("iwb on hypercorn", "serves", results["iwb-hypercorn"]["error"])
    if "error" not in iwb:
        cap = iwb["capture"]
        served = iwb["requests"]
        peaks = iwb["peaks"]
        fig.update(iwb_served=served, iwb_captured=cap["appended"], iwb_rows_kept=cap["kept"],
                   iwb_db_bytes=cap["file_bytes"], iwb_db_file_peak_bytes=peaks["db"],
                   iwb_wal_peak_bytes=peaks["wal"], iwb_db_and_wal_peak_bytes=peaks["total"],
                   capture_bound_bytes=int(bound))
        say(f"  iwb capture: {cap['appended']} events appended for {served} responses "
            f"counted by wrk; {cap['kept']} rows kept; on disk at the end "
            f"{cap['file_bytes'] / MiB:.1f} MiB; peak during the run: database file "
            f"{peaks['db'] / MiB:.1f} MiB, WAL {peaks['wal'] / MiB:.1f} MiB, together "
            f"{peaks['total'] / MiB:.1f} MiB; bound {bound / MiB:.0f} MiB")
        report.check("iwb requests not captured", max(0, served - cap["appended"]), "==", 0)
        report.check("iwb capture db+wal peak / bound", peaks["total"] / bound, "<=", 1.10)
        report.check("iwb exit code after SIGTERM", iwb["exit_code"], "==", 0)
    return report.finish()


if __name__ == "__main__":
    run("http", main)
