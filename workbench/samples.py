"""Example payloads for sample events: what a handler's payload type would accept.

Plugins build their `samples()` (templates for the inject console) from the handler's
signature; the payload part is the same for every plugin:

    from workbench.samples import payload_example

    example = payload_example(spec, MyTrigger)     # NO_PAYLOAD when the handler takes none
    body = json.dumps(example).encode()

`example_from_schema` fills a JSON schema (as pydantic writes them) — field examples and
defaults first, then enums, formats and bounds — so the example validates without edits.

Public: plugins may import this module (it imports only the contract).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter

from workbench.events import Event
from workbench.plugin import HandlerSpec, TransportView, Trigger

__all__ = [
    "NO_PAYLOAD",
    "PAYLOAD_NAMES",
    "example_for",
    "example_from_schema",
    "payload_annotation",
    "payload_example",
]

PAYLOAD_NAMES = frozenset({"payload", "body", "data", "message", "msg"})
"""Parameter names that receive the payload whatever their annotation (binding rule 4)."""


class _NoPayload:
    def __repr__(self) -> str:
        return "NO_PAYLOAD"


NO_PAYLOAD: Any = _NoPayload()
"""What `payload_annotation`/`payload_example` return for a handler that takes no payload."""

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
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
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
    for key in ("example", "default", "const"):
        if key in schema:
            return schema[key]
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
        return {name: example_from_schema(prop, defs, depth + 1) for name, prop in props.items()}
    if kind == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [example_from_schema(p, defs, depth + 1) for p in prefix]
        item = example_from_schema(schema.get("items") or {}, defs, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "string":
        return _example_string(schema)
    if kind in ("integer", "number"):
        return _example_number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "string" if not schema else {}


def _example_string(schema: Mapping[str, Any]) -> str:
    text = _STRING_FORMATS.get(str(schema.get("format")), "string")
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if isinstance(high, int) and len(text) > high:
        text = text[:high]
    return text


def _example_number(schema: Mapping[str, Any], kind: str) -> float | int:
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


def example_for(annotation: Any) -> Any:
    """An example value of a type (through its pydantic JSON schema); `"example"` when the
    type has no schema."""
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:  # a type pydantic cannot describe: a placeholder to edit
        return "example"
    return example_from_schema(schema)


def strip_optional(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` → X."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def is_payload_type(annotation: Any) -> bool:
    """A pydantic model, dataclass, TypedDict, dict, list, tuple, set, or a union of them."""
    base = strip_optional(annotation)
    origin = get_origin(base) or base
    if isinstance(origin, type):
        if issubclass(origin, BaseModel) or dataclasses.is_dataclass(origin):
            return True
        if issubclass(origin, dict | list | tuple | set) or typing.is_typeddict(origin):
            return True
    args = get_args(base)
    if args and get_origin(base) in (typing.Union, type(int | str)):
        return any(is_payload_type(a) for a in args if a is not type(None))
    return False


def handler_parameters(
    func: Callable[..., Any],
) -> Iterator[tuple[str, inspect.Parameter, Any]]:
    """`(name, parameter, annotation)` of each named parameter of a handler, with the
    annotations resolved (`Any` where there is none; the raw annotations when forward
    references cannot be resolved); `*args` and `**kwargs` are left out."""
    sig = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(name, param.annotation)
        yield name, param, Any if annotation is inspect.Parameter.empty else annotation


def payload_annotation(spec: HandlerSpec, trigger_cls: type[Trigger[Any]]) -> Any:
    """The annotation of the handler parameter that receives the payload (following the
    runtime's binding rules), or `NO_PAYLOAD`."""
    for name, param, annotation in handler_parameters(spec.func):
        base = strip_optional(annotation)
        if base is Event or (isinstance(base, type) and issubclass(base, TransportView)):
            continue
        if trigger_cls.param_extractor(param, annotation, spec) is not None:
            continue
        if base is bytes or is_payload_type(annotation) or name in PAYLOAD_NAMES:
            return annotation
    return NO_PAYLOAD


def payload_example(spec: HandlerSpec, trigger_cls: type[Trigger[Any]]) -> Any:
    """An example payload for the handler (a JSON value, `str` or `bytes`), or `NO_PAYLOAD`
    when the handler takes none."""
    annotation = payload_annotation(spec, trigger_cls)
    if annotation is NO_PAYLOAD:
        return NO_PAYLOAD
    base = strip_optional(annotation)
    if base is str:
        return "example"
    if base is bytes:
        return b"example"
    if base is Any or base is inspect.Parameter.empty:
        return {}
    return example_for(annotation)
