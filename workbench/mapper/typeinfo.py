"""What the mapper needs to know about Python and pydantic types.

`UNKNOWN` stands for "the static check cannot tell": it is compatible with everything and
has every attribute. Types are the annotations pydantic resolved (`model_fields[...]
.annotation`): `str`, `int | None`, `list[Item]`, a model class, an enum, ...
"""

from __future__ import annotations

import collections.abc
import types
import typing
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""A type the static check cannot tell."""

NONE_TYPE = type(None)

_LIST_ORIGINS = {
    list, tuple, set, frozenset,
    collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable,
    collections.abc.Set, collections.abc.MutableSet, collections.abc.Collection,
}
_DICT_ORIGINS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
SCALARS = (str, int, float, bool, Decimal, date, datetime, time)


def is_model(tp: Any) -> bool:
    """A pydantic model class."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` → (X, True); `X` → (X, False). A union of several non-None types stays a
    union."""
    if tp is None or tp is NONE_TYPE:
        return NONE_TYPE, True
    if is_union(tp):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not NONE_TYPE]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            return rest[0], optional
        if optional:
            return typing.Union[tuple(rest)], True  # noqa: UP007 - built from a tuple
    return tp, False


def strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def list_item(tp: Any) -> Any | None:
    """The element type of a list-like type (`list[X]` → X, `list` → UNKNOWN), else None."""
    tp = strip_annotated(tp)
    if tp in (list, tuple, set, frozenset):
        return UNKNOWN
    origin = typing.get_origin(tp)
    if origin in _LIST_ORIGINS:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if origin is tuple and len(set(map(repr, args))) > 1:
            return UNKNOWN
        return args[0] if args else UNKNOWN
    return None


def dict_value(tp: Any) -> Any | None:
    """The value type of a dict-like type, else None."""
    tp = strip_annotated(tp)
    if tp is dict:
        return UNKNOWN
    if typing.get_origin(tp) in _DICT_ORIGINS:
        args = typing.get_args(tp)
        return args[1] if len(args) == 2 else UNKNOWN
    return None


def is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Enum)


def is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is Literal


def is_any(tp: Any) -> bool:
    return tp is Any or tp is UNKNOWN or tp is object


def fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return dict(model.model_fields)


def input_key(name: str, info: FieldInfo) -> str:
    """The key a field is validated from (its alias when it has one)."""
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    return info.alias or name


_CUSTOM_MODES = frozenset({"before", "wrap", "plain"})


def transforms_input(model: Any, field: str | None = None) -> bool:
    """Whether validation may turn one kind of input into another for `model` (or for its
    field `field`): a `before`/`wrap`/`plain` model or field validator, or such a validator
    in the field's `Annotated` metadata. Then the static check cannot tell what passes."""
    if not is_model(model):
        return False
    decorators = getattr(model, "__pydantic_decorators__", None)
    if decorators is not None:
        for dec in decorators.model_validators.values():
            if getattr(dec.info, "mode", "after") in _CUSTOM_MODES:
                return True
        if field is not None:
            for dec in decorators.field_validators.values():
                fields = getattr(dec.info, "fields", ())
                if (field in fields or "*" in fields) and dec.info.mode in _CUSTOM_MODES:
                    return True
    if field is not None and field in model.model_fields:
        info = model.model_fields[field]
        for meta in info.metadata:
            if type(meta).__name__ in ("BeforeValidator", "WrapValidator", "PlainValidator"):
                return True
        inner, _ = unwrap_optional(strip_annotated(info.annotation))
        item = list_item(inner)
        if item is not None:
            inner, _ = unwrap_optional(strip_annotated(item))
        if inner is not model and transforms_input(inner):
            return True
    return False


def allows_extra(model: type[BaseModel]) -> bool:
    return model.model_config.get("extra") == "allow"


