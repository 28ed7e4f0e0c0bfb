"""The error tree of the workbench.

    WorkbenchError                  anything the workbench reports to a user
    ├── ProjectError                the project on disk cannot be used as it is
    │   ├── ConfigError             Config.toml / configurables: missing, ill-typed, bad TOML
    │   ├── ConnectionConfigError   connections.toml: unknown kind or name, bad fields
    │   └── ProjectLoadError        several of the above, collected before anything starts
    ├── TriggerConfigError          an artifact names a kind no installed plugin provides,
    │                               or its configuration does not validate
    ├── NotSupportedError           a plugin does not offer an optional feature (e.g. inject)
    ├── ArtifactNotFoundError       a command named an artifact the project does not have
    └── CaptureNotFoundError        a capture id that is not in the store

Each error carries a short `title` (for the TUI's notification and `iwb` on stderr) and a
message that says what failed, shows the bad value and says what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence


class WorkbenchError(Exception):
    """Base of every error the workbench reports to a user."""

    title: str = "Error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return self.message


class ProjectError(WorkbenchError):
    """The project on disk cannot be used as it is."""

    title = "Project error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(message, title=title)
        self.file = file
        """The file the problem is in, relative to the project when possible."""
        self.line = line
        """The 1-based line in `file`, when known."""
        self.key = key
        """The dotted configuration key involved, when there is one."""

    def location(self) -> str:
        """`file:line` (or just `file`), for messages."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict[str, object]:
        return {
            "type": type(self).__name__,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "key": self.key,
        }


class ConfigError(ProjectError):
    """A configurable value is missing, ill-typed, or Config.toml does not parse."""

    title = "Configuration error"


class ConnectionConfigError(ProjectError):
    """connections.toml names an unknown kind, or an artifact names an unknown connection."""

    title = "Connection error"


class ModuleImportError(ProjectError):
    """A project module failed to import (syntax error, exception at import time)."""

    title = "Import error"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        traceback: str = "",
        module: str = "",
    ) -> None:
        super().__init__(message, file=file, line=line)
        self.traceback = traceback
        self.module = module

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["traceback"] = self.traceback
        data["module"] = self.module
        return data


class ProjectLoadError(ProjectError):
    """Every problem found while loading a project, reported together."""

    title = "The project cannot start"

    def __init__(self, errors: Sequence[WorkbenchError]) -> None:
        self.errors = list(errors)
        lines = [f"{len(self.errors)} problem(s) found while loading the project:"]
        for err in self.errors:
            where = err.location() if isinstance(err, ProjectError) else ""
            if where and err.message.startswith(where):
                where = ""
            lines.append(f"  - {where + ': ' if where else ''}{err.message}")
        super().__init__("\n".join(lines))


class TriggerConfigError(WorkbenchError):
    """An artifact's kind has no installed plugin, or its configuration is invalid."""

    title = "Could not load artifact"


class NotSupportedError(WorkbenchError):
    """A plugin does not offer an optional feature."""

    title = "Not supported"


class ArtifactNotFoundError(WorkbenchError):
    """A command named an artifact the project does not declare."""

    title = "No such artifact"


class CaptureNotFoundError(WorkbenchError):
    """A capture id is not in the capture store."""

    title = "No such capture"
