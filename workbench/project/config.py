"""Config.toml, profiles and the environment: the values behind `configurable()`.

    Config.toml              [orders]            one table per module (the file stem)
                             max_items = 50
    Config.prod.toml         [orders]            with `--profile prod`: merged over it,
                             max_items = 500     table by table, key by key
    IWB_ORDERS__MAX_ITEMS=9                      the environment beats both

`ConfigResolver` is what the loader installs (with `resolver.active()`) while it imports
project modules: each `configurable(...)` call lands in `resolve()`, which validates the
value against the declared type and records the declaration for `iwb check` and the TUI.
Nothing raises during the import: every problem is appended to `resolver.errors`, so one
load reports all of them together.

Imports no plugin and no UI.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

import workbench.config as authoring
from workbench.config import REQUIRED, Declared, env_var_name, module_table
from workbench.errors import ConfigError, ConnectionConfigError, ProjectError, WorkbenchError
from workbench.project.tomlpos import TomlFile, read_toml

__all__ = ["CONFIG_FILE", "ConfigResolver", "UnusedKey", "profile_file_name"]

CONFIG_FILE = "Config.toml"
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_COMPLEX_ORIGINS = {
    list,
    dict,
    set,
    frozenset,
    tuple,
    typing.Sequence,
    typing.MutableSequence,
    typing.Mapping,
    typing.MutableMapping,
    typing.AbstractSet,
    typing.MutableSet,
}


def profile_file_name(profile: str) -> str:
    """`Config.<profile>.toml`."""
    return f"Config.{profile}.toml"


@dataclass(frozen=True, slots=True)
class UnusedKey:
    """A key set in a Config file that no module declares (a warning, not an error)."""

    table: str
    key: str
    file: str
    line: int | None

    @property
    def message(self) -> str:
        if not self.table:
            return (
                f"{self.key} is set at the top level of {self.file}, where nothing reads it; "
                "configurables live in a [module] table."
            )
        return (
            f"[{self.table}] {self.key} is set in {self.file} but no module declares it "
            f"with configurable({self.key!r}, ...); it is not used."
        )

    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"


def _type_name(type_: Any) -> str:
    if isinstance(type_, type) and not typing.get_args(type_):
        return type_.__name__
    return str(type_).replace("typing.", "")


def _is_complex(type_: Any) -> bool:
    """Whether an environment value for `type_` is JSON rather than a plain string."""
    origin = typing.get_origin(type_)
    if origin is typing.Annotated:
        return _is_complex(typing.get_args(type_)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_complex(arg) for arg in typing.get_args(type_))
    if origin is not None:
        return origin in _COMPLEX_ORIGINS or (
            isinstance(origin, type) and issubclass(origin, BaseModel)
        )
    if isinstance(type_, type):
        return (
            type_ in _COMPLEX_ORIGINS
            or issubclass(type_, BaseModel)
            or dataclasses.is_dataclass(type_)
            or typing.is_typeddict(type_)
        )
    return False


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a TOML value")


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _problems(errors: list[ErrorDetails]) -> str:
    """pydantic's error messages with their location, never the input (it may be secret)."""
    parts = []
    for err in errors:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        where = where.removeprefix(".")
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


