"""bench-mqtt: messages per second consumed from MQTT, iwb against a raw aiomqtt loop.

Every measurement is one consumer in a fresh child process, subscribed to `bench/+` on the
same Mosquitto, while a publisher (another child) sends N small JSON messages
(`{"sensor": "s-3", "value": 21.5, "n": 7}`) to four topics as fast as it can — QoS 0 without
waiting, QoS 1 waiting for each PUBACK (aiomqtt's publish). MQTT has no queue to fill
beforehand, so the publisher sets the pace for everyone: the figure is the rate at which the
consumer took the stream in, from its first message to its last, and the CPU time the
consumer spent per message shows what each one costs.

- raw:           `async for message in client.messages` of aiomqtt, each payload validated
                 into the same pydantic model (paho acknowledges QoS 1 on receipt);
- iwb:           the real `Runtime` with an `mqtt.Listener` whose handler takes the model,
                 capture on (every event and outcome written to `.iwb/captures.db`); QoS 1 is
                 acknowledged after the handler;
- iwb-nocapture: the same with capture off (the difference is what the capture store costs).

Consumers run on uvloop when it is installed (as `iwb run` does); `--loop asyncio` forces
the standard loop. Rounds interleave the three; the target is checked on the median of the
rounds' iwb/raw ratios (runs of a round are seconds apart, so load that drifts over the run
cancels out). After every iwb run with capture, the store must hold every message, and no
consumer may miss one.

The broker is started as the tests start it (Mosquitto on a loopback port of its own, in a
temporary directory), unless `IWB_BENCH_MQTT=host:port` names one.

Target: iwb (capture on) / raw >= 0.8, for QoS 0 and for QoS 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, Report, free_port, median, run, say, wait_until

MODES = ("raw", "iwb", "iwb-nocapture")
TOPICS = 4
IDLE_SECONDS = 15.0
"""A consumer that gets nothing for this long gives up (and the benchmark fails)."""

MODEL = '''
from pydantic import BaseModel


class Reading(BaseModel):
    sensor: str
    value: float
    n: int
'''

PROJECT = '''
import iwb_mqtt as mqtt
from project.types.reading import Reading

readings = mqtt.Listener(connection="main", topics=["{prefix}/+"], qos={qos},
                         client_id="{client_id}")


@readings.on_message
async def handle(reading: Reading) -> None:
    pass
'''


def _loop_runner(loop: str) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    if loop != "asyncio":
        try:
            import uvloop

            return uvloop.run
        except ImportError:
            if loop == "uvloop":
                raise BenchError("--loop uvloop: uvloop is not installed") from None
    return asyncio.run


# ---------------------------------------------------------------------------- children


class Meter:
    """Counts messages; the rate and CPU time run from the first to the last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.done = asyncio.Event()
        self.errors = 0

    def tick(self) -> None:
        now = time.perf_counter()
        if self.seen == 0:
            self.first, self.cpu_first = now, time.process_time()
        self.seen += 1
        self.last = now
        if self.seen >= self.count:
            self.cpu_last = time.process_time()
            self.done.set()

    async def wait(self) -> None:
        seen = -1
        while not self.done.is_set():
            if self.seen == seen:
                return  # nothing arrived for a whole idle period
            seen = self.seen
            try:
                await asyncio.wait_for(self.done.wait(), IDLE_SECONDS)
            except TimeoutError:
                continue

    def result(self) -> dict[str, Any]:
        elapsed = max(self.last - self.first, 1e-9)
        cpu = (self.cpu_last or time.process_time()) - self.cpu_first
        return {"messages": self.seen, "errors": self.errors, "seconds": elapsed,
                "rate": (self.seen - 1) / elapsed if self.seen > 1 else 0.0,
                "cpu_us_per_message": cpu / max(self.seen, 1) * 1e6}


def ready_signal() -> None:
    print("ready", flush=True)


async def consume_raw(host: str, port: int, prefix: str, qos: int, count: int
                      ) -> dict[str, Any]:
    import aiomqtt
    from pydantic import BaseModel

    class Reading(BaseModel):
        sensor: str
        value: float
        n: int

    meter = Meter(count)
    async with aiomqtt.Client(host, port, identifier=f"raw-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{prefix}/+", qos=qos)
        ready_signal()

        async def loop() -> None:
            async for message in client.messages:
                Reading.model_validate_json(message.payload)
                meter.tick()
                if meter.done.is_set():
                    return

        task = asyncio.create_task(loop())
        await meter.wait()
        task.cancel()
    return meter.result()


