"""Sample events for the inject console: one per route, built from the handler's signature.

Path parameters get example values of their type, required query parameters and headers are
filled in, and a JSON body is generated from the body model's JSON schema — field examples
and defaults first, then enums, formats and bounds — so a sample binds to its handler
without edits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from pydantic import TypeAdapter

from iwb_http.routing import RouteTable
from iwb_http.service import ServiceConfig
from iwb_http.signature import read_signature
from workbench.events import Event
from workbench.plugin import HandlerSpec, Sample

__all__ = ["build_samples", "example_from_schema"]

_STRING_FORMATS = {
    "date-time": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "duration": "PT1H",
    "email": "user@example.com",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "binary": "",
}


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return merged
    return schema


def example_from_schema(
    schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None, depth: int = 0
) -> Any:
    """An example value that validates against a JSON schema (as pydantic writes them)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if depth > 8:
        return None
    schema = _resolve(schema, defs)
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return example_from_schema(chosen, defs, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(_resolve(part, defs))
        return example_from_schema(merged, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        props = schema.get("properties") or {}
        return {
            name: example_from_schema(prop, defs, depth + 1) for name, prop in props.items()
        }
    if kind == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [example_from_schema(p, defs, depth + 1) for p in prefix]
        item = example_from_schema(schema.get("items") or {}, defs, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        text = _STRING_FORMATS.get(str(schema.get("format")), "string")
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text
    if kind in ("integer", "number"):
        value: float = 1
        if "minimum" in schema:
            value = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            value = schema["exclusiveMinimum"] + 1
        if "maximum" in schema and value > schema["maximum"]:
            value = schema["maximum"]
        elif "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            value = schema["exclusiveMaximum"] - 1
        if kind == "integer":
            return int(value)
        multiple = schema.get("multipleOf")
        return float(multiple) if multiple and not value % multiple == 0 else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "string" if not schema else {}


def _example_for(annotation: Any) -> Any:
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:
        return "example"
    return example_from_schema(schema)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def build_samples(
    name: str,
    config: ServiceConfig,
    table: RouteTable,
    handlers: Mapping[str, HandlerSpec],
    port: int,
) -> list[Sample]:
    """One sample event per route."""
    samples: list[Sample] = []
    used: set[str] = set()
    for route in table.routes:
        spec = handlers.get(route.key)
        if spec is None:
            continue
        sig = read_signature(spec)
        path_params: dict[str, str] = {}
        query: dict[str, list[str]] = {}
        headers: list[list[str]] = []
        for param in sig.params:
            if param.where == "path":
                path_params[param.name] = _as_text(_example_for(param.annotation))
            elif not param.required:
                continue
            elif param.many:
                values = _example_for(param.annotation)
                values = values if isinstance(values, list) else [values]
                target = query if param.where == "query" else None
                if target is not None:
                    target[param.name] = [_as_text(v) for v in values]
                else:
                    headers.extend([param.name, _as_text(v)] for v in values)
            elif param.where == "query":
                query[param.name] = [_as_text(_example_for(param.annotation))]
            else:
                headers.append([param.name, _as_text(_example_for(param.annotation))])
        rel = route.template.path
        for pname, value in path_params.items():
            rel = rel.replace("{" + pname + ":path}", value).replace("{" + pname + "}", value)
        path = config.base_path + ("" if rel == "/" else rel) or "/"
        body = b""
        content_type: str | None = None
        if sig.body is str or sig.body is bytes:
            body = b"example"
            content_type = "text/plain; charset=utf-8" if sig.body is str else (
                "application/octet-stream"
            )
            headers.append(["content-type", content_type])
        elif sig.body is not None:
            body = json.dumps(_example_for(sig.body), indent=2).encode("utf-8")
            content_type = "application/json"
            headers.append(["content-type", content_type])
        query_string = urlencode(query, doseq=True)
        event = Event(
            artifact=name,
            kind="http",
            type="iwb.http.request",
            source=f"http://{config.host}:{port}{config.base_path}",
            data=body,
            handler=route.key,
            subject=path,
            datacontenttype=content_type,
            transport={
                "method": route.method,
                "path": path,
                "route": route.template.path,
                "path_params": path_params,
                "query": query,
                "query_string": query_string,
                "headers": headers,
                "scheme": "http",
                "http_version": "1.1",
                "client": None,
                "host": config.host,
                "port": port,
                "base_path": config.base_path,
            },
        )
        sample_name = getattr(spec.func, "__name__", route.key)
        if sample_name in used:
            sample_name = f"{sample_name}-{route.method.lower()}"
        used.add(sample_name)
        summary = route.summary or (sig.doc.splitlines()[0] if sig.doc else "")
        description = f"{route.method} {path}" + (f" — {summary}" if summary else "")
        samples.append(Sample(sample_name, description, event))
    return samples
