"""The project model: what a project on disk declares, validated before anything runs.

    iwb.toml            -> settings.ProjectSettings        (load_settings)
    Config.toml (+ Config.<profile>.toml, IWB_* env)
                        -> config.ConfigResolver           (values behind configurable())
    connections.toml    -> connections.ConnectionSpec      (load_connection_specs)
                        -> ConnectionKind objects          (build_connections)

Every reader reports problems as `workbench.errors.ProjectError`s that name the file, the
line and the key, and collects them so that one load shows all of them.

This package must not import a plugin (connection kinds are passed in), the runtime or the
TUI.
"""

from __future__ import annotations

from workbench.project.config import CONFIG_FILE, ConfigResolver, UnusedKey, profile_file_name
from workbench.project.connections import (
    CONNECTIONS_FILE,
    ConnectionSpec,
    build_connections,
    load_connection_specs,
    spec_fingerprint,
    test_connections,
)
from workbench.project.settings import (
    SETTINGS_FILE,
    AdminSettings,
    CaptureSettings,
    FolderSettings,
    ProjectSettings,
    RuntimeSettings,
    load_settings,
)

__all__ = [
    "CONFIG_FILE",
    "CONNECTIONS_FILE",
    "SETTINGS_FILE",
    "AdminSettings",
    "CaptureSettings",
    "ConfigResolver",
    "ConnectionSpec",
    "FolderSettings",
    "ProjectSettings",
    "RuntimeSettings",
    "UnusedKey",
    "build_connections",
    "load_connection_specs",
    "load_settings",
    "profile_file_name",
    "spec_fingerprint",
    "test_connections",
]
