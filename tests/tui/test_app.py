"""The workbench app (`iwb open`) over a real runtime on a copy of sample_project/: the tree,
the live stream and its detail, reloads, the filter over history, following, fixtures,
artifact actions, the keymap, the help screen and the command palette."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.screen import Screen
from textual.widgets import Static
from textual.widgets.tree import TreeNode

from workbench.events import Event
from workbench.runtime.runtime import Runtime
from workbench.tui.app import WorkbenchApp
from workbench.tui.project_view import TreeEntry
from workbench.tui.screens.config import ConfigScreen
from workbench.tui.screens.error import ErrorScreen
from workbench.tui.screens.help import HelpScreen, binding_ids
from workbench.tui.widgets.artifact_tree import ArtifactTree

from .conftest import AppFactory
from .helpers import SIZE, started, until


def render_text(renderable: Any, width: int = 110) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def detail_text(app: WorkbenchApp) -> str:
    assert app.main is not None
    return render_text(app.main.detail.query_one(Static).content)


def walk(node: TreeNode[TreeEntry]) -> list[TreeNode[TreeEntry]]:
    out = [node]
    for child in node.children:
        out.extend(walk(child))
    return out


def labels(tree: ArtifactTree) -> list[str]:
    return [str(node.label) for node in walk(tree.root)]


def artifact_node(tree: ArtifactTree, name: str) -> TreeNode[TreeEntry]:
    for node in walk(tree.root):
        if node.data is not None and node.data.kind == "artifact" and node.data.name == name:
            return node
    raise AssertionError(f"no node for {name!r}")


def sample(rt: Runtime, artifact: str, name: str | None = None) -> Event:
    samples = rt.samples(artifact)
    chosen = next(s for s in samples if name is None or s.name == name)
    return chosen.event.copy()


def stock_event(rt: Runtime, sku: str) -> Event:
    event = sample(rt, "inventory")
    event.transport["path_params"] = {"sku": sku}
    event.transport["path"] = f"/inventory/{sku}"
    event.subject = f"/inventory/{sku}"
    return event


def stream_ids(app: WorkbenchApp) -> list[str]:
    assert app.main is not None
    return list(app.main.stream.items)


def toasts(app: WorkbenchApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


# ---------------------------------------------------------------------------- tree


async def test_tree_shows_every_artifact_by_group_and_the_other_parts(
    make_app: AppFactory, port: int
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        assert sorted(tree.artifact_names()) == [
            "inbox", "inventory", "orders", "payments", "restock", "shipments", "temperatures",
        ]
        shown = labels(tree)
        for group in ("Automation (1)", "AI integrations (0)", "Integration as API (2)",
                      "Event integration (3)", "File integration (1)", "Other"):
            assert group in shown, shown
        rt = app.runtime
        assert rt.loader is not None
        inventory = rt.loader.inventory()
        for section, count in (
            ("Functions", len(inventory["functions"])), ("Types", len(inventory["types"])),
            ("Data mappings", len(inventory["mappings"])), ("Connections", 4),
            ("Configurations", len(rt.declared_config())),
        ):
            assert f"{section} ({count})" in shown, shown
        for leaf in ("order_total", "Order", "Receipt", "shop", "orders_api.port"):
            assert any(label.startswith(leaf) for label in shown), leaf
        for part in (*inventory["functions"], *inventory["types"], *inventory["mappings"]):
            assert any(label.startswith(part["name"]) for label in shown), part
        assert any(f"orders_api.port = {port} (env:IWB_ORDERS_API__PORT)" in label
                   for label in shown)
        orders = str(artifact_node(tree, "orders").label)
        assert "listening" in orders and f":{port}/orders" in orders
        def group_label(name: str) -> str:
            parent = artifact_node(tree, name).parent
            assert parent is not None
            return str(parent.label)

        assert group_label("orders").startswith("Integration as API")
        assert group_label("restock").startswith("Automation")
        assert group_label("payments").startswith("Event integration")
        assert "disabled" in str(artifact_node(tree, "shipments").label)
        assert "inbox" in str(artifact_node(tree, "inbox").label)
        handlers = [str(child.label) for child in artifact_node(tree, "orders").children]
        assert handlers == ["POST / → create_order", "GET /{order_id} → get_order",
                            "GET / → list_orders"]


async def test_a_project_with_errors_opens_and_lists_its_problems(
    make_app: AppFactory, sample_copy: Path
) -> None:
    (sample_copy / "artifacts" / "broken.py").write_text(
        "import iwb_http as http\n\ndef oops(:\n    pass\n", "utf-8"
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        assert "orders" in tree.artifact_names()
        shown = labels(tree)
        assert "Problems (1)" in shown
        problem = next(label for label in shown if label.startswith("✖ artifacts/broken.py:3"))
        assert "syntax error" in problem
        node = next(n for n in walk(tree.root) if n.data is not None and n.data.kind == "problem")
        tree.focus()
        tree.move_cursor(node)
        await until(pilot, lambda: "broken.py" in detail_text(app))
        text = detail_text(app)
        assert "at artifacts/broken.py:3" in text
        assert "SyntaxError" in text
        outcome = await app.runtime.inject("inventory", stock_event(app.runtime, "A-1"))
        assert outcome.ok


async def test_a_project_that_cannot_load_shows_why(
    make_app: AppFactory, sample_copy: Path
) -> None:
    (sample_copy / "iwb.toml").write_text('name = "orders\n', "utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        screen = app.screen
        assert isinstance(screen, ErrorScreen)
        text = render_text(screen.query_one("#error-body", Static).content)
        assert "iwb.toml" in text
        await pilot.press("q")
        await until(pilot, lambda: app.return_code == 0)


# ---------------------------------------------------------------------------- stream


async def test_events_injected_and_sent_over_http_appear_in_the_stream_and_detail(
    make_app: AppFactory, port: int
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        rt = app.runtime
        outcome = await rt.inject("restock", sample(rt, "restock"), via="direct")
        assert outcome.ok
        await until(pilot, lambda: outcome.event_id in stream_ids(app))

        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{port}/orders/",
                json={"customer": "grace@example.com",
                      "items": [{"sku": "COFFEE-9", "quantity": 3, "unit_price": 2.0}]},
                headers={"x-trace": "abc123"},
            )
        assert response.status_code == 201
        await until(pilot, lambda: len(stream_ids(app)) == 2)
        item = app.main.stream.items[stream_ids(app)[-1]]
        assert item.artifact == "orders" and item.status == "ok"
        # following: the cursor is on the newest event and the detail shows it
        assert app.main.stream.selected is item
        await until(pilot, lambda: app.main is not None and app.main.detail.shown_id == item.id)
        text = detail_text(app)
        for needle in ("CloudEvent", item.id, "iwb.http.request", "Transport", "POST",
                       "x-trace", "abc123", "Payload", "grace@example.com", "COFFEE-9",
                       "Outcome", "project.artifacts.orders_api:create_order", "disposition",
                       "ack", "order_id"):
            assert needle in text, needle
        tree_label = str(artifact_node(app.main.artifact_tree, "orders").label)
        await until(pilot, lambda: "1 ev" in str(
            artifact_node(app.main.artifact_tree, "orders").label) if app.main else False,
            what=tree_label)


async def test_an_error_outcome_shows_its_traceback_frames(
    make_app: AppFactory, sample_copy: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        event = sample(app.runtime, "orders", "get_order")
        event.transport["path_params"] = {"order_id": "nope"}
        outcome = await app.runtime.inject("orders", event)
        assert outcome.status == "error"
        await until(pilot, lambda: app.main is not None
                    and app.main.detail.shown_id == outcome.event_id)
        text = detail_text(app)
        assert "HTTPError" in text and "no order 'nope'" in text
        assert "artifacts/orders_api.py:" in text and "in get_order" in text


async def test_following_pauses_on_navigation_and_resumes_with_f(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        rt = app.runtime
        first = [await rt.inject("inventory", stock_event(rt, f"A-{i}")) for i in range(5)]
        await until(pilot, lambda: len(stream.items) == 5)
        assert stream.following and stream.border_subtitle == "following"
        assert stream.cursor_row == 4
        stream.focus()
        await pilot.press("up")
        assert not stream.following
        assert stream.cursor_row == 3
        assert str(stream.border_subtitle).startswith("paused — f to follow")
        looked_at = stream.selected
        assert looked_at is not None and looked_at.id == first[3].event_id
        for i in range(3):
            await rt.inject("inventory", stock_event(rt, f"B-{i}"))
        await until(pilot, lambda: stream.waiting == 3)
        assert stream.border_subtitle == "paused — f to follow, 3 new"
        assert len(stream.items) == 5
        assert stream.selected is looked_at  # the view did not move
        await pilot.press("f")
        assert stream.following
        assert len(stream.items) == 8
        assert stream.cursor_row == 7
        assert stream.border_subtitle == "following"


async def test_the_window_is_bounded_and_scrolling_up_loads_older_history(
    make_app: AppFactory,
) -> None:
    app = make_app(window=10)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        rt = app.runtime
        outcomes = [await rt.inject("inventory", stock_event(rt, f"S-{i:02d}"))
                    for i in range(25)]
        ids = [o.event_id for o in outcomes]
        await until(pilot, lambda: stream_ids(app)[-1:] == ids[-1:])
        assert stream_ids(app) == ids[-10:]
        assert stream.row_count == 10
        stream.focus()
        await pilot.press("ctrl+home")  # to the first row (pauses following)
        assert stream.cursor_row == 0 and not stream.following
        await pilot.press("up")  # above the first row: the previous page (window // 4)
        await until(pilot, lambda: stream_ids(app)[0] == ids[13] and not stream.loading)
        assert stream_ids(app) == ids[13:23]  # the window slid up
        assert stream.detached
        assert stream.selected is not None and stream.selected.id == ids[14]
        for _ in range(10):  # page up to the oldest capture
            await pilot.press("ctrl+home", "up")
            await until(pilot, lambda: not stream.loading)
        assert stream_ids(app) == ids[:10]
        assert stream.row_count == 10
        await pilot.press("f")  # back to the newest
        await until(pilot, lambda: stream_ids(app) == ids[-10:] and not stream.loading)
        assert stream.following and not stream.detached


async def test_the_filter_narrows_the_stream_and_searches_older_history(
    make_app: AppFactory,
) -> None:
    app = make_app(window=20)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        rt = app.runtime
        old = await rt.inject("inventory", stock_event(rt, "NEEDLE-OLD"))
        for i in range(30):
            await rt.inject("inventory", stock_event(rt, f"HAY-{i:02d}"))
        await until(pilot, lambda: len(stream.items) == 20 and old.event_id not in stream.items
                    and stream.items[stream_ids(app)[-1]].summary.endswith("HAY-29"))
        await pilot.press("slash")
        assert app.main.filter_bar.has_focus
        await pilot.press(*"artifact:inventory needle")
        await pilot.press("enter")
        await until(pilot, lambda: not stream.loading and stream_ids(app) == [old.event_id])
        assert "filter: artifact:inventory needle (1 match)" in str(stream.border_title)
        # live events that match are appended, others are not
        new = await rt.inject("inventory", stock_event(rt, "NEEDLE-NEW"))
        await rt.inject("inventory", stock_event(rt, "HAY-99"))
        await until(pilot, lambda: stream_ids(app) == [old.event_id, new.event_id])
        await pilot.pause(0.2)
        assert stream_ids(app) == [old.event_id, new.event_id]
        # a status filter
        app.main.filter_bar.focus()
        app.main.filter_bar.value = ""
        await pilot.press(*"status:error")
        await pilot.press("enter")
        await until(pilot, lambda: not stream.loading and stream.row_count == 0)
        # Escape clears it: the newest window again
        app.main.filter_bar.focus()
        await pilot.press("escape")
        await until(pilot, lambda: not stream.loading and len(stream.items) == 20)
        assert stream.filter is None and str(stream.border_title) == "Events"
        assert stream_ids(app)[-1] != old.event_id


async def test_a_filtered_view_that_missed_events_reloads_them_from_history(
    make_app: AppFactory,
) -> None:
    app = make_app(window=5)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        rt = app.runtime
        await pilot.press("slash", *"artifact:inventory", "enter")
        await until(pilot, lambda: stream.filter is not None and not stream.loading)
        wanted = []
        for i in range(12):  # no pause: more than the feed holds arrive before a render
            wanted.append((await rt.inject("inventory", stock_event(rt, f"G-{i}"))).event_id)
            await rt.inject("restock", sample(rt, "restock"))
        await until(pilot, lambda: stream.gap)
        assert "f fills gaps from history" in str(stream.border_subtitle)
        stream.focus()
        await pilot.press("f")
        await until(pilot, lambda: not stream.gap and not stream.loading
                    and stream_ids(app) == wanted[-5:])
        assert stream.border_subtitle == "following"


async def test_a_bad_filter_is_reported(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("slash", *"status:broken", "enter")
        await until(pilot, lambda: "Unknown status 'broken'" in toasts(app))
        assert app.main is not None and app.main.stream.filter is None


# ---------------------------------------------------------------------------- reload


async def test_a_syntax_error_shows_on_its_artifact_and_the_old_code_keeps_serving(
    make_app: AppFactory, sample_copy: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        rt = app.runtime
        path = sample_copy / "artifacts" / "orders_api.py"
        source = path.read_text("utf-8")
        broken = source.replace("async def get_order(order_id: str) -> dict:",
                                "async def get_order(order_id: str) -> dict")
        line = broken.splitlines().index("async def get_order(order_id: str) -> dict") + 1
        path.write_text(broken, "utf-8")
        report = await rt.reload([path])
        assert not report.ok
        tree = app.main.artifact_tree
        await until(pilot, lambda: "import failed" in str(artifact_node(tree, "orders").label))
        label = str(artifact_node(tree, "orders").label)
        assert f"artifacts/orders_api.py:{line}" in label
        await until(pilot, lambda: "reload FAILED" in render_text(app.main.status.content)
                    if app.main else False)
        await until(pilot, lambda: "FAILED, last good code keeps serving" in toasts(app))
        tree.focus()
        tree.select_artifact("orders")
        await until(pilot, lambda: "Import failed" in detail_text(app))
        text = detail_text(app)
        assert f"at artifacts/orders_api.py:{line}" in text
        assert "SyntaxError" in text
        # the last good code keeps serving
        outcome = await rt.inject("orders", sample(rt, "orders", "create_order"))
        assert outcome.ok and outcome.result["currency"] == "EUR"
        # fixing it clears the error
        path.write_text(source, "utf-8")
        assert (await rt.reload([path])).ok
        await until(pilot, lambda: "import failed" not in str(
            artifact_node(tree, "orders").label))


async def test_an_edited_handler_reloads_with_a_notification_in_the_status_bar(
    make_app: AppFactory, sample_copy: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        rt = app.runtime
        status = app.main.status
        assert "no reload yet" in render_text(status.content)
        path = sample_copy / "artifacts" / "orders_api.py"
        path.write_text(
            path.read_text("utf-8").replace("currency=CURRENCY,", 'currency="USD",'), "utf-8"
        )
        report = await rt.reload([path])
        assert report.ok and report.swapped == ["orders"]
        await until(pilot, lambda: status.reload is report)
        text = render_text(status.content)
        assert f"reload {report.duration_ms:.1f} ms" in text
        await until(pilot, lambda: "swapped orders" in toasts(app))
        outcome = await rt.inject("orders", sample(rt, "orders", "create_order"))
        assert outcome.result["currency"] == "USD"


# ---------------------------------------------------------------------------- actions


async def test_save_as_fixture_writes_a_cloudevent_that_reads_back(
    make_app: AppFactory, sample_copy: Path
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        event = sample(app.runtime, "orders", "create_order")
        event.transport["headers"] = [["content-type", "application/json"],
                                      ["authorization", "Bearer s3cr3t"]]
        outcome = await app.runtime.inject("orders", event)
        await until(pilot, lambda: app.main is not None
                    and app.main.stream.selected is not None
                    and app.main.stream.selected.id == outcome.event_id)
        app.main.stream.focus()
        await pilot.press("s")
        target = sample_copy / "events" / f"orders-{outcome.event_id[:8]}.json"
        await until(pilot, target.exists)
        assert f"Saved events/orders-{outcome.event_id[:8]}.json" in toasts(app)
        raw = json.loads(target.read_text("utf-8"))
        assert raw["specversion"] == "1.0"
        saved = Event.from_cloudevent(raw)
        assert saved.id == outcome.event_id
        assert saved.artifact == "orders" and saved.handler == "POST /"
        assert json.loads(saved.data) == json.loads(event.data)
        headers = dict(saved.transport["headers"])
        assert headers["content-type"] == "application/json"
        assert "s3cr3t" not in headers["authorization"]  # saved from the redacted capture


async def test_copy_payload_puts_the_payload_on_the_clipboard(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        event = sample(app.runtime, "orders", "create_order")
        outcome = await app.runtime.inject("orders", event)
        await until(pilot, lambda: app.main is not None and app.main.stream.selected is not None
                    and app.main.stream.selected.id == outcome.event_id)
        await pilot.press("c")
        assert app.clipboard == event.text
        assert "Copied the payload" in toasts(app)


async def test_stop_start_and_restart_the_selected_artifact(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        state = app.runtime.artifacts["restock"]
        tree.focus()
        tree.select_artifact("restock")
        await until(pilot, lambda: tree.selected_artifact == "restock")
        await pilot.press("x")
        await until(pilot, lambda: state.status == "stopped"
                    and "stopped" in str(artifact_node(tree, "restock").label))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: state.status == "listening"
                    and "listening" in str(artifact_node(tree, "restock").label))
        restarts = state.restarts
        task = state.task
        await pilot.press("R")
        await until(pilot, lambda: state.status == "listening" and state.task is not task)
        assert state.restarts == restarts


async def test_config_screen_and_connection_test(make_app: AppFactory, port: int) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        tree.focus()
        tree.select_artifact("orders")
        await until(pilot, lambda: tree.selected_artifact == "orders")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, ConfigScreen))
        screen = app.screen
        assert isinstance(screen, ConfigScreen)
        text = render_text(screen.query_one("#config-body", Static).content)
        assert f'"port": {port}' in text
        assert "orders_api.port" in text and "env:IWB_ORDERS_API__PORT" in text
        assert '"timeout": 5.0' in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        shop = next(n for n in walk(tree.root)
                    if n.data is not None and n.data.kind == "connection"
                    and n.data.name == "shop")
        shop.parent.expand() if shop.parent else None
        await pilot.pause()
        tree.move_cursor(shop)
        await until(pilot, lambda: tree.selected is not None and tree.selected.name == "shop")
        await pilot.press("t")
        await until(pilot, lambda: "shop: ok" in toasts(app))
        assert "answered 200" in toasts(app)


async def test_config_masks_secrets() -> None:
    from workbench.tui.screens.config import mask_secrets

    masked = mask_secrets({"url": "x", "password": "p", "auth": {"api_key": "k"}, "token": ""})
    assert masked == {"url": "x", "password": "****", "auth": {"api_key": "****"}, "token": ""}


async def test_edit_without_an_editor_says_how_to_set_one(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, sample_copy: Path
) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        tree.focus()
        tree.select_artifact("orders")
        await until(pilot, lambda: tree.selected_artifact == "orders")
        file, line = app.main.edit_target() or ("", 0)
        assert file == str(sample_copy / "artifacts" / "orders_api.py")
        source = (sample_copy / "artifacts" / "orders_api.py").read_bytes().decode()
        assert source.splitlines()[line - 1].startswith("async def create_order")
        await pilot.press("e")
        await until(pilot, lambda: "Set $EDITOR" in toasts(app))
        assert f"orders_api.py:{line}" in toasts(app)


async def test_inject_and_replay_open_their_screens_with_the_selection(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, dict[str, Any]]] = []

    class Recorder(Screen[None]):
        kind = ""

        def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
            super().__init__()
            opened.append((self.kind, kwargs))

    class FakeInject(Recorder):
        kind = "inject"

    class FakeReplay(Recorder):
        kind = "replay"

    for name, cls_name, cls in (("inject", "InjectScreen", FakeInject),
                                ("replay", "ReplayScreen", FakeReplay)):
        module = types.ModuleType(f"workbench.tui.screens.{name}")
        setattr(module, cls_name, cls)
        monkeypatch.setitem(sys.modules, f"workbench.tui.screens.{name}", module)

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        stream = app.main.stream
        rt = app.runtime
        outcomes = [await rt.inject("inventory", stock_event(rt, f"M-{i}")) for i in range(3)]
        await until(pilot, lambda: len(stream.items) == 3)
        stream.focus()
        await pilot.press("up", "space", "up", "space")  # mark the first two
        assert {i.id for i in stream.marked_items()} == {o.event_id for o in outcomes[:2]}
        assert "2 marked" in str(stream.border_subtitle)
        await pilot.press("r")
        await until(pilot, lambda: len(opened) == 1)
        kind, kwargs = opened[0]
        assert kind == "replay"
        assert kwargs["capture_ids"] == [o.event_id for o in outcomes[:2]]
        app.pop_screen()
        await pilot.pause()
        stream.focus()
        await pilot.press("i")
        await until(pilot, lambda: len(opened) == 2)
        kind, kwargs = opened[1]
        assert kind == "inject" and kwargs["artifact"] == "inventory"
        assert kwargs["event"].id == outcomes[0].event_id


async def test_quit_stops_the_runtime(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("q")
        await until(pilot, lambda: app.return_code == 0)
    assert app.runtime.capture is not None
    state = app.runtime.artifacts["orders"]
    assert state.task is None and state.status == "stopped"


# ---------------------------------------------------------------------------- keys


async def test_a_keymap_file_remaps_keys(
    make_app: AppFactory, sample_copy: Path, config_home: Path
) -> None:
    user = config_home / "iwb" / "keymap.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[keymap]\nfollow = "ctrl+t"\nhelp = "f2"\n', "utf-8")
    project = sample_copy / ".iwb" / "keymap.toml"
    project.parent.mkdir(parents=True, exist_ok=True)
    project.write_text('[keymap]\nfollow = "ctrl+y"\nnot-a-binding = "z"\n', "utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        assert app.keymap.bindings == {"follow": "ctrl+y", "help": "f2"}
        assert "no binding has the id 'not-a-binding'" in toasts(app)
        rt = app.runtime
        for i in range(2):
            await rt.inject("inventory", stock_event(rt, f"K-{i}"))
        stream = app.main.stream
        await until(pilot, lambda: len(stream.items) == 2)
        stream.focus()
        await pilot.press("up")
        assert not stream.following
        await pilot.press("f")  # no longer bound
        assert not stream.following
        await pilot.press("ctrl+t")  # the user's key, overridden by the project's
        assert not stream.following
        await pilot.press("ctrl+y")
        assert stream.following
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = render_text(app.screen.query_one("#help-body", Static).content, width=140)
        assert "ctrl+y" in text.replace("^y", "ctrl+y")


async def test_the_help_screen_lists_every_binding(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = render_text(app.screen.query_one("#help-body", Static).content, width=160)
        for binding_id in binding_ids():
            assert binding_id in text, binding_id
        assert "artifact:NAME" in text and "[keymap]" in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)


async def test_the_command_palette_lists_and_runs_every_action(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        rt = app.runtime
        await rt.inject("inventory", stock_event(rt, "P-1"))
        await rt.inject("inventory", stock_event(rt, "P-2"))
        stream = app.main.stream
        await until(pilot, lambda: len(stream.items) == 2)
        stream.focus()
        await pilot.press("up")
        assert not stream.following
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        commands = app.screen.query_one(CommandList)
        await until(pilot, lambda: commands.option_count >= 10)
        prompts = [str(commands.get_option_at_index(i).prompt)
                   for i in range(commands.option_count)]
        joined = "\n".join(prompts)
        for name in ("Filter", "Follow", "Inject", "Replay", "Edit", "Copy", "Save", "Start",
                     "Stop", "Restart", "Config", "Test conn", "Log", "Quit", "Keys", "Mark"):
            assert name in joined, (name, prompts)
        assert "Mapper" in joined  # the data mapper screen is installed
        await pilot.press(*"follow")
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, lambda: stream.following)
