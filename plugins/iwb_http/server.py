"""Port servers: one ASGI server per (host, port), shared by the services mounted on it.

The first service on a port binds the socket and starts the server (uvicorn with httptools by
default, or hypercorn, which also speaks HTTP/2); later services only mount their base path.
A service that stops unmounts; the last one stops the server. Mounting and unmounting never
touch the socket, so restarting one service (a reload that changed its routes) leaves the
others on the same port serving. A request goes to the mounted service with the longest base
path that prefixes its path; a path no service claims gets 404.

The server runs in a task of its own, owned by this registry rather than by any one
service's task, so cancelling the service that happened to start it does not stop it.
uvicorn and hypercorn are imported only when a server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

from iwb_http.app import ASGIApp, Receive, Scope, Send, send_reply
from iwb_http.responses import problem
from workbench.errors import TriggerConfigError, WorkbenchError

__all__ = ["HttpServerError", "PortServer", "acquire", "release"]

log = logging.getLogger("iwb_http")

SERVERS = ("uvicorn", "hypercorn")


class HttpServerError(WorkbenchError):
    """An HTTP server could not listen, or stopped on its own."""

    title = "HTTP server error"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket on (host, port).

    Raises:
        HttpServerError: the address cannot be bound (in use, not local, ...).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise HttpServerError(
            f"Cannot listen on {host!r}: {exc}. Use an address of this machine, "
            "e.g. 127.0.0.1 or 0.0.0.0.",
            title="Cannot listen",
        ) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HttpServerError(
            f"Cannot listen on http://{host}:{port}: {exc.strerror or exc}. Another process or "
            "artifact holds this port; choose another port (0 picks a free one) or stop it.",
            title="Port in use",
        ) from exc
    return sock


class PortServer:
    """The ASGI server of one (host, port) and the services mounted on it."""

    def __init__(self, host: str, port: int, server: str) -> None:
        if server not in SERVERS:
            raise TriggerConfigError(
                "Unknown [plugins.http] server setting "
                f"{server!r}; use one of {', '.join(SERVERS)}.",
                title="Invalid setting",
            )
        self.host = host
        self.port = port
        """The port asked for (0: any)."""
        self.server = server
        self.bound_port = 0
        """The port actually bound."""
        self.users = 0
        self._mounts: dict[str, tuple[str, ASGIApp]] = {}
        self._draining: set[str] = set()
        self._ordered: tuple[tuple[str, str, ASGIApp], ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._uvicorn: Any = None

    # ------------------------------------------------------------------ mounts

    def mount(self, base_path: str, app: ASGIApp, owner: str) -> None:
        """Route requests under `base_path` to `app`.

        Raises:
            TriggerConfigError: another service already has this base path on this port.
        """
        if base_path in self._mounts:
            other = self._mounts[base_path][0]
            raise TriggerConfigError(
                f"Services {other!r} and {owner!r} both use base path {base_path or '/'!r} "
                f"on http://{self.host}:{self.bound_port}; give one of them another "
                "base_path or port.",
                title="Base path taken",
            )
        self._mounts[base_path] = (owner, app)
        self._reorder()

    def unmount(self, base_path: str, app: ASGIApp) -> None:
        """Stop routing `base_path` (only if it is still `app`'s)."""
        current = self._mounts.get(base_path)
        if current is not None and current[1] is app:
            del self._mounts[base_path]
            self._draining.discard(base_path)
            self._reorder()

    def drain(self, base_path: str) -> None:
        """Note that the service at `base_path` is draining; once every mounted service is,
        stop accepting connections (uvicorn) while open ones finish."""
        self._draining.add(base_path)
        if set(self._mounts) <= self._draining and self._uvicorn is not None:
            for listener in getattr(self._uvicorn, "servers", ()):
                listener.close()

    def _reorder(self) -> None:
        items = sorted(self._mounts.items(), key=lambda kv: -len(kv[0]))
        self._ordered = tuple((base, base + "/", app) for base, (_, app) in items)

    def mounted(self) -> list[str]:
        return [base for base, _, _ in self._ordered]

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            for base, prefix, app in self._ordered:
                if path.startswith(prefix) or path == base:
                    await app(scope, receive, send)
                    return
            await send_reply(
                send, problem(404, f"No service is mounted at {path!r}.", instance=path),
                head=scope["method"] == "HEAD",
            )
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the socket and start serving; returns once connections are accepted."""
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        sock = bind_socket(self.host, self.port)
        self.bound_port = int(sock.getsockname()[1])
        runner = self._run_uvicorn(sock) if self.server == "uvicorn" else self._run_hypercorn(sock)
        self._task = loop.create_task(runner, name=f"iwb-http:{self.host}:{self.bound_port}")
        self._task.add_done_callback(self._on_done)
        await self.wait_started()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        started = self._started
        if started is not None and not started.done():
            if task.cancelled():
                started.cancel()
            else:
                exc = task.exception()
                started.set_exception(
                    exc or HttpServerError(f"The server on port {self.bound_port} did not start.")
                )
        if not task.cancelled():
            task.exception()  # retrieved here so asyncio does not warn; waiters see it

    async def wait_started(self) -> None:
        """Wait until the server accepts connections; raise if it failed to start."""
        assert self._started is not None
        await asyncio.shield(self._started)

    def _mark_started(self) -> None:
        if self._started is not None and not self._started.done():
            self._started.set_result(None)

    async def wait_closed(self) -> None:
        """Return when the server task ends (raising its error if it failed)."""
        assert self._task is not None
        await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop serving and release the socket (idempotent)."""
        self._stop.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception as exc:
            log.warning("HTTP server on port %s stopped with an error: %s", self.bound_port, exc)

    async def _run_uvicorn(self, sock: socket.socket) -> None:
        import uvicorn

        owner = self

        class Server(uvicorn.Server):
            """uvicorn without its signal handlers: the runtime keeps SIGTERM/SIGINT."""

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

            def install_signal_handlers(self) -> None:  # uvicorn < 0.29
                return None

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                owner._mark_started()

        try:
            import httptools  # noqa: F401

            http = "httptools"
        except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
            http = "h11"
        config = uvicorn.Config(
            self,
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            http=http,
            ws="none",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = Server(config)
        self._uvicorn = server
        if self._stop.is_set():
            server.should_exit = True
        try:
            await server.serve(sockets=[sock])
        finally:
            sock.close()

    async def _run_hypercorn(self, sock: socket.socket) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        # hypercorn takes ownership of the descriptor (and closes it when it stops).
        config.bind = [f"fd://{sock.detach()}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 5
        config.include_server_header = False

        owner = self

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                # The socket is already listening: connections queue until hypercorn
                # accepts them, right after this startup completes.
                async def wrapped_send(message: Any) -> None:
                    await send(message)
                    if message["type"] == "lifespan.startup.complete":
                        owner._mark_started()

                await owner(scope, receive, wrapped_send)
            else:
                await owner(scope, receive, send)

        await serve(app, config, shutdown_trigger=self._stop.wait, mode="asgi")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- registry

_servers: dict[tuple[int, str, int], PortServer] = {}
_stopping: dict[tuple[int, str, int], asyncio.Task[None]] = {}


def _key(host: str, port: int) -> tuple[int, str, int]:
    return (id(asyncio.get_running_loop()), host, port)


async def acquire(host: str, port: int, server: str = "uvicorn") -> PortServer:
    """The running server for (host, port), started if this is its first service.

    Port 0 always gets a server of its own (a fresh ephemeral port).

    Raises:
        HttpServerError: the port cannot be bound.
        TriggerConfigError: `server` is not a known server.
    """
    if port == 0:
        fresh = PortServer(host, 0, server)
        fresh.users = 1
        await fresh.start()
        return fresh
    key = _key(host, port)
    pending = _stopping.get(key)
    if pending is not None:
        # The last service just left: let that server release the socket first.
        await asyncio.shield(pending)
    existing = _servers.get(key)
    if existing is not None:
        existing.users += 1
        try:
            await existing.wait_started()
        except BaseException:
            await release(existing)
            raise
        return existing
    fresh = PortServer(host, port, server)
    fresh.users = 1
    _servers[key] = fresh
    try:
        await fresh.start()
    except BaseException:
        await release(fresh)
        raise
    return fresh


async def release(server: PortServer) -> None:
    """A service leaves `server`; the last one stops it."""
    server.users -= 1
    if server.users > 0:
        return
    key = _key(server.host, server.port)
    if _servers.get(key) is server:
        del _servers[key]
    task = asyncio.get_running_loop().create_task(server.stop())
    if server.port:
        _stopping[key] = task

        def _forget(done: asyncio.Task[None]) -> None:
            if _stopping.get(key) is done:
                del _stopping[key]

        task.add_done_callback(_forget)
    await asyncio.shield(task)
