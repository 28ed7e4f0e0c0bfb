"""The main screen of `iwb open`: artifact tree, live event stream, event detail.

    ┌ Artifacts ──────────┐┌ Filter ────────────────────────────────────────┐
    │ ▼ Integration as API ││ (hidden until /)                               │
    │   ● orders listening ││ Events ─────────────────────────── following ─┤
    │ ▼ Other              ││ time  artifact  kind  summary  status  duration│
    ├ Rate ───────────────┤├ Detail ────────────────────────────────────────┤
    │ ▁▂▅▇▃               ││ CloudEvent · Transport · Payload · Outcome     │
    └─────────────────────┘└────────────────────────────────────────────────┘
     status bar: project · profile · last reload · events/s · errors

Everything it shows comes from the `Runtime`: artifact states, the capture store (read in
threads), the bus (through the app's `LiveFeed`, drained every `TICK` seconds so a flood of
events costs one table update per tick). Every action acts on what is selected: the event
under the stream's cursor when the stream has focus, else the artifact under the tree's
cursor.

The data mapper (`m`) is offered only when `workbench.tui.screens.mapper` is installed:
that module provides `MapperScreen(runtime, mapping=None)`; without it the binding is
disabled and hidden. With a node under "Data mappings" selected in the tree, `m` opens that
mapping.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.util
import json
import os
import shlex
import subprocess
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header

from workbench.errors import CaptureNotFoundError, WorkbenchError
from workbench.runtime.dispatch import ArtifactState
from workbench.tui.feed import LiveFeed, StreamItem
from workbench.tui.filters import EventFilter
from workbench.tui.messages import (
    ArtifactStatusChanged,
    ReloadCompleted,
    RuntimeFailed,
    RuntimeLogged,
    RuntimeStarted,
)
from workbench.tui.project_view import (
    TreeEntry,
    artifact_location,
    entry_location,
    event_location,
    other_parts,
    problems,
)
from workbench.tui.screens.config import ConfigScreen, mask_secrets
from workbench.tui.screens.error import ErrorScreen
from workbench.tui.screens.log import LogScreen
from workbench.tui.widgets.artifact_panel import ArtifactPanel
from workbench.tui.widgets.artifact_tree import ArtifactTree
from workbench.tui.widgets.event_detail import EventDetail
from workbench.tui.widgets.event_stream import EventStream
from workbench.tui.widgets.filter_bar import FilterBar
from workbench.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from workbench.runtime.runtime import Runtime

TICK = 0.1
"""Seconds between two renders of the live feed..."""
TICK_BUSY = 0.5
"""...or, in a flood (more than `BUSY_BATCH` events in one tick), between two renders:
each render repaints the whole table, and nobody reads rows that fast."""
BUSY_BATCH = 100
SIDE_INTERVAL = 0.5
"""Seconds between two updates of the counters, rates and sparkline."""
DETAIL_DELAY = 0.25
"""While following, the detail pane shows the newest event at most this often..."""
DETAIL_DELAY_BUSY = 1.0
"""...or this often when more than `BUSY_RATE` events per second arrive (nobody reads
events flying by; laying out the detail pane is the costliest refresh there is)."""
BUSY_RATE = 20.0
TREE_DETAIL_DELAY = 0.1
"""The detail pane shows the tree's selection once the cursor rested this long."""
MAPPER_MODULE = "workbench.tui.screens.mapper"
LOG_LINES = 500
"""Runtime log lines kept for the log screen."""
NOTIFY_REPEAT = 30.0
"""The same warning is notified at most once in this many seconds."""