class ConfigResolver:
    """Resolves configurable values for one load of a project.

    Implements `workbench.config.ConfigSource`.

    Attributes:
        errors: every problem found so far (Config file syntax, missing and ill-typed
            values, unknown connection names), in the order found.
        declared: one `Declared` per `configurable()` call, in the order made (a module
            imported twice is recorded twice; the loader takes each import's slice).
        connection_names: the connections connections.toml defines; when set (by the
            loader, before importing modules), `connection("x")` with another name is an
            error.
    """

    def __init__(
        self, root: Path, profile: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        """Read Config.toml and, with a profile, Config.<profile>.toml.

        Args:
            root: the project directory.
            profile: the profile whose overlay applies (`--profile`), or None.
            env: the environment to read overrides from (default: `os.environ`).
        """
        self.root = root.resolve()
        self.profile = profile
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.errors: list[WorkbenchError] = []
        self.declared: list[Declared] = []
        self.connection_names: set[str] | None = None
        self.base: TomlFile | None = None
        """Config.toml, when present and valid."""
        self.overlay: TomlFile | None = None
        """Config.<profile>.toml, when a profile is active and its file is valid."""
        self._broken = False
        self._looked_up: set[tuple[str, str]] = set()
        self.base = self._read(CONFIG_FILE, required=False)
        if profile is not None:
            if not _PROFILE_NAME.fullmatch(profile):
                self._error(
                    ConfigError(
                        f"Profile name {profile!r} is not valid: use letters, digits, "
                        "'_' and '-' (it becomes part of the file name Config.<profile>.toml).",
                        title="Invalid profile",
                    ),
                    unusable=True,
                )
            else:
                self.overlay = self._read(profile_file_name(profile), required=True)
        self.data: dict[str, Any] = _deep_merge(
            self.base.data if self.base else {}, self.overlay.data if self.overlay else {}
        )
        """Config.toml with the profile overlay merged in (no environment)."""

    # ------------------------------------------------------------------ files

    def _read(self, name: str, *, required: bool) -> TomlFile | None:
        path = self.root / name
        if not path.is_file():
            if required:
                self._error(
                    ConfigError(
                        f"profile {self.profile!r} has no {name}: create {name} in "
                        f"{str(self.root)!r} or choose another profile.",
                        file=name,
                        title="Unknown profile",
                    ),
                    unusable=True,
                )
            return None
        try:
            return read_toml(path, name)
        except ProjectError as exc:
            self._error(exc, unusable=True)
            return None

    def _error(self, error: WorkbenchError, *, unusable: bool = False) -> None:
        if unusable:
            # a Config file could not be used: its keys are not "missing", they are unread
            self._broken = True
        self.errors.append(error)

    def _relative(self, file: str) -> str:
        try:
            return Path(file).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return file

    def _file_of(self, *path: str) -> TomlFile | None:
        """The Config file the value at `path` comes from (the overlay wins)."""
        if self.overlay is not None and self.overlay.has(*path):
            return self.overlay
        if self.base is not None and self.base.has(*path):
            return self.base
        return None

    def _has(self, table: str, name: str) -> bool:
        node = self.data.get(table)
        return isinstance(node, dict) and name in node

    # ------------------------------------------------------------------ ConfigSource

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
    ) -> Any:
        """The value of configurable `name` of `module` (see the module docstring).

        Returns the validated value; on a problem, records a ConfigError in `errors` and
        returns the default (None for a required value) so the import goes on.
        """
        table = module_table(module)
        key = f"{table}.{name}"
        var = env_var_name(table, name)
        declared_file = self._relative(file)
        decl = Declared(
            module=table,
            name=name,
            type_name=_type_name(type_),
            required=default is REQUIRED,
            secret=secret,
            description=description,
            file=declared_file,
            line=line,
            value=None if default is REQUIRED else default,
        )
        self.declared.append(decl)
        fallback = None if default is REQUIRED else default
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(type_)
        except Exception as exc:  # pydantic cannot build a validator for this type
            self._error(
                ConfigError(
                    f"configurable({name!r}, {_type_name(type_)}) in [{table}]: the type is "
                    f"not one pydantic can validate ({exc}). Use a standard type or a "
                    "pydantic model.",
                    file=declared_file,
                    line=line,
                    key=key,
                )
            )
            return fallback

        if var in self.env:
            raw = self.env[var]
            problem = (
                f"The value of the environment variable {var} (for [{table}] {name}) is not"
                if secret
                else f"The environment variable {var} sets [{table}] {name} to {raw!r}, "
                "which is not"
            )
            try:
                if _is_complex(type_):
                    value = adapter.validate_json(raw, strict=True)
                else:
                    value = adapter.validate_strings(raw)
            except ValidationError as exc:
                self._error(
                    ConfigError(
                        f"{problem} a valid {_type_name(type_)}: {_problems(exc.errors())}. "
                        f"Fix or unset {var} (declared at {declared_file}:{line}).",
                        file=declared_file,
                        line=line,
                        key=key,
                    )
                )
                return fallback
            decl.value, decl.origin = value, f"env:{var}"
            return value

        if self._has(table, name):
            raw = self.data[table][name]
            source = self._file_of(table, name)
            origin = source.name if source is not None else CONFIG_FILE
            try:
                encoded = json.dumps(raw, default=_json_default)
                value = adapter.validate_json(encoded, strict=True)
            except ValidationError as exc:
                self._error(self._ill_typed(table, name, raw, type_, secret, exc))
                return fallback
            decl.value, decl.origin = value, origin
            return value

        if default is REQUIRED:
            if not self._broken:
                self._error(
                    ConfigError(
                        f"Required configurable [{table}] {name} (declared at "
                        f"{declared_file}:{line}) has no value. Set `{name} = ...` under "
                        f"[{table}] in {CONFIG_FILE}, or the environment variable {var}.",
                        file=declared_file,
                        line=line,
                        key=key,
                        title="Missing configuration",
                    )
                )
            return None
        return default

    def _ill_typed(
        self, table: str, name: str, raw: Any, type_: Any, secret: bool, exc: ValidationError
    ) -> ConfigError:
        errors = exc.errors()
        first = [str(p) for p in errors[0]["loc"]] if errors else []
        source = self._file_of(table, name, *first) or self._file_of(table, name)
        file = source.name if source is not None else CONFIG_FILE
        line = source.line(table, name, *first) if source is not None else None
        problem = (
            f"[{table}] {name} in {file}: the value is not"
            if secret
            else f"[{table}] {name} = {raw!r} in {file} is not"
        )
        return ConfigError(
            f"{problem} a valid {_type_name(type_)}: "
            f"{_problems(errors)}. Fix it in {file}, or override it with "
            f"{env_var_name(table, name)}.",
            file=file,
            line=line,
            key=f"{table}.{name}",
            title="Invalid configuration",
        )

    def check_connection(self, name: str, file: str, line: int) -> None:
        """Record an error when `name` is not a connection of connections.toml (only once
        `connection_names` is set)."""
        if self.connection_names is None or name in self.connection_names:
            return
        where = f"{self._relative(file)}:{line}"
        known = ", ".join(sorted(self.connection_names)) or "(none)"
        self.errors.append(
            ConnectionConfigError(
                f"Unknown connection {name!r} ({where}). connections.toml defines: {known}.",
                file=self._relative(file),
                line=line,
                key=name,
                title="Unknown connection",
            )
        )

    @contextmanager
    def active(self) -> Iterator[ConfigResolver]:
        """Make this resolver the source of `configurable()` and `connection()` calls in
        this context (the loader wraps module imports in it)."""
        token = authoring._source.set(self)
        try:
            yield self
        finally:
            authoring._source.reset(token)

    # ------------------------------------------------------------------ queries

    def lookup(self, dotted: str) -> Any:
        """The value of `table.key` (or a deeper `table.key.sub`) for `${...}` substitution:
        the environment variable `IWB_<TABLE>__<KEY>`, else the profile file, else
        Config.toml. Values from the environment are strings (JSON-decoded when a deeper
        path is asked for).

        Raises:
            ConfigError: the reference is malformed or nothing sets it.
        """
        parts = dotted.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(
                f"{dotted!r} is not a configuration reference; write ${{table.key}} "
                "(a Config.toml table and key) or ${env:NAME}.",
                key=dotted,
            )
        table, name, rest = parts[0], parts[1], parts[2:]
        self._looked_up.add((table, name))
        var = env_var_name(table, name)
        node: Any
        if var in self.env:
            node = self.env[var]
            if rest:
                try:
                    node = json.loads(node)
                except ValueError:
                    raise ConfigError(
                        f"{dotted!r} reaches into {var}, which does not hold JSON.",
                        key=dotted,
                    ) from None
        elif self._has(table, name):
            node = self.data[table][name]
        else:
            raise ConfigError(
                f"{dotted!r} is not set: add `{name} = ...` under [{table}] in "
                f"{CONFIG_FILE} or set the environment variable {var}.",
                key=dotted,
            )
        for i, part in enumerate(rest):
            if not (isinstance(node, dict) and part in node):
                missing = ".".join(parts[: i + 3])
                raise ConfigError(f"{dotted!r} is not set: {missing!r} is missing.", key=dotted)
            node = node[part]
        return node

    def unused_keys(self) -> list[UnusedKey]:
        """Keys of Config.toml tables (and the profile file) that no module declared and no
        `${table.key}` reference read. Call it once all modules are imported."""
        used = {(d.module, d.name) for d in self.declared} | self._looked_up
        unused: list[UnusedKey] = []
        for table, node in self.data.items():
            if not isinstance(node, dict):
                source = self._file_of(table)
                unused.append(
                    UnusedKey(
                        table="",
                        key=table,
                        file=source.name if source else CONFIG_FILE,
                        line=source.line(table) if source else None,
                    )
                )
                continue
            for key in node:
                if (table, key) in used:
                    continue
                source = self._file_of(table, key)
                unused.append(
                    UnusedKey(
                        table=table,
                        key=key,
                        file=source.name if source else CONFIG_FILE,
                        line=source.line(table, key) if source else None,
                    )
                )
        return unused

    def value(self, table: str, name: str) -> Any:
        """The resolved value of a declared configurable, as last declared (KeyError when
        not declared)."""
        for decl in reversed(self.declared):
            if (decl.module, decl.name) == (table, name):
                return decl.value
        raise KeyError(f"{table}.{name}")
