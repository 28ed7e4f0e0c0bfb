"""Replies: `Response`, `HTTPError`, and rendering an outcome into status, headers and body.

What a handler returns becomes the reply:

| returned                         | reply                                                  |
| -------------------------------- | ------------------------------------------------------ |
| `None`                           | 204 (or the route's `status`), empty body              |
| dict, list, pydantic model, ...  | JSON, the route's `status` or 200                      |
| `str`                            | `text/plain; charset=utf-8`                            |
| `bytes`                          | `application/octet-stream`                             |
| `Response(...)`                  | as given                                               |
| `(body, status)`, `(body, status, headers)` | the body rendered as above, with that status |

Errors are RFC 9457 problem details (`application/problem+json`): `HTTPError(404, "...")`
from a handler gives its status; a body that is not JSON gives 400, a content type the handler
cannot read 415, fields that do not validate 422 (with `errors`), a handler past its timeout
504, anything else 500 with the `event_id` of the captured event and no traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import pydantic_core

from workbench.errors import WorkbenchError
from workbench.events import Outcome

__all__ = ["HTTPError", "Reply", "Response", "problem", "render_outcome", "render_value"]

Reply = tuple[int, list[tuple[str, str]], bytes]
"""A rendered reply: status, headers (name, value), body."""

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"

_BINDING_STATUS = {
    "MalformedPayload": 400,
    "UnsupportedMediaType": 415,
    "ValidationError": 422,
    "HandlerTimeout": 504,
    "PayloadTooLarge": 413,
}


def phrase(status: int) -> str:
    """The reason phrase of a status code (`404` → `Not Found`)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class HTTPError(WorkbenchError):
    """Raise from a handler to answer with an error status.

        raise http.HTTPError(404, f"order {order_id} not found")

    The reply is problem+json with this status and detail; `headers` are added to it.
    """

    def __init__(
        self, status: int, detail: str = "", *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail or phrase(status), title=phrase(status))
        self.status = int(status)
        self.detail = detail or phrase(status)
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def details(self) -> list[dict[str, Any]]:
        """Structured details recorded on the outcome's error: the status."""
        return [{"status": self.status}]

    def __repr__(self) -> str:
        return f"HTTPError({self.status}, {self.detail!r})"


class Response:
    """A reply with full control over status, headers and media type.

    `body` is rendered like a return value (dict/list/model → JSON, str → text, bytes as
    is) unless `media_type` says otherwise for a str or bytes body.
    """

    __slots__ = ("body", "headers", "media_type", "status")

    def __init__(
        self,
        body: Any = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.body = body
        self.status = int(status)
        self.headers: dict[str, str] = dict(headers or {})
        self.media_type = media_type

    def render(self) -> Reply:
        """Status, headers and body bytes of this response."""
        status, headers, body = _render_body(self.body, self.status, self.media_type)
        if self.headers:
            given = {k.lower() for k in self.headers}
            headers = [h for h in headers if h[0] not in given] + list(self.headers.items())
        return status, headers, body

    def __repr__(self) -> str:
        return f"Response(status={self.status}, media_type={self.media_type!r})"


def _render_body(body: Any, status: int, media_type: str | None = None) -> Reply:
    if body is None:
        return status, [], b""
    if isinstance(body, bytes | bytearray | memoryview):
        return status, [("content-type", media_type or OCTETS)], bytes(body)
    if isinstance(body, str):
        return status, [("content-type", media_type or TEXT)], body.encode("utf-8")
    return status, [("content-type", media_type or JSON)], pydantic_core.to_json(body)


def render_value(value: Any, route_status: int | None) -> Reply:
    """Render a handler's return value (see the module table)."""
    if value is None:
        return route_status or 204, [], b""
    if isinstance(value, Response):
        return value.render()
    if isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], int):
        status, headers, body = _render_body(value[0], value[1])
        if len(value) == 3 and value[2]:
            extra = dict(value[2])
            given = {k.lower() for k in extra}
            headers = [h for h in headers if h[0] not in given] + list(extra.items())
        return status, headers, body
    return _render_body(value, route_status or 200)


def problem(
    status: int,
    detail: str,
    *,
    instance: str,
    event_id: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Reply:
    """An RFC 9457 problem-details reply."""
    doc: dict[str, Any] = {
        "type": "about:blank",
        "title": title or phrase(status),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if event_id is not None:
        doc["event_id"] = event_id
    if errors is not None:
        doc["errors"] = errors
    out = [("content-type", PROBLEM_JSON)]
    if headers:
        out.extend(headers.items())
    return status, out, pydantic_core.to_json(doc)


def _clean_errors(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field errors for a 422 body: loc, msg, type (inputs left out: they may be large)."""
    out: list[dict[str, Any]] = []
    for item in details:
        entry: dict[str, Any] = {k: item[k] for k in ("loc", "msg", "type") if k in item}
        if "loc" in entry:
            entry["loc"] = list(entry["loc"])
        out.append(entry or dict(item))
    return out


def error_status(outcome: Outcome) -> int:
    """The HTTP status for an outcome that is not ok."""
    exc = outcome.exception
    if isinstance(exc, HTTPError):
        return exc.status
    err = outcome.error
    if err is None:
        return 500
    if err.type == "HTTPError":
        for item in err.details:
            if isinstance(item.get("status"), int):
                return int(item["status"])
    if err.type in _BINDING_STATUS:
        return _BINDING_STATUS[err.type]
    return 503 if outcome.status == "rejected" else 500


def render_outcome(outcome: Outcome, route_status: int | None, instance: str) -> Reply:
    """Render the reply for an outcome: the handler's value, or a problem for its error."""
    if outcome.status == "ok":
        try:
            return render_value(outcome.value, route_status)
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError) as failure:
            return problem(
                500,
                f"The handler's return value ({type(outcome.value).__name__}) could not be "
                f"rendered as a reply: {failure}",
                instance=instance,
                event_id=outcome.event_id,
            )
    status = error_status(outcome)
    err = outcome.error
    exc = outcome.exception
    if isinstance(exc, HTTPError):
        return problem(
            status, exc.detail, instance=instance, event_id=outcome.event_id, headers=exc.headers
        )
    if status == 500:
        return problem(
            500,
            "The handler failed; the event and its traceback are captured under this event_id.",
            instance=instance,
            event_id=outcome.event_id,
        )
    message = err.message if err is not None else phrase(status)
    errors = _clean_errors(err.details) if status == 422 and err is not None else None
    return problem(status, message, instance=instance, event_id=outcome.event_id, errors=errors)


def describe_reply(reply: Reply, limit: int = 65536) -> dict[str, Any]:
    """What `outcome.record_sent("http.response", ...)` notes about a reply."""
    status, headers, body = reply
    text = body[:limit].decode("utf-8", errors="replace")
    return {"status": status, "headers": [[k, v] for k, v in headers], "body": text}
