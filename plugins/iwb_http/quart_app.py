"""The `quart` engine: a service as a Quart application.

Each route of the table becomes a Werkzeug rule (`/{order_id}` → `/<order_id>`) registered
with `add_url_rule` and served by one generic view; Quart does the routing, 404/405, and the
request and response objects, and the view hands the request to the same `ServiceApp` pieces
the default engine uses (`make_event`, `finish`, `too_large`), so both engines produce the same
events and replies. Path parameters are kept as strings by the rules and converted by the
handler binding, so a bad value is a 422 with field errors in both engines.

Selected with `engine = "quart"` in iwb.toml's `[plugins.http]`; see the package docstring for how
it compares with the default engine. Quart is imported only when this module is.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, request
from quart import Response as QuartResponse
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from iwb_http.app import INJECT_HEADER, OPENAPI_PATH, ASGIApp, ServiceApp
from iwb_http.responses import Reply, problem
from iwb_http.routing import Route

__all__ = ["build_quart_app"]


def _to_quart(reply: Reply) -> QuartResponse:
    status, headers, body = reply
    response = QuartResponse(body, status=status)
    if not any(k.lower() == "content-type" for k, _ in headers):
        del response.headers["content-type"]
    for name, value in headers:
        if name.lower() in ("content-type", "allow"):
            response.headers[name] = value
        else:
            response.headers.add(name, value)
    return response


def _rule(service: ServiceApp, route: Route) -> str:
    rel = route.template.quart_rule
    return service.base + ("" if rel == "/" else rel) or "/"


def build_quart_app(service: ServiceApp) -> ASGIApp:
    """A Quart application that serves `service`'s routes."""
    app = Quart(f"iwb_http.{service.name}")
    app.config["MAX_CONTENT_LENGTH"] = None  # counted by the view, to record a 413
    by_key: dict[str, Route] = {route.key: route for route in service.table.routes}

    async def view(**path_params: Any) -> QuartResponse:
        route = by_key[str(request.endpoint)]
        headers = [[k.lower(), v] for k, v in request.headers.items()]
        origin = request.headers.get("origin")
        inject = request.headers.get(INJECT_HEADER)
        client: Any = request.scope.get("client")

        def event_for(body: bytes) -> Any:
            return service.make_event(
                method=request.method,
                path=request.path,
                route=route,
                path_params={k: str(v) for k, v in path_params.items()},
                query_string=request.query_string.decode("latin-1"),
                headers=headers,
                body=body,
                content_type=request.headers.get("content-type"),
                inject=inject,
                scheme=request.scheme,
                http_version=request.http_version,
                client=list(client) if client else None,
            )

        length = request.content_length
        if length is not None and length > service.max_body:
            return _to_quart(service.too_large(event_for(b""), f"Content-Length {length}", origin))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.body:
            size += len(chunk)
            if size > service.max_body:
                reply = service.too_large(
                    event_for(b""), f"more than {service.max_body} bytes", origin
                )
                return _to_quart(reply)
            chunks.append(chunk)
        event = event_for(b"".join(chunks))
        outcome = await service.dispatch(event)
        return _to_quart(service.finish(event, outcome, route, origin))

    for route in service.table.routes:
        methods = [route.method] if route.method != "GET" else ["GET", "HEAD"]
        app.add_url_rule(
            _rule(service, route),
            endpoint=route.key,
            view_func=view,
            methods=methods,
            strict_slashes=False,
            provide_automatic_options=False,
        )

    openapi_rule = service.base + OPENAPI_PATH
    if OPENAPI_PATH not in service.table.static:

        async def openapi() -> QuartResponse:
            return _to_quart(service.openapi_reply(request.headers.get("origin")))

        app.add_url_rule(openapi_rule, endpoint="iwb-openapi", view_func=openapi,
                         methods=["GET", "HEAD"], provide_automatic_options=False)

    @app.before_request
    async def options() -> QuartResponse | None:
        """OPTIONS that no route takes (CORS preflight or `Allow`), never dispatched; 503
        while draining."""
        if service.draining:
            return _to_quart(problem(
                503, "The service is shutting down; retry shortly.", instance=request.path,
                headers={"connection": "close", "retry-after": "1"},
            ))
        if request.method != "OPTIONS":
            return None
        found = service.table.match(service.relative(request.path))
        if found is None:
            return None
        routes = found[0]
        wanted = {k.lower(): v for k, v in request.headers.items()}
        preflight = service.cors is not None and "access-control-request-method" in wanted
        if "OPTIONS" in routes and not preflight:
            return None
        return _to_quart(service.options(request.path, routes, wanted))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> QuartResponse:
        origin = request.headers.get("origin")
        path = request.path
        if isinstance(exc, MethodNotAllowed):
            allowed = sorted(set(exc.valid_methods or ()) | {"OPTIONS"})
            return _to_quart(service.not_allowed(path, request.method, allowed, origin))
        if isinstance(exc, NotFound):
            return _to_quart(service.not_found(path, origin))
        code = exc.code or 500
        return _to_quart(problem(code, exc.description or "", instance=path))

    asgi: ASGIApp = app  # type: ignore[assignment]  # Quart types its scopes precisely
    return asgi
