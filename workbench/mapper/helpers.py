"""The functions mapping expressions may call, besides a small set of builtins.

Conversions return None for None (so a `default` can take over) and raise
`ConversionError` naming the value otherwise:

    to_int("42") == 42          to_float("4.5") == 4.5       to_decimal("9.99", "0.01")
    to_str(date(2024, 5, 1)) == "2024-05-01"                 to_bool("yes") is True
    to_date("01/05/2024", "%d/%m/%Y")    to_datetime("2024-05-01T10:00:00Z")
    to_enum(Status, "shipped")           (by value, then by name, case-insensitive)

Collections and null handling:

    first(xs) last(xs) avg(xs) join(xs, ", ") count(xs) coalesce(a, b, ...)
    get(obj, "address.street", default)      # None-safe path into objects, dicts, lists
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from workbench.mapper.errors import ConversionError

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

_TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "f"})


# ---------------------------------------------------------------------------- conversions


def to_int(value: Any) -> int | None:
    """An int from an int, an integral float or Decimal, a bool, or a numeric string."""
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(value, "int", "not a finite number")
        if not value.is_integer():
            raise ConversionError(value, "int", "it has a fractional part")
        return int(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError(value, "int", "not a finite number")
        if value != value.to_integral_value():
            raise ConversionError(value, "int", "it has a fractional part")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ConversionError(value, "int", "not a number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ConversionError(value, "int", "not a whole number")
        return int(number)
    raise ConversionError(value, "int", f"a {type(value).__name__} is not a number")


def to_float(value: Any) -> float | None:
    """A float from a number, a bool or a numeric string."""
    if value is None or type(value) is float:
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise ConversionError(value, "float", "not a number") from None
    raise ConversionError(value, "float", f"a {type(value).__name__} is not a number")


def to_decimal(value: Any, quantum: str | None = None) -> Decimal | None:
    """A Decimal from a number or numeric string; floats go through their shortest repr
    (so 0.1 stays 0.1). With `quantum` (e.g. "0.01") the result is rounded half-up to it."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        result = Decimal(int(value))
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError(value, "Decimal", "not a finite number")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ConversionError(value, "Decimal", "not a number") from None
    else:
        raise ConversionError(value, "Decimal", f"a {type(value).__name__} is not a number")
    if quantum is not None:
        try:
            result = result.quantize(Decimal(quantum), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise ConversionError(value, f"Decimal({quantum})", "cannot round to it") from None
    return result


def to_str(value: Any, format: str | None = None) -> str | None:  # noqa: A002 - the option name
    """Text for a value: enums give their value, dates their ISO form (or `format` with
    strftime), numbers `format(value, format)` when a format is given, bools true/false."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.strftime(format) if format else value.isoformat()
    if format:
        try:
            return builtins.format(value, format)
        except (ValueError, TypeError) as exc:
            raise ConversionError(value, f"str with format {format!r}", str(exc)) from None
    return str(value)


def to_bool(value: Any) -> bool | None:
    """A bool from a bool, 0/1, or true/false, yes/no, on/off, y/n, t/f (any case)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ConversionError(value, "bool", "use true/false, yes/no, on/off or 1/0")


def to_date(value: Any, format: str | None = None) -> date | None:  # noqa: A002
    """A date from a date, a datetime (its date part), or text (ISO, or `format`)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if format:
                return datetime.strptime(text, format).date()
            return date.fromisoformat(text)
        except ValueError as exc:
            want = f"a date in the format {format!r}" if format else "an ISO date (YYYY-MM-DD)"
            raise ConversionError(value, "date", f"{exc}; expected {want}") from None
    raise ConversionError(value, "date", f"a {type(value).__name__} is not a date")


def to_datetime(value: Any, format: str | None = None) -> datetime | None:  # noqa: A002
    """A datetime from a datetime, a date (midnight), a Unix timestamp (UTC), or text
    (ISO 8601, `Z` accepted, or `format`)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ConversionError(value, "datetime", str(exc)) from None
    if isinstance(value, str):
        text = value.strip()
        try:
            if format:
                return datetime.strptime(text, format)
            return datetime.fromisoformat(text)
        except ValueError as exc:
            want = f"the format {format!r}" if format else "ISO 8601 (2024-05-01T10:00:00)"
            raise ConversionError(value, "datetime", f"{exc}; expected {want}") from None
    raise ConversionError(value, "datetime", f"a {type(value).__name__} is not a datetime")


def to_time(value: Any, format: str | None = None) -> time | None:  # noqa: A002
    """A time from a time, a datetime (its time part), or text (ISO, or `format`)."""
    if value is None or isinstance(value, time):
        return value
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, str):
        text = value.strip()
        try:
            if format:
                return datetime.strptime(text, format).time()
            return time.fromisoformat(text)
        except ValueError as exc:
            raise ConversionError(value, "time", str(exc)) from None
    raise ConversionError(value, "time", f"a {type(value).__name__} is not a time")


