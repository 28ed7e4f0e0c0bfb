"""The data mapper screen over a real runtime on a copy of sample_project/, driven by keys:
editing a field, the live preview, save and hot reload, undo and redo, auto-map, linking,
broken expressions and files, samples from captured and typed events, the unsaved-changes
question, `m` on a mapping in the main screen's tree; and one snapshot."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from rich.console import Console
from testkit import free_port, write_files
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Select, Static, TextArea

from workbench.runtime.runtime import Runtime
from workbench.tui.mapper_session import editor_text, model_refs
from workbench.tui.screens.help import HelpScreen
from workbench.tui.screens.mapper import MapperScreen
from workbench.tui.widgets.mapper_confirm import DiscardBar
from workbench.tui.widgets.mapper_picker import Picker
from workbench.tui.widgets.mapper_proposals import ProposalList
from workbench.tui.widgets.mapper_target_tree import field_state

from .helpers import SIZE, Host, started, until

MAPPING = "order_to_invoice"

PARCEL_TYPES = {
    "types/parcels.py": '''
        from __future__ import annotations

        from pydantic import BaseModel


        class ParcelItem(BaseModel):
            sku: str
            quantity: int


        class Parcel(BaseModel):
            customer: str
            items: list[ParcelItem]
            note: str | None = None
            weight_kg: float
    ''',
}


class MapperHost(Host):
    """Hosts the mapper screen over a started runtime; records `Ready` messages."""

    def __init__(self, runtime: Runtime, make: Callable[[Runtime], MapperScreen]) -> None:
        super().__init__(runtime, make)
        self.ready: list[str] = []

    def on_mapper_screen_ready(self, message: MapperScreen.Ready) -> None:
        self.ready.append(message.name)


@pytest.fixture
async def runtime(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.setenv("IWB_ORDERS_API__PORT", str(free_port()))
    write_files(sample_copy, PARCEL_TYPES)
    rt = Runtime(sample_copy, reload=False)
    await rt.start(strict=False, listen=False)
    try:
        yield rt
    finally:
        await rt.stop(1)


def host(rt: Runtime, mapping: str | None = MAPPING) -> MapperHost:
    return MapperHost(rt, lambda r: MapperScreen(r, mapping=mapping))


async def opened(pilot: Pilot[Any]) -> MapperScreen:
    """The mapper screen, once it shows its mapping in full."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, MapperScreen) and app.screen.ready,
                what="mapper ready")
    screen = app.screen
    assert isinstance(screen, MapperScreen)
    await settled(pilot, screen)
    return screen


async def settled(pilot: Pilot[Any], screen: MapperScreen) -> None:
    await until(pilot, lambda: screen.settled, what="analysis of the latest change")
    await pilot.pause()


async def select_target(pilot: Pilot[Any], screen: MapperScreen, path: str) -> None:
    """Move the target tree's cursor to `path` with the arrow keys."""
    tree = screen.target_tree
    tree.focus()
    await pilot.pause()
    await pilot.press("home")
    for _ in range(60):
        if screen.selected_path == path:
            return
        await pilot.press("down")
    raise AssertionError(f"{path} not reachable in the target tree")


async def select_source(pilot: Pilot[Any], screen: MapperScreen, path: str) -> None:
    tree = screen.source_tree
    tree.focus()
    await pilot.pause()
    await pilot.press("home")
    for _ in range(60):
        if tree.selected_path == path:
            return
        await pilot.press("down")
    raise AssertionError(f"{path} not reachable in the source tree")


async def type_expression(pilot: Pilot[Any], screen: MapperScreen, text: str) -> None:
    """Enter on the selected field, clear the line, type `text`, Enter."""
    await pilot.press("enter")
    await until(pilot, lambda: screen.expression.has_focus)
    await pilot.press("ctrl+u", "ctrl+k")
    await pilot.press(*list(text))
    await pilot.press("enter")
    await settled(pilot, screen)


