"""The replay console over a real runtime on a copy of sample_project/: captured orders are
replayed after the pricing function changed on disk and was hot-reloaded; the results table
and the side-by-side diff show the old and new totals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.widgets import Checkbox, DataTable, Input, ProgressBar, Select, Static

from workbench.events import Event
from workbench.runtime.runtime import Runtime
from workbench.tui.screens.replay import ReplayScreen
from workbench.tui.widgets.diff_view import DiffView, side_by_side

from .helpers import SIZE, Host, until

PRICING = "functions/pricing.py"
ORIGINAL_TOTAL = "return round(sum(item.quantity * item.unit_price for item in order.items), 2)"


def order_event(rt: Runtime, quantity: int) -> Event:
    sample = next(s for s in rt.samples("orders") if s.event.handler == "POST /").event
    body = {
        "customer": "ada@example.com",
        "items": [{"sku": "TEA-01", "quantity": quantity, "unit_price": 4.5}],
    }
    return sample.copy(data=json.dumps(body).encode())


async def capture_orders(rt: Runtime, quantities: list[int]) -> list[str]:
    ids = []
    for quantity in quantities:
        event = order_event(rt, quantity)
        outcome = await rt.inject("orders", event)
        assert outcome.status == "ok"
        ids.append(event.id)
    assert rt.capture is not None
    await rt.capture.flush()
    return ids


async def change_pricing(rt: Runtime, factor: int) -> None:
    path = rt.root / PRICING
    text = path.read_text("utf-8")
    assert ORIGINAL_TOTAL in text
    path.write_text(
        text.replace(ORIGINAL_TOTAL, ORIGINAL_TOTAL.replace(", 2)", f" * {factor}, 2)")), "utf-8"
    )
    report = await rt.reload([path])
    assert report.ok, report.summary()


def replay_screen(app: App[None]) -> ReplayScreen:
    screen = app.screen
    assert isinstance(screen, ReplayScreen)
    return screen


def total_row(view: DiffView) -> tuple[str, str]:
    row = next(r for r in view.rows if r.left and '"total"' in r.left)
    return (row.left or "").strip(" ,"), (row.right or "").strip(" ,")


async def test_replay_after_reload_shows_changed_totals_side_by_side(runtime: Runtime) -> None:
    ids = await capture_orders(runtime, [2, 4, 1])
    await change_pricing(runtime, 2)
    app = Host(runtime, lambda rt: ReplayScreen(rt, capture_ids=ids))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        await until(pilot, lambda: screen.runs == 1)
        progress = screen.query_one("#replay-progress", ProgressBar)
        assert (progress.total, progress.progress) == (3, 3)
        table = screen.query_one("#replay-results", DataTable)
        assert table.row_count == 3
        for row, capture_id in zip(screen.rows, ids, strict=True):
            assert row.capture_id == capture_id
            assert row.result is not None and not row.result.same
            assert "result" in row.result.changed
            cells = table.get_row(capture_id)
            assert str(cells[3]) == "ok → ok"
            assert str(cells[4]) == "CHANGED"
            assert "result" in str(cells[5])

        view = screen.query_one("#replay-diff", DiffView)
        assert total_row(view) == ('"total": 9.0', '"total": 18.0')
        changed = view.changed_rows
        assert all(r.tag == "replace" for r in changed)
        assert {r.left_no for r in changed} == {r.right_no for r in changed}

        # moving the cursor shows the next row's outcomes
        table.focus()
        await pilot.press("down")
        await until(pilot, lambda: total_row(view) == ('"total": 18.0', '"total": 36.0'))

        # R replays the same set again
        await pilot.press("R")
        await until(pilot, lambda: screen.runs == 2)
        assert [r.capture_id for r in screen.rows] == ids


async def test_last_n_of_an_artifact_skips_replays(runtime: Runtime) -> None:
    ids = await capture_orders(runtime, [1, 2, 3])
    app = Host(runtime, lambda rt: ReplayScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        assert screen.mode == "last" and screen.runs == 0  # waits for N
        last = screen.query_one("#replay-last", Input)
        assert last.value == "10"
        last.value = "2"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.runs == 1)
        assert [r.capture_id for r in screen.rows] == ids[1:]
        # the replays just captured are not "the last 2 events"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.runs == 2)
        assert [r.capture_id for r in screen.rows] == ids[1:]

        # through the transport: a real HTTP request per event
        await pilot.press("v")
        await until(pilot, lambda: screen.via == "transport")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.runs == 3, timeout=20)
        for row in screen.rows:
            assert row.result is not None and row.result.via == "transport"
            assert row.result.new.status == "ok"
            assert any(s["kind"] == "http.response" for s in row.result.new.sent)


async def test_rerun_after_next_reload(runtime: Runtime) -> None:
    ids = await capture_orders(runtime, [2])
    app = Host(runtime, lambda rt: ReplayScreen(rt, capture_ids=ids))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        await until(pilot, lambda: screen.runs == 1)
        view = screen.query_one("#replay-diff", DiffView)
        assert total_row(view) == ('"total": 9.0', '"total": 9.0')

        await pilot.press("a")
        assert screen.rerun_on_reload
        assert screen.query_one("#replay-auto", Checkbox).value

        await change_pricing(runtime, 3)
        await until(pilot, lambda: screen.runs == 2)
        assert total_row(view) == ('"total": 9.0', '"total": 27.0')

        # a reload that fails keeps the old code and does not replay
        path = runtime.root / PRICING
        path.write_text(path.read_text("utf-8") + "\ndef broken(:\n", "utf-8")
        report = await runtime.reload([path])
        assert not report.ok
        await pilot.pause()
        await pilot.pause()
        assert screen.runs == 2
        assert any("Not replayed" in str(n.message) for n in app._notifications)

        await pilot.press("a")
        assert not screen.rerun_on_reload


async def test_unknown_capture_id_is_reported_not_fatal(runtime: Runtime) -> None:
    ids = await capture_orders(runtime, [1])
    app = Host(runtime, lambda rt: ReplayScreen(rt, capture_ids=["no-such-capture", *ids]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        await until(pilot, lambda: screen.runs == 1)
        missing, found = screen.rows
        assert missing.result is None and missing.error is not None
        assert "no-such-capture" in missing.error
        assert found.result is not None
        table = screen.query_one("#replay-results", DataTable)
        assert str(table.get_row("no-such-capture")[4]) == "FAILED"
        assert any(n.severity == "error" for n in app._notifications)


async def test_cancel_stops_after_the_event_in_flight(runtime: Runtime) -> None:
    module = runtime.root / "artifacts/inventory.py"
    text = module.read_text("utf-8")
    text = text.replace("import zlib\n", "import asyncio\nimport zlib\n").replace(
        "    # A stand-in", "    await asyncio.sleep(0.3)\n    # A stand-in"
    )
    module.write_text(text, "utf-8")
    report = await runtime.reload([module])
    assert report.ok, report.summary()
    sample = runtime.samples("inventory")[0].event
    ids = []
    for _ in range(5):
        event = sample.copy()
        await runtime.inject("inventory", event)
        ids.append(event.id)
    assert runtime.capture is not None
    await runtime.capture.flush()

    subscribers = len(runtime.bus._subscribers)
    app = Host(runtime, lambda rt: ReplayScreen(rt, capture_ids=ids))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        assert len(runtime.bus._subscribers) == subscribers + 1
        await until(pilot, lambda: len(screen.rows) >= 1)
        await pilot.press("x")
        await until(pilot, lambda: screen.runs == 1)
        assert 1 <= len(screen.rows) < 5
        assert not screen.running

        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ReplayScreen))
        assert len(runtime.bus._subscribers) == subscribers


def test_side_by_side_alignment() -> None:
    left = ["a", "b", "c", "d"]
    right = ["a", "B", "c", "e", "f"]
    rows = side_by_side(left, right)
    assert [(r.tag, r.left, r.right) for r in rows] == [
        ("equal", "a", "a"),
        ("replace", "b", "B"),
        ("equal", "c", "c"),
        ("replace", "d", "e"),
        ("replace", None, "f"),
    ]
    assert [(r.left_no, r.right_no) for r in rows] == [
        (1, 1), (2, 2), (3, 3), (4, 4), (None, 5)
    ]
    assert [r.tag for r in side_by_side(["x"], [])] == ["delete"]
    assert [r.tag for r in side_by_side([], ["y"])] == ["insert"]


async def test_messages_read_again_from_a_transport_log_are_compared_with_their_captures(
    make_project: Callable[[dict[str, str]], Path],
) -> None:
    """The in-memory queue keeps a log (like a Kafka partition): the console reads a
    stretch of it again, runs the current code, and diffs against the earlier captures."""
    from memq import BROKER, QueueTrigger, publish

    BROKER.reset()
    handler = """
        from memq import Queue

        jobs = Queue(queue="jobs")

        @jobs.on_message
        async def double(payload: dict) -> int:
            return payload["n"] * 2
    """
    root = make_project({"artifacts/jobs.py": handler})
    rt = Runtime(root, plugins={"memq": QueueTrigger}, reload=False)
    await rt.start()
    try:
        await rt.wait_ready(5)
        sent = [await publish("jobs", json.dumps({"n": n}).encode()) for n in range(5)]
        for _ in range(200):
            if rt.artifacts["jobs"].events == 5:
                break
            await asyncio.sleep(0.01)
        assert rt.capture is not None
        await rt.capture.flush()
        path = root / "artifacts/jobs.py"
        path.write_text(path.read_text().replace('payload["n"] * 2', 'payload["n"] * 3'))
        assert (await rt.reload([path])).ok

        app = Host(rt, lambda r: ReplayScreen(r, artifact="jobs"))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
            screen = replay_screen(app)
            screen.query_one("#replay-mode", Select).value = "log"
            await until(pilot, lambda: screen.mode == "log")
            position = screen.query_one("#replay-position", Input)
            assert position.display and not screen.query_one("#replay-via", Select).display
            screen.query_one("#replay-last", Input).value = "3"
            position.focus()
            await pilot.press("1", "enter")
            await until(pilot, lambda: screen.runs == 1)
            assert [r.capture_id for r in screen.rows] == [e.id for e in sent[1:4]]
            table = screen.query_one("#replay-results", DataTable)
            for row in screen.rows:
                assert row.result is not None and row.result.changed == ["result"]
                cells = table.get_row(row.key)
                assert (str(cells[3]), str(cells[4])) == ("ok → ok", "CHANGED")
            view = screen.query_one("#replay-diff", DiffView)
            assert any(r.left and r.left.strip(" ,") == '"result": 2'
                       and r.right and r.right.strip(" ,") == '"result": 3'
                       for r in view.rows)

            # R reads the same stretch again; a bad position is reported, not fatal
            table.focus()
            await pilot.press("R")
            await until(pilot, lambda: screen.runs == 2)
            assert len(screen.rows) == 3
            # a message in the log that never reached the listener has nothing to compare
            BROKER.logs["jobs"].append(sent[0].copy(data=b'{"n": 9}', transport={
                "queue": "jobs", "index": 5}))
            position.value = "4"
            await pilot.press("ctrl+r")
            await until(pilot, lambda: screen.runs == 3)
            assert [r.capture_id for r in screen.rows] == [sent[4].id, ""]
            fresh = screen.rows[1]
            assert fresh.result is not None and fresh.result.recorded is None
            assert fresh.result.new.result == 27
            assert str(table.get_row(fresh.key)[3]) == "- → ok"
            assert "1 never captured before" in str(
                screen.query_one("#replay-summary", Static).render())

            position.value = "x"
            await pilot.press("ctrl+r")
            await until(pilot, lambda: screen.runs == 4)
            assert screen.rows[0].result is None and "not a log index" in (
                screen.rows[0].error or "")
    finally:
        await rt.stop(1)
