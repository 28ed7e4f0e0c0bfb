"""`HttpTrigger`: the listener of an HTTP service.

`serve()` mounts the service on the port server of its (host, port) — starting that server if
it is the first service there — and keeps it mounted until cancelled. Requests become events
(`iwb.http.request`), the runtime's outcome becomes the reply. `inject()` sends an event as a
real HTTP request to the bound port; `samples()` offers one template request per route.

Settings honoured (iwb.toml `[plugins.http]`): `server` (`uvicorn`, the default, or
`hypercorn`) and `engine` (`asgi`, the default, or `quart`; see the package docstring).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlencode

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from iwb_http.app import INJECT_HEADER, ASGIApp, ServiceApp
from iwb_http.binding import extractor_for
from iwb_http.connection import HttpConnection
from iwb_http.openapi import build_openapi
from iwb_http.routing import RouteTable, parse_template
from iwb_http.samples import build_samples
from iwb_http.server import HttpServerError, PortServer, acquire, release
from iwb_http.service import Service, ServiceConfig
from workbench.errors import TriggerConfigError, WorkbenchError
from workbench.events import Event
from workbench.plugin import Artifact, Dispatch, HandlerSpec, Sample, Trigger

__all__ = ["HttpTransport", "HttpTrigger"]

ENGINES = ("asgi", "quart")

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length", "host", INJECT_HEADER,
})
"""Headers `inject` does not copy from a recorded request (the client sets its own)."""


class HttpTransport(BaseModel):
    """`Event.transport` of an HTTP request: what reproduces it."""

    model_config = ConfigDict(extra="allow")

    method: str = "GET"
    path: str = Field("/", description="The full request path, base path included.")
    route: str = Field("", description="The matched route template, e.g. /{order_id}.")
    path_params: dict[str, str] = Field(default_factory=dict)
    query: dict[str, list[str]] = Field(default_factory=dict)
    query_string: str = Field("", description="The raw query string, as received.")
    headers: list[tuple[str, str]] = Field(
        default_factory=list, description="[name, value] pairs, in order, repeats kept."
    )
    scheme: str = "http"
    http_version: str = "1.1"
    client: tuple[str, int] | None = None
    host: str = ""
    port: int = 0
    base_path: str = ""


class HttpTrigger(Trigger[ServiceConfig]):
    """Serves one `http.Service`."""

    kind: ClassVar[str] = "http"
    artifact_class: ClassVar[type[Artifact[Any]]] = Service
    transport_model: ClassVar[type[BaseModel]] = HttpTransport
    connection_kinds: ClassVar[tuple[type[Any], ...]] = (HttpConnection,)

    bound_port: int | None = None
    """The port the service listens on, once serving (the real one when configured as 0)."""
    _app: ServiceApp | None = None
    _server: PortServer | None = None

    @property
    def table(self) -> RouteTable:
        return RouteTable.from_meta(self.artifact.handlers)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the service."""
        return build_openapi(self.name, self.config, self.table, self.artifact.handlers)

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        import anyio

        cfg = self.config
        settings = self.context.settings
        server_kind = str(settings.get("server", "uvicorn"))
        engine = str(settings.get("engine", "asgi"))
        if engine not in ENGINES:
            raise TriggerConfigError(
                "Unknown [plugins.http] engine setting "
                f"{engine!r}; use one of {', '.join(ENGINES)}.",
                title="Invalid setting",
            )
        table = self.table
        server = await acquire(cfg.host, cfg.port, server_kind)
        try:
            port = server.bound_port
            self.bound_port = port
            app = ServiceApp(
                name=self.name,
                config=cfg,
                table=table,
                dispatch=dispatch,
                port=port,
                openapi=lambda: pydantic_core.to_json(self.openapi()),
            )
            asgi: ASGIApp = app
            if engine == "quart":
                from iwb_http.quart_app import build_quart_app

                asgi = build_quart_app(app)
            server.mount(cfg.base_path, asgi, owner=self.name)
            self._app, self._server = app, server
            try:
                self.context.set_address(f"http://{cfg.host}:{port}{cfg.base_path}")
                ready()
                await server.wait_closed()
                raise HttpServerError(
                    f"The HTTP server on http://{cfg.host}:{port} stopped on its own; "
                    "the service will be restarted.",
                )
            finally:
                server.unmount(cfg.base_path, asgi)
                self._app = self._server = None
        finally:
            # Shielded: a cancelled task must still give the port back.
            with anyio.CancelScope(shield=True):
                await release(server)

    async def drain(self) -> None:
        """Refuse new requests (503) while in-flight ones finish; when every service on the
        port drains, stop accepting connections."""
        if self._app is not None:
            self._app.draining = True
        if self._server is not None:
            self._server.drain(self.config.base_path)

    # ------------------------------------------------------------------ inject

    def _target(self) -> tuple[str, int]:
        host = self.config.host
        if host in ("0.0.0.0", "", "*"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        port = self.bound_port or self.config.port
        return (f"[{host}]" if ":" in host else host), port

    def _request_parts(self, event: Event) -> tuple[str, str, list[tuple[str, str]]]:
        t = event.transport
        method = str(t.get("method") or event.handler.split(" ", 1)[0] or "GET").upper()
        path = t.get("path")
        if not path:
            template = event.handler.split(" ", 1)[1] if " " in event.handler else "/"
            rel = parse_template(template).path
            for name, value in (t.get("path_params") or {}).items():
                rel = rel.replace("{" + name + ":path}", str(value))
                rel = rel.replace("{" + name + "}", str(value))
            path = self.config.base_path + ("" if rel == "/" else rel) or "/"
        query_string = t.get("query_string")
        if not query_string and t.get("query"):
            query_string = urlencode(t["query"], doseq=True)
        if query_string:
            path = f"{path}?{query_string}"
        headers = [
            (str(k), str(v)) for k, v in t.get("headers") or () if k.lower() not in HOP_BY_HOP
        ]
        if event.datacontenttype and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", event.datacontenttype))
        mark = event.extensions.get("iwbinject")
        if mark is not None:
            headers.append((INJECT_HEADER, str(mark)))
        return method, str(path), headers

    async def inject(self, event: Event) -> None:
        """Send `event` as a real HTTP request to the service's port."""
        import httpx

        method, path, headers = self._request_parts(event)
        host, port = self._target()
        url = f"http://{host}:{port}{path}"
        timeout = (self.artifact.policy.timeout or 30.0) + 5.0
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                await client.request(method, url, headers=headers, content=event.data)
        except httpx.HTTPError as exc:
            raise WorkbenchError(
                f"Could not send {method} {url} to artifact {self.name!r}: "
                f"{type(exc).__name__}: {exc}. Is the service running?",
                title="Inject failed",
            ) from exc

    # ------------------------------------------------------------------ console

    def samples(self) -> list[Sample]:
        return build_samples(
            self.name, self.config, self.table, self.artifact.handlers,
            self.bound_port or self.config.port,
        )

    @classmethod
    def param_extractor(
        cls, param: inspect.Parameter, annotation: Any, handler: HandlerSpec
    ) -> Callable[[Event], Any] | None:
        return extractor_for(param, annotation, handler)
