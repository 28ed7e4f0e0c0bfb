"""scripts/bench: the capture, startup, reload and http benchmarks in turn, then a summary
table (on stderr) and one JSON line (on stdout). Exits 1 when any target is missed.
`--all` adds the workbench, mapper and broker benchmarks (several minutes more).

    scripts/bench [--all] [--install-peers] [--http-duration SECONDS] [--http-rounds N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from benchmarks import peers
from benchmarks.common import REPO, say

CAPTURE_MIN_RATE = 20_000
"""scripts/bench-capture's default target (events/s); its bound target is 10 % over."""


def run_one(name: str, argv: list[str]) -> tuple[int, dict[str, Any] | None]:
    """Run one benchmark script (its human lines pass through); its exit code and JSON line."""
    say(f"\n=== {name}: {' '.join(argv)}")
    done = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, json.loads(lines[-1]) if lines else None


def rows_of(name: str, code: int, result: dict[str, Any] | None) -> list[list[str]]:
    """Summary rows (bench, check, value, target, status) of one benchmark."""
    if result is None or "error" in result:
        why = result["error"].splitlines()[0] if result else f"no JSON line, exit {code}"
        return [[name, "ran", "-", "runs", "FAIL", why]]
    if name == "capture":  # bench-capture prints figures; the same targets as its defaults
        rate = result["events_per_s"]
        over = max(result["db_bytes"], result["peak_db_file_bytes"]) / result["bound_bytes"]
        rows = [
            [name, "events/s", f"{rate:,}", f">= {CAPTURE_MIN_RATE:,}",
             "pass" if rate >= CAPTURE_MIN_RATE else "FAIL", ""],
            [name, "db peak / bound", f"{over:.3f}", "<= 1.1",
             "pass" if over <= 1.1 else "FAIL", ""],
        ]
        if code != 0 and all(row[4] == "pass" for row in rows):
            rows.append([name, "exit code", str(code), "== 0", "FAIL", ""])
        return rows
    if "checks" not in result:  # a benchmark with its own JSON shape: its exit code decides
        status = "pass" if code == 0 else "FAIL"
        return [[name, "targets (see its JSON line)", "-", "exit 0", status, ""]]
    rows = []
    for check in result["checks"]:
        value = "-" if check["value"] is None else f"{check['value']:g}"
        rows.append([name, check["name"], value, check["target"], check["status"],
                     check["note"]])
    return rows


def table(rows: list[list[str]]) -> str:
    head = ["bench", "check", "value", "target", "status", "note"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = []
    for row in [head, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install-peers", action="store_true",
                        help="install wrk (apt-get) and Node-RED (npm, into .bench/) first")
    parser.add_argument("--http-duration", type=int, default=10,
                        help="seconds of wrk per server")
    parser.add_argument("--http-rounds", type=int, default=1,
                        help="interleaved rounds of the HTTP benchmark (medians)")
    parser.add_argument("--all", action="store_true",
                        help="also the TUI, mapper, Kafka, RabbitMQ and MQTT benchmarks")
    args = parser.parse_args(argv)
    if args.install_peers and peers.main() != 0:
        say("bench: a peer could not be installed; the benchmarks that need it are skipped")
    benches = {
        "capture": ["scripts/bench-capture"],
        "startup": ["scripts/bench-startup"],
        "reload": ["scripts/bench-reload"],
        "http": ["scripts/bench-http", "--duration", str(args.http_duration),
                 "--rounds", str(args.http_rounds)],
    }
    if args.all:
        for name in ("tui", "mapper", "mapper-screen", "kafka", "rabbitmq", "mqtt"):
            if (REPO / "scripts" / f"bench-{name}").exists():
                benches[name] = [f"scripts/bench-{name}"]
    codes: dict[str, int] = {}
    results: dict[str, dict[str, Any] | None] = {}
    rows: list[list[str]] = []
    for name, command in benches.items():
        codes[name], results[name] = run_one(name, command)
        rows.extend(rows_of(name, codes[name], results[name]))
    ok = all(code == 0 for code in codes.values())
    say(f"\n=== summary\n{table(rows)}\n")
    say("bench: all targets met" if ok else "bench: TARGETS MISSED")
    print(json.dumps({"bench": "all", "ok": ok, "exit_codes": codes, "results": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
