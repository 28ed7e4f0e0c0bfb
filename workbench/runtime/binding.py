"""Parameter binding: from an `Event` to the keyword arguments of a handler.

A handler's parameters are bound by type, as FastAPI does. For each parameter, in order:

1. annotated `Event` → the event itself;
2. annotated with a `TransportView` subclass (`http.Request`, `files.File`) → its
   `from_event(event)`;
3. whatever the trigger's `param_extractor` returns for it (HTTP path, query and header
   values, ...);
4. a payload type — a pydantic model, a dataclass, `dict`, `list`, a union of those, or a
   parameter named `payload`/`body`/`data` — → the payload parsed as JSON and validated
   (pydantic `validate_json`, so parsing and validation happen in one pass in Rust);
   `bytes` → the raw payload, `str` named like a payload → the text;
5. the parameter's default.

A plan is compiled once per handler function (binding sits on the hot path) and cached
until the function object changes, which it does on every reload.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from workbench.events import Event
from workbench.plugin import NOT_BOUND, BindingError, HandlerSpec, TransportView, Trigger
from workbench.samples import (
    PAYLOAD_NAMES,
    handler_parameters,
    is_payload_type,
    strip_optional,
)

Extractor = Callable[[Event], Any]

BINDING_ERROR_TYPES = {
    "malformed": "MalformedPayload",
    "unsupported_media_type": "UnsupportedMediaType",
    "validation": "ValidationError",
    "missing": "ValidationError",
}
"""`BindingError.kind` → the `ErrorInfo.type` recorded on the outcome."""


class BindPlan:
    """Compiled binding for one handler function."""

    __slots__ = ("extractors", "func", "is_async")

    def __init__(
        self, func: Callable[..., Any], extractors: list[tuple[str, Extractor]], is_async: bool
    ) -> None:
        self.func = func
        self.extractors = extractors
        self.is_async = is_async

    def bind(self, event: Event) -> dict[str, Any]:
        """Keyword arguments for the handler; raises `BindingError`."""
        kwargs: dict[str, Any] = {}
        for name, extract in self.extractors:
            value = extract(event)
            if value is not NOT_BOUND:
                kwargs[name] = value
        return kwargs


_plans: dict[int, tuple[Callable[..., Any], BindPlan]] = {}


def plan_for(spec: HandlerSpec, trigger_cls: type[Trigger[Any]]) -> BindPlan:
    """The cached plan for `spec.func` (compiled on first use)."""
    key = id(spec.func)
    cached = _plans.get(key)
    if cached is not None and cached[0] is spec.func:
        return cached[1]
    plan = compile_plan(spec, trigger_cls)
    if len(_plans) > 4096:
        _plans.clear()
    _plans[key] = (spec.func, plan)
    return plan


def compile_plan(spec: HandlerSpec, trigger_cls: type[Trigger[Any]]) -> BindPlan:
    func = spec.func
    extractors: list[tuple[str, Extractor]] = []
    for name, param, annotation in handler_parameters(func):
        extractors.append((name, _extractor(name, param, annotation, spec, trigger_cls)))
    return BindPlan(func, extractors, inspect.iscoroutinefunction(func))


def _strip_annotated(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _extractor(
    name: str,
    param: inspect.Parameter,
    annotation: Any,
    spec: HandlerSpec,
    trigger_cls: type[Trigger[Any]],
) -> Extractor:
    base = strip_optional(annotation)
    has_default = param.default is not inspect.Parameter.empty
    default = param.default

    if base is Event:
        return lambda event: event
    if isinstance(base, type) and issubclass(base, TransportView):
        view = base.from_event
        return lambda event: view(event)
    custom = trigger_cls.param_extractor(param, annotation, spec)
    if custom is not None:
        return custom
    if base is bytes:
        return lambda event: event.data
    if is_payload_type(annotation) or name in PAYLOAD_NAMES:
        return _payload_extractor(name, annotation, has_default, default)
    if has_default:
        return lambda event: default

    def missing(event: Event) -> Any:
        raise BindingError(
            "missing",
            f"Parameter {name!r} of {spec.ref} cannot be bound: it is not a payload type, "
            f"no {event.kind or 'trigger'} value matches it, and it has no default.",
            [{"loc": ["param", name], "msg": "cannot bind", "type": "missing"}],
        )

    return missing


def _payload_extractor(name: str, annotation: Any, has_default: bool, default: Any) -> Extractor:
    base = _strip_annotated(annotation)
    if base is Any or base is inspect.Parameter.empty:
        return _any_payload
    if base is str:
        return lambda event: event.text
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def extract(event: Event) -> Any:
        data = event.data
        if not data.strip():
            if has_default:
                return default
            raise BindingError(
                "missing",
                "The event has no payload, and the handler needs one "
                f"(parameter {name!r}).",
                [{"loc": ["body"], "msg": "Field required", "type": "missing"}],
            )
        ct = event.datacontenttype
        if ct and not _json_content(ct):
            raise BindingError(
                "unsupported_media_type",
                f"Content type {ct!r} is not JSON; parameter {name!r} expects a JSON payload.",
            )
        try:
            return adapter.validate_json(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if any(e["type"] == "json_invalid" for e in errors):
                raise BindingError(
                    "malformed",
                    f"The payload is not valid JSON: {errors[0]['msg']}",
                    [{"loc": ["body"], "msg": errors[0]["msg"], "type": "json_invalid"}],
                ) from None
            details = [
                {
                    "loc": ["body", *e["loc"]],
                    "msg": e["msg"],
                    "type": e["type"],
                    **({"input": e["input"]} if _jsonable_scalar(e.get("input")) else {}),
                }
                for e in errors
            ]
            raise BindingError(
                "validation",
                f"{len(details)} validation error(s) for {name!r}: "
                + "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details),
                details,
            ) from None

    return extract


def _any_payload(event: Event) -> Any:
    if event.is_json() or (event.data[:1] in (b"{", b"[")):
        try:
            return event.json()
        except ValueError:
            pass
    return event.data


def _json_content(ct: str) -> bool:
    main = ct.split(";", 1)[0].strip().lower()
    return main in ("application/json", "text/json") or main.endswith("+json")


def _jsonable_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)

