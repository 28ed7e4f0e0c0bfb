"""iwb.toml: defaults, overrides, and located errors for typos and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import ConfigError, ProjectError
from workbench.project.settings import ProjectSettings, load_settings


def write(root: Path, text: str) -> None:
    (root / "iwb.toml").write_text(text, "utf-8")


def test_defaults_without_iwb_toml(tmp_path: Path) -> None:
    root = tmp_path / "orders"
    root.mkdir()
    settings = load_settings(root)
    assert settings.name == "orders"
    assert settings.version == "0.1.0"
    assert settings.folders.artifacts == "artifacts"
    assert settings.capture.enabled is True
    assert settings.capture.max_mb == 256
    assert settings.capture.max_age_days == 7
    assert settings.capture.redact_headers == []
    assert settings.plugins == {}
    assert settings.runtime.drain_seconds == 10
    assert settings.runtime.reload_debounce_ms == 50
    assert settings.admin.host == "127.0.0.1"
    assert settings.admin.port == 9180
    assert settings.root == root.resolve()
    assert settings.state_dir == root.resolve() / ".iwb"
    assert settings.folder("artifacts") == root.resolve() / "artifacts"
    assert settings.folder("events").is_absolute()


def test_overrides(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
name = "billing"
version = "2.3.4"

[folders]
artifacts = "src/artifacts"

[capture]
enabled = false
max_mb = 16
redact_headers = ["X-Api-Key"]
redact_fields = ["^card_.*$"]

[runtime]
drain_seconds = 2.5

[admin]
port = 0

[plugins.http]
server = "hypercorn"
""",
    )
    settings = load_settings(tmp_path)
    assert settings.name == "billing"
    assert settings.version == "2.3.4"
    assert settings.folder("artifacts") == tmp_path.resolve() / "src" / "artifacts"
    assert settings.folder("functions") == tmp_path.resolve() / "functions"
    assert settings.capture.enabled is False
    assert settings.capture.max_mb == 16
    assert settings.capture.redact_headers == ["X-Api-Key"]
    assert settings.capture.redact_fields == ["^card_.*$"]
    assert settings.plugins == {"http": {"server": "hypercorn"}}
    assert settings.runtime.drain_seconds == 2.5
    assert settings.admin.port == 0


def test_typo_in_a_section_names_file_line_and_key(tmp_path: Path) -> None:
    write(tmp_path, 'name = "x"\n\n[folders]\nartifacts = "a"\nartifcats = "b"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    err = info.value
    assert err.file == "iwb.toml"
    assert err.line == 5
    assert err.key == "folders.artifcats"
    assert "'folders.artifcats'" in err.message
    assert "artifacts, functions, types, mappings, events" in err.message


def test_typo_at_top_level(tmp_path: Path) -> None:
    write(tmp_path, 'nmae = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert (info.value.line, info.value.key) == (1, "nmae")
    assert "name, version, folders" in info.value.message


def test_unknown_section(tmp_path: Path) -> None:
    write(tmp_path, '[runtme]\ndrain_seconds = 1\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert (info.value.line, info.value.key) == (1, "runtme")


def test_bad_value_shows_it(tmp_path: Path) -> None:
    write(tmp_path, '[runtime]\ndrain_seconds = "forever"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    err = info.value
    assert (err.file, err.line, err.key) == ("iwb.toml", 2, "runtime.drain_seconds")
    assert "'forever'" in err.message
    assert "number" in err.message


def test_out_of_range_port_and_bad_regex_reported_together(tmp_path: Path) -> None:
    write(tmp_path, '[capture]\nredact_fields = ["(unclosed"]\n\n[admin]\nport = 70000\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    err = info.value
    assert "capture.redact_fields" in err.message
    assert "'(unclosed'" in err.message
    assert "admin.port = 70000" in err.message
    assert "(line 5)" in err.message
    assert err.line == 2


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    write(tmp_path, 'name = "x"\n[admin]\nport = \n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert info.value.file == "iwb.toml"
    assert info.value.line == 3
    assert "not valid TOML" in info.value.message


def test_missing_project_directory(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        load_settings(tmp_path / "nope")


def test_unknown_folder_name(tmp_path: Path) -> None:
    settings = ProjectSettings.for_root(tmp_path)
    with pytest.raises(ProjectError, match="'protos' is not a project folder"):
        settings.folder("protos")


def test_empty_name_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, 'name = ""\n')
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    assert info.value.key == "name"
