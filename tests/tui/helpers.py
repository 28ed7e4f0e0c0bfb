"""Helpers for the TUI tests: waiting for the app without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot

from workbench.runtime.runtime import Runtime
from workbench.tui.app import WorkbenchApp

SIZE = (120, 36)


class Host(App[None]):
    """Hosts one screen over a started runtime."""

    def __init__(self, runtime: Runtime, screen: Callable[[Runtime], Any]) -> None:
        super().__init__()
        self.runtime = runtime
        self.make_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(self.runtime))


async def until(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 10.0,
                what: str = "") -> None:
    """Let the app run until `condition()` is true; fails the test after `timeout`."""
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > ends:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        await pilot.pause(0.02)


async def started(pilot: Pilot[Any], app: WorkbenchApp) -> None:
    """Wait until the runtime listens and the main screen has loaded its history."""
    await until(
        pilot,
        lambda: app.main is not None and app.main.started and app.runtime.ready
        and not app.main.stream.loading,
        what="runtime started",
    )
    await pilot.pause()
