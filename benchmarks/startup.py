"""bench-startup: how fast `iwb run` is ready and `iwb --help` answers.

- `iwb run` on a copy of sample_project/ (its HTTP port and the admin port free ports): the
  time from starting the process to the first 200 from /readyz, median of 5 runs;
- `iwb --help`: wall time, median of 10;
- `python -c pass`: the interpreter's own start, the baseline of this machine in this run.

Targets: `iwb run` ready in < 1.0 s, `iwb --help` in < 0.3 s.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

from benchmarks.common import (
    IWB,
    REPO,
    BenchError,
    Processes,
    Report,
    child_env,
    free_port,
    http_status,
    median,
    run,
    say,
    workdir,
)


def wall_time(argv: Sequence[str]) -> float:
    """Seconds from starting `argv` to its exit (which must be 0)."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=child_env(), check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def is_ready(admin: int) -> bool:
    return http_status(admin, "/readyz") == 200


BROKERS_OFF = {
    "IWB_PAYMENTS__ENABLED": "false",
    "IWB_PAYMENTS__DEV_BROKER": "false",
    "IWB_SHIPPING__ENABLED": "false",
    "IWB_SENSORS__ENABLED": "false",
}
"""The sample's HTTP, files and automation artifacts are what is timed: its Kafka, RabbitMQ
and MQTT listeners wait for their brokers (a Kafka group join alone takes seconds)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="iwb run starts")
    parser.add_argument("--help-runs", type=int, default=10, help="iwb --help runs")
    args = parser.parse_args(argv)
    report = Report("startup")
    python = [sys.executable, "-c", "pass"]
    wall_time(python)  # the first start of anything pays for a cold page cache
    baseline = [wall_time(python) for _ in range(args.help_runs)]
    wall_time([IWB, "--help"])
    helps = [wall_time([IWB, "--help"]) for _ in range(args.help_runs)]
    ready: list[float] = []
    with workdir() as tmp, Processes(tmp) as procs:
        project = tmp / "sample"
        shutil.copytree(REPO / "sample_project", project,
                        ignore=shutil.ignore_patterns(".iwb", "__pycache__"))
        for i in range(args.runs + 1):
            admin = free_port()
            name = f"iwb-run-{i}"
            start = time.perf_counter()
            procs.start(name, [IWB, "run", str(project), "--admin-port", str(admin)],
                        env={"IWB_ORDERS_API__PORT": str(free_port()), **BROKERS_OFF})
            procs.wait_ready(name, functools.partial(is_ready, admin))
            elapsed = time.perf_counter() - start
            procs.stop(name)
            if i == 0:
                say(f"startup: first run (writes the project's bytecode cache) {elapsed:.3f} s, "
                    "not counted")
            else:
                ready.append(elapsed)
    fig = report.figures
    fig.update(
        python_pass_median_s=round(median(baseline), 4),
        iwb_help_median_s=round(median(helps), 4),
        iwb_run_ready_median_s=round(median(ready), 4),
        iwb_run_ready_runs_s=[round(x, 4) for x in ready],
    )
    say(f"  python -c pass: median {median(baseline) * 1000:.1f} ms of {len(baseline)}")
    say(f"  iwb --help: median {median(helps) * 1000:.1f} ms of {len(helps)}")
    say(f"  iwb run sample_project → /readyz 200: median {median(ready) * 1000:.0f} ms of "
        f"{len(ready)} ({', '.join(f'{x * 1000:.0f}' for x in ready)} ms)")
    report.check("iwb run ready median", median(ready), "<", 1.0, " s")
    report.check("iwb --help median", median(helps), "<", 0.3, " s")
    return report.finish()


if __name__ == "__main__":
    run("startup", main)