def to_enum(enum: type[E], value: Any) -> E | None:
    """A member of `enum`: by value, then by name (case-insensitive), then by the value's
    text (so "2" finds the member whose value is 2)."""
    if value is None or isinstance(value, enum):
        return value
    try:
        return enum(value)
    except (ValueError, TypeError):
        pass
    if isinstance(value, Enum):
        value = value.value
    text = str(value).strip()
    for member in enum:
        if member.name.lower() == text.lower() or str(member.value).lower() == text.lower():
            return member
    allowed = ", ".join(repr(m.value) for m in enum)
    raise ConversionError(value, enum.__name__, f"allowed values: {allowed}")


# ---------------------------------------------------------------------------- collections


def first(items: Iterable[T] | None, default: Any = None) -> T | Any:
    """The first item, or `default` when there is none."""
    if items is None:
        return default
    return next(iter(items), default)


def last(items: Iterable[T] | None, default: Any = None) -> T | Any:
    """The last item, or `default` when there is none."""
    if items is None:
        return default
    if isinstance(items, Sequence):
        return items[-1] if items else default
    result = default
    for result in items:  # noqa: B007 - the last one is wanted
        pass
    return result


def count(items: Iterable[Any] | None) -> int:
    """How many items (0 for None)."""
    if items is None:
        return 0
    if isinstance(items, Sequence | Mapping | set | frozenset):
        return len(items)
    return sum(1 for _ in items)


def avg(items: Iterable[Any] | None) -> Any:
    """The mean of the items that are not None, or None when there are none."""
    values = [v for v in items or () if v is not None]
    if not values:
        return None
    return sum(values) / len(values)


def join(items: Iterable[Any] | None, sep: str = ", ") -> str:
    """The items that are not None, as text (see `to_str`), joined by `sep`."""
    return sep.join(str(to_str(v)) for v in items or () if v is not None)


def coalesce(*values: Any) -> Any:
    """The first value that is not None (None when all are)."""
    for value in values:
        if value is not None:
            return value
    return None


def get(obj: Any, path: str, default: Any = None) -> Any:
    """Follow a dotted path (`"address.street"`, `"items.0.sku"`) through attributes,
    dict keys and list indexes; `default` as soon as a step is None or missing."""
    node = obj
    for part in path.split("."):
        if node is None:
            return default
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, Sequence) and not isinstance(node, str) and _is_index(part):
            index = int(part)
            node = node[index] if -len(node) <= index < len(node) else None
        elif part.startswith("__"):
            return default
        else:
            node = getattr(node, part, None)
    return default if node is None else node


def _is_index(text: str) -> bool:
    return text.lstrip("-").isdigit()


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def today() -> date:
    """Today's date (local)."""
    return date.today()


HELPERS: dict[str, Any] = {
    "to_int": to_int,
    "to_float": to_float,
    "to_decimal": to_decimal,
    "to_str": to_str,
    "to_bool": to_bool,
    "to_date": to_date,
    "to_datetime": to_datetime,
    "to_time": to_time,
    "to_enum": to_enum,
    "first": first,
    "last": last,
    "count": count,
    "avg": avg,
    "join": join,
    "coalesce": coalesce,
    "get": get,
    "now": now,
    "today": today,
    "Decimal": Decimal,
    "date": date,
    "datetime": datetime,
    "time": time,
    "timedelta": timedelta,
}
"""Helpers every expression can call, by name."""

SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float",
        "format", "frozenset", "int", "isinstance", "len", "list", "map", "max", "min", "next",
        "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple",
        "zip",
    )
}
"""The builtins an expression may use (no open, getattr, eval, __import__, type, ...)."""


def code_builtins() -> dict[str, Any]:
    """The `__builtins__` of compiled mapping code: the safe builtins, plus `__import__`,
    which C code such as `datetime.strptime` uses for its lazy imports (expressions cannot
    name it: the checker refuses names starting with `_`)."""
    return {**SAFE_BUILTINS, "__import__": builtins.__import__}

HELPER_RESULTS: dict[str, Any] = {
    "to_int": int, "to_float": float, "to_decimal": Decimal, "to_str": str,
    "to_bool": bool, "to_date": date, "to_datetime": datetime, "to_time": time,
    "count": int, "join": str, "now": datetime, "today": date,
    "str": str, "int": int, "float": float, "bool": bool, "len": int, "repr": str,
    "format": str, "Decimal": Decimal,
}
"""Result types of helpers and builtins, for the static check."""


# ---------------------------------------------------------------------------- reducers


def reduce_min(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def reduce_max(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def reduce_sum(values: list[Any]) -> Any:
    return sum(v for v in values if v is not None)


def pick_index(values: Sequence[Any], index: int) -> Any:
    return values[index] if -len(values) <= index < len(values) else None


REDUCERS: dict[str, Callable[..., Any]] = {
    "sum": reduce_sum,
    "count": len,
    "min": reduce_min,
    "max": reduce_max,
    "avg": avg,
    "join": join,
}

islice = itertools.islice
