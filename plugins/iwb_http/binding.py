"""Binding handler parameters to the parts of an HTTP request.

The runtime binds `Event` and `TransportView` parameters (`request: http.Request`) itself and
asks this plugin, once per handler, how to bind the rest (`HttpTrigger.param_extractor`):

- a name in the route template (`/{order_id}`) → the path parameter, converted to the
  annotation with pydantic (`order_id: int`);
- `Annotated[str, http.Header("X-Request-Id")]` → that header (default name: the parameter
  name with `_` → `-`, so `x_request_id` reads `x-request-id`);
- `Annotated[int, http.Query("page")]` → that query parameter;
- any other parameter of a simple type (`str`, `int`, `float`, `bool`, an `Enum`, `list` of
  those, optional or not) → the query parameter of the same name, except the names the
  runtime reserves for the payload (`payload`, `body`, `data`, `message`, `msg`).

Everything else (a pydantic model, dict, list of models, ...) is left to the runtime, which
parses it from the JSON body. A missing value with a default binds to the default (returned
by the extractor itself, not `NOT_BOUND`, so the handler's own default is used even where the
runtime has nothing to fall back on); a missing required value raises
`BindingError("missing")` and a value that does not convert raises `BindingError("validation")`,
both with pydantic-style field errors whose `loc` starts with `path`, `query` or `header`.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from iwb_http.request import query_of
from iwb_http.routing import template_names
from workbench.events import Event
from workbench.plugin import BindingError, HandlerSpec

__all__ = ["PAYLOAD_NAMES", "Header", "Query", "extractor_for", "is_simple", "split_annotated"]

_SCALARS: tuple[type, ...] = (str, int, float, bool, Decimal, UUID, date, datetime, time)
Extractor = Callable[[Event], Any]

PAYLOAD_NAMES = frozenset({"payload", "body", "data", "message", "msg"})
"""Parameter names the runtime binds to the payload (`body: str` is the request text), so
they are not query parameters unless marked with `Query`."""


@dataclass(frozen=True, slots=True)
class Header:
    """Marks a handler parameter as a request header:
    `request_id: Annotated[str | None, http.Header("X-Request-Id")] = None`."""

    name: str | None = None
    """The header name; default: the parameter name with `_` replaced by `-`."""


@dataclass(frozen=True, slots=True)
class Query:
    """Marks a handler parameter as a query parameter: `Annotated[int, http.Query("p")]`."""

    name: str | None = None
    """The query parameter name; default: the parameter name."""


def split_annotated(annotation: Any) -> tuple[Any, Header | Query | None]:
    """`Annotated[T, marker, ...]` → `(T, marker)`; anything else → `(annotation, None)`."""
    if get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        for extra in extras:
            if isinstance(extra, Header | Query):
                return base, extra
        return base, None
    return annotation, None


def _strip_optional(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_scalar(annotation: Any) -> bool:
    if annotation in _SCALARS:
        return True
    if get_origin(annotation) is Literal:
        return True
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return not args or all(_is_scalar(_strip_optional(a)) for a in args)
    return annotation in (list, tuple, set, frozenset)


def is_simple(annotation: Any) -> bool:
    """Whether a parameter of this type binds from the query string by default."""
    inner = _strip_optional(annotation)
    return _is_scalar(inner) or _is_list(inner)


def _resolved_annotation(param: inspect.Parameter, annotation: Any, handler: HandlerSpec) -> Any:
    """The parameter's annotation with `Annotated` extras kept: a runtime that resolved
    hints without `include_extras`, or one that passed a string, loses the markers."""
    if get_origin(annotation) is Annotated and not isinstance(annotation, str):
        return annotation
    try:
        hints = typing.get_type_hints(handler.func, include_extras=True)
    except Exception:  # unresolvable forward references: keep what we were given
        hints = {}
    return hints.get(param.name, annotation)


def _field_error(
    where: str, name: str, msg: str, type_: str, value: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"loc": [where, name], "msg": msg, "type": type_}
    if value is not None:
        error["input"] = value
    return error


def _converter(annotation: Any, where: str, name: str, many: bool) -> Callable[[Any], Any]:
    """A function that converts the raw string (or list of strings) to `annotation`."""
    if annotation is str or annotation is Any or annotation is inspect.Parameter.empty:
        return (lambda v: list(v)) if many else (lambda v: v)
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def convert(raw: Any) -> Any:
        try:
            if many:
                return adapter.validate_python(list(raw))
            return adapter.validate_strings(raw)
        except ValidationError as exc:
            errors = []
            for item in exc.errors():
                loc = [where, name, *item["loc"]]
                errors.append(
                    {"loc": loc, "msg": item["msg"], "type": item["type"], "input": item["input"]}
                )
            first = errors[0]
            raise BindingError(
                "validation",
                f"The {where} parameter {name!r} = {raw!r} is not valid: {first['msg']}",
                details=errors,
            ) from None

    return convert


def _with_default(
    fetch: Callable[[Event], Any],
    convert: Callable[[Any], Any],
    param: inspect.Parameter,
    where: str,
    name: str,
) -> Extractor:
    default = param.default
    required = default is inspect.Parameter.empty
    label = {"path": "path parameter", "query": "query parameter", "header": "header"}[where]

    def extract(event: Event) -> Any:
        raw = fetch(event)
        if raw is None:
            if required:
                raise BindingError(
                    "missing",
                    f"The request has no {label} {name!r}, which the handler requires.",
                    details=[_field_error(where, name, "Field required", "missing")],
                )
            return default
        return convert(raw)

    return extract


def extractor_for(
    param: inspect.Parameter, annotation: Any, handler: HandlerSpec
) -> Extractor | None:
    """How to bind `param` of `handler` from an HTTP event, or None to leave it to the
    runtime (see the module docstring)."""
    if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        return None
    full = _resolved_annotation(param, annotation, handler)
    base, marker = split_annotated(full)
    inner = _strip_optional(base)
    path_names = template_names(str(handler.meta.get("path", "")))

    if isinstance(marker, Header):
        header = (marker.name or param.name.replace("_", "-")).lower()
        many = _is_list(inner)
        convert = _converter(base, "header", header, many)

        def fetch_header(event: Event) -> Any:
            found = [
                str(v) for k, v in event.transport.get("headers") or () if k.lower() == header
            ]
            if not found:
                return None
            return found if many else ", ".join(found)

        return _with_default(fetch_header, convert, param, "header", header)

    if isinstance(marker, Query) or (
        marker is None
        and param.name not in path_names
        and param.name not in PAYLOAD_NAMES
        and is_simple(base)
    ):
        qname = marker.name if isinstance(marker, Query) and marker.name else param.name
        many = _is_list(inner)
        convert = _converter(base, "query", qname, many)

        def fetch_query(event: Event) -> Any:
            values = query_of(event.transport).get(qname)
            if not values:
                return None
            return values if many else values[0]

        return _with_default(fetch_query, convert, param, "query", qname)

    if param.name in path_names:
        convert = _converter(base, "path", param.name, False)
        pname = param.name

        def fetch_path(event: Event) -> Any:
            params: Mapping[str, Any] = event.transport.get("path_params") or {}
            return params.get(pname)

        return _with_default(fetch_path, convert, param, "path", pname)

    return None
