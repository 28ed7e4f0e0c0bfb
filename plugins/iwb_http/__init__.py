"""HTTP services for iwb: the `http` trigger kind and the `http` connection kind.

    from typing import Annotated
    import iwb_http as http

    api = http.Service(port=8080, base_path="/orders", cors=http.Cors(allow_origins=["*"]))

    @api.post("/", status=201)
    async def create_order(order: Order, request: http.Request) -> Receipt: ...

    @api.get("/{order_id}")
    async def get_order(
        order_id: int,
        verbose: bool = False,
        request_id: Annotated[str | None, http.Header("X-Request-Id")] = None,
    ) -> Order:
        raise http.HTTPError(404, f"order {order_id} not found")

Modules: `service` (authoring: `Service`, `Cors`), `binding` (`Header`, `Query`, parameter
extractors), `request` (`Request`), `responses` (`Response`, `HTTPError`, rendering and
problem+json), `routing` (route templates and tables), `app` (one mounted service: request →
event → dispatch → reply), `server` (one uvicorn/hypercorn server per port, services mounted
by base path), `quart_app` (the same service as a Quart application), `openapi`, `samples`,
`connection` (`HttpConnection`), `trigger` (`HttpTrigger`).

Request path and Quart. Each service can be served as a Quart application (Werkzeug routing
over `add_url_rule` rules made from the route table, Quart's request and response objects):
setting `engine = "quart"` in iwb.toml's `[plugins.http]`.
The default engine, `asgi`, serves the same routes
through `ServiceApp`, a small ASGI handler over a precomputed route table (about 12 µs of
its own per request). Measured on two cores with `wrk -t2 -c32`, a JSON POST bound to a
pydantic model, through the real runtime, on uvicorn + httptools:

| engine              | capture on  | capture off  |
| ------------------- | ----------- | ------------ |
| `asgi` (default)    | 5,580 req/s | 10,280 req/s |
| `quart`             | 2,440 req/s |  3,410 req/s |
| bare Quart handler  | 5,390 req/s |              |

(on hypercorn: `asgi` 2,520 req/s with capture, a bare Quart handler 2,900 req/s). Quart's
per-request machinery (request context, Werkzeug matching, request/response objects, hooks)
cost more than the whole rest of the path, so `asgi` is the default and `quart` stays
available for projects that want Quart's request model. Both engines produce the same
events, replies and errors.

This package imports neither Quart, uvicorn, hypercorn nor httpx at import time; they are
imported when a service starts, injects or a connection opens. It never imports the runtime
or the TUI.
"""

from __future__ import annotations

from iwb_http.binding import Header, Query
from iwb_http.connection import HttpConnection, HttpConnectionConfig
from iwb_http.request import Headers, QueryParams, Request
from iwb_http.responses import HTTPError, Response
from iwb_http.service import Cors, Service, ServiceConfig
from iwb_http.trigger import HttpTransport, HttpTrigger

__all__ = [
    "Cors",
    "HTTPError",
    "Header",
    "Headers",
    "HttpConnection",
    "HttpConnectionConfig",
    "HttpTransport",
    "HttpTrigger",
    "Query",
    "QueryParams",
    "Request",
    "Response",
    "Service",
    "ServiceConfig",
]
