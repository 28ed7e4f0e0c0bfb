"""What the main screen shows of the project, as plain data: the tree's entries, the
problems that belong to no artifact, the non-artifact parts, and where `e` opens an editor.

Reads only the `Runtime` (its artifact states, load and reload errors, loader inventory,
connections and declared configuration); no widget here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ProjectError, WorkbenchError
from workbench.tui.feed import StreamItem
from workbench.tui.source import handler_location

if TYPE_CHECKING:
    from workbench.runtime.dispatch import ArtifactState
    from workbench.runtime.runtime import Runtime

Location = tuple[str, int]
"""(file, line) to open in an editor."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """What a node of the artifact tree stands for."""

    kind: str
    """`group`, `artifact`, `handler`, `problem`, `section`, `function`, `type`,
    `mapping`, `connection` or `config`."""
    name: str
    artifact: str | None = None
    """The artifact the node belongs to (artifact and handler nodes)."""
    file: str | None = None
    line: int | None = None
    data: Any = field(default=None, compare=False)
    """The object behind the node: a WorkbenchError, a Declared, an inventory dict, ..."""


@dataclass(slots=True)
class OtherParts:
    """The project's parts that are not artifacts, for the Other group."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    types: list[dict[str, Any]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    connections: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    """(name, kind, described config with secrets masked)."""
    config: list[Any] = field(default_factory=list)
    """`workbench.config.Declared` values."""


def _module(error: WorkbenchError) -> str:
    module = getattr(error, "module", "")
    return module if isinstance(module, str) else ""


def problems(rt: Runtime) -> list[WorkbenchError]:
    """Load and reload errors that belong to no artifact (the tree's Problems).

    An import error of a module that declares artifacts shows on those artifacts instead;
    a load error of a module that has loaded since (a reload fixed it) is gone.
    """
    loaded = set(rt.loader.modules) if rt.loader is not None else set()
    on_artifacts = {s.module for s in rt.artifacts.values() if s.import_error is not None}
    candidates = [e for e in rt.load_errors if _module(e) not in loaded]
    if rt.last_reload is not None:
        candidates.extend(rt.last_reload.errors)
    out: list[WorkbenchError] = []
    seen: set[str] = set()
    for error in candidates:
        if _module(error) in on_artifacts or error.message in seen:
            continue
        seen.add(error.message)
        out.append(error)
    return out


def other_parts(rt: Runtime) -> OtherParts:
    """Functions, types, mappings, connections and configuration, for the tree."""
    inventory = rt.loader.inventory() if rt.loader is not None else {}
    return OtherParts(
        functions=list(inventory.get("functions", [])),
        types=list(inventory.get("types", [])),
        mappings=list(inventory.get("mappings", [])),
        connections=[(name, conn.kind, conn.describe())
                     for name, conn in sorted(rt.connections.items())],
        config=list(rt.declared_config()),
    )


def artifact_location(state: ArtifactState) -> Location:
    """Its first handler's `def` line, or where the artifact is declared."""
    for spec in state.artifact.handlers.values():
        location = handler_location(spec.func)
        if location is not None:
            return location
    file, line = state.artifact.declared_at
    return file, line


def entry_location(rt: Runtime, entry: TreeEntry) -> Location | None:
    """Where a tree entry is: an artifact's failed import or first handler, a handler's
    `def`, a problem's file:line, a function's, type's or configurable's file."""
    if entry.kind == "artifact" and entry.artifact:
        state = rt.artifacts.get(entry.artifact)
        if state is None:
            return None
        error = state.import_error
        if isinstance(error, ProjectError) and error.file:
            return str(rt.root / error.file), error.line or 1
        return artifact_location(state)
    if entry.file:
        path = Path(entry.file)
        if not path.is_absolute():
            path = rt.root / path
        return str(path), entry.line or 1
    return None


def event_location(rt: Runtime, item: StreamItem) -> Location | None:
    """Where an event was handled: the innermost frame inside the project when it failed,
    else the `def` of the handler that ran."""
    root = str(rt.root)
    outcome = item.outcome
    if outcome.error is not None:
        for frame in reversed(outcome.error.frames):
            if frame.file.startswith(root):
                return frame.file, frame.line
    state = rt.artifacts.get(item.artifact)
    if state is None:
        return None
    for spec in state.artifact.handlers.values():
        if spec.ref == outcome.handler:
            location = handler_location(spec.func)
            if location is not None:
                return location
    return artifact_location(state)