async def fill_new_form(pilot: Pilot[Any], screen: MapperScreen, name: str, source: str,
                        target: str) -> None:
    """Type the name, choose the types with the keyboard, create (ctrl+n)."""
    await until(pilot, lambda: screen.focused is not None
                and screen.focused.id == "mapper-new-name")
    await until(pilot, lambda: shown(screen.query_one("#mapper-new")))
    await pilot.press(*list(name))
    refs = model_refs(screen.runtime)  # the order the lists show them in
    for select_id, ref in (("#mapper-new-source", source), ("#mapper-new-target", target)):
        select: Select[str] = screen.query_one(select_id, Select)
        await pilot.press("tab")
        assert select.has_focus, screen.focused
        await pilot.press("enter")  # opens the list on its blank entry
        await pilot.press(*["down"] * (refs.index(ref) + 1), "enter")
        await until(pilot, lambda select=select, ref=ref: select.value == ref)
    await pilot.press("ctrl+n")


def render_text(renderable: Any, width: int = 110) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def shown(widget: Widget) -> bool:
    """The widget takes room on the screen (a panel that is open)."""
    return widget.display and widget.region.area > 0


def status(screen: MapperScreen) -> str:
    return str(screen.query_one("#mapper-status", Static).content)


def output(screen: MapperScreen) -> Any:
    assert screen.analysis is not None
    return screen.analysis.output


def mapping_file(rt: Runtime, name: str = MAPPING) -> Path:
    return rt.root / "mappings" / f"{name}.toml"


async def test_edit_by_keys_preview_save_and_reload(runtime: Runtime) -> None:
    path = mapping_file(runtime)
    original = path.read_text("utf-8")
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        assert app.ready == [MAPPING]
        assert output(screen)["total"] == 21.0  # events/new-order.json: 2 x 4.5 + 12.0
        assert screen.sample is not None and screen.sample.key == "file:new-order.json"
        assert "●" not in str(screen.title)
        await select_target(pilot, screen, "total")
        assert screen.expression.value == "order_total(src)"
        await type_expression(pilot, screen, "round(order_total(src) * 2, 2)")
        assert output(screen)["total"] == 42.0
        assert screen.target_tree.has_focus
        assert "●" in str(screen.title) and "unsaved" in str(screen.sub_title)
        assert path.read_text("utf-8") == original  # nothing written yet

        await pilot.press("ctrl+s")
        await until(pilot, lambda: "●" not in str(screen.title))
        saved = path.read_text("utf-8")
        assert 'total = "round(order_total(src) * 2, 2)"' in saved
        assert "# An order (types/orders.py) as an invoice (types/billing.py)." in saved
        assert "# Config.toml [orders_api]" in saved
        assert saved.replace("round(order_total(src) * 2, 2)", "order_total(src)") == original

        report = await runtime.reload([path])
        assert report.ok, report.summary()
        assert runtime.mappings is not None
        order = {"customer": "Ada@Example.com ",
                 "items": [{"sku": "TEA-01", "quantity": 1, "unit_price": 4.5}]}
        invoice = runtime.mappings.function(MAPPING)(order)
        assert isinstance(invoice, BaseModel)
        assert invoice.model_dump()["total"] == 9.0
        assert invoice.model_dump()["customer"] == "ada@example.com"


async def test_undo_and_redo(runtime: Runtime) -> None:
    path = mapping_file(runtime)
    original = path.read_text("utf-8")
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        session = screen.session
        assert session is not None
        await select_target(pilot, screen, "customer")
        await type_expression(pilot, screen, "src.customer.upper()")
        assert output(screen)["customer"] == "ADA@EXAMPLE.COM"
        await select_target(pilot, screen, "note")
        await pilot.press("d")
        await settled(pilot, screen)
        assert screen.analysis is not None and screen.analysis.fields["note"].raw is None
        edited = session.text

        await pilot.press("ctrl+z")
        await settled(pilot, screen)
        assert 'note = { expr = "src.note.strip()", default = "" }' in session.text
        assert "undid: unmap note" in status(screen)
        await pilot.press("ctrl+z")
        await settled(pilot, screen)
        assert session.text == original  # byte for byte: comments and order
        assert output(screen)["customer"] == "ada@example.com"
        assert not session.dirty and "●" not in str(screen.title)
        await pilot.press("ctrl+z")
        assert "Nothing to undo" in status(screen)

        await pilot.press("ctrl+y", "ctrl+y")
        await settled(pilot, screen)
        assert session.text == edited
        assert output(screen)["customer"] == "ADA@EXAMPLE.COM"
        # the core's inverse edits are kept with each change
        assert screen.last_change is not None
        assert [e.value for e in screen.last_change.inverse] == [
            {"expr": "src.note.strip()", "default": ""}
        ]


