"""Example parameters for the inject console, built from the run handler's signature.

The trigger never calls a handler; it only reads the annotation of the first parameter
that is a pydantic model and fills every field: the declared default where there is one,
otherwise a neutral value of the field's type (0, "", false, [], {}, the first literal).
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from workbench.plugin import HandlerFunc, TransportView

_MAX_DEPTH = 6


def params_model(func: HandlerFunc) -> type[BaseModel] | None:
    """The pydantic model of the first handler parameter annotated with one, or None."""
    try:
        hints = typing.get_type_hints(func)
        parameters = inspect.signature(func).parameters
    except Exception:  # unresolvable annotations: no schema to offer, not an error here
        return None
    for name in parameters:
        hint = hints.get(name)
        if get_origin(hint) is typing.Annotated:
            hint = get_args(hint)[0]
        if (
            isinstance(hint, type)
            and issubclass(hint, BaseModel)
            and not issubclass(hint, TransportView)
        ):
            return hint
    return None


def example_for(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON object with every field of `model` filled (defaults first)."""
    raw = _model_example(model, 0)
    try:
        return model.model_validate(raw).model_dump(mode="json")
    except ValidationError:
        # Constraints (min_length, gt, ...) the neutral values do not meet: still a useful
        # template to edit, so offer it as is.
        return raw


def _model_example(model: type[BaseModel], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if info.default is not PydanticUndefined:
            out[key] = _dump(info.annotation, info.default)
        elif info.default_factory is not None:
            factory: Any = info.default_factory
            try:
                value = factory()
            except TypeError:  # a factory that takes the validated data
                value = _value_for(info.annotation, depth + 1)
            out[key] = _dump(info.annotation, value)
        else:
            out[key] = _value_for(info.annotation, depth + 1)
    return out


def _dump(annotation: Any, value: Any) -> Any:
    try:
        return TypeAdapter(annotation).dump_python(value, mode="json")
    except Exception:  # an annotation pydantic cannot adapt on its own: best effort
        return TypeAdapter(Any).dump_python(value, mode="json", fallback=repr)


def _value_for(annotation: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return None
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return _value_for(args[0], depth)
    if origin is Union or origin is types.UnionType:
        arms = [a for a in args if a is not type(None)]
        return _value_for(arms[0], depth) if arms else None
    if origin is Literal:
        return args[0] if args else None
    if origin in (list, set, frozenset, tuple) or annotation in (list, set, frozenset, tuple):
        return []
    if origin is dict or annotation is dict:
        return {}
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, BaseModel):
        return _model_example(annotation, depth)
    if issubclass(annotation, enum.Enum):
        first = next(iter(annotation), None)
        return None if first is None else first.value
    simple: dict[type, Any] = {
        bool: False,
        int: 0,
        float: 0.0,
        str: "",
        bytes: "",
        Decimal: "0",
    }
    for kind, value in simple.items():
        if issubclass(annotation, kind):
            return value
    if issubclass(annotation, datetime):
        return datetime.now(UTC).replace(microsecond=0).isoformat()
    if issubclass(annotation, date):
        return datetime.now(UTC).date().isoformat()
    if issubclass(annotation, time):
        return "00:00:00"
    if issubclass(annotation, timedelta):
        return "PT0S"
    if issubclass(annotation, uuid.UUID):
        return str(uuid.uuid4())
    return None
