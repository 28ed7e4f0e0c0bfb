"""Snapshots of the main screen over a real runtime on a copy of sample_project/.

What would change from run to run is pinned: the runtime starts without listeners (the
addresses come from a fixed port and nothing binds it), the events in the stream are built
here with fixed ids, times and durations, and the clock shown is UTC.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from workbench.events import ErrorInfo, Event, Frame, Outcome
from workbench.runtime.runtime import Runtime
from workbench.tui.app import WorkbenchApp
from workbench.tui.feed import StreamItem

from .helpers import SIZE, until

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC while the test runs."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fixed_items(root: Path) -> list[StreamItem]:
    items = []
    for i in range(6):
        sku = f"TEA-{i:02d}"
        event = Event(
            artifact="inventory", kind="http", type="iwb.http.request",
            source="http://127.0.0.1:18080/inventory", id=f"evt{i:029d}",
            time=BASE.replace(second=i), subject=f"/inventory/{sku}",
            handler="GET /{sku}",
            transport={"method": "GET", "path": f"/inventory/{sku}",
                       "headers": [["accept", "application/json"], ["x-trace", f"t-{i}"]]},
        )
        outcome = Outcome(event.id, result={"sku": sku, "in_stock": i}, duration_ms=0.25 + i,
                          code_version="3f2a1b0c9d8e",
                          handler="project.artifacts.inventory:stock")
        items.append(StreamItem.live(event, outcome, BASE.timestamp() + i))
    order = Event(
        artifact="orders", kind="http", type="iwb.http.request",
        source="http://127.0.0.1:18080/orders", id="evt" + "9" * 29,
        time=BASE.replace(second=30), subject="/orders/", handler="POST /",
        datacontenttype="application/json",
        data=b'{"customer": "ada@example.com", "items": [{"sku": "TEA-01", "quantity": 0}]}',
        transport={"method": "POST", "path": "/orders/",
                   "headers": [["content-type", "application/json"]]},
    )
    failed = Outcome(
        order.id, status="error", duration_ms=1.5, code_version="77aa00bb11cc",
        handler="project.artifacts.orders_api:create_order", disposition="reject",
        error=ErrorInfo(
            "ValueError", "quantity must be positive",
            frames=[Frame(str(root / "artifacts" / "orders_api.py"), 27, "create_order",
                          "raise ValueError('quantity must be positive')")],
        ),
    )
    items.append(StreamItem.live(order, failed, BASE.timestamp() + 30))
    return items


def make(sample_copy: Path, config_home: Path, monkeypatch: pytest.MonkeyPatch) -> WorkbenchApp:
    monkeypatch.setenv("IWB_ORDERS_API__PORT", "18080")
    runtime = Runtime(sample_copy, reload=False)
    return WorkbenchApp(runtime, listen=False, user_keymap=config_home / "keymap.toml")


async def ready(pilot: Pilot[Any], app: WorkbenchApp) -> None:
    await until(pilot, lambda: app.main is not None and app.main.started
                and not app.main.stream.loading)
    assert app.main is not None
    # Other lists the sample's functions, types and mappings: collapsed, the picture does
    # not change each time the sample project gains one
    for node in app.main.artifact_tree.root.children:
        if node.data is not None and node.data.name == "Other":
            node.collapse()
    await pilot.pause()


def test_main_screen_following_events(
    snap_compare: Any, sample_copy: Path, config_home: Path,
    monkeypatch: pytest.MonkeyPatch, utc: None,
) -> None:
    app = make(sample_copy, config_home, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        assert app.main is not None
        items = fixed_items(sample_copy)
        app.main.stream.replace(items)
        await until(pilot, lambda: app.main is not None
                    and app.main.detail.shown_id == items[-1].id)
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)


def test_main_screen_paused_with_a_problem_and_marks(
    snap_compare: Any, sample_copy: Path, config_home: Path,
    monkeypatch: pytest.MonkeyPatch, utc: None,
) -> None:
    (sample_copy / "artifacts" / "broken.py").write_text("def oops(:\n    pass\n", "utf-8")
    app = make(sample_copy, config_home, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        items = fixed_items(sample_copy)
        stream.replace(items)
        stream.focus()
        await pilot.press("up", "space", "up", "up", "space")
        await until(pilot, lambda: app.main is not None
                    and app.main.detail.shown_id == items[3].id)
        app.clear_notifications()  # toasts expire on a timer: keep them out of the picture
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
