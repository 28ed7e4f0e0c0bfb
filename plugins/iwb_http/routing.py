"""Route templates and the per-service route table.

A route path is a template such as `/{order_id}` or `/files/{rest:path}`: `{name}` matches one
path segment, `{name:path}` the rest of the path including slashes. Paths are matched relative
to the service's base path, with a trailing slash ignored (`/orders/` and `/orders` are the
same route), so the table is built once when a service starts and a request costs one dict
lookup for a static path and a few regex matches for a templated one.

This module imports nothing outside the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import TriggerConfigError

__all__ = ["Route", "RouteTable", "normalize_path", "parse_template", "template_names"]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}")
_CONVERTERS = {"str": "[^/]+", "path": ".+"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def normalize_path(path: str) -> str:
    """`path` with one leading slash and no trailing slash (`/` stays `/`)."""
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def template_names(template: str) -> list[str]:
    """The parameter names of a route template, in order: `/{a}/x/{b}` → `["a", "b"]`."""
    return [m.group(1) for m in _PARAM.finditer(template)]


@dataclass(slots=True, frozen=True)
class Template:
    """A parsed route template."""

    path: str
    """The normalized template, e.g. `/{order_id}`."""
    names: tuple[str, ...]
    regex: re.Pattern[str] | None
    """None for a static path (matched by dict lookup)."""
    quart_rule: str
    """The same template in Werkzeug's syntax: `/<order_id>`, `/<path:rest>`."""


def parse_template(template: str) -> Template:
    """Parse a route template.

    Raises:
        TriggerConfigError: the template has an unknown converter or a repeated name.
    """
    path = normalize_path(template)
    names: list[str] = []
    literals: list[str] = []
    pattern = ["^"]
    rule: list[str] = []
    pos = 0
    for match in _PARAM.finditer(path):
        literal = path[pos : match.start()]
        literals.append(literal)
        pattern.append(re.escape(literal))
        rule.append(literal)
        name, conv = match.group(1), match.group(2) or "str"
        if conv not in _CONVERTERS:
            raise TriggerConfigError(
                f"Route {template!r} uses the converter {conv!r}; "
                f"known converters: {', '.join(sorted(_CONVERTERS))}.",
                title="Invalid route",
            )
        if name in names:
            raise TriggerConfigError(
                f"Route {template!r} names the path parameter {name!r} twice.",
                title="Invalid route",
            )
        names.append(name)
        pattern.append(f"(?P<{name}>{_CONVERTERS[conv]})")
        rule.append(f"<{name}>" if conv == "str" else f"<{conv}:{name}>")
        pos = match.end()
    tail = path[pos:]
    literals.append(tail)
    if any("{" in lit or "}" in lit for lit in literals):
        raise TriggerConfigError(
            f"Route {template!r} has an unbalanced or invalid '{{name}}' placeholder; "
            "use letters, digits and underscores, e.g. '/{order_id}'.",
            title="Invalid route",
        )
    pattern.append(re.escape(tail) + "$")
    rule.append(tail)
    regex = re.compile("".join(pattern)) if names else None
    return Template(path, tuple(names), regex, "".join(rule))


@dataclass(slots=True, frozen=True)
class Route:
    """One route of a service: method and template → handler key."""

    key: str
    """The handler key, `"GET /{order_id}"`."""
    method: str
    template: Template
    status: int | None = None
    """The status of a successful reply (None: 200, or 204 when the handler returns None)."""
    summary: str | None = None

    @property
    def path(self) -> str:
        return self.template.path


@dataclass(slots=True)
class RouteTable:
    """The routes of one service, indexed for matching."""

    routes: list[Route] = field(default_factory=list)
    static: dict[str, dict[str, Route]] = field(default_factory=dict)
    dynamic: list[tuple[re.Pattern[str], dict[str, Route]]] = field(default_factory=list)

    @classmethod
    def from_meta(cls, handlers: Mapping[str, Any]) -> RouteTable:
        """Build the table from an artifact's handlers (their `meta`: method, path, status)."""
        table = cls()
        by_template: dict[str, dict[str, Route]] = {}
        templates: dict[str, Template] = {}
        for key, spec in handlers.items():
            meta = spec.meta
            template = parse_template(str(meta["path"]))
            route = Route(
                key=key,
                method=str(meta["method"]).upper(),
                template=template,
                status=meta.get("status"),
                summary=meta.get("summary"),
            )
            table.routes.append(route)
            by_template.setdefault(template.path, {})[route.method] = route
            templates[template.path] = template
        for path, methods in by_template.items():
            template = templates[path]
            if template.regex is None:
                table.static[path] = methods
            else:
                table.dynamic.append((template.regex, methods))
        # Static-looking templates beat parameterised ones; among those, longer first.
        table.dynamic.sort(key=lambda item: -len(item[0].pattern))
        return table

    def match(self, rel_path: str) -> tuple[dict[str, Route], dict[str, str]] | None:
        """The routes (by method) for a normalized relative path, and its path parameters."""
        methods = self.static.get(rel_path)
        if methods is not None:
            return methods, {}
        for regex, methods in self.dynamic:
            found = regex.match(rel_path)
            if found is not None:
                return methods, found.groupdict()
        return None

    def methods(self) -> Iterable[str]:
        return sorted({r.method for r in self.routes})
