"""Project settings: `iwb.toml` at the project root.

    name = "orders"            # default: the directory name
    version = "0.1.0"
    [folders]                  # where each kind of file lives, relative to the root
    artifacts = "artifacts"
    [capture]                  # the capture store under .iwb/
    enabled = true
    max_mb = 256
    [runtime]
    drain_seconds = 10
    [admin]                    # the health/metrics endpoint of `iwb run`
    port = 9180
    [plugins.http]             # settings handed to one trigger plugin
    server = "hypercorn"

The file is optional; every key has a default. Unknown keys are errors (a typo must not
silently fall back to a default), reported with the file, line and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from workbench.errors import ConfigError, ProjectError
from workbench.project.tomlpos import TomlFile, read_toml

__all__ = [
    "SETTINGS_FILE",
    "AdminSettings",
    "CaptureSettings",
    "FolderSettings",
    "ProjectSettings",
    "RuntimeSettings",
    "load_settings",
]

SETTINGS_FILE = "iwb.toml"
STATE_DIR = ".iwb"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderSettings(_Section):
    """Folders of the project, relative to its root (absolute paths are allowed)."""

    artifacts: str = "artifacts"
    """Modules that declare artifacts (services, listeners, automations)."""
    functions: str = "functions"
    """Reusable functions."""
    types: str = "types"
    """Pydantic models shared by handlers, mappings and injection forms."""
    mappings: str = "mappings"
    """Data-mapper files."""
    events: str = "events"
    """Saved events (fixtures) for inject, replay and tests."""


class CaptureSettings(_Section):
    """The capture store, `.iwb/captures.db`."""

    enabled: bool = True
    max_mb: float = Field(default=256, gt=0)
    """Size bound of the store; the oldest captures go first."""
    max_age_days: float = Field(default=7, gt=0)
    """Captures older than this are dropped."""
    redact_headers: list[str] = Field(default_factory=list)
    """Header names (case-insensitive) to redact, in addition to the built-in list."""
    redact_fields: list[str] = Field(default_factory=list)
    """Regular expressions of payload field names to redact, in addition to the built-in
    list."""

    @field_validator("redact_fields")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns


class RuntimeSettings(_Section):
    """How the runtime runs."""

    drain_seconds: float = Field(default=10, ge=0)
    """How long `iwb run` waits for running handlers on SIGTERM."""
    reload_debounce_ms: int = Field(default=50, ge=0)
    """How long file changes are collected before a reload."""


class AdminSettings(_Section):
    """The `/healthz` and `/metrics` endpoint of `iwb run`."""

    host: str = "127.0.0.1"
    port: int = Field(default=9180, ge=0, le=65535)


class ProjectSettings(_Section):
    """The validated contents of `iwb.toml`, bound to the project root.

    Build it with `load_settings(root)` (or `ProjectSettings.for_root(root)` for the
    defaults); a bare `ProjectSettings()` is rooted at the current directory.
    """

    name: str = Field(default="", min_length=1)
    """The project name; the directory name when iwb.toml does not set it."""
    version: str = "0.1.0"
    folders: FolderSettings = Field(default_factory=FolderSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Settings handed to one trigger plugin each: `[plugins.http] server = "hypercorn"`."""

    _root: Path = PrivateAttr(default_factory=Path.cwd)

    @classmethod
    def for_root(cls, root: Path, data: Mapping[str, Any] | None = None) -> ProjectSettings:
        """Validate `data` (the parsed iwb.toml; defaults when None) for the project at
        `root`.

        Raises:
            pydantic.ValidationError: `data` does not validate (`load_settings` turns this
                into a located ConfigError).
        """
        root = root.resolve()
        values = dict(data or {})
        values.setdefault("name", root.name)
        settings = cls.model_validate(values)
        settings._root = root
        return settings

    @property
    def root(self) -> Path:
        """The project directory (absolute)."""
        return self._root

    @property
    def state_dir(self) -> Path:
        """Local state: capture store, cursors, logs (`<root>/.iwb`)."""
        return self._root / STATE_DIR

    def folder(self, name: str) -> Path:
        """The absolute path of one of the project folders.

        Args:
            name: `artifacts`, `functions`, `types`, `mappings` or `events`.

        Raises:
            ProjectError: `name` is not a project folder.
        """
        known = list(FolderSettings.model_fields)
        if name not in known:
            raise ProjectError(
                f"{name!r} is not a project folder. Folders: {', '.join(known)}.",
                key=f"folders.{name}",
            )
        return self._root / str(getattr(self.folders, name))


def _describe(err: Mapping[str, Any], doc: TomlFile) -> tuple[str, str, int | None]:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(file)"
    line = doc.line(*loc)
    if err["type"] == "extra_forbidden":
        model: type[BaseModel] = ProjectSettings
        for part in loc[:-1]:
            if part not in model.model_fields:
                break
            annotation = model.model_fields[part].annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                break
            model = annotation
        section = f"[{'.'.join(loc[:-1])}]" if len(loc) > 1 else "the top level"
        known = ", ".join(model.model_fields)
        return key, f"unknown key {key!r}; keys of {section}: {known}", line
    return key, f"{key} = {err.get('input')!r}: {err['msg']}", line


def load_settings(root: Path) -> ProjectSettings:
    """Read `iwb.toml` at `root` (optional) and validate it.

    Args:
        root: the project directory.

    Returns:
        The settings; defaults for everything iwb.toml does not set.

    Raises:
        ProjectError: `root` is not a directory.
        ConfigError: iwb.toml is not valid TOML, or a key is unknown or ill-typed; the error
            names the file, the line (when found) and the key. When several keys are wrong
            all of them are in the message and the first one is the error's location.
    """
    if not root.is_dir():
        raise ProjectError(
            f"The project directory {str(root)!r} does not exist or is not a directory.",
            title="No such project",
        )
    path = root / SETTINGS_FILE
    if not path.is_file():
        return ProjectSettings.for_root(root)
    doc = read_toml(path, SETTINGS_FILE)
    try:
        return ProjectSettings.for_root(root, doc.data)
    except ValidationError as exc:
        problems = [_describe(err, doc) for err in exc.errors()]
    key, _, line = problems[0]
    if len(problems) == 1:
        text = problems[0][1]
    else:
        text = "; ".join(f"{msg} (line {ln})" if ln else msg for _, msg, ln in problems)
    raise ConfigError(
        f"{SETTINGS_FILE}: {text}. Fix it in {SETTINGS_FILE}.",
        file=SETTINGS_FILE,
        line=line,
        key=key,
        title="Invalid iwb.toml",
    )
