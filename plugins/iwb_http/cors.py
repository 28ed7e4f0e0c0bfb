"""CORS: preflight answers and the `Access-Control-*` headers of replies.

The policy is computed once per service from its `Cors` configuration; per request it costs a
set lookup for the origin and a list concatenation.
"""

from __future__ import annotations

from collections.abc import Iterable

from iwb_http.responses import Reply, problem
from iwb_http.service import Cors

__all__ = ["CorsPolicy"]


class CorsPolicy:
    """The CORS behaviour of one service."""

    __slots__ = ("_any_methods", "_echo", "_extra", "any_headers", "any_origin", "cors", "origins")

    def __init__(self, cors: Cors) -> None:
        self.cors = cors
        self.any_origin = "*" in cors.allow_origins
        self.origins = frozenset(cors.allow_origins)
        self.any_headers = "*" in cors.allow_headers
        self._any_methods = "*" in cors.allow_methods
        # With credentials a browser refuses `*`: echo the origin instead.
        self._echo = cors.allow_credentials or not self.any_origin
        extra: list[tuple[str, str]] = []
        if cors.allow_credentials:
            extra.append(("access-control-allow-credentials", "true"))
        if cors.expose_headers:
            extra.append(("access-control-expose-headers", ", ".join(cors.expose_headers)))
        self._extra = extra

    def allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers to add to a reply to a request from `origin` (none if not allowed)."""
        if origin is None or not self.allowed(origin):
            return []
        if self._echo:
            return [("access-control-allow-origin", origin), ("vary", "Origin"), *self._extra]
        return [("access-control-allow-origin", "*"), *self._extra]

    def preflight(
        self,
        origin: str,
        method: str,
        request_headers: str | None,
        route_methods: Iterable[str],
        instance: str,
    ) -> Reply:
        """The answer to `OPTIONS` with `Access-Control-Request-Method` (never dispatched)."""
        methods = sorted(set(route_methods)) if self._any_methods else [
            m.upper() for m in self.cors.allow_methods
        ]
        if not self.allowed(origin):
            return problem(
                403, f"The origin {origin!r} is not allowed to call this service.",
                instance=instance,
            )
        if method.upper() not in methods:
            return problem(
                403,
                f"The method {method!r} is not allowed here; allowed: {', '.join(methods)}.",
                instance=instance,
            )
        if self.any_headers:
            allow_headers = request_headers or ""
        else:
            allow_headers = ", ".join(self.cors.allow_headers)
        headers = [
            *self.headers(origin),
            ("access-control-allow-methods", ", ".join(methods)),
            ("access-control-max-age", str(self.cors.max_age)),
        ]
        if allow_headers:
            headers.append(("access-control-allow-headers", allow_headers))
        if ("vary", "Origin") not in headers:
            headers.append(("vary", "Origin"))
        return 204, headers, b""
