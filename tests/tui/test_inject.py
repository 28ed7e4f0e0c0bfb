"""The inject console over a real runtime on a copy of sample_project/: sources, live checks
while typing, sending direct and through the real HTTP transport, saving a fixture. The
checker behind the editor is tested on its own at the end."""

from __future__ import annotations

import io
import json
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from workbench.events import Event
from workbench.runtime.runtime import Runtime
from workbench.tui.screens.inject import InjectScreen
from workbench.tui.widgets.event_editor import (
    EventEditor,
    check_event,
    format_path,
    schema_problems,
)

from .helpers import SIZE, Host, until


def screen_of(app: App[None]) -> InjectScreen:
    screen = app.screen
    assert isinstance(screen, InjectScreen)
    return screen


def rendered(static: Static, width: int = 100) -> str:
    """The plain text a Static shows."""
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(static.content)
    return console.export_text()


def problems_text(screen: InjectScreen) -> str:
    panel = screen.query_one("#event-problems", Static)
    return str(panel.content)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*list(text))


def locate(editor: EventEditor, needle: str) -> tuple[int, int]:
    """(row, column) of the first occurrence of `needle` in the editor's text."""
    for row, line in enumerate(editor.text.splitlines()):
        col = line.find(needle)
        if col >= 0:
            return row, col
    raise AssertionError(f"{needle!r} is not in the editor")


async def test_edit_sample_wrong_type_fix_and_send_direct(runtime: Runtime) -> None:
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        source = screen.query_one("#inject-source", Select)
        # pick the create_order sample from the source list with the keyboard
        source.focus()
        await pilot.press("enter")
        await pilot.pause()
        labels = [s.label for s in screen.sources]
        target = next(i for i, label in enumerate(labels) if "create_order" in label)
        current = labels.index(next(s.label for s in screen.sources if s.key == source.value))
        for _ in range(abs(target - current)):
            await pilot.press("down" if target > current else "up")
        await pilot.press("enter")
        await until(pilot, lambda: screen.source_key == "sample:0" and source.value == "sample:0")
        editor = screen.editor
        assert '"iwbhandler": "POST /"' in editor.text
        await until(pilot, lambda: editor.result.ok)
        assert "✓ valid" in problems_text(screen)
        assert "payload Order" in problems_text(screen)

        # "quantity": 2  →  "quantity": "lots"
        area = editor.text_area
        area.focus()
        row, col = locate(editor, '"quantity": 2')
        area.cursor_location = (row, col + len('"quantity": '))
        await pilot.press("delete")
        await type_text(pilot, '"lots"')
        # under load the debounced check may run between two keystrokes: wait for the
        # check of the whole edit
        await until(
            pilot,
            lambda: '"quantity": "lots"' in editor.text
            and [p.where for p in editor.result.problems] == ["data.items[0].quantity"],
        )
        [problem] = editor.result.problems
        assert problem.where == "data.items[0].quantity"
        assert "valid integer" in problem.message
        assert "data.items[0].quantity" in problems_text(screen)
        assert "✗ 1 problem" in problems_text(screen)

        # fix it: "lots" → 3
        for _ in range(len('"lots"')):
            await pilot.press("backspace")
        await type_text(pilot, "3")
        await until(pilot, lambda: editor.result.ok)
        assert '"quantity": 3,' in editor.text

        editor_id = json.loads(editor.text)["id"]
        await pilot.press("ctrl+d")
        await until(pilot, lambda: screen.last_outcome is not None and not screen.sending)
        outcome = screen.last_outcome
        assert outcome is not None
        assert outcome.status == "ok"
        assert outcome.result["total"] == 13.5
        assert screen.last_sent is not None and screen.last_sent.id != editor_id
        first_id = screen.last_sent.id
        shown = screen.query_one("#inject-outcome", Static)
        assert shown.content is not None

        # a second send is a new event
        await pilot.press("ctrl+d")
        await until(pilot, lambda: screen.last_sent is not None
                    and screen.last_sent.id != first_id and not screen.sending)
        assert runtime.capture is not None
        await runtime.capture.flush()
        assert runtime.capture.get(first_id).status == "ok"
        assert runtime.capture.get(screen.last_sent.id).status == "ok"


async def test_checks_wait_for_typing_to_pause(runtime: Runtime) -> None:
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        editor = screen_of(app).editor
        assert editor.check_now().ok
        editor.debounce = 60.0
        editor.text_area.focus()
        editor.text_area.cursor_location = (0, 0)
        await pilot.press("x")
        await pilot.pause()
        assert editor.text.startswith("x{")
        assert editor.result.ok  # not checked yet: the pause has not passed
        editor.debounce = 0.15
        await pilot.press("y")
        await until(pilot, lambda: not editor.result.ok)
        assert editor.result.problems[0].where == "line 1, column 1"