async def test_new_mapping_with_auto_map_accept_and_reject(runtime: Runtime) -> None:
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await pilot.press("n")
        await until(pilot, lambda: screen.focused is not None
                    and screen.focused.id == "mapper-new-name")
        await fill_new_form(pilot, screen, "order_to_parcel", "project.types.orders:Order",
                            "project.types.parcels:Parcel")
        await until(pilot, lambda: screen.session is not None
                    and screen.session.name == "order_to_parcel" and screen.ready)
        await until(pilot, lambda: isinstance(screen.focused, ProposalList))
        listing = screen.query_one(ProposalList)
        await until(pilot, lambda: listing.option_count == 3 and shown(listing))
        assert [p.path for p in listing.proposals] == ["customer", "items", "note"]
        assert "new, not saved yet" in str(screen.sub_title)

        await pilot.press("y")  # customer
        await pilot.press("n")  # items: rejected
        await pilot.press("enter")  # note
        await until(pilot, lambda: not shown(listing))
        await settled(pilot, screen)
        session = screen.session
        assert session is not None
        assert 'customer = "src.customer"' in session.text
        assert 'note = "src.note"' in session.text
        assert "items" not in session.text.split("[fields]")[1]
        analysis = screen.analysis
        assert analysis is not None
        assert set(analysis.unmapped) == {"items", "weight_kg"}
        assert field_state(analysis.fields["items"]) == "unmapped"

        await pilot.press("a")
        await until(pilot, lambda: listing.has_focus and listing.option_count == 1)
        await pilot.press("A")
        await settled(pilot, screen)
        assert 'each = "src.items"' in session.text
        assert screen.analysis is not None and screen.analysis.unmapped == ["weight_kg"]
        assert output(screen)["items"] == [
            {"sku": "TEA-01", "quantity": 2}, {"sku": "MUG-07", "quantity": 1}
        ]
        await pilot.press("ctrl+z")  # accept-all is one step
        await settled(pilot, screen)
        assert 'each = "src.items"' not in session.text

        await pilot.press("ctrl+s")
        await until(pilot, lambda: mapping_file(runtime, "order_to_parcel").exists())
        assert mapping_file(runtime, "order_to_parcel").read_text("utf-8") == session.text
        assert "saved" in str(screen.sub_title)

        # back to the other mapping through the chooser: it lists both, and + new
        await pilot.press("m")
        await until(pilot, lambda: isinstance(screen.focused, Picker))
        picker = screen.query_one(Picker)
        await until(pilot, lambda: shown(picker))
        assert picker.values == [MAPPING, "order_to_parcel", "+new"]
        await pilot.press("up", "enter")
        await until(pilot, lambda: screen.session is not None
                    and screen.session.name == MAPPING and screen.ready)


async def test_a_project_without_mappings_starts_with_a_new_one(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IWB_ORDERS_API__PORT", str(free_port()))
    mapping_file_ = sample_copy / "mappings" / f"{MAPPING}.toml"
    mapping_file_.unlink()
    rt = Runtime(sample_copy, reload=False)
    await rt.start(strict=False, listen=False)
    try:
        assert rt.mappings is None
        app = host(rt, None)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, MapperScreen))
            screen = app.screen
            assert isinstance(screen, MapperScreen)
            await fill_new_form(pilot, screen, "to_invoice", "project.types.orders:Order",
                                "project.types.billing:Invoice")
            await until(pilot, lambda: screen.ready and isinstance(screen.focused,
                                                                    ProposalList))
            await pilot.press("A")
            await settled(pilot, screen)
            assert screen.analysis is not None
            assert set(screen.analysis.unmapped) == {"currency", "items", "lines", "total"}
            await pilot.press("ctrl+s")
            path = mapping_file(rt, "to_invoice")
            await until(pilot, lambda: rt.mappings is not None
                        and "to_invoice" in rt.mappings.entries)
            assert 'customer = "src.customer"' in path.read_text("utf-8")
            assert "# to_invoice: project.types.orders:Order -> " in path.read_text("utf-8")
    finally:
        await rt.stop(1)


