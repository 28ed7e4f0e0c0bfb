"""A compiled mapping, and what its code calls at run time: source coercion and the
translation of an exception into a `MappingRunError` that names the mapping file, the line
and the target field path.

The generated code carries the positions of the mapping file: every node of a field's
expression sits at that expression's line and column in the TOML file, and the code object's
file name is the mapping file. So a traceback shows `File "mappings/x.toml", line 14` with
the TOML line under it, and `MappingRunError` finds the field from the failing position.
"""

from __future__ import annotations

import reprlib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from workbench.mapper.errors import MappingRunError
from workbench.mapper.spec import MappingSpec
from workbench.mapper.typeinfo import (
    dict_value,
    fields_of,
    input_key,
    is_model,
    list_item,
    strip_annotated,
    unwrap_optional,
)

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 120
_repr.maxlist = 6
_repr.maxdict = 6


def short(value: Any) -> str:
    """A bounded repr for messages."""
    if isinstance(value, BaseModel):
        text = repr(value)
        return text if len(text) <= 160 else text[:157] + "..."
    return _repr.repr(value)


@dataclass(frozen=True, slots=True)
class Site:
    """A span of the mapping file that compiled code runs: one expression, or the
    generated code of one option (each, sort, convert, default, ...)."""

    line: int
    col: int
    end_line: int
    end_col: int
    path: str
    """The target field path."""
    option: str
    """`expr`, `each`, `where`, `sort`, `convert`, `default`, `mapping`, `validate`, ..."""
    text: str = ""
    """The expression text (for expression sites)."""
    variables: tuple[str, ...] = ()
    """Element variables bound where the site runs."""

    def contains(self, line: int, col: int) -> bool:
        return (self.line, self.col) <= (line, col) <= (self.end_line, self.end_col)

    def span(self) -> tuple[int, int]:
        return (self.end_line - self.line, self.end_col - self.col)


@dataclass(slots=True)
class CompiledMapping:
    """A mapping compiled to a Python function.

    Calling `func(*sources, **inputs)` returns the target model instance; `raw(...)` the
    unvalidated dict (what `func` validates).
    """

    name: str
    spec: MappingSpec
    func: Callable[..., Any]
    raw: Callable[..., Any]
    source: str
    """The Python source of the generated module (`iwb map export`)."""
    target: Any
    sources: dict[str, Any]
    inputs: dict[str, Any]
    sites: list[Site]
    namespace: dict[str, Any]
    """The module globals of the generated code (sub-mappings are linked into it)."""
    calls: dict[str, str] = field(default_factory=dict)
    """Global name → sub-mapping name, for the registry to link (`_raw_x` → raw of x,
    `x` → validated x)."""
    digest: str = ""
    identity: tuple[Any, ...] = ()

    @property
    def file(self) -> str:
        return self.spec.file

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    # ------------------------------------------------------------------ errors

    def site_at(
        self, line: int, col: int | None = None, end_line: int | None = None,
        end_col: int | None = None,
    ) -> Site | None:
        """The narrowest site covering a position (a code span when the end is given)."""
        best: Site | None = None
        if col is not None:
            end = (end_line if end_line is not None else line,
                   end_col if end_col is not None else col)
            for site in self.sites:
                if site.contains(line, col) and site.contains(*end) and (
                    best is None or site.span() < best.span()
                ):
                    best = site
        if best is None:
            best = next((s for s in self.sites if s.line <= line <= s.end_line), None)
        return best

    def _innermost(self, tb: types.TracebackType | None) -> tuple[
        types.FrameType | None, int | None, tuple[int | None, int | None, int | None]
    ]:
        """The innermost frame of this mapping's code in a traceback, with its position
        (line, and the column span of the failing instruction)."""
        frame: types.FrameType | None = None
        line: int | None = None
        span: tuple[int | None, int | None, int | None] = (None, None, None)
        path = str(self.spec.path)
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename == path:
                positions = list(code.co_positions())
                index = tb.tb_lasti // 2
                if 0 <= index < len(positions):
                    start, end, col, end_col = positions[index]
                    line, span = start or tb.tb_lineno, (col, end, end_col)
                else:
                    line, span = tb.tb_lineno, (None, None, None)
                frame = tb.tb_frame
            tb = tb.tb_next
        return frame, line, span

    def _site(self, exc: BaseException) -> tuple[types.FrameType | None, int | None,
                                                 Site | None]:
        frame, line, (col, end_line, end_col) = self._innermost(exc.__traceback__)
        site = self.site_at(line, col, end_line, end_col) if line is not None else None
        return frame, line, site

    def fail(self, exc: BaseException) -> MappingRunError:
        """The `MappingRunError` for an exception raised inside this mapping's code; it
        carries the original traceback (so it points into the mapping file)."""
        frame, line, site = self._site(exc)
        if isinstance(exc, ValidationError) and site is not None and site.option == "validate":
            err = self._validation(exc)
        else:
            err = self._expression(exc, frame, line, site)
        return err.with_traceback(exc.__traceback__)

    def note(self, exc: BaseException) -> None:
        """Add where this mapping called the mapping that failed (a sub-mapping's error
        passes through unchanged otherwise)."""
        _frame, line, site = self._site(exc)
        if site is not None:
            exc.add_note(f"called from {self.spec.file}:{line} (field {site.path!r} of mapping "
                         f"{self.name!r})")

    def _expression(
        self, exc: BaseException, frame: types.FrameType | None, line: int | None,
        site: Site | None,
    ) -> MappingRunError:
        from workbench.mapper.errors import ConversionError

        path = site.path if site is not None else None
        where = f"{self.spec.file}:{line}" if line else self.spec.file
        what = ""
        if site is not None and site.option not in ("field", "validate"):
            text = f" {site.text.strip()!r}" if site.text else ""
            what = f" ({site.option}{text})"
        value: Any = None
        context = ""
        if isinstance(exc, ConversionError):
            value = exc.value
            detail = str(exc)
        else:
            detail = f"{type(exc).__name__}: {exc}"
            if frame is not None and site is not None:
                shown = [
                    (name, frame.f_locals[name]) for name in site.variables
                    if name in frame.f_locals
                ]
                if shown:
                    value = shown[-1][1]
                    context = " [" + ", ".join(f"{n} = {short(v)}" for n, v in shown) + "]"
        field_part = f"field {path!r}{what}: " if path else ""
        message = f"{where}: mapping {self.name!r}: {field_part}{detail}{context}"
        return MappingRunError(
            message, mapping=self.name, file=self.spec.file, line=line, field=path,
            value=value,
            problems=[{"field": path, "line": line, "message": detail,
                       "value": short(value) if value is not None else None}],
        )

    def _validation(self, exc: ValidationError) -> MappingRunError:
        problems: list[dict[str, Any]] = []
        lines: list[str] = []
        for err in exc.errors(include_url=False):
            path = loc_path(self.target, err.get("loc", ()))
            rule = self.spec.nearest_rule(path)
            line = rule.line if rule is not None else self.spec.fields_line
            given = err.get("input")
            if err.get("type") == "missing":
                message = "required, but the mapping gives it no value"
                shown = None
            else:
                message = str(err.get("msg", "invalid"))
                shown = short(given)
            problems.append({"field": path, "line": line, "message": message, "value": shown})
            tail = f" (value {shown})" if shown is not None else ""
            lines.append(f"{self.spec.file}:{line}: field {path!r}: {message}{tail}")
        target = getattr(self.target, "__name__", "the target")
        first = problems[0] if problems else {"field": None, "line": None, "value": None}
        if len(lines) == 1:
            message = f"{lines[0]} (mapping {self.name!r}, target {target})"
        else:
            message = (f"mapping {self.name!r}: {len(lines)} fields are not valid for "
                       f"{target}:\n  " + "\n  ".join(lines))
        bad = next((e.get("input") for e in exc.errors() if e.get("type") != "missing"), None)
        return MappingRunError(
            message, mapping=self.name, file=self.spec.file, line=first["line"],
            field=first["field"], value=bad, problems=problems,
        )


