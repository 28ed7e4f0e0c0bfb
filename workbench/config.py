"""Authoring helpers for project modules: configurable values and named connections.

    from workbench.config import configurable, connection

    MAX_ITEMS = configurable("max_items", int, default=50)
    API_KEY = configurable("api_key", str, secret=True)          # required
    inventory = connection("inventory")                           # from connections.toml

A configurable is read, when the module is imported, from the module's table in
`Config.toml` (the table is named after the module file: `[orders]` for
`artifacts/orders.py`), overlaid by `Config.<profile>.toml` and then by the environment
variable `IWB_<MODULE>__<NAME>` (upper case, e.g. `IWB_ORDERS__API_KEY`). Values are
validated against the declared type with pydantic. While a project loads, every missing or
ill-typed value is collected and all of them are reported together before anything starts.

This module is public: plugins and project code may import it. It imports no plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, overload

from pydantic import TypeAdapter, ValidationError

from workbench.errors import ConfigError, ConnectionConfigError

T = TypeVar("T")


class _Missing:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Missing()
"""Marker for a configurable without default."""


@dataclass(slots=True)
class Declared:
    """A configurable as declared in code, and the value it got."""

    module: str
    """The table name (module file stem)."""
    name: str
    type_name: str
    required: bool
    secret: bool
    description: str
    file: str
    line: int
    value: Any = None
    origin: str = "default"
    """Where the value came from: `default`, `Config.toml`, `Config.<p>.toml`, `env:NAME`."""

    def shown(self) -> Any:
        """The value as it may be displayed: secrets masked."""
        return "****" if self.secret and self.value not in (None, "") else self.value


class ConfigSource(Protocol):
    """What the project loader provides while it imports modules (see
    `workbench.project.config.ConfigResolver`)."""

    def resolve(
        self,
        module: str,
        name: str,
        type_: Any,
        default: Any,
        *,
        secret: bool,
        description: str,
        file: str,
        line: int,
    ) -> Any: ...

    def check_connection(self, name: str, file: str, line: int) -> None: ...


_source: ContextVar[ConfigSource | None] = ContextVar("iwb_config_source", default=None)
_connections: dict[str, Any] = {}
_project_root: list[Path] = []
"""Opened connections of the running project, by name (set by the runtime)."""


def module_table(module_name: str) -> str:
    """The Config.toml table for a module: its last dotted component (the file stem)."""
    return module_name.rsplit(".", 1)[-1]


def env_var_name(table: str, name: str) -> str:
    """The environment variable that overrides `table.name`: `IWB_<TABLE>__<NAME>`."""
    return f"IWB_{table.upper()}__{name.upper()}"


@overload
def configurable(
    name: str, type_: type[T], *, default: Any = ..., secret: bool = ..., description: str = ...
) -> T: ...
@overload
def configurable(
    name: str, type_: None = ..., *, default: Any = ..., secret: bool = ..., description: str = ...
) -> str: ...
def configurable(
    name: str,
    type_: Any = None,
    *,
    default: Any = REQUIRED,
    secret: bool = False,
    description: str = "",
) -> Any:
    """Declare a configurable value of the calling module and return its value.

    Args:
        name: the key in the module's Config.toml table.
        type_: the type to validate against (any type pydantic accepts); `str` if omitted.
        default: the value when nothing sets it; without one the value is required.
        secret: mask it wherever configuration is shown; never log it.
        description: shown in `iwb check` and the TUI.
    """
    frame = sys._getframe(1)
    module = str(frame.f_globals.get("__name__", "__main__"))
    file, line = frame.f_code.co_filename, frame.f_lineno
    kind = str if type_ is None else type_
    source = _source.get()
    if source is not None:
        return source.resolve(
            module, name, kind, default, secret=secret, description=description,
            file=file, line=line,
        )
    # Outside a project load (a plain import in a unit test): environment, then default.
    table = module_table(module)
    var = env_var_name(table, name)
    if var in os.environ:
        try:
            return TypeAdapter(kind).validate_strings(os.environ[var])
        except ValidationError as exc:
            raise ConfigError(
                f"{var}: {exc.errors()[0]['msg']}", key=f"{table}.{name}", file=file, line=line
            ) from None
    if default is REQUIRED:
        raise ConfigError(
            f"Required configurable {table}.{name} has no value: set it in Config.toml "
            f"under [{table}] or in the environment as {var}.",
            key=f"{table}.{name}", file=file, line=line,
        )
    return default


class ConnectionRef:
    """A named connection from connections.toml, resolved when used (the runtime opens the
    connections after the modules are imported). Attribute access goes to the client:
    `await inventory.get("/stock/42")` calls the httpx client of connection `inventory`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def connection(self) -> Any:
        try:
            return _connections[self.name]
        except KeyError:
            known = ", ".join(sorted(_connections)) or "(none open)"
            raise ConnectionConfigError(
                f"Connection {self.name!r} is not open. Open connections: {known}."
            ) from None

    @property
    def client(self) -> Any:
        return self.connection.client

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.client, attr)

    def __repr__(self) -> str:
        return f"connection({self.name!r})"


def connection(name: str) -> ConnectionRef:
    """Refer to a connection declared in connections.toml. An unknown name is reported
    (with this file and line) when the project loads."""
    frame = sys._getframe(1)
    source = _source.get()
    if source is not None:
        source.check_connection(name, frame.f_code.co_filename, frame.f_lineno)
    return ConnectionRef(name)


def set_open_connections(connections: Mapping[str, Any]) -> None:
    """Called by the runtime once connections are open (and with {} after closing)."""
    _connections.clear()
    _connections.update(connections)


def project_path(*parts: str | Path) -> Path:
    """A path inside the running project (relative parts resolve against its root; the
    current directory when no project is loaded)."""
    base = _project_root[-1] if _project_root else Path.cwd()
    return base.joinpath(*parts)


def set_project_root(root: Path | None) -> None:
    """Called by the runtime when it loads a project."""
    _project_root.clear()
    if root is not None:
        _project_root.append(root)