async def consume_iwb(host: str, port: int, prefix: str, qos: int, count: int, capture: bool,
                      root: Path) -> dict[str, Any]:
    from workbench.runtime import Runtime, collector
    from workbench.runtime.bus import EventHandled

    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    (root / "types").mkdir(exist_ok=True)
    (root / "types" / "reading.py").write_text(MODEL, "utf-8")
    (root / "connections.toml").write_text(
        f'[main]\nkind = "mqtt"\nhost = "{host}"\nport = {port}\n', "utf-8")
    (root / "artifacts" / "readings.py").write_text(
        PROJECT.format(prefix=prefix, qos=qos, client_id=f"iwb-{uuid.uuid4().hex[:8]}"),
        "utf-8")
    runtime = Runtime(root, capture=capture)
    meter = Meter(count)

    def on_message(message: Any) -> None:
        if isinstance(message, EventHandled):
            meter.errors += message.outcome.status != "ok"
            meter.tick()

    runtime.bus.subscribe(on_message)
    await runtime.start()
    collector.tune()  # as `iwb run` does once started
    try:
        await runtime.wait_ready(30)
        ready_signal()
        await meter.wait()
    finally:
        await runtime.stop(10)
    result = meter.result()
    if capture:
        db = sqlite3.connect(f"file:{root / '.iwb' / 'captures.db'}?mode=ro", uri=True)
        try:
            result["captured"] = int(db.execute("SELECT COUNT(*) FROM captures").fetchone()[0])
        finally:
            db.close()
    return result


async def publish(host: str, port: int, prefix: str, qos: int, count: int) -> dict[str, Any]:
    import aiomqtt

    started = time.perf_counter()
    async with aiomqtt.Client(host, port, timeout=30) as client:
        for i in range(count):
            body = b'{"sensor": "s-%d", "value": 21.5, "n": %d}' % (i % TOPICS, i)
            await client.publish(f"{prefix}/{i % TOPICS}", body, qos=qos)
    elapsed = time.perf_counter() - started
    return {"published": count, "seconds": elapsed, "rate": count / elapsed}


def child(args: argparse.Namespace) -> int:
    runner = _loop_runner(args.loop)
    qos = args.qos[0]
    if args.child == "publish":
        result = asyncio.run(publish(args.host, args.port, args.prefix, qos, args.count))
    elif args.child == "raw":
        result = runner(consume_raw(args.host, args.port, args.prefix, qos, args.count))
    else:
        result = runner(consume_iwb(args.host, args.port, args.prefix, qos, args.count,
                                    args.child == "iwb", Path(args.root)))
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------- parent


