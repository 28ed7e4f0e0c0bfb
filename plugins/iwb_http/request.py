"""`Request`: the HTTP view of an event, for handlers that ask for it by annotation.

    @api.get("/{order_id}")
    async def get_order(order_id: int, request: http.Request) -> Order:
        request.headers["x-request-id"], request.query.get("verbose"), request.json()

It is built from the event's transport fields, so a replayed or injected event gives the
handler exactly what the original request did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload
from urllib.parse import parse_qs

from workbench.events import Event
from workbench.plugin import TransportView

__all__ = ["Headers", "QueryParams", "Request", "parse_query"]


class Headers(Mapping[str, str]):
    """Request headers, looked up without regard to case. A repeated header reads as its
    values joined by `, ` (`getlist` gives them one by one)."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: Iterable[Iterable[str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(str(k), str(v)) for k, v in items]
        merged: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._map = merged

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def getlist(self, name: str) -> list[str]:
        """Every value of `name`, in the order received."""
        key = name.lower()
        return [v for k, v in self._items if k.lower() == key]

    def raw(self) -> list[tuple[str, str]]:
        """The headers as received: names with their case, repeats kept."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class QueryParams(dict[str, list[str]]):
    """Query parameters: a dict of name → list of values, whose `get` returns the first
    value (`query.get("page")` → `"2"`); `getlist` returns them all."""

    @overload  # type: ignore[override]
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: Any) -> Any: ...
    def get(self, name: str, default: Any = None) -> Any:
        values = super().get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(super().get(name) or [])


def parse_query(query_string: str) -> QueryParams:
    """Parse a raw query string (`a=1&a=2&b=`) into `QueryParams`."""
    return QueryParams(parse_qs(query_string, keep_blank_values=True)) if query_string else (
        QueryParams()
    )


def query_of(transport: Mapping[str, Any]) -> dict[str, list[str]]:
    """The parsed query of a transport dict (`query`, or `query_string` when only that is
    given, as in a hand-written fixture)."""
    query = transport.get("query")
    if isinstance(query, dict):
        return query
    raw = transport.get("query_string")
    return parse_query(raw) if isinstance(raw, str) else {}


class Request(TransportView):
    """The HTTP request behind an event."""

    __slots__ = (
        "body", "client", "content_type", "headers", "method", "path", "path_params", "query",
        "route", "scheme",
    )

    def __init__(
        self,
        *,
        method: str = "GET",
        path: str = "/",
        route: str = "",
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, list[str]] | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        client: tuple[str, int] | None = None,
        scheme: str = "http",
        content_type: str | None = None,
    ) -> None:
        self.method = method
        """The HTTP method, upper case."""
        self.path = path
        """The full request path, base path included."""
        self.route = route
        """The matched route template, e.g. `/{order_id}`."""
        self.path_params: dict[str, str] = dict(path_params or {})
        """Raw path parameter values (typed ones bind to handler parameters)."""
        self.query = QueryParams(query or {})
        self.headers = headers if headers is not None else Headers()
        self.body = body
        """The request body as received."""
        self.client = client
        """(host, port) of the caller, when known."""
        self.scheme = scheme
        self.content_type = content_type

    @classmethod
    def from_event(cls, event: Event) -> Request:
        t = event.transport
        client = t.get("client")
        return cls(
            method=str(t.get("method", "GET")),
            path=str(t.get("path") or event.subject or "/"),
            route=str(t.get("route", "")),
            path_params=t.get("path_params") or {},
            query=query_of(t),
            headers=Headers(t.get("headers") or ()),
            body=event.data,
            client=(str(client[0]), int(client[1])) if client else None,
            scheme=str(t.get("scheme", "http")),
            content_type=event.datacontenttype,
        )

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"
