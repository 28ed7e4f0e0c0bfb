"""`MapperScreen`: the data mapper (`m` on the main screen), keyboard-driven.

     Data mapper — order_to_invoice ●              (● unsaved changes)
     mapping order_to_invoice (m)   sample events/new-order.json (s)
    ╭ Source ─────────────╮╭ Target ──────────────────────────╮╭ Preview ──────────────────╮
    │▼ src: Order         ││✓ customer: str ← src.customer.…  ││ ✖ 1 error                 │
    │├ customer: str = "a…││* currency: str                   ││ { "customer": "ada@…", …} │
    │├ ▼ items: list[Item]││✖ total: float ← order_total(src  ││ ✖ total: syntax error …   │
    ╰─────────────────────╯╰──────────────────────────────────╯├ Sample (JSON) ────────────┤
     total = order_total(src▏                                   ╰───────────────────────────╯
     ✖ total: syntax error: '(' was never closed        (the selected field, or the last key)
     esc Close  ^s Save  ^z Undo  ^y Redo  e Edit  l Link  d Unmap  a Auto-map  s Sample …

The source tree (left) shows the sources' fields and the sample's values; the target
tree shows every target field, marked `*` when required and unmapped, `✖` with an error,
and the expression that maps it. The line under the trees edits the selected field's
expression, with completion; Enter applies it. Every change is checked and evaluated
over the chosen sample at once (in a thread), and shows on the fields and in the preview.
Samples are captured events whose payload is the source type, saved events in `events/`,
an example made from the types, or JSON typed into the sample pane.

`a` proposes fields by name and type to accept (`y`) or reject (`n`); `l` on a source
field then `l` on a target field links them; `d` unmaps; ctrl+z/ctrl+y undo and redo;
ctrl+s writes the file (comments and order kept), and hot reload puts it in service. The
runtime keeps the last good compiled version serving until a saved file loads cleanly.

Everything here reads the `Runtime` (its mapping registry, capture store and settings)
and the mapper core, through `workbench.tui.mapper_session`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Header, Input, Static, TextArea, Tree

from workbench.errors import WorkbenchError
from workbench.runtime.bus import Message as BusMessage
from workbench.runtime.bus import ReloadFinished
from workbench.runtime.reload import ReloadReport
from workbench.tui.mapper_session import (
    NO_VALUE,
    Analysis,
    Change,
    MapperSession,
    MapperSessionError,
    Sample,
    analyze,
    check,
    collect_samples,
    completions,
    editor_config,
    editor_text,
    edits_for,
    link_expression,
    mapping_names,
    model_refs,
    new_session,
    output_value,
    proposal_edits,
    proposals,
    run_preview,
    sample_text,
    set_field,
    typed_sample,
)
from workbench.tui.widgets.mapper_confirm import DiscardBar
from workbench.tui.widgets.mapper_expression import ExpressionInput
from workbench.tui.widgets.mapper_keys import KeyBar
from workbench.tui.widgets.mapper_new import NewMappingForm
from workbench.tui.widgets.mapper_picker import Picker
from workbench.tui.widgets.mapper_preview import MapperPreview
from workbench.tui.widgets.mapper_proposals import ProposalList
from workbench.tui.widgets.mapper_source_tree import SourceTree, show_value
from workbench.tui.widgets.mapper_target_tree import TargetTree

if TYPE_CHECKING:
    from workbench.mapper.edit import FieldEdit
    from workbench.mapper.registry import MappingRegistry
    from workbench.runtime.runtime import Runtime

NEW = "+new"
"""The mapping list's entry that opens the new-mapping form (not a valid mapping name)."""
TYPED = "typed"
"""The sample list's entry for JSON typed into the sample pane."""
TYPING_DELAY = 0.3
"""Seconds after the last key in the sample pane before the preview is recomputed."""

Built = tuple[Analysis, list[Sample], Sample | None]
PanelT = TypeVar("PanelT", bound=Widget)


