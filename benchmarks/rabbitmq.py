"""bench-rabbitmq: messages per second consumed from RabbitMQ, iwb against raw aio-pika.

Both consume the same broker in the same run, from a queue filled beforehand with N small
persistent JSON messages (`{"id": 7, "sku": "TEA-01", "qty": 2}`), with the same prefetch:

- raw-loop:     aio-pika's consume loop, `async for message in queue.iterator()` with an ack
                per message (the baseline of the target);
- raw-callback: an aio-pika consumer callback that acknowledges each message (aio-pika's
                fastest consumer, for information);
- iwb:          the real `Runtime` with a `rabbitmq.Listener` whose handler parses the body
                into a pydantic model and returns a small dict, capture on (every event and
                outcome written to `.iwb/captures.db`);
- iwb-nocapture: the same with capture off (what the capture store costs).

Each measurement runs in a fresh child process (plain asyncio, as `iwb run`), from the first
message handled to the last; the rounds are interleaved, and the target is checked on the
median of each round's iwb/raw ratio (the two runs of a round are seconds apart, so load
that drifts over the run — other processes on a two-core machine — cancels out). After each
iwb run with capture, the store must hold every message.

The broker is started as the tests start it (a private node on loopback ports of its own),
unless `IWB_BENCH_RABBITMQ=amqp://...` names one.

Target: iwb (capture on) / raw consume loop >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, BenchError, Report, median, run, say

KINDS = ("raw-loop", "raw-callback", "iwb", "iwb-nocapture")

NODE_MODULE = REPO / "tests" / "plugins" / "rabbitmq" / "rabbit_node.py"

BODY = '{{"id": {i}, "sku": "TEA-01", "qty": 2}}'

PROJECT = '''
from pydantic import BaseModel
import iwb_rabbitmq as rabbitmq


class Order(BaseModel):
    id: int
    sku: str
    qty: int


orders = rabbitmq.Listener(connection="main", queue="{queue}", prefetch={prefetch})


@orders.on_message
async def handle(order: Order) -> dict:
    return {{"id": order.id, "total": order.qty * 4.5}}
'''


def _node_class() -> Any:
    spec = importlib.util.spec_from_file_location("rabbit_node", NODE_MODULE)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {NODE_MODULE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rabbit_node"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- children


async def fill(url: str, queue: str, count: int) -> None:
    """Declare `queue` (durable, empty) and publish `count` persistent messages."""
    import aio_pika

    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel(publisher_confirms=True)
        declared = await channel.declare_queue(queue, durable=True)
        await declared.purge()
        batch: list[Any] = []
        for i in range(count):
            message = aio_pika.Message(
                BODY.format(i=i).encode(), content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            batch.append(channel.default_exchange.publish(message, queue))
            if len(batch) >= 1000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await conn.close()


async def consume_raw(
    url: str, queue: str, count: int, prefetch: int, style: str
) -> dict[str, Any]:
    """A baseline: aio-pika's consume loop (`async for message in queue.iterator()`, as
    aio-pika's documentation writes it) or a consumer callback; each acknowledges every
    message."""
    import aio_pika
    from aio_pika.abc import AbstractIncomingMessage

    conn = await aio_pika.connect(url)
    done = asyncio.Event()
    seen = 0
    first = 0.0
    cpu = 0.0

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal seen, first, cpu
        if seen == 0:
            first, cpu = time.perf_counter(), time.process_time()
        await message.ack()
        seen += 1
        if seen >= count:
            done.set()

    try:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=prefetch)
        declared = await channel.declare_queue(queue, durable=True)
        if style == "callback":
            await declared.consume(on_message)
            await asyncio.wait_for(done.wait(), 600)
        else:
            async with asyncio.timeout(600), declared.iterator() as it:
                async for message in it:
                    await on_message(message)
                    if done.is_set():
                        break
        elapsed = time.perf_counter() - first
        used = time.process_time() - cpu
    finally:
        await conn.close()
    return {"messages": seen, "seconds": elapsed, "rate": seen / elapsed,
            "cpu_us_per_message": used / seen * 1e6}


async def consume_iwb(
    url: str, queue: str, count: int, prefetch: int, capture: bool, root: Path
) -> dict[str, Any]:
    """The real runtime over a project with one listener."""
    from workbench.runtime import Runtime, collector
    from workbench.runtime.bus import EventHandled

    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    (root / "connections.toml").write_text(
        f'[main]\nkind = "rabbitmq"\nurl = "{url}"\n', "utf-8"
    )
    (root / "artifacts" / "orders.py").write_text(
        PROJECT.format(queue=queue, prefetch=prefetch), "utf-8"
    )
    runtime = Runtime(root, capture=capture)
    done = asyncio.Event()
    seen = errors = 0
    first = 0.0
    cpu = [0.0]

    def on_message(message: Any) -> None:
        nonlocal seen, errors, first
        if isinstance(message, EventHandled):
            if seen == 0:
                first, cpu[0] = time.perf_counter(), time.process_time()
            seen += 1
            errors += message.outcome.status != "ok"
            if seen >= count:
                done.set()

    runtime.bus.subscribe(on_message)
    await runtime.start()
    collector.tune()  # as `iwb run` does once started
    try:
        await runtime.wait_ready(30)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - first
        used = time.process_time() - cpu[0]
    finally:
        await runtime.stop(10)
    rows = 0
    if capture:
        db = sqlite3.connect(f"file:{root / '.iwb' / 'captures.db'}?mode=ro", uri=True)
        try:
            rows = int(db.execute("SELECT COUNT(*) FROM captures").fetchone()[0])
        finally:
            db.close()
    return {"messages": seen, "errors": errors, "seconds": elapsed, "rate": seen / elapsed,
            "cpu_us_per_message": used / seen * 1e6, "captured": rows}


def child(args: argparse.Namespace) -> int:
    if args.child == "fill":
        asyncio.run(fill(args.url, args.queue, args.count))
        result: dict[str, Any] = {}
    elif args.child in ("raw-loop", "raw-callback"):
        result = asyncio.run(consume_raw(
            args.url, args.queue, args.count, args.prefetch, args.child.split("-")[1],
        ))
    else:
        result = asyncio.run(consume_iwb(
            args.url, args.queue, args.count, args.prefetch, args.child == "iwb",
            Path(args.root),
        ))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------- parent


def measure(
    kind: str, url: str, count: int, prefetch: int, tmp: Path, round_no: int
) -> dict[str, Any]:
    """Fill a fresh queue, then consume it with `kind` in a child process."""
    queue = f"bench-{kind}-{round_no}-{uuid.uuid4().hex[:6]}"
    base = [sys.executable, "-m", "benchmarks.rabbitmq", "--url", url, "--queue", queue,
            "--count", str(count), "--prefetch", str(prefetch)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    filled = subprocess.run([*base, "--child", "fill"], capture_output=True, text=True,
                            env=env, timeout=600, check=False)
    if filled.returncode != 0:
        raise BenchError(f"filling {queue} failed:\n{filled.stderr[-2000:]}")
    root = tmp / f"{kind}-{round_no}"
    done = subprocess.run([*base, "--child", kind, "--root", str(root)], capture_output=True,
                          text=True, env=env, timeout=900, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"{kind} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    say(f"  round {round_no} {kind:>13}: {result['rate']:8.0f} msg/s "
        f"({result['messages']} in {result['seconds']:.2f} s, "
        f"{result['cpu_us_per_message']:.0f} µs CPU per message)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=20000, help="messages per run")
    parser.add_argument("--prefetch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians")
    parser.add_argument("--child", choices=["fill", *KINDS],
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    report = Report("rabbitmq")
    url = os.environ.get("IWB_BENCH_RABBITMQ")
    with tempfile.TemporaryDirectory(prefix="iwb-bench-rabbitmq-") as tmp_name:
        tmp = Path(tmp_name)
        node = None
        if not url:
            nodes = _node_class()
            missing = nodes.ensure_installed()
            if missing:
                raise BenchError(missing)
            node = nodes.RabbitNode(tmp / "broker", name="iwbbench")
            say("starting a RabbitMQ node ...")
            node.start()
            url = node.url
        try:
            say(f"rabbitmq: {args.count} messages per run, prefetch {args.prefetch}, "
                f"{args.rounds} round(s)")
            results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for round_no in range(1, args.rounds + 1):
                for kind in results:
                    results[kind].append(
                        measure(kind, url, args.count, args.prefetch, tmp, round_no)
                    )
        finally:
            if node is not None:
                node.stop()
    rates = {kind: median([r["rate"] for r in runs]) for kind, runs in results.items()}
    cpu = {kind: median([r["cpu_us_per_message"] for r in runs])
           for kind, runs in results.items()}

    def paired(baseline: str) -> float:
        # The runs of a round are seconds apart: the ratio within a round is less sensitive
        # to the load of the machine drifting than the ratio of the medians.
        return median([i["rate"] / r["rate"]
                       for i, r in zip(results["iwb"], results[baseline], strict=True)])

    vs_loop, vs_callback = paired("raw-loop"), paired("raw-callback")
    report.figures.update({
        "messages": args.count,
        "prefetch": args.prefetch,
        "rounds": args.rounds,
        "msg_per_s": {kind: round(v) for kind, v in rates.items()},
        "cpu_us_per_message": {kind: round(v, 1) for kind, v in cpu.items()},
        "ratio": round(vs_loop, 3),
        "ratio_vs_callback": round(vs_callback, 3),
        "capture_cost": round(1 - rates["iwb"] / rates["iwb-nocapture"], 3),
    })
    say("  medians: " + ", ".join(
        f"{kind} {rates[kind]:.0f} msg/s ({cpu[kind]:.0f} µs CPU/msg)" for kind in KINDS
    ))
    say(f"  iwb / raw consume loop {vs_loop:.2f}, iwb / raw callback consumer "
        f"{vs_callback:.2f}, capture costs {1 - rates['iwb'] / rates['iwb-nocapture']:.0%}")
    report.check("iwb/raw consume loop (median of rounds)", vs_loop, ">=", 0.8)
    missing_rows = [r for r in results["iwb"] if r["captured"] != args.count]
    report.check("captured every message", float(not missing_rows), "==", 1.0)
    errors = sum(r.get("errors", 0) for r in results["iwb"] + results["iwb-nocapture"])
    report.check("handler errors", float(errors), "==", 0.0)
    return report.finish()


if __name__ == "__main__":
    run("rabbitmq", main)