def loc_path(target: Any, loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A pydantic error location as a target field path: (`lines`, 2, `amount`) →
    `lines[2].amount` (aliases turned back into field names)."""
    out = ""
    tp: Any = target
    for part in loc:
        inner, _ = unwrap_optional(strip_annotated(tp)) if tp is not None else (None, False)
        if isinstance(part, int):
            out += f"[{part}]"
            tp = list_item(inner) if inner is not None else None
            continue
        if inner is not None and is_model(inner):
            fields = fields_of(inner)
            name = next((n for n, f in fields.items() if input_key(n, f) == part), part)
            if name not in fields and part not in fields:
                continue  # a union member tag or validator name, not a field
            out += f".{name}" if out else name
            tp = fields[name].annotation if name in fields else None
        elif inner is not None and dict_value(inner) is not None:
            out += f"[{part!r}]"
            tp = dict_value(inner)
        else:
            out += f".{part}" if out else str(part)
            tp = None
    return out


def coerce(cls: type[BaseModel], value: Any, name: str, mapping: str) -> Any:
    """The source `value` as an instance of `cls`: a dict or JSON text is validated, another
    object is read by its attributes (a model of another class, e.g. after a reload)."""
    if isinstance(value, cls):
        return value
    try:
        if isinstance(value, Mapping):
            return cls.model_validate(value)
        if isinstance(value, str | bytes | bytearray):
            return cls.model_validate_json(value)
        return cls.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        )
        raise MappingRunError(
            f"mapping {mapping!r}: source {name!r} is not a valid {cls.__name__}: {problems} "
            f"(got {short(value)})",
            mapping=mapping, field=None, value=value,
        ) from exc


def optional_call(func: Callable[..., Any], value: Any) -> Any:
    """`func(value)`, or None when value is None (a sub-mapping of a missing part)."""
    return None if value is None else func(value)


def unlinked(name: str) -> Callable[..., Any]:
    """A stand-in for a sub-mapping the registry has not linked."""

    def call(*_args: Any, **_kwargs: Any) -> Any:
        from workbench.mapper.errors import MappingNotFoundError

        raise MappingNotFoundError(
            f"mapping {name!r} is not loaded, so the mapping that calls it cannot run; "
            "see `iwb map check` for why"
        )

    return call
