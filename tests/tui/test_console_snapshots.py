"""Snapshots of the inject console (a sample loaded) and of the replay console's side-by-side
diff, over a real runtime on a copy of sample_project/.

What would change from run to run is pinned: the listener port (the runtime starts without
listeners, so nothing binds it), the sample's id and time (rewritten in the editor), the
capture ids (the events are built here), the order ids (the copy's store numbers orders)
and the durations (the dispatch module measures with a frozen clock).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, TextArea

from workbench.runtime import dispatch as dispatch_module
from workbench.runtime.runtime import Runtime
from workbench.tui.screens.inject import InjectScreen
from workbench.tui.screens.replay import ReplayScreen

SIZE = (120, 36)
FIXED_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

ScreenBuilder = Callable[[Runtime], Awaitable[Screen[Any]]]


class ConsoleHost(App[None]):
    """Starts a runtime (without listeners) on its own loop and pushes one screen."""

    TITLE = "iwb"

    def __init__(self, root: Path, build: ScreenBuilder) -> None:
        super().__init__()
        self.root = root
        self.build = build
        self.runtime: Runtime | None = None

    async def on_mount(self) -> None:
        self.runtime = Runtime(self.root, reload=False)
        await self.runtime.start(strict=False, listen=False)
        await self.push_screen(await self.build(self.runtime))

    async def on_unmount(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop(1)


class FrozenClock:
    """Stands in for `time` in the dispatch module: every handler takes 0 ms."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def perf_counter() -> float:
        return 100.0


async def until(pilot: Pilot[Any], condition: Callable[[], object], timeout: float = 10.0) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > ends:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)


def still_cursors(app: App[Any]) -> None:
    for area in app.screen.query(TextArea):
        area.cursor_blink = False
    for field in app.screen.query(Input):
        field.cursor_blink = False


@pytest.fixture
def project(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # no listener binds it: the runtime starts with listen=False
    monkeypatch.setenv("IWB_ORDERS_API__PORT", "18080")
    monkeypatch.setattr(dispatch_module, "time", FrozenClock())
    store = sample_copy / "functions/store.py"
    store.write_text(
        store.read_text("utf-8").replace(
            "order_id = uuid.uuid4().hex[:8]", 'order_id = f"{len(all_orders()) + 1:08d}"'
        ),
        "utf-8",
    )
    return sample_copy


def test_inject_console_with_a_sample(project: Path, snap_compare: Any) -> None:
    async def build(rt: Runtime) -> Screen[Any]:
        return InjectScreen(rt, artifact="orders")

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, InjectScreen))
        screen = pilot.app.screen
        assert isinstance(screen, InjectScreen)
        await until(pilot, lambda: screen.source_key == "sample:0")
        text = re.sub(r'"id": "[0-9a-f]+"', '"id": "3f2a9c0e5b7d4e21a8c6f1d09b4e7a52"',
                      screen.editor.text)
        text = re.sub(r'"time": "[^"]+"', f'"time": "{FIXED_TIME.isoformat()}"', text)
        screen.editor.load_text(text)
        still_cursors(pilot.app)
        await pilot.pause()

    assert snap_compare(ConsoleHost(project, build), run_before=run_before, terminal_size=SIZE)


def test_replay_console_diff(project: Path, snap_compare: Any) -> None:
    async def build(rt: Runtime) -> Screen[Any]:
        sample = rt.samples("orders")[0].event
        ids = []
        for n, quantity in enumerate([2, 3], start=1):
            body = {"customer": "ada@example.com",
                    "items": [{"sku": "TEA-01", "quantity": quantity, "unit_price": 4.5}]}
            event = sample.copy(id=f"capture-{n:04d}", time=FIXED_TIME,
                                data=json.dumps(body).encode())
            await rt.inject("orders", event)
            ids.append(event.id)
        pricing = rt.root / "functions/pricing.py"
        pricing.write_text(
            pricing.read_text("utf-8").replace("order.items), 2)", "order.items) * 2, 2)"),
            "utf-8",
        )
        report = await rt.reload([pricing])
        assert report.ok, report.summary()
        return ReplayScreen(rt, capture_ids=ids)

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ReplayScreen))
        screen = pilot.app.screen
        assert isinstance(screen, ReplayScreen)
        await until(pilot, lambda: screen.runs == 1)
        still_cursors(pilot.app)
        await pilot.pause()

    assert snap_compare(ConsoleHost(project, build), run_before=run_before, terminal_size=SIZE)