async def test_send_via_transport_makes_a_real_request(runtime: Runtime) -> None:
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        screen.load_source("sample:0")
        await until(pilot, lambda: screen.editor.result.ok)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: screen.last_outcome is not None and not screen.sending,
                    timeout=15)
        outcome = screen.last_outcome
        assert outcome is not None, screen.last_error
        assert outcome.status == "ok"
        # the HTTP plugin records the response it wrote on the socket
        responses = [s for s in outcome.sent if s["kind"] == "http.response"]
        assert responses and responses[0]["status"] == 201
        assert json.loads(responses[0]["body"])["total"] == 9.0


async def test_saved_event_loads_and_sends(runtime: Runtime) -> None:
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        keys = [s.key for s in screen.sources]
        assert "saved:new-order.json" in keys
        screen.query_one("#inject-source", Select).value = "saved:new-order.json"
        await until(pilot, lambda: screen.source_key == "saved:new-order.json")
        assert '"id": "fixture-new-order"' in screen.editor.text
        assert screen.query_one("#fixture-name", Input).value == "new-order"
        result = screen.editor.check_now()
        assert result.event is not None and result.event.id == "fixture-new-order"
        # the payload fits Order; the fixture's transport fields are checked against
        # HttpTransport (its `"query": ""` is reported: `query` is an object there)
        assert [p for p in result.problems if p.part != "transport"] == []
        await pilot.press("ctrl+d")
        await until(pilot, lambda: screen.last_outcome is not None and not screen.sending)
        assert screen.last_outcome is not None
        assert screen.last_outcome.result["total"] == 21.0


async def test_saved_events_of_other_artifacts_are_left_out(runtime: Runtime) -> None:
    events = runtime.settings.folder("events")
    (events / "restock-run.json").write_text(
        json.dumps({"iwbartifact": "restock", "data": {"top": 3}}), "utf-8"
    )
    (events / "broken.json").write_text('{"data": ', "utf-8")
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        keys = [s.key for s in screen.sources]
        assert "saved:restock-run.json" not in keys
        assert "saved:broken.json" in keys  # listed, so it can be opened and fixed
        screen.load_source("saved:broken.json")
        await pilot.pause()
        [problem] = screen.editor.result.problems
        assert problem.part == "json"
        assert problem.where == "line 2, column 1"  # the end of the text
        # text that is not an event is not sent
        await pilot.press("ctrl+d")
        await pilot.pause()
        assert screen.last_sent is None and screen.last_outcome is None

        screen.query_one("#inject-artifact", Select).value = "restock"
        await until(pilot, lambda: screen.artifact == "restock")
        keys = [s.key for s in screen.sources]
        assert "saved:restock-run.json" in keys
        assert "saved:new-order.json" not in keys
        assert any(k.startswith("sample:") for k in keys)


async def test_transport_field_errors_and_invalid_payload_is_sent_anyway(
    runtime: Runtime,
) -> None:
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        raw = json.loads(screen.editor.text)
        raw["iwbtransport"]["method"] = 5
        raw["iwbtransport"]["headers"] = [["content-type"]]
        raw["data"]["items"] = []
        screen.editor.text_area.load_text(json.dumps(raw, indent=2))
        await until(pilot, lambda: len(screen.editor.result.problems) == 3)
        found = {(p.part, p.where): p.message for p in screen.editor.result.problems}
        assert found[("transport", "iwbtransport.method")] == "expected string, got integer"
        assert "at least 2 items" in found[("transport", "iwbtransport.headers[0]")]
        assert ("data", "data.items") in found

        await pilot.press("ctrl+d")
        await until(pilot, lambda: screen.last_outcome is not None and not screen.sending)
        outcome = screen.last_outcome
        assert outcome is not None and outcome.status == "error"
        assert outcome.error is not None and outcome.error.details
        shown = rendered(screen.query_one("#inject-outcome", Static))
        assert "ERROR" in shown
        assert "sent with 3 validation problems" in shown
        assert "body.items: List should have at least 1 item" in shown