async def test_link_source_to_target(runtime: Runtime) -> None:
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        for path in ("customer", "lines[].sku"):
            await select_target(pilot, screen, path)
            await pilot.press("delete")
            await settled(pilot, screen)
        analysis = screen.analysis
        assert analysis is not None
        assert field_state(analysis.fields["customer"]) == "unmapped"

        await select_source(pilot, screen, "src.customer")
        await pilot.press("l")
        assert screen.source_tree.marked == "src.customer"
        await pilot.press("tab")  # to the target tree
        assert screen.target_tree.has_focus
        await select_target(pilot, screen, "customer")
        await pilot.press("l")
        await settled(pilot, screen)
        session = screen.session
        assert session is not None
        assert 'customer = "src.customer"' in session.text
        assert screen.source_tree.marked is None

        # a field of the list's elements, under the each rule over that list
        await select_source(pilot, screen, "src.items[].sku")
        await pilot.press("l")
        await select_target(pilot, screen, "lines[].sku")
        await pilot.press("l")
        await settled(pilot, screen)
        assert 'sku = "item.sku"' in session.text
        assert [line["sku"] for line in output(screen)["lines"]] == ["MUG-07", "TEA-01"]

        # ... but not to a field outside it
        await select_source(pilot, screen, "src.items[].sku")
        await pilot.press("l")
        await select_target(pilot, screen, "note")
        await pilot.press("l")
        assert "each element of src.items" in status(screen)


async def test_a_broken_expression_shows_on_its_field(runtime: Runtime) -> None:
    path = mapping_file(runtime)
    assert runtime.mappings is not None
    serving = runtime.mappings.get(MAPPING)
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await select_target(pilot, screen, "total")
        await type_expression(pilot, screen, "order_total(src")
        analysis = screen.analysis
        assert analysis is not None
        view = analysis.fields["total"]
        assert view.errors and "syntax" in view.errors[0]
        assert field_state(view) == "error"
        assert "✖ total:" in status(screen)
        assert "total" not in output(screen)  # left out; the rest still maps
        assert output(screen)["customer"] == "ada@example.com"
        preview = screen.query_one("#mapper-preview-body", Static)
        assert "✖ total" in str(preview.content.renderables[-1])  # type: ignore[union-attr]

        await select_target(pilot, screen, "items")
        await type_expression(pilot, screen, "{ each = src.items }")
        assert "not a TOML inline table" in status(screen)
        await type_expression(pilot, screen, "src.nothing_here")
        assert screen.analysis is not None
        assert any("nothing_here" in e for e in screen.analysis.fields["items"].errors)

        # an element field of a list nobody maps: the core says what to do first
        await select_target(pilot, screen, "lines")
        await pilot.press("d")
        await settled(pilot, screen)
        await select_target(pilot, screen, "lines[].sku")
        await type_expression(pilot, screen, "item.sku")
        assert "add an each rule for it first" in status(screen)
        assert screen.expression.has_focus and screen.expression.value == "item.sku"
        await pilot.press("escape", "escape", "ctrl+z")  # lines back
        await settled(pilot, screen)

        # saved with errors: the last good compiled version keeps serving
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "●" not in str(screen.title))
        report = await runtime.reload([path])
        assert not report.ok
        assert runtime.mappings.get(MAPPING) is serving
        await until(pilot, lambda: "the last good version serves" in str(screen.sub_title))
        assert isinstance(app.screen, MapperScreen)


async def test_a_file_that_does_not_load_opens_without_crashing(runtime: Runtime) -> None:
    broken = mapping_file(runtime, "broken")
    broken.write_text('[mapping]\nsource = "project.types.orders:Nope"\ntarget = "dict"\n'
                      "[fields]\nx = 'src.x'\n", "utf-8")
    bad_toml = mapping_file(runtime, "bad_toml")
    bad_toml.write_text("[mapping\nsource = 1\n", "utf-8")
    await runtime.reload([broken, bad_toml])
    for name, needle in (("broken", "has no 'Nope'"), ("bad_toml", "not valid TOML")):
        app = host(runtime, name)
        async with app.run_test(size=SIZE) as pilot:
            screen = await opened(pilot)
            assert screen.analysis is not None
            assert any(needle in p for p in screen.analysis.general), screen.analysis.general
            await pilot.press("a", "l", "d", "e")
            await pilot.press("ctrl+z")
            assert isinstance(app.screen, MapperScreen)


