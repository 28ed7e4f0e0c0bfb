"""`iwb run` as an operator runs it: a real process, real sockets, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit import IWB, free_port, write_files


class Running:
    def __init__(self, proc: subprocess.Popen[str], admin: int) -> None:
        self.proc = proc
        self.admin = admin
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin}{path}"

    def wait_ready(self, timeout: float = 20) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"iwb run exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url("/readyz"), timeout=1).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"not ready in {timeout} s: {self.output()}")

    def output(self) -> str:
        err = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
        return "".join(self.lines) + err

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]


@pytest.fixture
def run_iwb() -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(project: Path, *args: str, env: dict[str, str] | None = None) -> Running:
        admin = free_port()
        proc = subprocess.Popen(
            [IWB, "run", str(project), "--admin-port", str(admin), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        procs.append(proc)
        return Running(proc, admin)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_sample_project_runs_serves_and_reports(sample_copy: Path, run_iwb) -> None:
    port = free_port()
    running = run_iwb(sample_copy, "--log-events", env={"IWB_ORDERS_API__PORT": str(port)})
    running.wait_ready()
    assert httpx.get(running.url("/healthz")).json() == {"status": "ok"}

    order = {"customer": "ada@example.com",
             "items": [{"sku": "TEA-01", "quantity": 2, "unit_price": 4.5}]}
    created = httpx.post(f"http://127.0.0.1:{port}/orders/", json=order)
    assert created.status_code == 201, created.text
    assert created.json()["total"] == 9.0
    stock = httpx.get(f"http://127.0.0.1:{port}/inventory/TEA-01")  # same port, other service
    assert stock.status_code == 200 and stock.json()["sku"] == "TEA-01"
    bad = httpx.post(f"http://127.0.0.1:{port}/orders/", content=b"{nope",
                     headers={"content-type": "application/json"})
    assert bad.status_code == 400

    metrics = httpx.get(running.url("/metrics")).text
    assert 'iwb_events_total{artifact="orders",kind="http",status="ok"} 1.0' in metrics
    assert 'iwb_events_total{artifact="orders",kind="http",status="error"} 1.0' in metrics
    assert 'iwb_errors_total{artifact="orders",error_type="MalformedPayload"} 1.0' in metrics
    assert 'iwb_artifact_listening{artifact="restock"} 1.0' in metrics
    assert "iwb_handler_duration_seconds_bucket" in metrics

    # a CSV dropped into the inbox goes through the files trigger and the `shop` connection
    (sample_copy / "inbox").mkdir(exist_ok=True)
    (sample_copy / "inbox" / "batch.csv").write_text(
        "customer,sku,quantity,unit_price\nbob@example.com,MUG-07,1,12.0\n"
    )
    deadline = time.monotonic() + 10
    while not (sample_copy / "inbox" / "done" / "batch.csv").exists():
        assert time.monotonic() < deadline, running.output()
        time.sleep(0.05)
    orders = httpx.get(f"http://127.0.0.1:{port}/orders/").json()
    assert [o["customer"] for o in orders] == ["ada@example.com", "bob@example.com"]

    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(15) == 0
    logs = running.json_lines()
    assert any(line["msg"] == "ready" for line in logs)
    events = [line for line in logs if line["msg"] == "event"]
    assert {e["artifact"] for e in events} >= {"orders", "inventory", "inbox"}
    assert all({"ts", "level", "logger"} <= set(line) for line in logs)


def test_sigterm_drains_in_flight_work_then_exits_zero(make_project, run_iwb) -> None:
    port = free_port()
    root = make_project({
        "artifacts/slow.py": f"""
            import asyncio
            import iwb_http as http

            api = http.Service(port={port})

            @api.get("/slow")
            async def slow() -> dict:
                await asyncio.sleep(1.0)
                return {{"done": True}}
        """,
    })
    running = run_iwb(root)
    running.wait_ready()
    result: dict[str, object] = {}

    def call() -> None:
        result["response"] = httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)  # the request is in the handler now
    running.proc.send_signal(signal.SIGTERM)
    caller.join(10)
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200 and response.json() == {"done": True}
    assert running.proc.wait(15) == 0
    msgs = [line["msg"] for line in running.json_lines()]
    assert "shutting down: draining in-flight work" in msgs and msgs[-1] == "stopped"
    # the drained event was captured before exit
    out = subprocess.run([IWB, "captures", str(root), "--json"], capture_output=True,
                         text=True, check=True).stdout
    assert [c["status"] for c in json.loads(out)] == ["ok"]


def test_project_that_cannot_start_exits_nonzero_with_every_problem(
    make_project, run_iwb
) -> None:
    root = make_project({
        "artifacts/a.py": """
            from workbench.config import configurable
            KEY = configurable("api_key", str, secret=True)
        """,
        "artifacts/b.py": "def broken(:\n",
    })
    running = run_iwb(root)
    assert running.proc.wait(20) == 1
    assert running.proc.stderr is not None
    err = running.proc.stderr.read()
    assert "The project cannot start" in err
    assert "[a] api_key" in err and "IWB_A__API_KEY" in err
    assert "artifacts/b.py:1" in err


def test_readyz_is_503_until_every_artifact_listens(make_project, run_iwb) -> None:
    busy = free_port()
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", busy))
    blocker.listen()
    ok_port = free_port()
    root = make_project({
        "artifacts/two.py": f"""
            import iwb_http as http
            good = http.Service(port={ok_port})
            taken = http.Service(port={busy})

            @good.get("/")
            async def a() -> str:
                return "a"

            @taken.get("/")
            async def b() -> str:
                return "b"
        """,
    })
    running = run_iwb(root)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(running.url("/readyz"), timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        deadline = time.monotonic() + 15
        while httpx.get(f"http://127.0.0.1:{ok_port}/").status_code != 200 if _up(ok_port) \
                else True:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.get(running.url("/readyz"))
        assert r.status_code == 503
        assert r.json()["not_ready"] == {"taken": "disconnected-retrying"}
        assert httpx.get(f"http://127.0.0.1:{ok_port}/").text == "a"  # the other one serves
        blocker.close()  # the port frees up: the retrying listener comes up
        running.wait_ready(timeout=40)
    finally:
        blocker.close()


def _up(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
        return True
    except httpx.TransportError:
        return False


def test_startup_and_help_are_fast(sample_copy: Path, run_iwb) -> None:
    """Not a benchmark (scripts/bench-startup is): a guard against gross regressions."""
    start = time.monotonic()
    subprocess.run([IWB, "--help"], capture_output=True, check=True)
    assert time.monotonic() - start < 3
    running = run_iwb(sample_copy, env={"IWB_ORDERS_API__PORT": str(free_port())})
    assert running.wait_ready() < 10
    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(15) == 0


def write_project(root: Path, files: dict[str, str]) -> None:
    write_files(root, files)
