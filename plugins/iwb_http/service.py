"""The authoring side: `Service`, its configuration and the route decorators.

    api = http.Service(port=8080, base_path="/orders", cors=http.Cors(allow_origins=["*"]))

    @api.post("/", status=201)
    async def create_order(order: Order) -> Receipt: ...

A route decorator registers the function as a handler of the artifact under the key
`"POST /"`; the route (method, path template, status) is handler metadata, so it is part of
the listener's configuration: changing a route restarts the service, changing only the code
of a handler swaps it in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iwb_http.routing import METHODS, parse_template
from workbench.errors import TriggerConfigError
from workbench.plugin import NOT_BOUND, Artifact

__all__ = ["Cors", "Service", "ServiceConfig"]

F = TypeVar("F", bound=Callable[..., Any])


class Cors(BaseModel):
    """Cross-origin resource sharing for a service.

    `"*"` in `allow_methods` means the methods of the matched path's routes; in
    `allow_headers` it means whatever headers the preflight asks for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_origins: list[str] = Field(default_factory=lambda: ["*"])
    """Origins allowed to call the service; `"*"` allows any origin."""
    allow_methods: list[str] = Field(default_factory=lambda: ["*"])
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])
    allow_credentials: bool = False
    """Send `Access-Control-Allow-Credentials: true` (the origin is then echoed, not `*`)."""
    expose_headers: list[str] = Field(default_factory=list)
    max_age: int = 600
    """Seconds a browser may cache a preflight answer."""


class ServiceConfig(BaseModel):
    """The listener configuration of an HTTP service."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    """Interface to listen on; `0.0.0.0` for every interface."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port; `0` picks a free one (reported as the artifact's address)."""
    base_path: str = ""
    """Prefix of every route, `""` or `/name`; services on one port are told apart by it."""
    cors: Cors | None = None
    max_body: int = Field(1_048_576, ge=0)
    """Largest request body accepted, in bytes; larger bodies get 413."""
    title: str | None = None
    """Title of the OpenAPI document (default: the artifact name)."""
    version: str = "0.1.0"
    """Version of the OpenAPI document."""

    @field_validator("base_path")
    @classmethod
    def _check_base_path(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        if not value.startswith("/"):
            raise ValueError(f"base_path must be '' or start with '/', got {value!r}")
        if "{" in value or "}" in value or "?" in value:
            raise ValueError(f"base_path must be a plain path without parameters, got {value!r}")
        return value.rstrip("/")


class Service(Artifact[ServiceConfig]):
    """An HTTP service: a port, a base path and routes.

    Several services may share a port when their base paths differ.
    """

    kind: ClassVar[str] = "http"
    config_model: ClassVar[type[BaseModel]] = ServiceConfig

    def address(self) -> str:
        cfg = self.config
        return f"http://{cfg.host}:{cfg.port}{cfg.base_path}"

    def route(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        summary: str | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function for `method` requests to `path`.

        Args:
            method: an HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, ...).
            path: the route template relative to the base path, e.g. `/{order_id}`.
            status: the status of a successful reply (default 200, or 204 for `None`).
            summary: a one-line description for the OpenAPI document.
            timeout: seconds this route's handler may run (default: the service's timeout).

        Raises:
            TriggerConfigError: unknown method, bad template or status, or a route that
                already has a handler.
        """
        verb = method.upper()
        if verb not in METHODS:
            raise TriggerConfigError(
                f"Unknown HTTP method {method!r} for route {path!r}; "
                f"use one of {', '.join(METHODS)}.",
                title="Invalid route",
            )
        if status is not None and not 100 <= status <= 599:
            raise TriggerConfigError(
                f"Route {verb} {path!r} has status {status!r}; use a number from 100 to 599.",
                title="Invalid route",
            )
        template = parse_template(path)

        def decorator(func: F) -> F:
            self.add_handler(
                f"{verb} {template.path}",
                func,
                timeout=NOT_BOUND if timeout is None else timeout,
                method=verb,
                path=template.path,
                status=status,
                summary=summary,
            )
            return func

        return decorator

    def get(self, path: str, *, status: int | None = None, summary: str | None = None,
            timeout: float | None = None) -> Callable[[F], F]:
        """Register a `GET` route (see `route`)."""
        return self.route("GET", path, status=status, summary=summary, timeout=timeout)

    def post(self, path: str, *, status: int | None = None, summary: str | None = None,
            timeout: float | None = None) -> Callable[[F], F]:
        """Register a `POST` route (see `route`)."""
        return self.route("POST", path, status=status, summary=summary, timeout=timeout)

    def put(self, path: str, *, status: int | None = None, summary: str | None = None,
            timeout: float | None = None) -> Callable[[F], F]:
        """Register a `PUT` route (see `route`)."""
        return self.route("PUT", path, status=status, summary=summary, timeout=timeout)

    def patch(self, path: str, *, status: int | None = None, summary: str | None = None,
            timeout: float | None = None) -> Callable[[F], F]:
        """Register a `PATCH` route (see `route`)."""
        return self.route("PATCH", path, status=status, summary=summary, timeout=timeout)

    def delete(self, path: str, *, status: int | None = None, summary: str | None = None,
            timeout: float | None = None) -> Callable[[F], F]:
        """Register a `DELETE` route (see `route`)."""
        return self.route("DELETE", path, status=status, summary=summary, timeout=timeout)