async def test_types_that_change_under_the_mapping(runtime: Runtime) -> None:
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        billing = runtime.root / "types" / "billing.py"
        billing.write_text(
            billing.read_text("utf-8").replace("    total: float", "    amount_due: float"),
            "utf-8",
        )
        report = await runtime.reload([billing])  # the mapping no longer loads
        assert not report.ok
        await until(pilot, lambda: screen.analysis is not None
                    and "amount_due" in screen.analysis.fields)
        await settled(pilot, screen)
        assert screen.analysis is not None
        fields = screen.analysis.fields
        assert fields["total"].extra and fields["total"].errors
        assert "Invoice has no field 'total'" in fields["total"].errors[0]
        assert fields["amount_due"].unmapped_required
        assert "the last good version serves" in str(screen.sub_title)
        # fixed from the screen: unmap the old field, map the new one
        await select_target(pilot, screen, "total")
        await pilot.press("d")
        await settled(pilot, screen)
        await select_target(pilot, screen, "amount_due")
        await type_expression(pilot, screen, "order_total(src)")
        assert screen.analysis is not None and screen.analysis.error_count == 0
        assert output(screen)["amount_due"] == 21.0


async def test_preview_from_a_captured_event(runtime: Runtime) -> None:
    sample = runtime.samples("orders")[0].event
    body = {"customer": " Grace@Example.com", "note": "  fragile ",
            "items": [{"sku": "PEN-3", "quantity": 3, "unit_price": 1.5}]}
    event = sample.copy(id="capture-grace", data=json.dumps(body).encode(),
                        datacontenttype="application/json")
    await runtime.inject("orders", event)
    assert runtime.capture is not None
    await runtime.capture.flush()
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        assert screen.sample is not None
        assert screen.sample.key == "capture:capture-grace"
        assert "captured · orders · capture-" in screen.sample.label
        result = output(screen)
        assert result["customer"] == "grace@example.com"
        assert result["total"] == 4.5 and result["note"] == "fragile"
        # the source tree shows the sample's values
        assert screen.analysis is not None
        assert screen.analysis.values["src.items[].sku"] == "PEN-3"
        keys = [s.key for s in screen.samples]
        assert keys == ["capture:capture-grace", "file:new-order.json", "example"]

        # another sample, chosen with the keyboard
        await pilot.press("s")
        await until(pilot, lambda: isinstance(screen.focused, Picker))
        await pilot.press("down", "enter")
        await until(pilot, lambda: screen.sample is not None
                    and screen.sample.key == "file:new-order.json")
        await settled(pilot, screen)
        assert output(screen)["customer"] == "ada@example.com"


async def test_a_typed_sample_and_completion(runtime: Runtime) -> None:
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        area = screen.query_one("#mapper-sample-text", TextArea)
        area.focus()
        await pilot.pause()
        text = area.text.replace("ada@example.com", "zoe@example.com")
        area.select_all()
        await pilot.press("delete")
        area.insert(text)
        await until(pilot, lambda: screen.sample is not None and screen.sample.key == "typed")
        await settled(pilot, screen)
        assert output(screen)["customer"] == "zoe@example.com"
        area.insert("{ not json")
        await until(pilot, lambda: "not JSON" in status(screen))
        assert output(screen)["customer"] == "zoe@example.com"  # the last good preview

        await select_target(pilot, screen, "note")
        await pilot.press("enter", "ctrl+u", "ctrl+k")
        await pilot.press(*list("src.no"))
        editor = screen.query_one("#mapper-expression", Input)
        await until(pilot, lambda: "src.note" in status(screen))
        await pilot.press("tab")
        assert editor.value == "src.note"
        assert editor.has_focus
        await pilot.press("escape")  # puts the field's expression back
        assert editor.value == "src.note.strip()"
        await pilot.press("escape")  # leaves the editor
        assert screen.target_tree.has_focus

        await select_target(pilot, screen, "lines[].amount")
        await pilot.press("enter", "ctrl+u", "ctrl+k")
        await pilot.press(*list("item.q"))
        await until(pilot, lambda: "item.quantity" in status(screen))
        await pilot.press("right")
        assert editor.value == "item.quantity"


async def test_escape_with_unsaved_changes_asks(runtime: Runtime) -> None:
    app = host(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot)
        await select_target(pilot, screen, "currency")
        await type_expression(pilot, screen, '"USD"')
        assert output(screen)["currency"] == "USD"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(screen.focused, DiscardBar))
        bar = screen.query_one(DiscardBar)
        await until(pilot, lambda: shown(bar))
        assert "unsaved changes" in str(bar.content)
        await pilot.press("n")
        await until(pilot, lambda: not shown(bar))
        assert isinstance(app.screen, MapperScreen)
        await pilot.press("escape")
        await until(pilot, lambda: bar.has_focus)
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, MapperScreen))
        assert 'currency = "currency"' in mapping_file(runtime).read_text("utf-8")