async def test_handler_error_shows_type_message_and_frames(runtime: Runtime) -> None:
    source = (runtime.root / "artifacts/orders_api.py").read_text("utf-8").splitlines()
    line = next(i for i, text in enumerate(source, 1) if "raise http.HTTPError(404" in text)
    app = Host(runtime, lambda rt: InjectScreen(rt, artifact="orders"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        key = next(s.key for s in screen.sources if "get_order" in s.label)
        screen.load_source(key)
        assert screen.editor.check_now().ok
        await pilot.click("#send-direct")
        await until(pilot, lambda: screen.last_outcome is not None and not screen.sending)
        shown = rendered(screen.query_one("#inject-outcome", Static))
        assert "HTTPError: no order 'string'" in shown
        assert "status: 404" in shown
        assert f"artifacts/orders_api.py:{line} in get_order" in shown
        assert 'raise http.HTTPError(404, f"no order {order_id!r}")' in shown


async def test_opened_on_a_captured_event_and_saved_as_fixture(runtime: Runtime) -> None:
    sample = runtime.samples("orders")[0].event
    captured = sample.copy(id="captured-event-0001")
    await runtime.inject("orders", captured)
    app = Host(runtime, lambda rt: InjectScreen(rt, event=captured))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, InjectScreen))
        screen = screen_of(app)
        assert screen.artifact == "orders"
        assert screen.source_key == "captured"
        assert '"id": "captured-event-0001"' in screen.editor.text
        name = screen.query_one("#fixture-name", Input)
        assert name.value == "captured-captured"

        name.value = "../escape"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (runtime.root / "escape.json").exists()

        name.value = "big-order"
        await pilot.press("ctrl+s")
        target = runtime.settings.folder("events") / "big-order.json"
        await until(pilot, target.exists)
        saved = json.loads(target.read_text("utf-8"))
        assert saved["id"] == "captured-event-0001"
        assert Event.from_cloudevent(saved).handler == "POST /"
        assert "saved:big-order.json" in [s.key for s in screen.sources]

        await pilot.press("escape")  # leaves the editor
        await pilot.press("escape")  # closes the console
        await until(pilot, lambda: not isinstance(app.screen, InjectScreen))


# ---------------------------------------------------------------------------- the checker


class Item(BaseModel):
    sku: str
    quantity: int


class Order(BaseModel):
    items: list[Item]


def test_check_reports_syntax_errors_with_line_and_column() -> None:
    result = check_event('{\n  "data": [1,\n}')
    assert result.event is None
    assert [str(p) for p in result.problems] == [
        "line 3, column 1: Expecting value",
    ]


def test_check_validates_payload_like_the_runtime() -> None:
    text = json.dumps({
        "iwbhandler": "create", "datacontenttype": "application/json",
        "data": {"items": [{"sku": "A", "quantity": "many"}, {"quantity": 1}]},
    })
    result = check_event(text, handlers=["create"], payload_type=lambda key: Order)
    assert result.event is not None and result.payload == "Order"
    assert [(p.where, p.message.split(",")[0]) for p in result.problems] == [
        ("data.items[0].quantity", "Input should be a valid integer"),
        ("data.items[1].sku", "Field required"),
    ]
    plain = check_event(json.dumps({"datacontenttype": "text/plain", "data": "x"}),
                        payload_type=lambda key: Order)
    assert [p.where for p in plain.problems] == ["datacontenttype"]


def test_check_names_unknown_handlers_and_bad_attributes() -> None:
    text = json.dumps({"iwbhandler": "nope", "subject": 3, "time": "yesterday"})
    result = check_event(text, handlers=["a", "b"])
    assert {p.where for p in result.problems} == {"iwbhandler", "subject", "time"}
    assert result.event is not None


def test_schema_checker_covers_what_pydantic_writes() -> None:
    class Transport(BaseModel):
        path: str
        mode: str = "a"
        size: int = 0
        pairs: list[tuple[str, str]] = []
        maybe: int | None = None
        nested: Item | None = None

    schema = Transport.model_json_schema()
    assert schema_problems({"path": "x"}, schema, "t") == []
    problems = schema_problems(
        {"size": "big", "pairs": [["a"]], "maybe": "x", "nested": {"sku": 1}}, schema, "t"
    )
    assert ("t.path", "required field is missing") in problems
    assert ("t.size", "expected integer, got string") in problems
    assert any(p[0] == "t.pairs[0]" and "at least 2" in p[1] for p in problems)
    assert ("t.maybe", "expected integer or null, got string") in problems
    assert ("t.nested.sku", "expected string, got integer") in problems
    assert ("t.nested.quantity", "required field is missing") in problems
    enum = {"type": "string", "enum": ["created", "deleted"]}
    assert schema_problems("moved", enum, "c") == [("c", "must be one of 'created', 'deleted'")]
    closed = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert schema_problems({"b": 1}, closed, "o") == [("o.b", "unknown field; fields: a")]


def test_format_path() -> None:
    assert format_path(("items", 0, "quantity")) == ".items[0].quantity"
