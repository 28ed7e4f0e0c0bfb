"""The `http` connection kind: a named HTTP API in connections.toml.

    [inventory]
    kind = "http"
    base_url = "https://inventory.internal/api"
    auth_token = "${INVENTORY_TOKEN}"

Handlers call it through `workbench.config.connection("inventory")`, which reaches the
`httpx.AsyncClient` opened here. Every call is recorded on the current event's outcome
(`http.request` with method, url, status, duration). In sandbox mode (a replay that must not
reach the outside) the request is not sent: it is answered `200 {}` with the header
`x-iwb-sandbox: 1`, and recorded with `sandboxed=True`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from workbench.plugin import ConnectionKind, Health, record_outbound, sandboxed

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpConnection", "HttpConnectionConfig"]

_STARTED = "iwb_started"


class HttpConnectionConfig(BaseModel):
    """A named HTTP API."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    """Prefix of every request URL, e.g. `https://api.example.com/v1`."""
    headers: dict[str, str] = {}
    """Headers sent with every request."""
    timeout: float = 10.0
    """Seconds before a request fails."""
    verify: bool = True
    """Verify TLS certificates."""
    health_path: str = "/"
    """Path the health check GETs; the API is healthy when it answers below 500."""
    auth_token: str | None = None
    """Sent as `Authorization: Bearer <token>` (masked wherever config is shown)."""


def _build_transport(inner: Any) -> Any:
    import httpx

    class SandboxTransport(httpx.AsyncBaseTransport):
        """Sends through `inner`, except in sandbox mode, where it answers `200 {}` itself;
        a call that fails is recorded with its error."""

        def __init__(self, wrapped: httpx.AsyncBaseTransport) -> None:
            self.wrapped = wrapped

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if sandboxed():
                return httpx.Response(
                    200,
                    headers={"content-type": "application/json", "x-iwb-sandbox": "1"},
                    content=b"{}",
                    request=request,
                )
            try:
                return await self.wrapped.handle_async_request(request)
            except httpx.HTTPError as exc:
                started = request.extensions.get(_STARTED, time.perf_counter())
                record_outbound(
                    "http.request",
                    method=request.method,
                    url=str(request.url),
                    status=None,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    error=f"{type(exc).__name__}: {exc}",
                )
                raise

        async def aclose(self) -> None:
            await self.wrapped.aclose()

    return SandboxTransport(inner)


async def _on_request(request: httpx.Request) -> None:
    request.extensions = {**request.extensions, _STARTED: time.perf_counter()}


async def _on_response(response: httpx.Response) -> None:
    request = response.request
    started = request.extensions.get(_STARTED, time.perf_counter())
    details: dict[str, Any] = {
        "method": request.method,
        "url": str(request.url),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if response.headers.get("x-iwb-sandbox") == "1":
        details["sandboxed"] = True
    record_outbound("http.request", **details)


class HttpConnection(ConnectionKind["httpx.AsyncClient"]):
    """An HTTP API reached with an `httpx.AsyncClient`."""

    kind: ClassVar[str] = "http"
    config_model: ClassVar[type[BaseModel]] = HttpConnectionConfig

    @property
    def settings(self) -> HttpConnectionConfig:
        assert isinstance(self.config, HttpConnectionConfig)
        return self.config

    async def open(self) -> httpx.AsyncClient:
        import httpx

        cfg = self.settings
        headers = dict(cfg.headers)
        if cfg.auth_token:
            headers["Authorization"] = f"Bearer {cfg.auth_token}"
        transport = _build_transport(httpx.AsyncHTTPTransport(verify=cfg.verify))
        return httpx.AsyncClient(
            base_url=cfg.base_url,
            headers=headers,
            timeout=cfg.timeout,
            transport=transport,
            event_hooks={"request": [_on_request], "response": [_on_response]},
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def health(self) -> Health:
        import httpx

        cfg = self.settings
        client = self._client
        url = cfg.base_url.rstrip("/") + "/" + cfg.health_path.lstrip("/")
        started = time.perf_counter()
        try:
            if client is None:
                async with await self.open() as temp:
                    response = await temp.get(cfg.health_path)
            else:
                response = await client.get(cfg.health_path)
        except httpx.HTTPError as exc:
            return Health(
                False,
                f"GET {url} failed: {type(exc).__name__}: {exc or 'no detail'}",
                (time.perf_counter() - started) * 1000,
            )
        latency = (time.perf_counter() - started) * 1000
        ok = response.status_code < 500
        return Health(ok, f"GET {url} answered {response.status_code}", latency)
