"""Errors and problem records of the data mapper.

    WorkbenchError
    ├── ProjectError
    │   └── MappingError            a mapping file cannot be used (bad TOML, unknown type,
    │                               bad expression, cycle); carries file, line, field path
    ├── MappingNotFoundError        a mapping name the project does not have
    ├── MappingRunError             running a mapping failed; names the field and the value
    ├── ConversionError             a value cannot be converted (to_int, to_date, ...)
    └── InferError                  a sample cannot be turned into a model

`Issue` is one problem found while reading or checking a mapping, an error or a warning;
`Issue.to_error()` makes the `MappingError` that the runtime reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workbench.errors import ProjectError, WorkbenchError

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of a mapping file, with where it is."""

    level: Level
    message: str
    file: str
    """The mapping file, relative to the project root when possible."""
    line: int | None = None
    field: str | None = None
    """The target field path (`lines[].sku`), when the problem belongs to one."""
    mapping: str = ""

    def where(self) -> str:
        """`file:line` (or the file)."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def text(self) -> str:
        """The one-line form: `file:line: field 'x': message`."""
        field = f"field {self.field!r}: " if self.field else ""
        return f"{self.where()}: {field}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "mapping": self.mapping,
            "text": self.text(),
        }

    def to_error(self) -> MappingError:
        return MappingError(
            self.text(), file=self.file, line=self.line, field=self.field, mapping=self.mapping
        )


class MappingError(ProjectError):
    """A mapping file cannot be used: it does not parse, names an unknown type or function,
    holds a bad expression, or maps fields its types do not have."""

    title = "Mapping error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        mapping: str = "",
        title: str | None = None,
    ) -> None:
        super().__init__(message, file=file, line=line, key=field, title=title)
        self.field = field
        """The target field path, when the problem belongs to one field."""
        self.mapping = mapping
        """The mapping name (the file stem)."""

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["field"] = self.field
        data["mapping"] = self.mapping
        return data


class MappingNotFoundError(WorkbenchError):
    """A mapping name that is not in `mappings/`."""

    title = "No such mapping"


class MappingRunError(WorkbenchError):
    """Running a mapping failed. The message names the mapping file and line, the target
    field path and the value that could not be mapped."""

    title = "Mapping failed"

    def __init__(
        self,
        message: str,
        *,
        mapping: str = "",
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.mapping = mapping
        self.file = file
        self.line = line
        self.field = field
        """The target field path, e.g. `lines[2].amount`."""
        self.value = value
        """The source value that could not be mapped (when known)."""
        self.problems = list(problems or [])
        """Every failed field (`{"field", "line", "message", "value"}`); several when the
        target model rejected more than one value."""

    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "mapping": self.mapping,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "value": repr(self.value) if self.value is not None else None,
            "problems": self.problems,
        }


class ConversionError(WorkbenchError, ValueError):
    """A value cannot be converted to the asked type (`to_int("abc")`)."""

    title = "Conversion failed"

    def __init__(self, value: Any, target: str, reason: str = "") -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        tail = f": {reason}" if reason else ""
        super().__init__(f"cannot convert {shown} to {target}{tail}")
        self.value = value
        self.target = target
        self.reason = reason


class InferError(WorkbenchError):
    """A sample cannot be turned into a model (not JSON, no object, name clash)."""

    title = "Cannot infer a type"
