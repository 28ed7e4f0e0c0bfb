"""connections.toml: named connections to the systems a project talks to.

    [inventory]
    kind = "http"                          # a ConnectionKind a plugin supplies
    base_url = "${inventory.base_url}"     # Config.toml [inventory] base_url (env overrides)
    auth_token = "${env:INVENTORY_TOKEN}"  # straight from the environment
    timeout = 5

Loading happens in two steps, so the loader can learn the connection names before it
imports modules (and before it knows which plugins are needed):

1. `load_connection_specs(root, resolver)` parses the file and substitutes `${...}`
   references into `ConnectionSpec`s;
2. `build_connections(specs, kinds)` validates each spec against its kind's `config_model`
   and creates the `ConnectionKind` objects (not yet opened).

A reference that is the whole string keeps the referenced value's type (`"${cfg.port}"`
gives an int); embedded in a longer string it is formatted into it. `$${` writes a literal
`${`. Errors name connections.toml, the line, the connection and the field, and never show
a secret value.

Imports no plugin and no UI: the connection kinds come in as a mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from workbench.errors import ConnectionConfigError, ProjectError, WorkbenchError
from workbench.plugin import ConnectionKind
from workbench.project.config import ConfigResolver
from workbench.project.tomlpos import KeyPath, TomlFile, read_toml

__all__ = [
    "CONNECTIONS_FILE",
    "ConnectionSpec",
    "build_connections",
    "load_connection_specs",
    "spec_fingerprint",
    "test_connections",
]

CONNECTIONS_FILE = "connections.toml"
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_WHOLE_REFERENCE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """One `[name]` table of connections.toml, with `${...}` references substituted."""

    name: str
    kind: str
    raw: dict[str, Any]
    """The fields other than `kind`, resolved."""
    line: int | None
    """The line of the `[name]` header."""
    field_lines: Mapping[KeyPath, int] = field(default_factory=dict, compare=False, repr=False)
    """Lines of the fields, by key path below the table (`("timeout",)`)."""
    broken: bool = False
    """A problem with this table was already reported; `build_connections` skips it. It is
    still listed so that modules naming it do not get a second, misleading error."""

    def field_line(self, *path: str | int) -> int | None:
        """The line of a field (or of its enclosing key), else of the table."""
        keys = tuple(str(p) for p in path)
        while keys:
            if keys in self.field_lines:
                return self.field_lines[keys]
            keys = keys[:-1]
        return self.line


class _Substituter:
    def __init__(self, resolver: ConfigResolver, name: str, doc: TomlFile) -> None:
        self.resolver = resolver
        self.name = name
        self.doc = doc
        self.errors: list[WorkbenchError] = []

    def reference(self, ref: str, path: KeyPath) -> Any:
        ref = ref.strip()
        if ref.startswith("env:"):
            var = ref[4:].strip()
            if not var:
                raise ConnectionConfigError("${env:} names no environment variable")
            if var not in self.resolver.env:
                raise ConnectionConfigError(f"the environment variable {var} is not set")
            return self.resolver.env[var]
        try:
            return self.resolver.lookup(ref)
        except ProjectError as exc:
            raise ConnectionConfigError(exc.message) from exc

    def string(self, text: str, path: KeyPath) -> Any:
        whole = _WHOLE_REFERENCE.fullmatch(text)
        if whole is not None:
            return self.reference(whole.group(1), path)

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            value = self.reference(match.group(1), path)
            return value if isinstance(value, str) else json.dumps(value, default=str)

        return _REFERENCE.sub(replace, text)

    def value(self, value: Any, path: KeyPath) -> Any:
        try:
            if isinstance(value, str):
                return self.string(value, path)
        except ConnectionConfigError as exc:
            dotted = ".".join(path)
            self.errors.append(
                ConnectionConfigError(
                    f"Connection {self.name!r}, field {dotted!r}: {exc.message}.",
                    file=CONNECTIONS_FILE,
                    line=self.doc.line(self.name, *path),
                    key=f"{self.name}.{dotted}",
                )
            )
            return value
        if isinstance(value, dict):
            return {k: self.value(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, (*path, str(i))) for i, v in enumerate(value)]
        return value


def load_connection_specs(
    root: Path, resolver: ConfigResolver
) -> tuple[dict[str, ConnectionSpec], list[WorkbenchError]]:
    """Parse connections.toml (optional) and substitute its references.

    Args:
        root: the project directory.
        resolver: the project's Config resolver (for `${table.key}` and the environment).

    Returns:
        The specs by connection name (broken ones included, marked `broken`) and the
        problems found.
    """
    path = root / CONNECTIONS_FILE
    if not path.is_file():
        return {}, []
    try:
        doc = read_toml(path, CONNECTIONS_FILE, ConnectionConfigError)
    except ProjectError as exc:
        return {}, [exc]
    specs: dict[str, ConnectionSpec] = {}
    errors: list[WorkbenchError] = []
    for name, table in doc.data.items():
        line = doc.line(name)
        if not isinstance(table, dict):
            errors.append(
                ConnectionConfigError(
                    f"{CONNECTIONS_FILE}: {name} = {table!r} is not a table. Each connection "
                    f'is a [{name}] table with a kind, e.g. kind = "http".',
                    file=CONNECTIONS_FILE,
                    line=line,
                    key=name,
                )
            )
            continue
        kind = table.get("kind")
        broken = False
        if not isinstance(kind, str) or not kind:
            errors.append(
                ConnectionConfigError(
                    f"Connection {name!r} has "
                    + ("no kind" if kind is None else f"kind = {kind!r}, which is not a name")
                    + f'. Add kind = "<kind>" to [{name}] (e.g. kind = "http").',
                    file=CONNECTIONS_FILE,
                    line=doc.line(name, "kind"),
                    key=f"{name}.kind",
                )
            )
            kind, broken = "", True
        substituter = _Substituter(resolver, name, doc)
        raw = {k: substituter.value(v, (k,)) for k, v in table.items() if k != "kind"}
        errors.extend(substituter.errors)
        field_lines = {
            keys[1:]: ln for keys, ln in doc.lines.items() if len(keys) > 1 and keys[0] == name
        }
        specs[name] = ConnectionSpec(
            name=name,
            kind=kind,
            raw=raw,
            line=line,
            field_lines=field_lines,
            broken=broken or bool(substituter.errors),
        )
    return specs, errors


def _is_secret(kind_cls: type[ConnectionKind[Any]], field_name: str) -> bool:
    return any(s in field_name.lower() for s in kind_cls.secret_fields)


def _allowed_fields(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    for info in model.model_fields.values():
        if isinstance(info.alias, str):
            names.add(info.alias)
        if isinstance(info.validation_alias, str):
            names.add(info.validation_alias)
    return names


def _field_errors(
    spec: ConnectionSpec, kind_cls: type[ConnectionKind[Any]], exc: ValidationError
) -> list[WorkbenchError]:
    out: list[WorkbenchError] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        dotted = ".".join(loc) or "(table)"
        top = loc[0] if loc else ""
        if err["type"] == "missing":
            text = f"is missing the required field {dotted!r}"
        else:
            shown = "the value" if _is_secret(kind_cls, top) else repr(err.get("input"))
            text = f"field {dotted!r} = {shown}: {err['msg']}"
        out.append(
            ConnectionConfigError(
                f"Connection {spec.name!r} ({spec.kind}) {text}.",
                file=CONNECTIONS_FILE,
                line=spec.field_line(*loc),
                key=f"{spec.name}.{dotted}",
            )
        )
    return out


def build_connections(
    specs: Mapping[str, ConnectionSpec],
    kinds: Mapping[str, type[ConnectionKind[Any]]],
) -> tuple[dict[str, ConnectionKind[Any]], list[WorkbenchError]]:
    """Validate each spec against its kind and create the connection objects (not opened).

    Args:
        specs: from `load_connection_specs`.
        kinds: the connection kinds the installed plugins supply, by `kind` name.

    Returns:
        The connections by name and the problems found (unknown kind, unknown, missing or
        ill-typed fields); a connection with a problem is left out.
    """
    connections: dict[str, ConnectionKind[Any]] = {}
    errors: list[WorkbenchError] = []
    available = ", ".join(sorted(kinds)) or "(none installed)"
    for name, spec in specs.items():
        if spec.broken:
            continue
        kind_cls = kinds.get(spec.kind)
        if kind_cls is None:
            errors.append(
                ConnectionConfigError(
                    f"Connection {name!r} has kind {spec.kind!r}, but no installed plugin "
                    f"provides it. Available connection kinds: {available}.",
                    file=CONNECTIONS_FILE,
                    line=spec.field_line("kind"),
                    key=f"{name}.kind",
                    title="Unknown connection kind",
                )
            )
            continue
        model = kind_cls.config_model
        fields = dict(spec.raw)
        unknown: list[str] = []
        # extra fields are errors unless the kind's model explicitly allows or ignores them
        if model.model_config.get("extra") in (None, "forbid"):
            allowed = _allowed_fields(model)
            unknown = [k for k in fields if k not in allowed]
            known = ", ".join(model.model_fields) or "(none)"
            errors.extend(
                ConnectionConfigError(
                    f"Connection {name!r} ({spec.kind}) has an unknown field {key!r}. "
                    f"Fields of a {spec.kind!r} connection: {known}.",
                    file=CONNECTIONS_FILE,
                    line=spec.field_line(key),
                    key=f"{name}.{key}",
                )
                for key in unknown
            )
            for key in unknown:
                del fields[key]
        try:
            config = model.model_validate(fields)
        except ValidationError as exc:
            errors.extend(_field_errors(spec, kind_cls, exc))
            continue
        if unknown:
            continue
        try:
            connections[name] = kind_cls(name, config)
        except Exception as exc:  # a broken plugin must not stop the load
            errors.append(
                ConnectionConfigError(
                    f"Connection {name!r}: the {spec.kind!r} connection kind failed to "
                    f"initialise: {type(exc).__name__}: {exc}",
                    file=CONNECTIONS_FILE,
                    line=spec.line,
                    key=name,
                )
            )
    return connections, errors


async def _test_one(conn: ConnectionKind[Any], step_seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": conn.name,
        "kind": conn.kind,
        "ok": False,
        "detail": "",
        "latency_ms": 0.0,
        "config": conn.describe(),
    }
    step = "open"
    started = time.perf_counter()
    try:
        await asyncio.wait_for(conn.start(), step_seconds)
        step = "health check"
        started = time.perf_counter()
        health = await asyncio.wait_for(conn.health(), step_seconds)
        measured = (time.perf_counter() - started) * 1000
        result["ok"] = health.ok
        result["detail"] = health.detail
        result["latency_ms"] = round(health.latency_ms or measured, 3)
        started = 0.0
    except TimeoutError:
        result["detail"] = f"{step} did not finish within {step_seconds:g}s"
    except Exception as exc:  # report every failure as a result, never raise
        result["detail"] = f"{step} failed: {type(exc).__name__}: {exc}"
    finally:
        if started:  # the step failed: report how long it took to fail
            result["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        try:
            await asyncio.wait_for(conn.close(), step_seconds)
        except Exception as exc:  # closing is best effort; say so
            result["detail"] += f" (close failed: {type(exc).__name__}: {exc})"
    return result


async def test_connections(
    # the timeout bounds each step of each connection, not the whole call, so a caller's
    # `asyncio.timeout()` could not express it
    conns: Mapping[str, ConnectionKind[Any]],
    timeout: float = 5,
) -> list[dict[str, Any]]:
    """Open each connection, run its health check and close it again (`iwb connections
    test`). The connections are tested concurrently; each step is bounded by `timeout`.

    Args:
        conns: connections that are not open yet (from `build_connections`).
        timeout: seconds allowed for opening, for the health check and for closing.

    Returns:
        One dict per connection, in the order given: `name`, `kind`, `ok`, `detail`,
        `latency_ms` (the health check's, or how long the failing step took) and `config`
        (`describe()`, secrets masked).
    """
    return list(await asyncio.gather(*(_test_one(c, timeout) for c in conns.values())))


test_connections.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def spec_fingerprint(spec: ConnectionSpec) -> str:
    """A short hash of a connection's kind and resolved fields: the runtime restarts only
    the listeners whose connections' fingerprints changed on reload."""
    payload = {"kind": spec.kind, "fields": spec.raw}
    raw = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