class MapperScreen(Screen[None]):
    """The data mapper over the runtime's mappings.

    Args:
        runtime: the running project.
        mapping: the mapping to open (default: the first of the project's; the
            new-mapping form when it has none).
    """

    DEFAULT_CSS: ClassVar[str] = """
    MapperScreen {
        layout: vertical;
    }
    MapperScreen #mapper-pickers {
        height: 1;
        background: $panel;
    }
    MapperScreen #mapper-body {
        height: 1fr;
    }
    MapperScreen #mapper-source {
        width: 3fr;
    }
    MapperScreen #mapper-target {
        width: 4fr;
    }
    MapperScreen #mapper-side {
        width: 4fr;
    }
    MapperScreen #mapper-preview {
        height: 3fr;
    }
    MapperScreen #mapper-sample-text {
        height: 2fr;
        border: round $primary 40%;
        border-title-color: $text;
    }
    MapperScreen #mapper-sample-text:focus {
        border: round $primary;
    }
    MapperScreen #mapper-editor-row {
        height: 1;
        margin-top: 1;
    }
    MapperScreen #mapper-field {
        width: auto;
        max-width: 40;
        padding: 0 1;
        text-style: bold;
    }
    MapperScreen #mapper-status {
        height: 1;
        padding: 0 1;
    }
    MapperScreen .mapper-panel {
        display: none;
    }
    MapperScreen .mapper-panel.-shown {
        display: block;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="mapper-close",
                tooltip="Close the data mapper (asks first when changes are unsaved)"),
        Binding("q", "quit_workbench", "Quit", id="mapper-quit",
                tooltip="Quit iwb (asks first when the mapping has unsaved changes)"),
        Binding("ctrl+s", "save", "Save", id="mapper-save", priority=True,
                tooltip="Write the mapping file, keeping its comments and order; hot reload "
                "puts it in service"),
        Binding("ctrl+z", "undo", "Undo", id="mapper-undo",
                tooltip="Undo the last change of the mapping"),
        Binding("ctrl+y", "redo", "Redo", id="mapper-redo",
                tooltip="Redo the last undone change of the mapping"),
        Binding("e", "edit", "Edit", id="mapper-edit",
                tooltip="Edit the selected target field's expression (Enter on the field "
                "does too)"),
        Binding("l", "link", "Link", id="mapper-link",
                tooltip="On a source field: mark it; then on a target field: map the target "
                "from it"),
        Binding("d,delete", "unmap", "Unmap", id="mapper-unmap",
                tooltip="Delete the selected target field's expression"),
        Binding("a", "automap", "Auto-map", id="mapper-automap",
                tooltip="Propose unmapped fields by name and type, to accept one by one"),
        Binding("s", "pick_sample", "Sample", id="mapper-pick-sample",
                tooltip="Choose the preview's sample: a captured event, a saved event, the "
                "example, or what you type"),
        Binding("m", "pick_mapping", "Mapping", id="mapper-pick-mapping",
                tooltip="Open another mapping of the project"),
        Binding("n", "new_mapping", "New", id="mapper-new",
                tooltip="Create a mapping: name, source type and target type"),
    ]

    class Ready(Message):
        """A mapping is shown in full for the first time: trees, editor and preview (posted
        after that render)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class Reloaded(Message):
        """The runtime finished a hot reload."""

        def __init__(self, report: ReloadReport) -> None:
            super().__init__()
            self.report = report

    def __init__(self, runtime: Runtime, mapping: str | None = None) -> None:
        super().__init__()
        self.runtime = runtime
        self.wanted = mapping
        self.session: MapperSession | None = None
        self.analysis: Analysis | None = None
        """The analysis on show (of `revision`, once the worker caught up)."""
        self.revision = 0
        """Bumped by every change of the text or the sample."""
        self.samples: list[Sample] = []
        self.sample: Sample | None = None
        self.ready = False
        """The open mapping was shown in full (see `Ready`)."""
        self.selected_path: str | None = None
        """The target field the editor edits."""
        self.last_change: Change | None = None
        self._sample_text = ""
        """The sample pane's text as last loaded (typing makes it differ)."""
        self._notice: tuple[str, str] | None = None
        """What the last action did, for the status line."""
        self._pending: Callable[[], None] | None = None
        """What to do once the user agreed to drop unsaved changes."""
        self._typing: Timer | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._fallback: MappingRegistry | None = None

    # ================================================================== layout

    def compose(self) -> ComposeResult:
        # The panels that open on a key (the chooser, the new-mapping form, the auto-map
        # list, the unsaved-changes question) are mounted the first time they are needed:
        # every widget composed here is paid for each time the mapper opens.
        yield Header(show_clock=False, icon="◆")
        yield Static("", id="mapper-pickers")
        with Horizontal(id="mapper-body"):
            yield SourceTree(id="mapper-source")
            yield TargetTree(id="mapper-target")
            with Vertical(id="mapper-side"):
                yield MapperPreview(id="mapper-preview")
                area = TextArea.code_editor("", language="json", id="mapper-sample-text",
                                            soft_wrap=False, show_line_numbers=False)
                area.border_title = "Sample (JSON)"
                yield area
        with Horizontal(id="mapper-editor-row"):
            yield Static("", id="mapper-field")
            yield ExpressionInput(self._complete, id="mapper-expression")
        yield Static("", id="mapper-status")
        yield KeyBar(id="mapper-keys")

    @property
    def source_tree(self) -> SourceTree:
        return self.query_one("#mapper-source", SourceTree)

    @property
    def target_tree(self) -> TargetTree:
        return self.query_one("#mapper-target", TargetTree)

    @property
    def expression(self) -> ExpressionInput:
        return self.query_one("#mapper-expression", ExpressionInput)

    @property
    def preview(self) -> MapperPreview:
        return self.query_one("#mapper-preview", MapperPreview)

    @property
    def sample_area(self) -> TextArea:
        return self.query_one("#mapper-sample-text", TextArea)

    async def _panel(self, cls: type[PanelT], panel_id: str, before: str) -> PanelT:
        """The panel `panel_id`, mounted before `before` the first time."""
        try:
            return self.query_one(f"#{panel_id}", cls)
        except NoMatches:
            panel = cls(id=panel_id)
            panel.add_class("mapper-panel")
            await self.mount(panel, before=before)
            return panel

    def _shown(self, panel_id: str) -> bool:
        try:
            return self.query_one(f"#{panel_id}").has_class("-shown")
        except NoMatches:
            return False

    @property
    def settled(self) -> bool:
        """What is shown is the analysis of the latest change."""
        return self.analysis is not None and self.analysis.revision == self.revision

    def on_mount(self) -> None:
        self._unsubscribe = self.runtime.bus.subscribe(self._on_bus)
        self.title = "Data mapper"
        self.expression.load(None, "")
        names = mapping_names(self.runtime)
        name = self.wanted if self.wanted in names else (names[0] if names else None)
        if self.wanted is not None and self.wanted not in names:
            self._tell(f"The project has no mapping {self.wanted!r}.", "red")
        self._pickers()
        if name is None:
            self.run_worker(self.action_new_mapping(), group="mapper-panel")
            return
        self.open_mapping(name)
        self.target_tree.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_bus(self, message: BusMessage) -> None:
        # called for every runtime message, on the loop: O(1)
        if isinstance(message, ReloadFinished):
            self.post_message(self.Reloaded(message.report))

    # ================================================================== opening

    def _registry(self) -> MappingRegistry:
        if self.runtime.mappings is not None:
            return self.runtime.mappings
        if self._fallback is None:
            # no mapping loaded yet (a project without mappings/): check against an
            # empty registry of the same folder
            from workbench.mapper.registry import MappingRegistry

            folder = self.runtime.settings.folder("mappings")
            self._fallback = MappingRegistry(folder, self.runtime.root)
        return self._fallback

    def _pickers(self) -> None:
        """The line under the title: the mapping and the sample, and their keys."""
        text = Text(" mapping ", style="dim")
        text.append(self.session.name if self.session is not None else "(none)",
                    style="bold")
        text.append(" (m)   sample ", style="dim")
        text.append(self.sample.label if self.sample is not None else "(none)", style="bold")
        text.append(" (s)", style="dim")
        self.query_one("#mapper-pickers", Static).update(text)

    def open_mapping(self, name: str) -> None:
        """Open mapping `name` (unsaved changes of the open one are dropped)."""
        try:
            session = MapperSession(self.runtime, name)
        except MapperSessionError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
            return
        self._start(session)

    def _start(self, session: MapperSession, *, propose: bool = False) -> None:
        self.session = session
        self.ready = False
        self.analysis = None
        self.sample = None
        self.samples = []
        self.selected_path = None
        self.last_change = None
        self.source_tree.mark(None)
        self._hide_panel("mapper-proposals")
        self._pickers()
        self._title()
        self.revision += 1
        self.run_worker(self._build(session, self.revision, propose), group="mapper-analysis",
                        exclusive=True)

    async def _build(self, session: MapperSession, revision: int, propose: bool) -> None:
        registry, runtime, text = self._registry(), self.runtime, session.text

        def build() -> Built:
            analysis = check(registry, editor_config(runtime), session.name, text, revision)
            samples = collect_samples(runtime, analysis.bound, analysis.sources)
            sample = samples[0] if samples else None
            run_preview(analysis, registry, sample.payload if sample is not None else None)
            return analysis, samples, sample

        analysis, samples, sample = await asyncio.to_thread(build)
        if session is not self.session or revision != self.revision or not self._alive():
            return
        self.samples = samples
        self._use_sample(sample)
        self._show(analysis)
        if self.selected_path is None:
            self.selected_path = self.target_tree.selected_path
            self._sync_editor(force=True)
        self.call_after_refresh(self._announce, session.name)
        if propose:
            await self.action_automap()

    def _announce(self, name: str) -> None:
        self.ready = True
        self.post_message(self.Ready(name))

    # ================================================================== samples

    def _use_sample(self, sample: Sample | None) -> None:
        self.sample = sample
        self._load_sample_text(sample_text(sample) if sample is not None else "")
        self._pickers()

    def _load_sample_text(self, text: str) -> None:
        self.sample_area.border_subtitle = ""
        self._sample_text = text
        if self.sample_area.text != text:
            self.sample_area.load_text(text)

    def _sample_picked(self, key: str) -> None:
        if self.sample is not None and key == self.sample.key:
            return
        sample = next((s for s in self.samples if s.key == key), None)
        if sample is None:
            return
        self._use_sample(sample)
        self._recompute()

    @on(TextArea.Changed, "#mapper-sample-text")
    def _sample_typed(self, message: TextArea.Changed) -> None:
        if message.text_area.text == self._sample_text:
            return
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(TYPING_DELAY, self._typed)

    def _typed(self) -> None:
        self._typing = None
        text = self.sample_area.text
        if text == self._sample_text:
            return
        try:
            sample = typed_sample(text)
        except MapperSessionError as exc:
            self.sample_area.border_subtitle = "✖ not JSON"
            self._tell(exc.message, "red")
            return
        self.sample_area.border_subtitle = ""
        self._sample_text = text
        self.sample = sample
        self._pickers()
        self._recompute()

    # ================================================================== analysis

    def _recompute(self) -> None:
        session = self.session
        if session is None:
            return
        self.revision += 1
        payload = self.sample.payload if self.sample is not None else None
        self.run_worker(self._analyze(session, self.revision, payload),
                        group="mapper-analysis", exclusive=True)

    async def _analyze(self, session: MapperSession, revision: int, payload: Any) -> None:
        registry, runtime, text = self._registry(), self.runtime, session.text
        analysis = await asyncio.to_thread(
            lambda: analyze(registry, editor_config(runtime), session.name, text, payload,
                            revision)
        )
        if session is self.session and revision == self.revision and self._alive():
            self._show(analysis)

    def _alive(self) -> bool:
        """The screen still has its widgets (a worker may finish while the app closes)."""
        try:
            self.query_one("#mapper-status", Static)
        except NoMatches:
            return False
        return True

    def _show(self, analysis: Analysis) -> None:
        self.analysis = analysis
        problem = None
        if not analysis.sources or not analysis.targets:
            problem = analysis.general[0] if analysis.general else "no types to show"
        self.source_tree.show(analysis.sources, analysis.values, analysis.counts,
                              problem if not analysis.sources else None)
        self.target_tree.show(analysis.targets, analysis.fields, problem)
        self.preview.show(analysis)
        self._sync_editor()
        self._title()

    def _title(self) -> None:
        session = self.session
        if session is None:
            self.title, self.sub_title = "Data mapper", ""
            return
        dirty = session.dirty
        self.title = f"Data mapper — {session.name}{' ●' if dirty else ''}"
        counts = []
        if self.analysis is not None:
            if self.analysis.error_count:
                counts.append(f"{self.analysis.error_count} error(s)")
            if self.analysis.unmapped:
                counts.append(f"{len(self.analysis.unmapped)} unmapped")
        state = "unsaved changes" if dirty else "saved"
        if session.saved is None:
            state = "new, not saved yet"
        self.sub_title = " · ".join([state, *counts, *self._serving()])

    def _serving(self) -> list[str]:
        """What the runtime serves, when the saved file does not load."""
        registry, session = self.runtime.mappings, self.session
        entry = registry.entries.get(session.name) if registry and session else None
        if entry is None or entry.ok:
            return []
        if entry.compiled is not None:
            return ["the saved file does not load: the last good version serves"]
        return ["the saved file does not load: not in service"]

    # ================================================================== the editor

    def _complete(self, text: str) -> tuple[str, list[str]]:
        return completions(self.analysis, self.selected_path or "", text)

    def _raw(self, path: str | None) -> Any:
        if path is None or self.analysis is None:
            return None
        view = self.analysis.fields.get(path)
        return view.raw if view is not None else None

    def _sync_editor(self, *, force: bool = False) -> None:
        """Show the selected field in the editor; a line being typed is kept unless
        `force` (the selection moved)."""
        path = self.selected_path
        editor = self.expression
        text, hint = editor_text(self._raw(path))
        if force or editor.path != path or not editor.changed:
            editor.load(path, text)
        label = self.query_one("#mapper-field", Static)
        label.update(f"{path} =" if path else "")
        self._field_status(hint)

    def _field_status(self, hint: str = "") -> None:
        """The status line for the selected field: its errors, else what the last action
        did, else its warnings, else the hint."""
        view = self.analysis.fields.get(self.selected_path or "") if self.analysis else None
        if view is not None and view.errors:
            self._say(f"✖ {view.path}: {view.errors[0]}", "red")
        elif self._notice is not None:
            self._say(*self._notice)
        elif view is not None and view.warnings:
            self._say(f"! {view.path}: {view.warnings[0]}", "yellow")
        elif view is not None and view.unmapped_required:
            self._say(f"* {view.path} is required and not mapped: type its expression, "
                      "link a source field (l), or auto-map (a)", "yellow")
        elif view is not None and self.analysis is not None and view.raw is not None:
            value = output_value(self.analysis.output, view.path)
            shown = f"{view.path} → {show_value(value, 60)}" if value is not NO_VALUE else ""
            self._say(" · ".join(part for part in (shown, hint) if part), "dim")
        else:
            self._say(hint, "dim")

    def _say(self, text: str, style: str = "") -> None:
        self.query_one("#mapper-status", Static).update(Text(text, style=style,
                                                             no_wrap=True,
                                                             overflow="ellipsis"))

    def _tell(self, text: str, style: str = "") -> None:
        """Say what an action did; it stays until the selection moves."""
        self._notice = (text, style)
        self._say(text, style)

    @on(Tree.NodeHighlighted, "#mapper-target")
    def _target_highlighted(self, message: Tree.NodeHighlighted[str]) -> None:
        path = message.node.data
        if path == self.selected_path:
            return
        self.selected_path = path
        self._notice = None
        self._sync_editor(force=True)

    @on(Tree.NodeSelected, "#mapper-target")
    def _target_selected(self, message: Tree.NodeSelected[str]) -> None:
        self.action_edit()

    @on(Input.Changed, "#mapper-expression")
    def _expression_changed(self, message: Input.Changed) -> None:
        if not self.expression.has_focus:
            return
        _word, found = self._complete(message.value)
        if found:
            shown = " · ".join(found[:8]) + (" …" if len(found) > 8 else "")
            self._say(f"→ {shown}", "cyan")
        elif self.expression.changed:
            self._say("Enter applies · Escape puts the expression back", "dim")

    @on(Input.Submitted, "#mapper-expression")
    def _expression_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        path = self.selected_path
        if path is None:
            return
        if self.expression.changed:
            try:
                edits = edits_for(path, message.value, self._raw(path))
            except MapperSessionError as exc:
                self._tell(f"✖ {exc.message}", "red")
                return
            label = f"set {path}" if message.value.strip() else f"unmap {path}"
            if not self._apply(edits, label):
                return  # the line stays, to be fixed
        self.target_tree.focus()

    @on(ExpressionInput.Left)
    def _editor_left(self) -> None:
        self.target_tree.focus()

    def _apply(self, edits: Sequence[FieldEdit], label: str) -> bool:
        session = self.session
        if session is None or not edits:
            return False
        try:
            change = session.apply(edits, label)
        except WorkbenchError as exc:  # EditError: the edit does not fit the file
            self._tell(f"✖ {exc.message}", "red")
            self.notify(exc.message, title="Cannot change the mapping", severity="error",
                        markup=False)
            return False
        self.last_change = change
        self.expression.load(self.selected_path, self.expression.value)
        self._recompute()
        self._title()
        self._tell(label, "green")
        return True

    # ================================================================== actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("undo", "redo", "save", "edit", "link", "unmap", "automap"):
            return self.session is not None or None
        return True

    def action_edit(self) -> None:
        if self.selected_path is None:
            self._tell("Select a target field first.", "yellow")
            return
        editor = self.expression
        editor.focus()
        editor.cursor_position = len(editor.value)

    def action_link(self) -> None:
        analysis = self.analysis
        if analysis is None:
            return
        source = self.source_tree
        if self.focused is source:
            path = source.selected_path
            if path is None:
                return
            if path == source.marked:
                source.mark(None)
                self._tell("Link cancelled.", "dim")
                return
            source.mark(path)
            self._tell(f"⇢ {path}: now select a target field and press l", "magenta")
            return
        target = self.selected_path
        if source.marked is None:
            self._tell("Mark a source field first: l on a field of the source tree.", "yellow")
            return
        if target is None:
            self._tell("Select a target field, then press l.", "yellow")
            return
        try:
            expr = link_expression(analysis, source.marked, target)
        except MapperSessionError as exc:
            self._tell(exc.message, "red")
            return
        source.mark(None)
        self._apply(set_field(target, expr), f"link {target} ← {expr}")

    def action_unmap(self) -> None:
        path = self.selected_path
        if path is None:
            return
        if self.focused is not self.target_tree:
            self._tell(f"d unmaps the selected target field ({path}): move to the target "
                       "tree first (tab)", "yellow")
            return
        if self._raw(path) is None:
            self._tell(f"{path} is not mapped.", "yellow")
            return
        self._apply(set_field(path, None), f"unmap {path}")

    def action_undo(self) -> None:
        session = self.session
        change = session.undo() if session is not None else None
        if change is None:
            self._tell("Nothing to undo.", "yellow")
            return
        self._after_history(change, "undid")

    def action_redo(self) -> None:
        session = self.session
        change = session.redo() if session is not None else None
        if change is None:
            self._tell("Nothing to redo.", "yellow")
            return
        self._after_history(change, "redid")

    def _after_history(self, change: Change, verb: str) -> None:
        self.last_change = change
        self.expression.load(self.selected_path, self.expression.value)
        self._recompute()
        self._title()
        self._tell(f"{verb}: {change.label}", "green")

    async def action_automap(self) -> None:
        analysis = self.analysis
        if analysis is None:
            return
        found = proposals(analysis)
        if not found:
            self._tell("Nothing to auto-map: no unmapped target field has a source field of "
                       "the same name and a fitting type.", "yellow")
            return
        listing = await self._panel(ProposalList, "mapper-proposals", "#mapper-editor-row")
        listing.show(found)
        self._reveal(listing)
        listing.focus()

    @on(ProposalList.Accepted)
    def _proposals_accepted(self, message: ProposalList.Accepted) -> None:
        accepted = message.proposals
        label = (f"auto-map {accepted[0].path}" if len(accepted) == 1
                 else f"auto-map {len(accepted)} fields")
        self._apply(proposal_edits(accepted), label)

    @on(ProposalList.Closed)
    def _proposals_closed(self) -> None:
        self._hide_panel("mapper-proposals")
        self.target_tree.focus()

    async def action_pick_mapping(self) -> None:
        names = mapping_names(self.runtime)
        current = self.session.name if self.session is not None else None
        if current is not None and current not in names:
            names.append(current)
        entries = [*((n, n) for n in names), ("+ new mapping…", NEW)]
        await self._pick("mapping", "Mapping", entries, current)

    async def action_pick_sample(self) -> None:
        entries = [(s.label, s.key) for s in self.samples]
        if self.sample is not None and self.sample.key == TYPED:
            entries.append((self.sample.label, TYPED))
        if not entries:
            self._tell("No sample: the mapping's source types did not load.", "yellow")
            return
        await self._pick("sample", "Sample", entries,
                         self.sample.key if self.sample is not None else None)

    async def _pick(self, kind: str, title: str, entries: Sequence[tuple[str, str]],
                    current: str | None) -> None:
        picker = await self._panel(Picker, "mapper-picker", "#mapper-body")
        picker.offer(kind, title, entries, current)
        self._reveal(picker)
        picker.focus()

    @on(Picker.Closed)
    def _picker_closed(self) -> None:
        self._hide_panel("mapper-picker")
        self.target_tree.focus()

    @on(Picker.Picked)
    async def _picked(self, message: Picker.Picked) -> None:
        if message.kind == "sample":
            self._sample_picked(message.value)
            return
        name = message.value
        if name == NEW:
            await self.action_new_mapping()
        elif self.session is None or name != self.session.name:
            await self._unless_unsaved(f"open {name}", lambda: self.open_mapping(name))

    # ------------------------------------------------------------------ new mapping

    async def action_new_mapping(self) -> None:
        form = await self._panel(NewMappingForm, "mapper-new", "#mapper-body")
        self._reveal(form)
        form.open(model_refs(self.runtime))

    @on(NewMappingForm.Submitted)
    async def _new_submitted(self, message: NewMappingForm.Submitted) -> None:
        form = self.query_one("#mapper-new", NewMappingForm)
        try:
            session = new_session(self.runtime, message.name, message.source, message.target)
        except MapperSessionError as exc:
            form.say(exc.message, error=True)
            return

        def create() -> None:
            self._hide(form)
            self._start(session, propose=True)
            self.target_tree.focus()

        await self._unless_unsaved(f"create {message.name}", create)

    @on(NewMappingForm.Cancelled)
    def _new_cancelled(self) -> None:
        self._hide_panel("mapper-new")
        self.target_tree.focus()

    # ------------------------------------------------------------------ save and close

    def action_save(self) -> None:
        session = self.session
        if session is None:
            return
        try:
            session.save()
        except OSError as exc:
            self.notify(f"Could not write {session.path}: {exc}", title="Save failed",
                        severity="error", markup=False)
            return
        self._title()
        try:
            shown = session.path.relative_to(self.runtime.root)
        except ValueError:
            shown = session.path
        errors = self.analysis.error_count + len(self.analysis.unmapped) if self.analysis else 0
        if errors:
            self.notify(
                f"Saved {shown} with {errors} problem(s): the last good version keeps "
                "serving until the file loads without errors.",
                title="Saved with errors", severity="warning", markup=False,
            )
        else:
            self.notify(f"Saved {shown}", title="Mapping saved", markup=False)
        if not self.runtime.reload_enabled:
            # nothing watches the project: put the file in service here
            self.run_worker(self._reload(session), group="mapper-reload")
        if self._shown("mapper-confirm"):
            self._answered(DiscardBar.Answered(True))

    async def _reload(self, session: MapperSession) -> None:
        try:
            await self.runtime.reload([session.path])
        except WorkbenchError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)

    async def action_close(self) -> None:
        await self._unless_unsaved("close the mapper", self._close)

    def _close(self) -> None:
        self.dismiss(None)

    async def action_quit_workbench(self) -> None:
        async def quit_app() -> None:
            await self.app.action_quit()

        def quit_later() -> None:
            self.app.call_later(quit_app)

        await self._unless_unsaved("quit iwb", quit_later)

    async def _unless_unsaved(self, then: str, action: Callable[[], None]) -> None:
        """Run `action`, asking first when the open mapping has unsaved changes."""
        session = self.session
        if session is None or not session.dirty:
            action()
            return
        self._pending = action
        bar = await self._panel(DiscardBar, "mapper-confirm", "#mapper-editor-row")
        bar.ask(session.name, then)
        self._reveal(bar)
        bar.focus()

    @on(DiscardBar.Answered)
    def _answered(self, message: DiscardBar.Answered) -> None:
        self._hide_panel("mapper-confirm")
        pending, self._pending = self._pending, None
        if message.discard and pending is not None:
            pending()
        else:
            self.target_tree.focus()

    def _reveal(self, widget: Any) -> None:
        widget.add_class("-shown")

    def _hide(self, widget: Any) -> None:
        widget.remove_class("-shown")

    def _hide_panel(self, panel_id: str) -> None:
        try:
            self.query_one(f"#{panel_id}").remove_class("-shown")
        except NoMatches:
            pass

    # ================================================================== reloads

    @on(Reloaded)
    def _reloaded(self, message: Reloaded) -> None:
        session = self.session
        if session is None:
            return
        try:
            on_disk: str | None = session.path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            on_disk = None
        if on_disk is not None and on_disk != session.saved:
            if session.dirty and session.saved is not None:
                self.notify(f"{session.name} changed on disk; saving here overwrites it.",
                            title="Mapping changed", severity="warning", markup=False)
            elif not session.dirty:
                session.replace_text(on_disk, saved=True)
        self._title()
        self._recompute()  # the types may have changed under the mapping
        self._serving_status()

    def _serving_status(self) -> None:
        registry = self.runtime.mappings
        session = self.session
        if registry is None or session is None:
            return
        entry = registry.entries.get(session.name)
        if entry is None or entry.ok or session.dirty:
            return
        first = entry.errors[0].message if entry.errors else "it does not load"
        if entry.compiled is not None:
            self._tell(f"The saved file has errors ({first}); the last good version keeps "
                       "serving.", "red")
        else:
            self._tell(f"The saved file has errors ({first}); the mapping is not in service.",
                       "red")
