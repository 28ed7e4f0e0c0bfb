"""Hot reload: watch the project, hand changed paths to `Runtime.reload`.

The watcher watches the project directory (not files: editors replace files on save) with
a short step so a save is noticed within milliseconds, and passes on only what matters:
Python modules in the project's code folders and the TOML files at its root. A reload that
fails never stops the watcher; the last good code keeps serving.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import asyncio

    from workbench.runtime.runtime import Runtime

log = logging.getLogger("iwb.reload")

ROOT_FILES = ("iwb.toml", "connections.toml")


@dataclass(slots=True)
class ReloadReport:
    """What one reload did, and how long it took."""

    paths: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    """Modules re-imported successfully."""
    mappings: list[str] = field(default_factory=list)
    """Data mappings compiled anew (a failed one keeps its last good version)."""
    swapped: list[str] = field(default_factory=list)
    """Artifacts whose handlers were swapped in place (listener untouched)."""
    restarted: list[str] = field(default_factory=list)
    """Artifacts whose listener restarted because their configuration changed."""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[WorkbenchError] = field(default_factory=list)
    duration_ms: float = 0.0
    """From the start of the reload to the new code serving."""
    detected_ms: float | None = None
    """From the file change being noticed to the new code serving (watcher reloads)."""

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = []
        for label, names in (
            ("swapped", self.swapped), ("restarted", self.restarted),
            ("added", self.added), ("removed", self.removed), ("mappings", self.mappings),
        ):
            if names:
                parts.append(f"{label} {', '.join(names)}")
        head = f"reload in {self.duration_ms:.1f} ms"
        if self.errors:
            first = self.errors[0].message.splitlines()[0]
            more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"{head}: FAILED, last good code keeps serving: {first}{more}"
        return f"{head}: {'; '.join(parts) or 'nothing changed'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "paths": self.paths,
            "modules": self.modules,
            "mappings": self.mappings,
            "swapped": self.swapped,
            "restarted": self.restarted,
            "added": self.added,
            "removed": self.removed,
            "errors": [
                e.to_dict() if hasattr(e, "to_dict") else {"message": e.message}
                for e in self.errors
            ],
            "duration_ms": round(self.duration_ms, 3),
        }


def is_watched(runtime: Runtime, path: Path) -> bool:
    """Whether a change to `path` calls for a reload."""
    root = runtime.root
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return False
    parts = rel.parts
    if not parts or any(p.startswith(".") or p == "__pycache__" for p in parts):
        return False
    if len(parts) == 1:
        name = parts[0]
        return name in ROOT_FILES or (name.startswith("Config") and name.endswith(".toml"))
    if path.suffix == ".toml":
        return is_mapping_file(runtime, path)
    if path.suffix != ".py":
        return False
    assert runtime.loader is not None
    return runtime.loader.folder_of(path) is not None


def is_mapping_file(runtime: Runtime, path: Path) -> bool:
    """A data mapping: `mappings/<name>.toml` (it may have just been created or deleted)."""
    if path.suffix != ".toml" or runtime.loader is None:
        return False
    folder = runtime.settings.folder("mappings").resolve()
    return path.resolve().parent == folder


async def watch_project(runtime: Runtime, stop: asyncio.Event) -> None:
    """Reload on every relevant change until `stop` is set."""
    from watchfiles import awatch

    debounce = runtime.settings.runtime.reload_debounce_ms

    def accept(_change: Any, path: str) -> bool:
        return is_watched(runtime, Path(path))

    while not stop.is_set():
        try:
            async for changes in awatch(
                runtime.root, watch_filter=accept, debounce=debounce, step=5,
                stop_event=stop, recursive=True, yield_on_timeout=False,
            ):
                noticed = time.perf_counter()
                report = await runtime.reload({Path(p) for _change, p in changes})
                report.detected_ms = (time.perf_counter() - noticed) * 1000.0
        except Exception:
            # the watcher itself failed (e.g. too many watches): report and watch again
            log.exception("the project watcher failed; restarting it")
            if stop.is_set():
                return
