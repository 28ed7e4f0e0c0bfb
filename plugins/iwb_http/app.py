"""One mounted service: turns requests into events, dispatches them and sends the replies.

`ServiceApp` is a plain ASGI application, the request path of the default `asgi` engine:
route lookup in a table built at start, the body read under `max_body`, one `Event` built,
`await dispatch(event)`, the outcome rendered and recorded, the reply sent. The `quart`
engine (`iwb_http.quart_app`) reuses the same pieces (`make_event`, `finish`, `too_large`)
behind Quart's routing and request objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from iwb_http.cors import CorsPolicy
from iwb_http.responses import Reply, describe_reply, problem, render_outcome
from iwb_http.routing import Route, RouteTable
from iwb_http.service import ServiceConfig
from workbench.events import Event
from workbench.plugin import Dispatch

__all__ = ["ASGIApp", "Receive", "Scope", "Send", "ServiceApp", "send_reply"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INJECT_HEADER = "x-iwb-inject"
OPENAPI_PATH = "/openapi.json"
"""Where each service serves its OpenAPI document, relative to its base path."""


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


async def send_reply(send: Send, reply: Reply, *, head: bool = False) -> None:
    """Send a rendered reply over ASGI (no body for `HEAD`)."""
    status, headers, body = reply
    raw = [(_encode(k), _encode(v)) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


class TooLarge(Exception):
    """The request body is larger than `max_body`."""


class ServiceApp:
    """The request handling of one service (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        config: ServiceConfig,
        table: RouteTable,
        dispatch: Dispatch,
        port: int,
        openapi: Callable[[], bytes],
    ) -> None:
        self.name = name
        self.config = config
        self.table = table
        self.dispatch = dispatch
        self.base = config.base_path
        self._base_len = len(self.base)
        self.max_body = config.max_body
        self.host = config.host
        self.port = port
        self.source = f"http://{config.host}:{port}{config.base_path}"
        self.cors = CorsPolicy(config.cors) if config.cors is not None else None
        self.openapi = openapi
        self.draining = False
        """Set while the runtime drains: new requests get 503, in-flight ones finish."""

    # ------------------------------------------------------------------ shared pieces

    def make_event(
        self,
        *,
        method: str,
        path: str,
        route: Route,
        path_params: dict[str, str],
        query_string: str,
        headers: list[list[str]],
        body: bytes,
        content_type: str | None,
        inject: str | None,
        scheme: str = "http",
        http_version: str = "1.1",
        client: list[Any] | None = None,
    ) -> Event:
        """The event for one request; `transport` holds what reproduces it."""
        event = Event(
            artifact=self.name,
            kind="http",
            type="iwb.http.request",
            source=self.source,
            data=body,
            handler=route.key,
            subject=path,
            datacontenttype=content_type,
            transport={
                "method": method,
                "path": path,
                "route": route.template.path,
                "path_params": path_params,
                "query": parse_qs(query_string, keep_blank_values=True) if query_string else {},
                "query_string": query_string,
                "headers": headers,
                "scheme": scheme,
                "http_version": http_version,
                "client": client,
                "host": self.host,
                "port": self.port,
                "base_path": self.base,
            },
        )
        if inject is not None:
            event.extensions["iwbinject"] = inject
        return event

    def finish(self, event: Event, outcome: Any, route: Route, origin: str | None) -> Reply:
        """Render the outcome as a reply and record it on the outcome. Synchronous: it runs
        right after dispatch returns, before the runtime stores the outcome."""
        reply = render_outcome(outcome, route.status, event.subject or "/")
        outcome.record_sent("http.response", **describe_reply(reply))
        if self.cors is not None and origin is not None:
            reply = (reply[0], reply[1] + self.cors.headers(origin), reply[2])
        return reply

    def too_large(self, event: Event, size: str, origin: str | None) -> Reply:
        """Reject an oversized request: record it (never dispatched) and answer 413."""
        message = (
            f"The request body ({size}) is larger than this service's max_body of "
            f"{self.max_body} bytes; send less or raise max_body on the service."
        )
        outcome = self.dispatch.reject(event, "PayloadTooLarge", message)
        reply = problem(413, message, instance=event.subject or "/", event_id=outcome.event_id)
        outcome.record_sent("http.response", **describe_reply(reply))
        if self.cors is not None and origin is not None:
            reply = (reply[0], reply[1] + self.cors.headers(origin), reply[2])
        return reply

    def not_found(self, path: str, origin: str | None) -> Reply:
        reply = problem(404, f"No route matches {path!r}.", instance=path)
        return self._with_cors(reply, origin)

    def not_allowed(
        self, path: str, method: str, allowed: list[str], origin: str | None
    ) -> Reply:
        allow = ", ".join(allowed)
        reply = problem(
            405,
            f"{method} is not allowed on {path!r}; allowed: {allow}.",
            instance=path,
            headers={"allow": allow},
        )
        return self._with_cors(reply, origin)

    def options(
        self, path: str, routes: dict[str, Route], headers: dict[str, str]
    ) -> Reply:
        """Answer an `OPTIONS` request that no route takes: a CORS preflight, or `Allow`."""
        methods = sorted({*routes, "OPTIONS"} | ({"HEAD"} if "GET" in routes else set()))
        origin = headers.get("origin")
        requested = headers.get("access-control-request-method")
        if self.cors is not None and origin is not None and requested is not None:
            return self.cors.preflight(
                origin, requested, headers.get("access-control-request-headers"),
                routes.keys(), path,
            )
        return self._with_cors((204, [("allow", ", ".join(methods))], b""), origin)

    def openapi_reply(self, origin: str | None) -> Reply:
        return self._with_cors((200, [("content-type", "application/json")], self.openapi()),
                               origin)

    def _with_cors(self, reply: Reply, origin: str | None) -> Reply:
        if self.cors is not None and origin is not None:
            return reply[0], reply[1] + self.cors.headers(origin), reply[2]
        return reply

    def relative(self, path: str) -> str:
        """The request path relative to the base path, normalized like route templates."""
        rel = path[self._base_len :] or "/"
        if len(rel) > 1 and rel[-1] == "/":
            rel = rel.rstrip("/") or "/"
        return rel

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        head = method == "HEAD"
        raw_headers = scope["headers"]
        if self.draining:
            reply = problem(
                503, "The service is shutting down; retry shortly.", instance=path,
                headers={"connection": "close", "retry-after": "1"},
            )
            await send_reply(send, reply, head=head)
            return
        rel = self.relative(path)
        if rel == OPENAPI_PATH and method in ("GET", "HEAD") and rel not in self.table.static:
            await send_reply(send, self.openapi_reply(_header(raw_headers, b"origin")), head=head)
            return
        found = self.table.match(rel)
        if found is None:
            await send_reply(send, self.not_found(path, _header(raw_headers, b"origin")), head=head)
            return
        routes, path_params = found
        route = routes.get(method)
        if route is None and head:
            route = routes.get("GET")
        if route is None or method == "OPTIONS":
            wanted = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers}
            if method == "OPTIONS":
                preflight = self.cors is not None and "access-control-request-method" in wanted
                if route is None or preflight:
                    await send_reply(send, self.options(path, routes, wanted))
                    return
            elif route is None:
                allowed = sorted({*routes, "OPTIONS"} | ({"HEAD"} if "GET" in routes else set()))
                await send_reply(
                    send, self.not_allowed(path, method, allowed, wanted.get("origin")), head=head
                )
                return

        headers: list[list[str]] = []
        content_type = length = origin = inject = None
        for k, v in raw_headers:
            name = k.decode("latin-1")
            value = v.decode("latin-1")
            headers.append([name, value])
            if name == "content-type":
                content_type = value
            elif name == "content-length":
                length = value
            elif name == "origin":
                origin = value
            elif name == INJECT_HEADER:
                inject = value

        client = scope.get("client")
        query_string = scope.get("query_string", b"").decode("latin-1")

        def event_for(body: bytes) -> Event:
            return self.make_event(
                method=method,
                path=path,
                route=route,
                path_params=path_params,
                query_string=query_string,
                headers=headers,
                body=body,
                content_type=content_type,
                inject=inject,
                scheme=scope.get("scheme", "http"),
                http_version=scope.get("http_version", "1.1"),
                client=list(client) if client else None,
            )

        if length is not None and length.isdigit() and int(length) > self.max_body:
            reply = self.too_large(event_for(b""), f"Content-Length {length}", origin)
            await send_reply(send, reply, head=head)
            return
        try:
            body = await read_body(receive, self.max_body)
        except TooLarge:
            reply = self.too_large(event_for(b""), f"more than {self.max_body} bytes", origin)
            await send_reply(send, reply, head=head)
            return
        except ConnectionAbortedError:
            return
        event = event_for(body)
        outcome = await self.dispatch(event)
        reply = self.finish(event, outcome, route, origin)
        await send_reply(send, reply, head=head)


def _header(raw: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in raw:
        if k == name:
            return v.decode("latin-1")
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body, counting as it streams in.

    Raises:
        TooLarge: more than `limit` bytes arrived.
        ConnectionAbortedError: the client went away before the body was complete.
    """
    message = await receive()
    if message["type"] != "http.request":
        raise ConnectionAbortedError("client disconnected")
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise TooLarge
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionAbortedError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
