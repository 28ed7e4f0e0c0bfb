"""Fixtures for the workbench TUI: the app over a real runtime on a copy of sample_project/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from testkit import free_port
from textual.widgets import Input

from workbench.runtime.runtime import Runtime
from workbench.tui.app import WorkbenchApp

AppFactory = Callable[..., WorkbenchApp]


@pytest.fixture(autouse=True)
def _steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text cursor does not blink in tests (screenshots stay the same)."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config folder, so the developer's own keymap stays out of tests."""
    home = tmp_path / "config-home"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free loopback port for the sample's orders and inventory APIs."""
    value = free_port()
    monkeypatch.setenv("IWB_ORDERS_API__PORT", str(value))
    return value


@pytest.fixture
def make_app(sample_copy: Path, port: int, config_home: Path) -> AppFactory:
    """Builds a `WorkbenchApp` over a fresh runtime on the sample copy."""

    def make(root: Path | None = None, **kwargs: Any) -> WorkbenchApp:
        runtime = Runtime(root or sample_copy, reload=False)
        kwargs.setdefault("user_keymap", config_home / "iwb" / "keymap.toml")
        return WorkbenchApp(runtime, **kwargs)

    return make


@pytest.fixture
async def runtime(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    """A started runtime on the sample copy, for tests that host one screen over it."""
    monkeypatch.setenv("IWB_ORDERS_API__PORT", str(free_port()))
    rt = Runtime(sample_copy, reload=False)
    await rt.start(strict=False)
    await rt.wait_ready()
    try:
        yield rt
    finally:
        await rt.stop(1)
