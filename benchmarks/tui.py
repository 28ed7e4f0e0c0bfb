"""bench-tui: the workbench stays responsive and bounded under a flood of events.

The app (`WorkbenchApp`, headless, 120x36) runs over a real runtime on a temporary copy of
sample_project/. A task on the same event loop floods the runtime with `rate` events per
second (`Runtime.inject(..., via="direct")` into the inventory service, paced in small
bursts) for `duration` seconds, while the stream follows. Every 0.5 s the driver presses a
key in the artifact tree (down, then up) the way a terminal does (a key event sent through
the app's driver) and measures the time from the key to the app's handler (the tree's
cursor moved) and to the next refresh of the screen after it.

Targets: key latency to the repaint p50 and p99 < 100 ms, the stream holds at most its
window of rows, at least 90 % of the flood rate achieved, and RSS at the end within +10 %
of RSS after the warm-up (10 s, or a sixth of a shorter run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, BenchError, Report, free_port, percentile, run, say, workdir
from benchmarks.startup import BROKERS_OFF

KEY_INTERVAL = 0.5
"""Seconds between two key presses."""
KEY_TIMEOUT = 5.0
"""A key whose effect takes longer than this counts as lost."""
BURST = 50
"""Events sent before the flood yields to the loop."""
LATENCY_TARGET_MS = 100.0
RSS_GROWTH = 0.10


def rss_bytes() -> int:
    """The resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Probe:
    """Key presses and what became of them."""

    handled_ms: list[float] = field(default_factory=list)
    painted_ms: list[float] = field(default_factory=list)
    lost: int = 0
    max_rows: int = 0


@dataclass
class Flood:
    """The event flood's counters."""

    sent: int = 0
    errors: int = 0
    started: float = 0.0
    stopped: float = 0.0


async def flood(app: Any, rate: float, until: float, counters: Flood) -> None:
    """Inject events at `rate` per second until `until` (perf_counter)."""
    from workbench.events import Event

    rt = app.runtime
    sample = rt.samples("inventory")[0].event
    transport = dict(sample.transport)
    counters.started = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now >= until:
            break
        due = int((now - counters.started) * rate) - counters.sent
        for _ in range(min(max(due, 0), BURST)):
            sku = f"SKU-{counters.sent % 1000:03d}"
            event = Event(
                artifact="inventory", kind="http", type=sample.type, source=sample.source,
                handler=sample.handler, subject=f"/inventory/{sku}",
                transport={**transport, "path_params": {"sku": sku},
                           "path": f"/inventory/{sku}"},
            )
            outcome = await rt.inject("inventory", event, via="direct")
            counters.sent += 1
            if not outcome.ok:
                counters.errors += 1
        # yield to the app (and the capture writer) between bursts
        await asyncio.sleep(0 if due > BURST else 0.001)
    counters.stopped = time.perf_counter()


async def press(app: Any, key: str, probe: Probe) -> None:
    """Send `key` as the terminal driver would; note when the tree's cursor moved and when
    the screen was next refreshed."""
    from textual import events

    tree = app.main.artifact_tree
    before = tree.cursor_line
    loop = asyncio.get_running_loop()
    handled: asyncio.Future[float] = loop.create_future()
    painted: asyncio.Future[float] = loop.create_future()

    def repainted() -> None:
        if not painted.done():
            painted.set_result(time.perf_counter())

    def moved(line: int) -> None:
        if line != before and not handled.done():
            handled.set_result(time.perf_counter())
            app.call_after_refresh(repainted)

    app.main.watch(tree, "cursor_line", moved, init=False)
    sent = time.perf_counter()
    app._driver.send_message(events.Key(key, None))
    try:
        handled_at = await asyncio.wait_for(asyncio.shield(handled), KEY_TIMEOUT)
        painted_at = await asyncio.wait_for(asyncio.shield(painted), KEY_TIMEOUT)
    except TimeoutError:
        probe.lost += 1
        return
    probe.handled_ms.append((handled_at - sent) * 1000.0)
    probe.painted_ms.append((painted_at - sent) * 1000.0)


