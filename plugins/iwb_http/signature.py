"""What a route handler's signature says about the request and reply.

The OpenAPI document and the inject-console samples both read handler signatures the way the
runtime binds them: `Event` and `TransportView` parameters are the request itself, path,
query and header parameters come from `iwb_http.binding`, and the one remaining parameter of
a complex type (a pydantic model, dict, list of models) is the JSON body.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any

from iwb_http.binding import (
    PAYLOAD_NAMES,
    Header,
    Query,
    _is_list,
    _strip_optional,
    is_simple,
    split_annotated,
)
from iwb_http.routing import template_names
from workbench.events import Event
from workbench.plugin import HandlerSpec, TransportView

__all__ = ["Param", "RouteSignature", "read_signature"]


@dataclass(slots=True)
class Param:
    """A parameter bound from the path, query string or headers."""

    where: str
    """`path`, `query` or `header`."""
    name: str
    """The name on the wire (header name, query key, path placeholder)."""
    annotation: Any
    required: bool
    default: Any = None
    many: bool = False


@dataclass(slots=True)
class RouteSignature:
    """The request parts and reply type of one handler."""

    params: list[Param] = field(default_factory=list)
    body: Any = None
    """The annotation of the JSON body parameter, or None."""
    body_required: bool = False
    returns: Any = inspect.Signature.empty
    """The return annotation (`inspect.Signature.empty` when there is none)."""
    doc: str = ""


def _is_transport(annotation: Any) -> bool:
    annotation = _strip_optional(annotation)
    return annotation is Event or (
        isinstance(annotation, type) and issubclass(annotation, TransportView)
    )


def read_signature(spec: HandlerSpec) -> RouteSignature:
    """Read the handler of a route (annotations resolved, `Annotated` extras kept)."""
    func = spec.func
    out = RouteSignature(doc=inspect.getdoc(func) or "")
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return out
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # a forward reference that does not resolve: use what is there
        hints = {}
    out.returns = hints.get("return", sig.return_annotation)
    path_names = template_names(str(spec.meta.get("path", "")))
    for param in sig.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, param.annotation)
        base, marker = split_annotated(annotation)
        if _is_transport(base):
            continue
        required = param.default is inspect.Parameter.empty
        default = None if required else param.default
        inner = _strip_optional(base)
        if isinstance(marker, Header):
            name = (marker.name or param.name.replace("_", "-")).lower()
            out.params.append(Param("header", name, base, required, default, _is_list(inner)))
        elif isinstance(marker, Query) or (
            marker is None
            and param.name not in path_names
            and param.name not in PAYLOAD_NAMES
            and is_simple(base)
        ):
            name = marker.name if isinstance(marker, Query) and marker.name else param.name
            out.params.append(Param("query", name, base, required, default, _is_list(inner)))
        elif param.name in path_names:
            ann = str if base is inspect.Parameter.empty else base
            out.params.append(Param("path", param.name, ann, True))
        elif base is not inspect.Parameter.empty and out.body is None:
            out.body = base
            out.body_required = required
    return out