class MainScreen(Screen[None]):
    """The workbench's main screen over one runtime.

    Args:
        runtime: the runtime (started by the app).
        feed: the app's live feed of handled events.
        window: rows kept in the event stream.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter",
                tooltip="Filter events by artifact:, kind:, status: and text (whole history)"),
        Binding("escape", "clear_filter", "Clear filter", id="clear-filter", show=False,
                tooltip="Clear the filter and show every event again"),
        Binding("f", "follow", "Follow", id="follow",
                tooltip="Follow new events again (jump to the newest)"),
        Binding("i", "inject", "Inject", id="inject",
                tooltip="Open the inject console for the selected artifact or event"),
        Binding("r", "replay", "Replay", id="replay",
                tooltip="Replay the marked (or selected) events against the current code"),
        Binding("e", "edit", "Edit", id="edit",
                tooltip="Open the selected handler (or error line) in $EDITOR"),
        Binding("c", "copy_payload", "Copy", id="copy-payload",
                tooltip="Copy the selected event's payload to the clipboard"),
        Binding("s", "save_fixture", "Save", id="save-fixture",
                tooltip="Save the selected event as a CloudEvents fixture in events/"),
        Binding("ctrl+s", "start_artifact", "Start", id="start-artifact", show=False,
                tooltip="Start the selected artifact's listener"),
        Binding("x", "stop_artifact", "Stop", id="stop-artifact", show=False,
                tooltip="Stop the selected artifact's listener"),
        Binding("R", "restart_artifact", "Restart", id="restart-artifact", show=False,
                tooltip="Restart the selected artifact's listener"),
        Binding("g", "show_config", "Config", id="show-config", show=False,
                tooltip="Show the selected artifact's resolved configuration"),
        Binding("t", "test_connection", "Test conn", id="test-connection", show=False,
                tooltip="Check the health of the selected artifact's connection"),
        Binding("l", "runtime_log", "Log", id="runtime-log", show=False,
                tooltip="Show the recent runtime log"),
        Binding("m", "data_mapper", "Mapper", id="data-mapper",
                tooltip="Open the data mapper (on the selected mapping, if one is selected)"),
    ]

    def __init__(self, runtime: Runtime, feed: LiveFeed, window: int = 1000) -> None:
        super().__init__()
        self.runtime = runtime
        self.feed = feed
        self.window = window
        self.started = False
        """The runtime finished starting (the tree and history are loaded)."""
        self.log_lines: deque[tuple[str, str, str]] = deque(maxlen=LOG_LINES)
        self._detail_item: StreamItem | None = None
        self._detail_timer: Timer | None = None
        self._tree_timer: Timer | None = None
        self._side_at = 0.0
        self._stream_at = 0.0
        self._counts_stale = False
        self._notified: dict[str, float] = {}
        self._refocus = True
        self.artifact_tree = ArtifactTree(runtime.root, id="artifacts")
        self.panel = ArtifactPanel(id="artifact-panel")
        self.filter_bar = FilterBar(id="filter")
        self.stream = EventStream(window, id="events")
        self.detail = EventDetail(runtime.root, id="detail")
        self.status = StatusBar(id="status")

    # ================================================================== layout

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield self.artifact_tree
                yield self.panel
            with Vertical(id="right"):
                yield self.filter_bar
                yield self.stream
                yield self.detail
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        self.artifact_tree.loading = True
        self.status.project = self.runtime.root.name
        self.status.profile = self.runtime.profile
        self.status.render_status()
        self.set_interval(TICK, self._tick)
        self.stream.focus()

    # ================================================================== runtime messages

    @on(RuntimeStarted)
    def _runtime_started(self) -> None:
        self.started = True
        self.status.project = self.runtime.settings.name or self.runtime.root.name
        self.status.state = "running"
        self.status.render_status()
        self.app.title = f"iwb — {self.status.project}"
        self.app.sub_title = f"profile {self.runtime.profile}" if self.runtime.profile else ""
        self._rebuild_tree()
        self.artifact_tree.loading = False
        found = problems(self.runtime)
        if found:
            self.notify(
                f"The project has {len(found)} problem(s); see Problems in the tree.",
                title="Project problems", severity="error", markup=False,
            )
        self._load_tail()

    @on(RuntimeFailed)
    def _runtime_failed(self, message: RuntimeFailed) -> None:
        self.artifact_tree.loading = False
        self.status.state = message.title
        self.status.render_status()
        self.app.push_screen(ErrorScreen(message.title, message.text))

    @on(ArtifactStatusChanged)
    def _artifact_changed(self, message: ArtifactStatusChanged) -> None:
        if not self.started:
            return
        state = self.runtime.artifacts.get(message.name)
        if state is None or message.name not in self.artifact_tree.artifact_names():
            self._rebuild_tree()
            return
        self.artifact_tree.update_artifact(state, state.events, self.feed.rate(state.name))
        self._refresh_selection_views()

    @on(ReloadCompleted)
    def _reload_completed(self, message: ReloadCompleted) -> None:
        report = message.report
        self.status.show_reload(report, datetime.now())
        self.notify(
            report.summary(), title="Reload" if report.ok else "Reload failed",
            severity="information" if report.ok else "error", markup=False,
            timeout=4 if report.ok else 10,
        )
        if self.started:
            self._rebuild_tree()
            self._refresh_selection_views()

    @on(RuntimeLogged)
    def _runtime_logged(self, message: RuntimeLogged) -> None:
        self.log_lines.append((datetime.now().strftime("%H:%M:%S"), message.level,
                               message.text))
        if message.level not in ("warning", "error") or "swapped" in message.fields:
            return  # reloads are notified by ReloadCompleted
        now = time.monotonic()
        if now - self._notified.get(message.text, -NOTIFY_REPEAT) < NOTIFY_REPEAT:
            return
        self._notified[message.text] = now
        self.notify(message.text, title="Runtime", markup=False,
                    severity="error" if message.level == "error" else "warning")

    # ================================================================== the live feed

    def _tick(self) -> None:
        now = time.monotonic()
        if self.feed.pending > BUSY_BATCH and now - self._stream_at < TICK_BUSY:
            return  # a flood: the feed keeps the newest events until the next render
        self._stream_at = now
        items, dropped = self.feed.drain()
        if items or dropped:
            self.stream.add_live(items, dropped)
            self._counts_stale = True
        if not self.started or now - self._side_at < SIDE_INTERVAL:
            return
        if not self._counts_stale and int(now) == int(self._side_at):
            return  # nothing new, and the rates have not moved on a second
        self._side_at = now
        self._counts_stale = False
        for state in self.runtime.artifacts.values():
            self.artifact_tree.update_artifact(state, state.events, self.feed.rate(state.name))
        self._refresh_panel()
        errors = sum(state.errors for state in self.runtime.artifacts.values())
        events = sum(state.events for state in self.runtime.artifacts.values())
        self.status.show_counts(events, errors, self.feed.rate())

    # ================================================================== views

    def _stats(self, name: str) -> tuple[int, float]:
        state = self.runtime.artifacts.get(name)
        return (state.events if state else 0, self.feed.rate(name))

    def _rebuild_tree(self) -> None:
        states = list(self.runtime.artifacts.values())
        found = problems(self.runtime)
        other = other_parts(self.runtime)
        if self.artifact_tree.needs_rebuild(states, found, other):
            self.artifact_tree.show(states, found, other, self._stats)
        else:
            for state in states:
                self.artifact_tree.update_artifact(state, *self._stats(state.name))

    def _refresh_panel(self) -> None:
        name = self.artifact_tree.selected_artifact
        state = self.runtime.artifacts.get(name) if name else None
        if state is None:
            events = sum(s.events for s in self.runtime.artifacts.values())
            errors = sum(s.errors for s in self.runtime.artifacts.values())
            self.panel.show(None, "", "", events, errors, self.feed.rate(),
                            self.feed.overall.series(self.feed.clock()))
            return
        self.panel.show(
            state.name, state.status, state.address or state.artifact.address(),
            state.events, state.errors, self.feed.rate(state.name), self.feed.series(state.name),
        )

    def _refresh_selection_views(self) -> None:
        self._refresh_panel()
        if self.detail.shown_id is None and not self.stream.has_focus:
            self._show_tree_entry(self.artifact_tree.selected)

    @on(ArtifactTree.EntryHighlighted)
    def _tree_highlighted(self, message: ArtifactTree.EntryHighlighted) -> None:
        self._refresh_panel()
        if self.artifact_tree.has_focus:
            # the cursor moves at once; the detail (a layout of the screen) follows when
            # the cursor rests, not once per key while the user runs down the tree
            if self._tree_timer is not None:
                self._tree_timer.stop()
            self._tree_timer = self.set_timer(TREE_DETAIL_DELAY, self._show_tree_selection)

    def _show_tree_selection(self) -> None:
        self._tree_timer = None
        self._show_tree_entry(self.artifact_tree.selected)

    def _show_tree_entry(self, entry: TreeEntry | None) -> None:
        if entry is None:
            return
        if entry.kind in ("artifact", "handler") and entry.artifact:
            state = self.runtime.artifacts.get(entry.artifact)
            if state is not None:
                self.detail.show_artifact(state, *self._stats(state.name))
        elif entry.kind == "problem" and isinstance(entry.data, WorkbenchError):
            self.detail.show_problem(entry.data)
        elif entry.kind in ("function", "type", "mapping"):
            data = entry.data or {}
            self.detail.show_info(
                f"{entry.kind.capitalize()} {entry.name}",
                [("name", entry.name), ("module", data.get("module")), ("file", entry.file)],
            )
        elif entry.kind == "connection":
            kind, described = entry.data
            self.detail.show_info(
                f"Connection {entry.name}",
                [("name", entry.name), ("kind", kind),
                 *((k, json.dumps(v, default=str)) for k, v in described.items())],
            )
        elif entry.kind == "config":
            declared = entry.data
            self.detail.show_info(
                f"Config {entry.name}",
                [("key", entry.name), ("value", repr(declared.shown())),
                 ("type", declared.type_name), ("from", declared.origin),
                 ("secret", "yes" if declared.secret else None),
                 ("required", "yes" if declared.required else None),
                 ("description", declared.description),
                 ("declared at", f"{declared.file}:{declared.line}")],
            )

    # ------------------------------------------------------------------ stream → detail

    @on(EventStream.Highlighted)
    def _stream_highlighted(self, message: EventStream.Highlighted) -> None:
        self._detail_item = message.item
        if message.item is None:
            self.detail.clear_detail("No events yet.")
            return
        if not self.stream.following:
            self._show_detail()
        elif self._detail_timer is None:
            busy = self.feed.rate() > BUSY_RATE
            self._detail_timer = self.set_timer(
                DETAIL_DELAY_BUSY if busy else DETAIL_DELAY, self._show_detail
            )

    def _show_detail(self) -> None:
        self._detail_timer = None
        item = self._detail_item
        if item is None or item.id == self.detail.shown_id:
            return
        try:
            event, outcome = item.event, item.outcome
        except (ValueError, KeyError) as exc:
            self.detail.clear_detail(f"This capture cannot be read: {exc}")
            return
        self.detail.show_event(event, outcome, replay_of=item.replay_of,
                               marked=item.id in self.stream.marked)

    @on(EventStream.FollowChanged)
    def _follow_changed(self, message: EventStream.FollowChanged) -> None:
        if not message.following and self._detail_item is not None:
            self._show_detail()

    # ================================================================== history

    def _load_tail(self) -> None:
        self._start_loading()
        self.run_worker(self._tail(self.stream.filter), group="stream", exclusive=True)

    async def _tail(self, event_filter: EventFilter | None) -> None:
        capture = self.runtime.capture
        try:
            if capture is None:
                return
            await capture.flush()
            kwargs = event_filter.query_kwargs() if event_filter else {}
            records = await asyncio.to_thread(capture.query, limit=self.window, **kwargs)
            total = None
            if event_filter is not None:
                total = await asyncio.to_thread(capture.count, **kwargs)
            items = [StreamItem.captured(r) for r in reversed(records)]
            known = {item.id for item in items}
            items.extend(i for i in self.stream.pending_items() if i.id not in known)
            self.stream.replace(items, follow=True)
            self._title_stream(event_filter, total)
        except WorkbenchError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
        finally:
            self._loaded()

    def _start_loading(self, hold: bool = True) -> None:
        # a loading widget gives its focus away: give it back when the rows are in
        self._refocus = self.focused in (None, self.stream, self.filter_bar)
        if hold:
            self.stream.hold()
        self.stream.loading = True

    def _loaded(self) -> None:
        self.stream.loading = False
        if self._refocus:
            self.stream.focus()

    def _title_stream(self, event_filter: EventFilter | None, total: int | None) -> None:
        if event_filter is None:
            self.stream.border_title = "Events"
        else:
            shown = f" ({total} match)" if total is not None else ""
            self.stream.border_title = f"Events — filter: {event_filter.describe()}{shown}"

    @on(EventStream.TailRequested)
    def _tail_requested(self) -> None:
        self._load_tail()

    @on(EventStream.OlderRequested)
    def _older_requested(self, message: EventStream.OlderRequested) -> None:
        self._start_loading(hold=False)
        self.run_worker(self._older(message.oldest, self.stream.filter), group="stream",
                        exclusive=True)

    async def _older(self, oldest: StreamItem, event_filter: EventFilter | None) -> None:
        capture = self.runtime.capture
        try:
            if capture is None:
                return
            seq = oldest.seq
            if seq is None:
                await capture.flush()
                try:
                    seq = (await asyncio.to_thread(capture.get, oldest.id)).seq
                except CaptureNotFoundError:
                    self.notify("Older events are not in the capture store.",
                                severity="warning")
                    return
            kwargs = event_filter.query_kwargs() if event_filter else {}
            page = max(1, self.window // 4)
            records = await asyncio.to_thread(capture.query, limit=page, before_seq=seq,
                                              **kwargs)
            self.stream.prepend([StreamItem.captured(r) for r in reversed(records)])
        except WorkbenchError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
        finally:
            self._loaded()

    # ------------------------------------------------------------------ filter

    def action_filter(self) -> None:
        self.filter_bar.open()

    @on(FilterBar.Applied)
    def _filter_applied(self, message: FilterBar.Applied) -> None:
        self.stream.filter = message.filter
        self.stream.focus()
        self._load_tail()

    @on(FilterBar.Cleared)
    def _filter_cleared(self, message: FilterBar.Cleared) -> None:
        self.stream.focus()
        if message.was_active or self.stream.filter is not None:
            self.stream.filter = None
            self._load_tail()

    def action_clear_filter(self) -> None:
        self.filter_bar.action_clear_filter()

    def action_follow(self) -> None:
        self.stream.follow()

    # ================================================================== selection

    def _selected_artifact(self) -> str | None:
        """The artifact actions apply to: the tree's, or the selected event's when the
        stream has focus."""
        focused = self.focused
        item = self.stream.selected
        if focused is self.stream and item is not None:
            return item.artifact
        name = self.artifact_tree.selected_artifact
        if name is not None:
            return name
        return item.artifact if item is not None else None

    def _require_artifact(self) -> ArtifactState | None:
        name = self._selected_artifact()
        if name is None:
            self.notify("Select an artifact in the tree first.", severity="warning")
            return None
        state = self.runtime.artifacts.get(name)
        if state is None:
            self.notify(f"The project has no artifact {name!r} any more.",
                        severity="warning", markup=False)
        return state

    def _require_item(self) -> StreamItem | None:
        item = self.stream.selected
        if item is None:
            self.notify("Select an event in the stream first.", severity="warning")
        return item

    # ================================================================== actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return self.stream.filter is not None
        if action == "data_mapper":
            return importlib.util.find_spec(MAPPER_MODULE) is not None
        return True

    def action_data_mapper(self) -> None:
        module = importlib.import_module(MAPPER_MODULE)
        entry = self.artifact_tree.selected
        mapping = entry.name if entry is not None and entry.kind == "mapping" else None
        self.app.push_screen(module.MapperScreen(self.runtime, mapping=mapping))

    def action_inject(self) -> None:
        item = self.stream.selected if self.focused is self.stream else None
        artifact = item.artifact if item is not None else self._selected_artifact()
        event = item.event if item is not None else None
        from workbench.tui.screens.inject import InjectScreen  # loaded when first used

        self.app.push_screen(InjectScreen(self.runtime, artifact=artifact, event=event))

    def action_replay(self) -> None:
        marked = [item.id for item in self.stream.marked_items()]
        if not marked and self.stream.selected is not None:
            marked = [self.stream.selected.id]
        artifact = self.artifact_tree.selected_artifact
        from workbench.tui.screens.replay import ReplayScreen  # loaded when first used

        self.app.push_screen(ReplayScreen(self.runtime, capture_ids=marked, artifact=artifact))

    def action_copy_payload(self) -> None:
        item = self._require_item()
        if item is None:
            return
        data = item.event.data
        try:
            text, how = data.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, how = base64.b64encode(data).decode("ascii"), "base64"
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the payload of {item.id[:12]} ({len(data)} bytes, {how}).",
                    markup=False)

    def action_save_fixture(self) -> None:
        item = self._require_item()
        if item is not None:
            self.run_worker(self._save_fixture(item), group="fixture")

    async def _save_fixture(self, item: StreamItem) -> None:
        event = item.event
        capture = self.runtime.capture
        if capture is not None and item.record is None:
            # save what the store holds: secret headers are redacted there
            await capture.flush()
            try:
                event = (await asyncio.to_thread(capture.get, item.id)).event
            except CaptureNotFoundError:
                event = item.event
        folder = self.runtime.settings.folder("events")
        path = folder / f"{event.artifact or item.artifact}-{event.id[:8]}.json"
        text = json.dumps(event.to_cloudevent(), indent=2, ensure_ascii=False, default=str)
        try:
            await asyncio.to_thread(_write_text, path, text + "\n")
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc}", title="Save failed",
                        severity="error", markup=False)
            return
        try:
            shown = path.relative_to(self.runtime.root)
        except ValueError:  # an events folder outside the project
            shown = path
        self.notify(f"Saved {shown}", title="Fixture saved", markup=False)

    def action_start_artifact(self) -> None:
        state = self._require_artifact()
        if state is not None:
            self.run_worker(self._lifecycle("start", state.name), group=f"life-{state.name}")

    def action_stop_artifact(self) -> None:
        state = self._require_artifact()
        if state is not None:
            self.run_worker(self._lifecycle("stop", state.name), group=f"life-{state.name}")

    def action_restart_artifact(self) -> None:
        state = self._require_artifact()
        if state is not None:
            self.run_worker(self._lifecycle("restart", state.name),
                            group=f"life-{state.name}")

    async def _lifecycle(self, verb: str, name: str) -> None:
        rt = self.runtime
        call = {"start": rt.start_artifact, "stop": rt.stop_artifact,
                "restart": rt.restart_artifact}[verb]
        self.notify(f"{verb.capitalize()}ing {name}…", markup=False, timeout=2)
        try:
            await call(name)
        except WorkbenchError as exc:
            self.notify(exc.message, title=exc.title, severity="error", markup=False)
            return
        state = rt.artifacts.get(name)
        if state is not None:
            self.artifact_tree.update_artifact(state, *self._stats(name))

    def action_show_config(self) -> None:
        state = self._require_artifact()
        if state is None:
            return
        art = state.artifact
        table = state.module.rsplit(".", 1)[-1]
        declared = [d for d in self.runtime.declared_config() if d.module == table]
        connections = {
            name: (conn.kind, conn.describe())
            for name in art.connection_names()
            if (conn := self.runtime.connections.get(name)) is not None
        }
        self.app.push_screen(ConfigScreen(
            state.name, mask_secrets(art.config.model_dump(mode="json")),
            art.policy.model_dump(mode="json"), declared, connections,
        ))

    def action_test_connection(self) -> None:
        entry = self.artifact_tree.selected if self.focused is self.artifact_tree else None
        names: list[str]
        if entry is not None and entry.kind == "connection":
            names = [entry.name]
        else:
            state = self._require_artifact()
            if state is None:
                return
            names = state.artifact.connection_names()
            if not names:
                self.notify(
                    f"{state.name} uses no connection; select one under Other, "
                    "Connections to test it.", markup=False,
                )
                return
        for name in names:
            self.run_worker(self._test_connection(name), group=f"conn-{name}")

    async def _test_connection(self, name: str) -> None:
        conn = self.runtime.connections.get(name)
        if conn is None:
            self.notify(f"No connection {name!r} is open.", severity="error", markup=False)
            return
        self.panel.loading = True
        try:
            health = await asyncio.wait_for(conn.health(), 30)
        except TimeoutError:
            self.notify(f"{name}: no answer within 30 s", title="Connection test",
                        severity="error", markup=False)
            return
        except Exception as exc:
            self.notify(f"{name}: {type(exc).__name__}: {exc}", title="Connection test",
                        severity="error", markup=False)
            return
        finally:
            self.panel.loading = False
        self.notify(
            f"{name}: {'ok' if health.ok else 'FAILED'} — {health.detail} "
            f"({health.latency_ms:.0f} ms)",
            title="Connection test", severity="information" if health.ok else "error",
            markup=False,
        )

    def action_runtime_log(self) -> None:
        log_file = self.runtime.root / ".iwb" / "iwb.log"
        self.app.push_screen(LogScreen(self.log_lines, str(log_file)))

    # ------------------------------------------------------------------ edit

    def edit_target(self) -> tuple[str, int] | None:
        """The file and line `e` opens: the selected tree entry's, or for a selected event
        its innermost project frame (when it failed) or its handler."""
        if self.focused is self.artifact_tree or self.stream.selected is None:
            entry = self.artifact_tree.selected
            if entry is not None:
                target = entry_location(self.runtime, entry)
                if target is not None:
                    return target
        item = self.stream.selected
        if item is not None:
            target = event_location(self.runtime, item)
            if target is not None:
                return target
        name = self._selected_artifact()
        state = self.runtime.artifacts.get(name) if name else None
        return artifact_location(state) if state is not None else None

    async def action_edit(self) -> None:
        target = self.edit_target()
        if target is None:
            self.notify("Select an artifact, a handler or an event to edit.",
                        severity="warning")
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            self.notify(
                "Set $EDITOR to open handlers from iwb, e.g. `export EDITOR=vim` in your "
                f"shell profile. The handler is at {target[0]}:{target[1]}.",
                title="No editor", severity="warning", markup=False, timeout=10,
            )
            return
        file, line = target
        command = [*shlex.split(editor), f"+{line}", file]
        try:
            with self.app.suspend():
                # In a thread: the runtime keeps serving (and hot-reloading what the
                # editor saves) while the editor has the terminal.
                result = await asyncio.to_thread(subprocess.run, command, check=False)
        except FileNotFoundError:
            self.notify(f"The editor {command[0]!r} was not found; check $EDITOR.",
                        severity="error", markup=False)
            return
        except Exception as exc:  # SuspendNotSupported and friends
            self.notify(f"Cannot open the editor here: {exc}", severity="error",
                        markup=False)
            return
        if result.returncode:
            self.notify(f"{command[0]} exited with {result.returncode}.",
                        severity="warning", markup=False)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")