async def test_unsaved_text_is_checked_without_touching_what_serves(runtime: Runtime) -> None:
    registry = runtime.mappings
    assert registry is not None
    serving = registry.get(MAPPING)
    text = mapping_file(runtime).read_text("utf-8").replace(
        'total = "order_total(src)"', 'total = "order_totl(src)"'
    )
    bound, issues = registry.check_text(MAPPING, text)
    assert bound is not None and bound.spec.rule("total") is not None
    assert [i.field for i in issues if i.level == "error"] == ["total"]
    assert "order_totl" in issues[0].message
    bound, issues = registry.check_text(MAPPING, text.replace("orders:Order", "orders:Nope"))
    errors = [i.message for i in issues if i.level == "error"]
    assert len(errors) == 1 and "has no 'Nope'" in errors[0]  # no field-by-field echo
    assert registry.get(MAPPING) is serving and registry.entries[MAPPING].ok


def test_editor_text_of_rules() -> None:
    assert editor_text("src.x") == ("src.x", "")
    text, hint = editor_text({"expr": "src.note.strip()", "default": ""})
    assert text == "src.note.strip()" and hint == 'options kept: default = ""'
    text, hint = editor_text({"each": "src.items", "fields": {"sku": "item.sku"}})
    assert text == '{ each = "src.items" }' and "1 fields are in the tree" in hint


async def test_m_on_a_mapping_in_the_tree_opens_it(make_app: Any) -> None:
    app = make_app(listen=False)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot, app)
        assert app.main is not None
        tree = app.main.artifact_tree
        tree.focus()
        await pilot.pause()
        for _ in range(80):
            entry = tree.selected
            if entry is not None and entry.kind == "mapping":
                break
            node = tree.cursor_node
            if node is not None and node.allow_expand and not node.is_expanded:
                await pilot.press("space")
            await pilot.press("down")
        entry = tree.selected
        assert entry is not None and entry.kind == "mapping" and entry.name == MAPPING
        await pilot.press("m")
        screen = await opened(pilot)
        assert screen.session is not None and screen.session.name == MAPPING
        keys = str(screen.query_one("#mapper-keys", Static).content)
        for shown_key in ("^s Save", "^z Undo", "a Auto-map", "l Link", "q Quit", "? Keys"):
            assert shown_key in keys, keys
        await pilot.press("question_mark")  # the app's help lists the mapper's keys
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = render_text(app.screen.query_one("#help-body", Static).content, width=160)
        for binding_id in ("mapper-save", "mapper-automap", "mapper-accept-proposal"):
            assert binding_id in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)


def test_mapper_screen_snapshot(sample_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                snap_compare: Any) -> None:
    monkeypatch.setenv("IWB_ORDERS_API__PORT", "18080")

    class SnapHost(App[None]):
        TITLE = "iwb"

        def __init__(self) -> None:
            super().__init__()
            self.runtime = Runtime(sample_copy, reload=False)

        async def on_mount(self) -> None:
            await self.runtime.start(strict=False, listen=False)
            await self.push_screen(MapperScreen(self.runtime, mapping=MAPPING))

        async def on_unmount(self) -> None:
            await self.runtime.stop(1)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await opened(pilot)
        await select_target(pilot, screen, "total")
        keys = screen.query_one("#mapper-keys", Static)
        await until(pilot, lambda: "Save" in str(keys.content))
        await pilot.pause()

    assert snap_compare(SnapHost(), run_before=run_before, terminal_size=SIZE)




async def test_q_asks_before_quitting_with_unsaved_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`q` on the mapper screen goes through the unsaved-changes question first."""
    from workbench.tui.screens.mapper import MapperScreen

    called: list[str] = []

    async def fake_unless(self: MapperScreen, then: str, action: object) -> None:
        called.append(then)

    monkeypatch.setattr(MapperScreen, "_unless_unsaved", fake_unless)
    screen = MapperScreen.__new__(MapperScreen)
    await MapperScreen.action_quit_workbench(screen)
    assert called == ["quit iwb"]
