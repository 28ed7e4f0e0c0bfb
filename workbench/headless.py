"""`iwb run`: the runtime without the TUI, for production.

- JSON log lines on stdout (one object per line: `ts`, `level`, `logger`, `msg`, and fields);
- an admin listener (loopback by default) with `/healthz` (200 while the process runs),
  `/readyz` (200 only when every artifact is listening, else 503 with the ones that are not)
  and `/metrics` (Prometheus text format);
- SIGTERM/SIGINT: stop taking new work, let in-flight events finish within the drain
  deadline, flush the capture store, exit 0;
- a project that cannot start: every problem on stderr, exit 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import ProjectLoadError, WorkbenchError
from workbench.runtime import collector
from workbench.runtime.bus import EventHandled, Message
from workbench.runtime.runtime import Runtime

EXIT_OK = 0
EXIT_CANNOT_START = 1


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def setup_logging(level: str = "info", stream: Any = None) -> None:
    """JSON lines on `stream` (stdout by default)."""
    install_log_handler(logging.StreamHandler(stream or sys.stdout), level)


def install_log_handler(handler: logging.Handler, level: str) -> None:
    """Make `handler` the only handler of the root logger, writing JSON lines at `level`;
    the servers' and the file watcher's own chatter is kept to warnings."""
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn", "uvicorn.error", "uvicorn.access", "hypercorn", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class AdminServer:
    """A tiny HTTP/1.1 server for health and metrics (no framework: it must start fast and
    keep answering while the listeners are busy)."""

    def __init__(self, runtime: Runtime, host: str, port: int) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            status, ctype, body = self._route(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _route(self, path: str) -> tuple[str, str, bytes]:
        rt = self.runtime
        if path == "/healthz":
            return "200 OK", "application/json", b'{"status":"ok"}'
        if path == "/readyz":
            waiting = {
                s.name: s.status for s in rt.artifacts.values()
                if s.task is not None and s.status != "listening"
            }
            body = json.dumps({"ready": rt.ready, "not_ready": waiting}).encode()
            status = "200 OK" if rt.ready else "503 Service Unavailable"
            return status, "application/json", body
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", rt.metrics.render()
        return "404 Not Found", "application/json", b'{"error":"not found"}'


async def run(
    root: Path,
    *,
    profile: str | None = None,
    admin_host: str | None = None,
    admin_port: int | None = None,
    reload: bool = False,
    plugin_settings: dict[str, dict[str, Any]] | None = None,
    log_events: bool = False,
) -> int:
    """Run a project until SIGTERM/SIGINT; returns the process exit code."""
    runtime = Runtime(root, profile=profile, reload=reload, settings=plugin_settings)
    log = logging.getLogger("iwb")
    try:
        await runtime.start()
        collector.tune()
    except ProjectLoadError as exc:
        print(f"iwb: {exc.title}\n{exc.message}", file=sys.stderr)
        return EXIT_CANNOT_START
    except WorkbenchError as exc:
        print(f"iwb: {exc.title}: {exc.message}", file=sys.stderr)
        return EXIT_CANNOT_START
    admin = AdminServer(
        runtime,
        admin_host or runtime.settings.admin.host,
        runtime.settings.admin.port if admin_port is None else admin_port,
    )
    try:
        await admin.start()
    except OSError as exc:
        print(
            f"iwb: cannot open the admin listener on {admin.host}:{admin.port}: {exc}. "
            "Choose another port with --admin-port.",
            file=sys.stderr,
        )
        await runtime.stop(0)
        return EXIT_CANNOT_START
    log.info("admin listening", extra={"fields": {"admin": f"http://{admin.host}:{admin.port}"}})

    runtime.bus.subscribe(_event_logger(log, every_event=log_events))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()

    async def announce_ready() -> None:
        try:
            await runtime.wait_ready(timeout=60)
        except TimeoutError as exc:
            log.warning(str(exc))
            return
        log.info(
            "ready",
            extra={"fields": {
                "startup_ms": round((time.monotonic() - started) * 1000, 1),
                "artifacts": {n: s.address for n, s in runtime.artifacts.items()},
            }},
        )

    ready_task = asyncio.create_task(announce_ready())
    await stop.wait()
    log.info("shutting down: draining in-flight work")
    ready_task.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    await runtime.stop()
    await admin.stop()
    log.info("stopped")
    return EXIT_OK


def _event_logger(log: logging.Logger, *, every_event: bool) -> Any:
    """Log events that failed (always) and the others (with `every_event`)."""

    def on_message(message: Message) -> None:
        if isinstance(message, EventHandled) and (every_event or not message.outcome.ok):
            ev, out = message.event, message.outcome
            fields: dict[str, Any] = {
                "event_id": ev.id, "artifact": ev.artifact, "kind": ev.kind,
                "handler": out.handler, "status": out.status,
                "duration_ms": round(out.duration_ms, 3),
            }
            if out.error is not None:
                fields["error"] = f"{out.error.type}: {out.error.message}"
                if out.error.where:
                    fields["where"] = out.error.where
            log.log(
                logging.INFO if out.ok else logging.WARNING, "event", extra={"fields": fields}
            )

    return on_message