async def measure(root: Path, duration: float, rate: float, window: int,
                  keymap: Path) -> Report:
    from workbench.runtime.runtime import Runtime
    from workbench.tui.app import WorkbenchApp

    port = free_port()
    # the sample's broker listeners off: the flood goes through HTTP, whatever brokers run
    env = {**os.environ, "IWB_ORDERS_API__PORT": str(port), **BROKERS_OFF}
    runtime = Runtime(root, reload=False, env=env)
    app = WorkbenchApp(runtime, window=window, user_keymap=keymap)
    report = Report("tui")
    probe = Probe()
    counters = Flood()
    warmup = min(10.0, duration / 6)
    async with app.run_test(size=(120, 36)) as pilot:
        ends = time.monotonic() + 60
        while not (app.main is not None and app.main.started and runtime.ready
                   and not app.main.stream.loading):
            if time.monotonic() > ends:
                raise BenchError("the workbench did not start within 60 s")
            await pilot.pause(0.05)
        tree = app.main.artifact_tree
        tree.focus()
        await pilot.pause()
        tree.move_cursor_to_line(1)
        await pilot.pause()
        say(f"flooding {rate:g} events/s for {duration:g} s (window {window} rows)")
        start = time.perf_counter()
        cpu_start = time.process_time()
        flooding = asyncio.create_task(flood(app, rate, start + duration, counters))
        rss_warm: int | None = None
        keys = ("down", "up")
        count = 0
        next_key = start + KEY_INTERVAL
        while not flooding.done():
            await asyncio.sleep(max(0.0, next_key - time.perf_counter()))
            if flooding.done():
                break
            await press(app, keys[count % 2], probe)
            count += 1
            next_key += KEY_INTERVAL
            probe.max_rows = max(probe.max_rows, app.main.stream.row_count)
            elapsed = time.perf_counter() - start
            if rss_warm is None and elapsed >= warmup:
                rss_warm = rss_bytes()
                say(f"  warm-up RSS {rss_warm / 2**20:.1f} MiB after {elapsed:.1f} s, "
                    f"{counters.sent} events")
        await flooding
        cpu = (time.process_time() - cpu_start) / (time.perf_counter() - start)
        rss_end = rss_bytes()
        rows = app.main.stream.row_count
        probe.max_rows = max(probe.max_rows, rows)
        await pilot.press("q")
    achieved = counters.sent / max(counters.stopped - counters.started, 1e-9)
    if not probe.painted_ms:
        raise BenchError("no key press was handled")
    handled = probe.handled_ms
    painted = probe.painted_ms
    report.figures.update({
        "duration_s": duration, "rate_target": rate, "rate_achieved": round(achieved, 1),
        "events": counters.sent, "event_errors": counters.errors,
        "keys": len(painted) + probe.lost, "keys_lost": probe.lost,
        "key_handler_p50_ms": round(percentile(handled, 50), 2),
        "key_handler_p99_ms": round(percentile(handled, 99), 2),
        "key_repaint_p50_ms": round(percentile(painted, 50), 2),
        "key_repaint_p99_ms": round(percentile(painted, 99), 2),
        "rows_in_view": rows, "rows_max": probe.max_rows, "window": window,
        "cpu_percent": round(cpu * 100, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "rss_warm_mib": round((rss_warm or rss_end) / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
    })
    say(f"  {counters.sent} events in {counters.stopped - counters.started:.1f} s "
        f"({achieved:.0f}/s), {len(painted)} keys, CPU {cpu * 100:.0f} % of one core "
        f"(machine load average {os.getloadavg()[0]:.1f})")
    report.check("key_repaint_p50_ms", percentile(painted, 50), "<", LATENCY_TARGET_MS, " ms")
    report.check("key_repaint_p99_ms", percentile(painted, 99), "<", LATENCY_TARGET_MS, " ms")
    report.check("keys_lost", probe.lost, "==", 0)
    report.check("rows_max", probe.max_rows, "<=", window)
    report.check("rate_achieved", achieved, ">=", rate * 0.9, "/s")
    growth = (rss_end - (rss_warm or rss_end)) / (rss_warm or rss_end)
    report.check("rss_growth", growth, "<=", RSS_GROWTH)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench-tui", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of flooding (default 60)")
    parser.add_argument("--rate", type=float, default=5000.0,
                        help="events per second (default 5000)")
    parser.add_argument("--window", type=int, default=1000,
                        help="rows the stream keeps (default 1000)")
    args = parser.parse_args()
    if args.duration < 3:
        raise BenchError(f"--duration {args.duration:g} is too short; give at least 3 s.")
    with workdir() as tmp:
        root = tmp / "sample"
        shutil.copytree(REPO / "sample_project", root,
                        ignore=shutil.ignore_patterns(".iwb", "__pycache__"))
        report = asyncio.run(
            measure(root, args.duration, args.rate, args.window, tmp / "keymap.toml")
        )
    return report.finish()


if __name__ == "__main__":
    run("tui", main)
