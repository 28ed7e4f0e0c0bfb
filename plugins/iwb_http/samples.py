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

from iwb_http.routing import RouteTable
from iwb_http.service import ServiceConfig
from iwb_http.signature import read_signature
from workbench.events import Event
from workbench.plugin import HandlerSpec, Sample
from workbench.samples import example_for as _example_for

__all__ = ["build_samples"]

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
