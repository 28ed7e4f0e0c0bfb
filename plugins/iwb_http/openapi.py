"""The OpenAPI 3.1 document of a service, served at `GET {base_path}/openapi.json`.

Built from the route table and the handlers' signatures: path, query and header parameters
with their JSON schemas, the request body from the body model (`$defs` hoisted into
`components.schemas`), the success reply from the return annotation and the route's status,
and the problem+json replies of binding errors and failures.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import pydantic_core
from pydantic import BaseModel, TypeAdapter

from iwb_http.responses import PROBLEM_JSON, Response
from iwb_http.routing import RouteTable
from iwb_http.service import ServiceConfig
from iwb_http.signature import read_signature
from workbench.plugin import HandlerSpec

__all__ = ["build_openapi"]

REF = "#/components/schemas/{model}"

_PROBLEM: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "default": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "event_id": {"type": "string", "description": "The captured event, for replay."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status"],
}


class _Schemas:
    """JSON schemas for annotations, with shared definitions collected as components."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Problem": _PROBLEM}

    def of(self, annotation: Any, mode: str = "validation") -> dict[str, Any]:
        try:
            schema = TypeAdapter(annotation).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        except Exception:  # a type pydantic cannot describe: say nothing rather than fail
            return {}
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            name = str(schema.get("title") or annotation.__name__)
            self.components.setdefault(name, schema)
            return {"$ref": REF.format(model=name)}
        return schema


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}},
    }


def _success(returns: Any, status: int | None, schemas: _Schemas) -> tuple[str, dict[str, Any]]:
    if returns is None or returns is type(None):
        return str(status or 204), {"description": "No content."}
    code = str(status or 200)
    if returns is inspect.Signature.empty or (
        isinstance(returns, type) and issubclass(returns, Response)
    ):
        return code, {"description": "Successful reply."}
    if returns is str:
        content = {"text/plain": {"schema": {"type": "string"}}}
    elif returns is bytes:
        content = {"application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}}
    else:
        content = {"application/json": {"schema": schemas.of(returns, "serialization")}}
    return code, {"description": "Successful reply.", "content": content}


def build_openapi(
    name: str,
    config: ServiceConfig,
    table: RouteTable,
    handlers: Mapping[str, HandlerSpec],
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        spec = handlers.get(route.key)
        if spec is None:
            continue
        sig = read_signature(spec)
        rel = route.template.path.replace(":path}", "}")
        full = config.base_path + ("" if rel == "/" else rel) or "/"
        operation: dict[str, Any] = {
            "operationId": getattr(spec.func, "__name__", route.key),
            "summary": route.summary or (sig.doc.splitlines()[0] if sig.doc else route.key),
        }
        if sig.doc:
            operation["description"] = sig.doc
        parameters = []
        for param in sig.params:
            entry: dict[str, Any] = {
                "name": param.name,
                "in": param.where,
                "required": param.required,
                "schema": schemas.of(param.annotation),
            }
            if not param.required and param.default is not None:
                try:
                    default = pydantic_core.to_jsonable_python(param.default)
                except pydantic_core.PydanticSerializationError:
                    default = None
                if default is not None:
                    entry["schema"] = {**entry["schema"], "default": default}
            if param.many and param.where == "query":
                entry["explode"] = True
            parameters.append(entry)
        if parameters:
            operation["parameters"] = parameters
        if sig.body is not None:
            if sig.body is str:
                body_content = {"text/plain": {"schema": {"type": "string"}}}
            elif sig.body is bytes:
                body_content = {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
            else:
                body_content = {"application/json": {"schema": schemas.of(sig.body)}}
            operation["requestBody"] = {"required": sig.body_required, "content": body_content}
        code, success = _success(sig.returns, route.status, schemas)
        responses: dict[str, Any] = {code: success}
        if sig.body is not None:
            responses["400"] = _problem("The body is not well-formed JSON.")
            responses["413"] = _problem("The body is larger than the service accepts.")
            responses["415"] = _problem("The body is not JSON.")
        if sig.body is not None or parameters:
            responses["422"] = _problem("A parameter or body field does not validate.")
        responses["500"] = _problem("The handler failed; `event_id` names the captured event.")
        responses["504"] = _problem("The handler did not finish in time.")
        operation["responses"] = responses
        paths.setdefault(full, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": config.title or name, "version": config.version},
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