class Broker:
    """Mosquitto on a loopback port of its own (or the one IWB_BENCH_MQTT names)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        external = os.environ.get("IWB_BENCH_MQTT")
        if external:
            host, _, port = external.rpartition(":")
            self.host, self.port = host or "127.0.0.1", int(port)
            return
        binary = shutil.which("mosquitto")
        if binary is None:
            raise BenchError("mosquitto is not installed (apt-get install -y mosquitto), "
                             "and IWB_BENCH_MQTT names no broker")
        self.host, self.port = "127.0.0.1", free_port()
        config = folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nuser root\nlog_dest stderr\nlog_type error\n"
        )
        with open(folder / "mosquitto.log", "wb") as log:
            self.proc = subprocess.Popen([binary, "-c", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._up, 15, "mosquitto")

    def _up(self) -> bool:
        import socket

        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()}")
        try:
            socket.create_connection((self.host, self.port), 0.2).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def measure(args: argparse.Namespace, broker: Broker, mode: str, qos: int, tmp: Path
            ) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    common = ["--host", broker.host, "--port", str(broker.port), "--prefix", prefix,
              "--qos", str(qos), "--count", str(args.count), "--loop", args.loop]
    root = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=tmp))
    with open(root / "consumer.log", "wb") as log:  # the child keeps its own descriptor
        consumer = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.mqtt", "--child", mode, "--root", str(root),
             *common], stdout=subprocess.PIPE, stderr=log,
        )
    assert consumer.stdout is not None
    line = consumer.stdout.readline().decode().strip()
    if line != "ready":
        consumer.kill()
        raise BenchError(f"{mode} consumer did not start: {line!r}\n"
                         f"{(root / 'consumer.log').read_text()[-2000:]}")
    publisher = subprocess.run(
        [sys.executable, "-m", "benchmarks.mqtt", "--child", "publish", *common],
        capture_output=True, text=True, timeout=600,
    )
    if publisher.returncode != 0:
        consumer.kill()
        raise BenchError(f"the publisher failed: {publisher.stderr[-2000:]}")
    out, _ = consumer.communicate(timeout=600)
    if consumer.returncode != 0:
        raise BenchError(f"{mode} consumer failed:\n{(root / 'consumer.log').read_text()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["publisher_rate"] = json.loads(publisher.stdout.strip().splitlines()[-1])["rate"]
    shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1], choices=[0, 1, 2])
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    parser.add_argument("--child", choices=[*MODES, "publish"], help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    report = Report("mqtt")
    with tempfile.TemporaryDirectory(prefix="iwb-bench-mqtt-") as tmpdir:
        tmp = Path(tmpdir)
        broker = Broker(tmp)
        try:
            for qos in args.qos:
                runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
                for round_no in range(1, args.rounds + 1):
                    # rotate the order, so no mode always runs first (or last) in a round
                    shift = (round_no - 1) % len(MODES)
                    for mode in MODES[shift:] + MODES[:shift]:
                        result = measure(args, broker, mode, qos, tmp)
                        runs[mode].append(result)
                        say(f"QoS {qos} round {round_no} {mode:>13}: {result['rate']:8.0f} "
                            f"msg/s, {result['cpu_us_per_message']:6.1f} µs CPU/msg "
                            f"(publisher {result['publisher_rate']:.0f} msg/s, "
                            f"{result['messages']} received)")
                _summarise(report, qos, runs, args.count)
        finally:
            broker.stop()
    return report.finish()


def _summarise(report: Report, qos: int, runs: dict[str, list[dict[str, Any]]],
               count: int) -> None:
    rates = {m: median([r["rate"] for r in rs]) for m, rs in runs.items()}
    cpu = {m: median([r["cpu_us_per_message"] for r in rs]) for m, rs in runs.items()}
    ratios = [i["rate"] / r["rate"] for i, r in zip(runs["iwb"], runs["raw"], strict=True)]
    ratios_nocap = [i["rate"] / r["rate"]
                    for i, r in zip(runs["iwb-nocapture"], runs["raw"], strict=True)]
    key = f"qos{qos}"
    report.figures[key] = {
        "rate": {m: round(v) for m, v in rates.items()},
        "cpu_us_per_message": {m: round(v, 1) for m, v in cpu.items()},
        "capture_cpu_us_per_message": round(cpu["iwb"] - cpu["iwb-nocapture"], 1),
        "ratio": round(median(ratios), 3),
        "ratio_nocapture": round(median(ratios_nocap), 3),
        "publisher_rate": round(median([r["publisher_rate"] for rs in runs.values()
                                        for r in rs])),
    }
    say(f"QoS {qos}: raw {rates['raw']:.0f}, iwb {rates['iwb']:.0f} "
        f"({median(ratios):.2f}x), iwb without capture {rates['iwb-nocapture']:.0f} "
        f"({median(ratios_nocap):.2f}x) msg/s; CPU per message raw {cpu['raw']:.0f} µs, iwb "
        f"{cpu['iwb']:.0f} µs (capture {cpu['iwb'] - cpu['iwb-nocapture']:.0f} µs)")
    report.check(f"qos{qos}_iwb_over_raw", median(ratios), ">=", 0.8)
    lost = sum(count - r["messages"] for rs in runs.values() for r in rs)
    report.check(f"qos{qos}_messages_missed", lost, "==", 0)
    errors = sum(r.get("errors", 0) for rs in runs.values() for r in rs)
    report.check(f"qos{qos}_handler_errors", errors, "==", 0)
    uncaptured = sum(count - r.get("captured", count) for r in runs["iwb"])
    report.check(f"qos{qos}_not_captured", uncaptured, "==", 0)


if __name__ == "__main__":
    run("mqtt", main)
