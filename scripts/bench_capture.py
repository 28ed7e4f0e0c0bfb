"""Benchmark of the capture store: appends per second with redaction on, and the size bound.

Appends N small HTTP-like events (headers including Authorization, a JSON body with a
password field) with their outcomes to a store in a temporary folder whose `max_bytes` is
small, then flushes. The rate is N divided by the wall time from the first append to the
end of the flush (the events are built before the clock starts: that is the plugins' work,
not the store's).

Prints a human summary on stderr and one JSON line on stdout:

    {"bench": "capture", "events_per_s": ..., "db_bytes": ..., "bound_bytes": ...}

Exits 1 when the rate is under `--min-rate` (20,000/s) or the database (with its WAL) is
more than 10 % over the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

from workbench.events import ErrorInfo, Event, Outcome
from workbench.runtime.capture import CaptureSettings, CaptureStore

MiB = 1024 * 1024


def make_event(i: int) -> tuple[Event, Outcome]:
    """One realistic small request to an orders API and its outcome."""
    body = json.dumps(
        {
            "order_id": i,
            "customer": {"name": f"Customer {i % 977}", "email": f"c{i % 977}@example.com"},
            "items": [
                {"sku": f"SKU-{i % 53}", "qty": 1 + i % 3, "price": 9.99},
                {"sku": f"SKU-{i % 31}", "qty": 1, "price": 19.5},
            ],
            # One body in ten carries a secret field, so the payload is parsed and rewritten.
            "payment": {"method": "card", "password": "hunter2"}
            if i % 10 == 0
            else {"method": "card"},
            "currency": "EUR",
        },
        separators=(",", ":"),
    ).encode()
    event = Event(
        artifact=f"orders{i % 4}",
        kind="http",
        type="iwb.http.request",
        source="http://127.0.0.1:8080/orders",
        subject="POST /orders",
        datacontenttype="application/json",
        handler="create_order",
        data=body,
        transport={
            "method": "POST",
            "path": "/orders",
            "query": {"expand": "items"},
            "headers": [
                ["host", "127.0.0.1:8080"],
                ["user-agent", "bench/1.0"],
                ["accept", "application/json"],
                ["content-type", "application/json"],
                ["content-length", str(len(body))],
                ["authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.secret.payload"],
                ["x-request-id", f"req-{i}"],
            ],
            "client": "127.0.0.1:54321",
        },
    )
    failed = i % 50 == 0
    outcome = Outcome(
        event_id=event.id,
        status="error" if failed else "ok",
        result=None if failed else {"order_id": i, "accepted": True},
        error=ErrorInfo(type="ValueError", message=f"order {i} has no items") if failed else None,
        duration_ms=0.42,
        code_version="3f2a9c1d",
        handler="orders:create_order",
    )
    outcome.record_sent(
        "http.response", status=201, headers=[["content-type", "application/json"]]
    )
    return event, outcome


async def run(n: int, bound: int, directory: Path) -> dict[str, float]:
    store = CaptureStore(CaptureSettings(path=directory / "captures.db", max_bytes=bound))
    await store.open()
    try:
        db_file = directory / "captures.db"
        peak = 0
        events = [make_event(i) for i in range(n)]
        # A runtime never holds a hundred thousand events at once; keep these out of the
        # garbage collector's full passes so they do not bill the store for their size.
        gc.freeze()
        cpu_start = time.process_time()
        start = time.perf_counter()
        for i, (event, outcome) in enumerate(events):
            store.append(event, outcome)
            if i % 500 == 499:
                # A runtime's loop turns over between events; let the writer get scheduled.
                await asyncio.sleep(0)
                peak = max(peak, db_file.stat().st_size)
        await store.flush()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        rows = store.count()
        sample = store.last(1)[0]
        assert "hunter2" not in sample.event_json and "eyJhbGci" not in sample.event_json
    finally:
        await store.close()
    return {
        "elapsed": elapsed,
        "cpu": cpu,
        "rows": rows,
        "db_bytes": store.file_bytes(),
        "db_file": db_file.stat().st_size,
        "peak_db_file": max(peak, db_file.stat().st_size),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="events to append")
    parser.add_argument("--bound-mb", type=float, default=20.0, help="max_bytes in MiB")
    parser.add_argument("--min-rate", type=float, default=20_000.0, help="events/s to pass")
    args = parser.parse_args(argv)
    bound = int(args.bound_mb * MiB)
    with tempfile.TemporaryDirectory(prefix="iwb-bench-") as tmp:
        figures = run_sync(args.n, bound, Path(tmp))
    rate = args.n / figures["elapsed"]
    print(
        f"capture: {args.n} events in {figures['elapsed']:.2f} s = {rate:,.0f} events/s "
        f"({figures['cpu'] / args.n * 1e6:.1f} us of CPU per event); "
        f"{int(figures['rows'])} rows kept; database {figures['db_bytes'] / MiB:.1f} MiB "
        f"(main file {figures['db_file'] / MiB:.1f} MiB, at most "
        f"{figures['peak_db_file'] / MiB:.1f} MiB during the run) "
        f"for a bound of {bound / MiB:.1f} MiB",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "capture",
                "events_per_s": round(rate),
                "db_bytes": int(figures["db_bytes"]),
                "bound_bytes": bound,
                "peak_db_file_bytes": int(figures["peak_db_file"]),
            }
        )
    )
    failed = False
    if rate < args.min_rate:
        print(f"FAIL: {rate:,.0f} events/s is under {args.min_rate:,.0f}", file=sys.stderr)
        failed = True
    if max(figures["db_bytes"], figures["peak_db_file"]) > bound * 1.10:
        print("FAIL: the database is more than 10 % over its bound", file=sys.stderr)
        failed = True
    return 1 if failed else 0


def run_sync(n: int, bound: int, directory: Path) -> dict[str, float]:
    return asyncio.run(run(n, bound, directory))


if __name__ == "__main__":
    sys.exit(main())