def type_name(tp: Any) -> str:
    """A short display name: `str`, `int | None`, `list[Item]`, `Invoice`."""
    if tp is UNKNOWN:
        return "?"
    if tp is NONE_TYPE or tp is None:
        return "None"
    if tp is Any:
        return "Any"
    tp = strip_annotated(tp)
    if is_union(tp):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(tp)) + "]"
    if origin is not None:
        args = typing.get_args(tp)
        base = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{base}[{inner}]" if args else base
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def qualified(obj: Any) -> str:
    """`module:Qualname` of a class or function (how mapping files name them)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def attribute_type(tp: Any, name: str) -> Any:
    """The type of `value.name` for a value of type `tp`.

    Returns UNKNOWN when it cannot tell (methods, properties, arbitrary classes).

    Raises:
        LookupError: `tp` certainly has no such attribute; the message lists what it has.
    """
    tp = strip_annotated(tp)
    if is_any(tp):
        return UNKNOWN
    if is_union(tp):
        return UNKNOWN
    if is_model(tp):
        fields = fields_of(tp)
        if name in fields:
            return fields[name].annotation
        if hasattr(tp, name) or allows_extra(tp):
            return UNKNOWN
        known = ", ".join(fields) or "(no fields)"
        raise LookupError(f"{tp.__name__} has no field {name!r} (it has: {known})")
    if dict_value(tp) is not None:
        if hasattr(dict, name):
            return UNKNOWN
        raise LookupError(f"{type_name(tp)} is a dict: write [{name!r}], not .{name}")
    if list_item(tp) is not None:
        if hasattr(list, name):
            return UNKNOWN
        raise LookupError(
            f"{type_name(tp)} is a list and has no attribute {name!r}; map its elements "
            "with `each`, or index it ([0])"
        )
    if tp in SCALARS or is_enum(tp):
        if hasattr(tp, name):
            if is_enum(tp) and name == "value":
                return _enum_value_type(tp)
            return UNKNOWN
        raise LookupError(f"a {type_name(tp)} has no attribute {name!r}")
    return UNKNOWN


def _enum_value_type(tp: type[Enum]) -> Any:
    kinds = {type(m.value) for m in tp}
    return kinds.pop() if len(kinds) == 1 else UNKNOWN


def subscript_type(tp: Any, index_is_slice: bool) -> Any:
    """The type of `value[...]`.

    Raises:
        LookupError: a model is indexed (models take attribute access).
    """
    tp = strip_annotated(tp)
    if is_any(tp) or is_union(tp):
        return UNKNOWN
    if is_model(tp):
        raise LookupError(f"{tp.__name__} is a model: use .field, not [...]")
    item = list_item(tp)
    if item is not None:
        return tp if index_is_slice else item
    value = dict_value(tp)
    if value is not None:
        return value
    if tp is str:
        return str
    return UNKNOWN


STR_METHODS_STR = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "casefold",
    "replace", "zfill", "center", "ljust", "rjust", "removeprefix", "removesuffix",
    "swapcase", "expandtabs",
})
STR_METHODS_BOOL = frozenset({
    "startswith", "endswith", "isdigit", "isalpha", "isalnum", "isspace", "islower",
    "isupper", "isnumeric", "isdecimal", "istitle",
})


def method_result(tp: Any, name: str) -> Any:
    """The result type of calling method `name` on a value of type `tp`, when obvious."""
    tp = strip_annotated(tp)
    if tp is str:
        if name in STR_METHODS_STR:
            return str
        if name in STR_METHODS_BOOL:
            return bool
        if name in ("split", "rsplit", "splitlines"):
            return list[str]
        if name in ("find", "rfind", "index", "count"):
            return int
    if tp in (date, datetime, time) and name in ("isoformat", "strftime"):
        return str
    if tp is datetime and name == "date":
        return date
    if is_model(tp) and name == "model_dump":
        return dict[str, Any]
    return UNKNOWN


Fit = tuple[Literal["error", "warning"], str]


def compatibility(value: Any, target: Any, *, coerce_numbers_to_str: bool = False) -> Fit | None:
    """Whether a value of static type `value` fits a field of type `target`.

    Returns None when it fits (or cannot be told), else `(level, reason)` where level is
    "error" (validation rejects it every time) or "warning" (it depends on the value).
    """
    if is_any(value) or is_any(target):
        return None
    value = strip_annotated(value)
    target = strip_annotated(target)
    target_inner, target_optional = unwrap_optional(target)
    if value is NONE_TYPE:
        return None if target_optional else ("error", "the value is None, the field is required")
    value_inner, _value_optional = unwrap_optional(value)
    if is_union(target_inner) or is_union(value_inner) or is_literal(target_inner):
        return None
    if is_literal(value_inner):
        return None
    if is_any(target_inner) or is_any(value_inner):
        return None
    t_item, v_item = list_item(target_inner), list_item(value_inner)
    if t_item is not None:
        if v_item is None:
            if dict_value(value_inner) is not None or is_model(value_inner) or (
                value_inner in SCALARS and value_inner is not str
            ) or value_inner is str:
                return ("error", f"the field is a list ({type_name(target_inner)}), "
                                 f"the value is {a(type_name(value_inner))}")
            return None
        inner = compatibility(v_item, t_item, coerce_numbers_to_str=coerce_numbers_to_str)
        if inner is None:
            return None
        return inner[0], f"list elements: {inner[1]}"
    if v_item is not None:
        return ("error", f"the value is a list ({type_name(value_inner)}), the field is "
                         f"{a(type_name(target_inner))}: use pick/reduce or index it")
    if is_model(target_inner):
        if is_model(value_inner):
            if issubclass(value_inner, target_inner):
                return None
            return ("error", f"the value is {a(value_inner.__name__)}, the field is "
                             f"{a(target_inner.__name__)}: map its fields (a table) or use a "
                             "sub-mapping")
        if dict_value(value_inner) is not None:
            return None
        if value_inner in SCALARS or is_enum(value_inner):
            return ("error", f"the value is {a(type_name(value_inner))}, the field is "
                             f"{a(target_inner.__name__)} model")
        return None
    if dict_value(target_inner) is not None:
        if is_model(value_inner) or value_inner in SCALARS:
            return ("error", f"the value is {a(type_name(value_inner))}, the field is a dict")
        return None
    if not isinstance(value_inner, type) or not isinstance(target_inner, type):
        return None
    return _scalar_fit(value_inner, target_inner, coerce_numbers_to_str)


def _scalar_fit(value: type, target: type, coerce_numbers_to_str: bool) -> Fit | None:
    v, t = type_name(value), type_name(target)
    if issubclass(value, target) and not (value is bool and target is not bool):
        return None
    if is_model(value):
        return ("error", f"the value is {a(v)} model, the field is {a(t)}")
    numbers = (int, float, Decimal)
    if is_enum(target):
        if is_enum(value):
            return ("warning", f"the value is {a(v)}, the field is {a(t)}: they must share values")
        return ("warning", f"the field is the enum {t}: the value must be one of its values "
                           "(convert = 'enum' names the bad value)")
    if target is str:
        if is_enum(value) and issubclass(value, str):
            return None
        if value in numbers and coerce_numbers_to_str:
            return None
        return ("error", f"the value is {a(v)}, the field is a str: use str(...) or "
                         "convert = 'str'")
    if target is bool:
        if value is int or value is str:
            return ("warning", f"the value is {a(v)}, the field is a bool: only 0/1 or "
                               "true/false pass; convert = 'bool' names the bad value")
        return ("error", f"the value is {a(v)}, the field is a bool")
    if target in numbers:
        if value is bool:
            return None
        if value in numbers:
            if target is int and value is not int:
                return ("warning", f"the value is {a(v)}, the field is an int: a fractional "
                                   "part fails validation; convert = 'int' says which value")
            return None
        if value is str:
            return ("warning", f"the value is a str, the field is {a(t)}: only numeric text "
                               f"passes; convert = '{_convert_name(target)}' names the bad value")
        return ("error", f"the value is {a(v)}, the field is {a(t)}")
    if target in (date, datetime, time):
        if value is str:
            return ("warning", f"the value is a str, the field is {a(t)}: only ISO text "
                               f"passes; use convert = '{t}' with a format")
        if target is datetime and value is date:
            return None
        if target is date and value is datetime:
            return ("warning", "the value is a datetime, the field is a date: only midnight "
                               "passes; use convert = 'date'")
        if target is datetime and value in numbers:
            return None
        return ("error", f"the value is {a(v)}, the field is {a(t)}")
    return None


def a(name: str) -> str:
    """`a str`, `an int`, `an Item`."""
    return f"an {name}" if name[:1].lower() in "aeio" else f"a {name}"


def _convert_name(tp: type) -> str:
    return {int: "int", float: "float", Decimal: "decimal"}.get(tp, tp.__name__)


CONVERT_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "decimal": Decimal,
    "str": str,
    "bool": bool,
    "date": date,
    "datetime": datetime,
    "time": time,
}
"""What each `convert = "..."` produces (`enum` produces the field's enum)."""

INPUT_TYPES: dict[str, Any] = {**CONVERT_TYPES, "list": list, "dict": dict, "any": Any}
"""The `type = "..."` names an `[inputs]` entry may give."""


def get_type_hints_safe(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:
        return {}
