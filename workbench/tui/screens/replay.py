"""`ReplayScreen`: replay captured events against the current code and see what changed.

The set to replay is either the captures the screen was opened on, or the last N captures
of an artifact (replays themselves left out), resolved when a run starts — or N messages
read again from an artifact's transport log from a position (a Kafka partition from an
offset, `Runtime.replay_log`), each compared with its latest earlier capture. Events are
replayed one at a time (`Runtime.replay([id])`), so the progress bar is real and a cancel
stops after the event in flight. Each row of the results table compares the recorded
outcome with the new one; the highlighted row's two outcomes are shown side by side
(`workbench.runtime.replay.comparable`, pretty JSON).

`R` replays the same set again. With "re-run after reload" on (`a`), every successful hot
reload replays the set again by itself, so saving a handler shows its effect on real
traffic; the screen listens to the runtime's bus only while it is open.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    ProgressBar,
    Select,
    Static,
)

from workbench.errors import WorkbenchError
from workbench.runtime.bus import Message as BusMessage
from workbench.runtime.bus import ReloadFinished
from workbench.runtime.replay import ReplayResult, comparable
from workbench.tui.widgets.diff_view import DiffView

if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.events import Outcome
    from workbench.runtime.capture import CaptureRecord
    from workbench.runtime.runtime import Runtime

Via = Literal["direct", "transport"]
Mode = Literal["selected", "last", "log"]

ALL_ARTIFACTS = "*"
DEFAULT_LAST = 10


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    capture_id: str
    """The capture replayed; for a message read again from the log, its latest earlier
    capture, or "" when it was never captured."""
    artifact: str
    result: ReplayResult | None = None
    error: str | None = None
    """Why the capture could not be replayed (unknown id, the transport failed, ...)."""
    error_title: str = ""
    """A short name for `error` (for the table)."""
    key: str = ""
    """The row's key in the table (the capture id, or the new event's id)."""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.capture_id


class ReplayScreen(Screen[None]):
    """The replay console."""

    DEFAULT_CSS: ClassVar[str] = """
    ReplayScreen {
        layout: vertical;
    }
    ReplayScreen #replay-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    ReplayScreen #replay-controls {
        height: auto;
    }
    ReplayScreen #replay-mode {
        width: 30;
    }
    ReplayScreen #replay-artifact {
        width: 26;
    }
    ReplayScreen #replay-last {
        width: 10;
    }
    ReplayScreen #replay-position {
        width: 22;
    }
    ReplayScreen #replay-via {
        width: 20;
    }
    ReplayScreen #replay-auto {
        width: auto;
    }
    ReplayScreen #replay-status {
        height: 1;
        padding: 0 1;
    }
    ReplayScreen #replay-status ProgressBar {
        width: auto;
        margin-right: 2;
    }
    ReplayScreen #replay-summary {
        width: 1fr;
    }
    ReplayScreen #replay-results {
        height: 9;
    }
    ReplayScreen #replay-diff {
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="replay-close",
                tooltip="Close the replay console (a replay in progress is cancelled)"),
        Binding("ctrl+r", "run", "Run", id="replay-run",
                tooltip="Replay the set chosen above (the last N are looked up again)"),
        Binding("R", "rerun", "Re-run", id="replay-rerun",
                tooltip="Replay the same events as the last run again"),
        Binding("x", "cancel", "Cancel", id="replay-cancel",
                tooltip="Stop after the event being replayed"),
        Binding("v", "toggle_via", "Direct/transport", id="replay-toggle-via",
                tooltip="Replay in-process (direct) or through the artifact's transport"),
        Binding("a", "toggle_auto", "Re-run after reload", id="replay-auto-rerun",
                tooltip="Replay the set again after every successful hot reload"),
    ]

    class ReloadSeen(Message):
        """The runtime finished a hot reload (posted from the bus subscriber)."""

        def __init__(self, ok: bool, summary: str) -> None:
            super().__init__()
            self.ok = ok
            self.summary = summary

    class Finished(Message):
        """A replay run ended (completed or cancelled)."""

        def __init__(self, rows: list[Row], cancelled: bool) -> None:
            super().__init__()
            self.rows = rows
            self.cancelled = cancelled

    def __init__(
        self,
        runtime: Runtime,
        *,
        capture_ids: list[str] | None = None,
        artifact: str | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.capture_ids = list(dict.fromkeys(capture_ids or []))
        """The captures the screen was opened on (duplicates dropped, order kept)."""
        self.artifact = artifact
        self.mode: Mode = "selected" if self.capture_ids else "last"
        self.via: Via = "direct"
        self.rerun_on_reload = False
        self.rows: list[Row] = []
        self.last_set: list[str] = []
        """The capture ids of the last run, replayed again by `R` and after a reload."""
        self.last_log: tuple[str, str, int] | None = None
        """(artifact, position, count) when the last run read from a transport log."""
        self.running = False
        self.runs = 0
        """How many runs finished (completed or cancelled)."""
        self._cancel = False
        self._rerun_pending = False
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="replay-title")
        with Horizontal(id="replay-controls"):
            modes: list[tuple[str, str]] = []
            if self.capture_ids:
                count = len(self.capture_ids)
                modes.append((f"The {count} selected event{'s' if count != 1 else ''}",
                              "selected"))
            modes.append(("The last N events", "last"))
            modes.append(("N messages read again from the log", "log"))
            yield Select(modes, allow_blank=False, value=self.mode, id="replay-mode")
            artifacts = [("all artifacts", ALL_ARTIFACTS)] + [
                (name, name) for name in self.runtime.artifacts
            ]
            yield Select(
                artifacts, allow_blank=False, id="replay-artifact",
                value=self.artifact if self.artifact in self.runtime.artifacts else ALL_ARTIFACTS,
            )
            yield Input(str(DEFAULT_LAST), type="integer", id="replay-last",
                        tooltip="How many events: the latest captures, or messages of the log")
            yield Input(placeholder="position, e.g. 0@120", id="replay-position",
                        tooltip="Where to start reading the artifact's transport log "
                        "(Kafka: [topic/]partition@offset)")
            yield Select([("direct", "direct"), ("via transport", "transport")],
                         allow_blank=False, value=self.via, id="replay-via",
                         tooltip="direct: in-process, no broker needed; via transport: "
                         "through the artifact's real transport")
            yield Checkbox("re-run after reload", self.rerun_on_reload, id="replay-auto")
            yield Button("Run ^r", id="replay-run-button", variant="primary")
            yield Button("Cancel", id="replay-cancel-button", disabled=True)
        with Horizontal(id="replay-status"):
            yield ProgressBar(total=None, show_eta=False, id="replay-progress")
            yield Static("", id="replay-summary")
        table: DataTable[str | Text] = DataTable(
            id="replay-results", cursor_type="row", zebra_stripes=True
        )
        yield table
        yield DiffView(
            id="replay-diff",
            placeholder="Run the replay; the highlighted row's recorded and new outcomes "
            "show here side by side.",
        )
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[str | Text] = self.query_one("#replay-results", DataTable)
        table.add_column("capture", key="capture", width=14)
        table.add_column("artifact", key="artifact", width=14)
        table.add_column("handler", key="handler", width=28)
        table.add_column("status", key="status", width=16)
        table.add_column("verdict", key="verdict", width=8)
        table.add_column("changed", key="changed", width=16)
        table.add_column("new ms", key="ms", width=8)
        self._sync_controls()
        self._unsubscribe = self.runtime.bus.subscribe(self._on_bus)
        table.focus()
        if self.mode == "selected":
            self.action_run()
        else:
            self._summary("Choose how many of the latest events to replay, then press ctrl+r.")

    def on_unmount(self) -> None:
        self._cancel = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _sync_controls(self) -> None:
        chosen = self.mode != "selected"
        self.query_one("#replay-artifact", Select).display = chosen
        self.query_one("#replay-last", Input).display = chosen
        self.query_one("#replay-position", Input).display = self.mode == "log"
        self.query_one("#replay-via", Select).display = self.mode != "log"
        if self.mode == "selected":
            count = len(self.capture_ids)
            title = f"Replay {count} selected event{'s' if count != 1 else ''} · {self.via}"
        elif self.mode == "log":
            target = self._chosen_artifact()
            title = f"Read {target or 'an artifact'}'s transport log again · current code"
        else:
            target = self._chosen_artifact()
            title = f"Replay the latest events of {target or 'every artifact'} · {self.via}"
        self.query_one("#replay-title", Static).update(title)

    def _chosen_artifact(self) -> str | None:
        value = self.query_one("#replay-artifact", Select).value
        return value if isinstance(value, str) and value != ALL_ARTIFACTS else None

    def _summary(self, text: str | Text) -> None:
        self.query_one("#replay-summary", Static).update(text)

    # ------------------------------------------------------------------ controls

    @on(Select.Changed, "#replay-mode")
    def _mode_changed(self, message: Select.Changed) -> None:
        if message.value == "selected":
            self.mode = "selected"
        elif message.value == "log":
            self.mode = "log"
        elif message.value == "last":
            self.mode = "last"
        self._sync_controls()

    @on(Select.Changed, "#replay-via")
    def _via_changed(self, message: Select.Changed) -> None:
        if message.value in ("direct", "transport"):
            self.via = "transport" if message.value == "transport" else "direct"
            self._sync_controls()

    @on(Select.Changed, "#replay-artifact")
    def _artifact_changed(self) -> None:
        self._sync_controls()

    @on(Checkbox.Changed, "#replay-auto")
    def _auto_changed(self, message: Checkbox.Changed) -> None:
        self.rerun_on_reload = message.value

    @on(Input.Submitted, "#replay-last")
    @on(Input.Submitted, "#replay-position")
    def _last_submitted(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#replay-run-button")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#replay-cancel-button")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_toggle_via(self) -> None:
        self.query_one("#replay-via", Select).value = (
            "transport" if self.via == "direct" else "direct"
        )

    def action_toggle_auto(self) -> None:
        box = self.query_one("#replay-auto", Checkbox)
        box.value = not box.value
        self.rerun_on_reload = box.value
        self.notify(
            "The set is replayed again after every successful reload."
            if box.value else "Re-run after reload is off.",
            title="Replay",
        )

    def action_close(self) -> None:
        self._cancel = True
        self.dismiss(None)

    def action_cancel(self) -> None:
        if self.running:
            self._cancel = True
            self._summary("Cancelling after the event in flight…")

    # ------------------------------------------------------------------ running

    def action_run(self) -> None:
        """Resolve the chosen set and replay it."""
        if self.running:
            self.notify("A replay is already running; cancel it first (x).",
                        severity="warning")
            return
        if self.mode == "selected":
            self._replay(list(self.capture_ids))
            return
        raw = self.query_one("#replay-last", Input).value.strip()
        try:
            count = int(raw)
        except ValueError:
            count = 0
        if count <= 0:
            self.notify(f"{raw!r} is not a number of events; give a whole number above 0.",
                        severity="error", title="Replay")
            return
        if self.mode == "log":
            artifact = self._chosen_artifact()
            position = self.query_one("#replay-position", Input).value.strip()
            if artifact is None or not position:
                self.notify("Choose the artifact whose log to read and where to start "
                            "(e.g. 0@120 for partition 0 from offset 120).",
                            severity="error", title="Replay")
                return
            self._reread(artifact, position, count)
            return
        self._replay_last(count, self._chosen_artifact())

    def action_rerun(self) -> None:
        """Replay the same events as the last run."""
        if self.running:
            self._rerun_pending = True
            return
        if self.last_log is not None:
            self._reread(*self.last_log)
            return
        if not self.last_set:
            self.action_run()
            return
        self._replay(list(self.last_set))

    @work(exclusive=True, group="replay-resolve")
    async def _replay_last(self, count: int, artifact: str | None) -> None:
        capture = self.runtime.capture
        if capture is None:
            self.notify("The runtime has no capture store open.", severity="error")
            return
        try:
            await capture.flush()
            records = await self._latest_originals(count, artifact)
        except Exception as exc:
            self._report(exc)
            return
        if not records:
            where = f"artifact {artifact!r}" if artifact else "the project"
            self.notify(f"No captured events of {where} to replay.", severity="warning",
                        title="Replay")
            return
        self._replay([r.id for r in records])

    async def _latest_originals(self, count: int, artifact: str | None) -> list[CaptureRecord]:
        """The latest `count` captures that are not replays, oldest first (SQL in a thread)."""
        capture = self.runtime.capture
        assert capture is not None

        def read() -> list[CaptureRecord]:
            found: list[CaptureRecord] = []
            before: int | None = None
            while len(found) < count:
                page = capture.query(artifact=artifact, limit=max(count * 2, 50),
                                     before_seq=before)
                if not page:
                    break
                found.extend(r for r in page if not r.replay_of)
                before = page[-1].seq
            return list(reversed(found[:count]))

        return await asyncio.to_thread(read)

    def _reread(self, artifact: str, position: str, count: int) -> None:
        self.last_log = (artifact, position, count)
        self.last_set = []
        self._start_run(count, f"Reading up to {count} message{'s' if count != 1 else ''} of "
                        f"{artifact} again from {position}…")
        self._run_log(artifact, position, count)

    @work(exclusive=True, group="replay-run")
    async def _run_log(self, artifact: str, position: str, count: int) -> None:
        progress = self.query_one("#replay-progress", ProgressBar)
        try:
            results = await self.runtime.replay_log(artifact, position, count)
        except Exception as exc:
            self._report(exc)
            results = []
            title = exc.title if isinstance(exc, WorkbenchError) else type(exc).__name__
            self.rows.append(Row("", artifact, error=str(exc), error_title=title, key="error"))
            self._add_row(self.rows[-1])
        finally:
            self.running = False
            if self.is_mounted:
                self.query_one("#replay-cancel-button", Button).disabled = True
        progress.update(total=max(len(results), 1), progress=max(len(results), 1))
        for result in results:
            row = Row(result.capture_id, artifact, result=result,
                      key=result.capture_id or result.new_event_id)
            self.rows.append(row)
            self._add_row(row)
        self.runs += 1
        if not results and not self.rows:
            self._summary(f"The log of {artifact} holds nothing at {position}.")
        else:
            self._summary(self._describe_run(False, len(results), "log"))
        self.post_message(self.Finished(list(self.rows), False))
        if self._rerun_pending:
            self._rerun_pending = False
            self.action_rerun()

    def _start_run(self, total: int, message: str) -> None:
        self.rows = []
        self._cancel = False
        self.running = True
        table: DataTable[str | Text] = self.query_one("#replay-results", DataTable)
        table.clear()
        self.query_one("#replay-diff", DiffView).show_message("Replaying…")
        self.query_one("#replay-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#replay-cancel-button", Button).disabled = False
        self._summary(message)

    def _replay(self, ids: list[str]) -> None:
        self.last_set = ids
        self.last_log = None
        self._start_run(
            len(ids), f"Replaying {len(ids)} event{'s' if len(ids) != 1 else ''} ({self.via})…"
        )
        self._run_set(ids, self.via)

    @work(exclusive=True, group="replay-run")
    async def _run_set(self, ids: list[str], via: Via) -> None:
        progress = self.query_one("#replay-progress", ProgressBar)
        cancelled = False
        try:
            for capture_id in ids:
                if self._cancel:
                    cancelled = True
                    break
                row = await self._replay_one(capture_id, via)
                self.rows.append(row)
                self._add_row(row)
                progress.advance(1)
        finally:
            self.running = False
            if self.is_mounted:
                self.query_one("#replay-cancel-button", Button).disabled = True
        self.runs += 1
        self._summary(self._describe_run(cancelled, len(ids), via))
        self.post_message(self.Finished(list(self.rows), cancelled))
        if self._rerun_pending:
            self._rerun_pending = False
            self.action_rerun()

    async def _replay_one(self, capture_id: str, via: Via) -> Row:
        try:
            results = await self.runtime.replay([capture_id], via=via)
        except WorkbenchError as exc:
            self.notify(exc.message, title=exc.title, severity="error")
            return Row(capture_id, "", error=exc.message, error_title=exc.title)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            self.notify(message, title=f"Replay of {capture_id[:12]} failed", severity="error")
            return Row(capture_id, "", error=message, error_title=type(exc).__name__)
        result = results[0]
        return Row(capture_id, result.artifact, result=result)

    def _add_row(self, row: Row) -> None:
        table: DataTable[str | Text] = self.query_one("#replay-results", DataTable)
        ms = ""
        if row.result is None:
            status: str | Text = Text("—")
            verdict = Text("FAILED", style="bold red")
            changed = Text(row.error_title, style="red")
            handler = ""
        else:
            res = row.result
            before = "-" if res.recorded is None else res.recorded.status
            status = Text(f"{before} → {res.new.status}")
            if before != res.new.status:
                status.stylize("bold yellow")
            verdict = (
                Text("same", style="green") if res.same else Text("CHANGED", style="bold red")
            )
            changed = Text(", ".join(res.changed))
            handler = res.new.handler.rsplit(":", 1)[-1] or (
                res.recorded.handler if res.recorded is not None else ""
            )
            ms = f"{res.new.duration_ms:.1f}"
        table.add_row(
            row.capture_id[:12] or "-", row.artifact, handler, status, verdict, changed, ms,
            key=row.key,
        )
        if len(self.rows) == 1:
            self._show_diff(row)

    def _describe_run(self, cancelled: bool, total: int, via: str) -> Text:
        done = len(self.rows)
        failed = sum(1 for r in self.rows if r.result is None)
        changed = sum(1 for r in self.rows if r.result is not None and not r.result.same)
        fresh = sum(1 for r in self.rows if r.result is not None and r.result.recorded is None)
        same = done - failed - changed - fresh
        text = Text()
        if cancelled:
            text.append(f"Cancelled after {done} of {total}. ", style="yellow")
        else:
            text.append(f"Replayed {done} ({via}). ")
        text.append(f"{same} same", style="green")
        text.append(", ")
        text.append(f"{changed} changed", style="bold red" if changed else "")
        if fresh:
            text.append(f", {fresh} never captured before")
        if failed:
            text.append(", ")
            text.append(f"{failed} failed", style="bold red")
        return text

    # ------------------------------------------------------------------ diff

    @on(DataTable.RowHighlighted, "#replay-results")
    def _row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        key = message.row_key.value
        row = next((r for r in self.rows if r.key == key), None)
        if row is not None:
            self._show_diff(row)

    def _show_diff(self, row: Row) -> None:
        view = self.query_one("#replay-diff", DiffView)
        if row.result is None:
            view.show_message(f"{row.capture_id}: {row.error}")
            return
        res = row.result
        if res.recorded is None:
            view.show_message(
                f"{res.new_event_id}: {_outcome_line(res.new)} — this message was never "
                "captured before, so there is nothing to compare with"
            )
            return
        heading = Text()
        heading.append(f"{res.capture_id} ", style="bold")
        heading.append("same" if res.same else f"changed: {', '.join(res.changed)}",
                       style="green" if res.same else "bold red")
        view.show(
            outcome_text(res.recorded), outcome_text(res.new),
            left_title=f"recorded · {_outcome_line(res.recorded)}",
            right_title=f"replayed · {_outcome_line(res.new)}",
            heading=heading,
        )

    # ------------------------------------------------------------------ bus

    def _on_bus(self, message: BusMessage) -> None:
        # runs on the event loop for every runtime message: keep it O(1)
        if isinstance(message, ReloadFinished):
            report = message.report
            self.post_message(self.ReloadSeen(bool(report.ok), str(report.summary())))

    def on_replay_screen_reload_seen(self, message: ReplayScreen.ReloadSeen) -> None:
        if not self.rerun_on_reload:
            return
        if not message.ok:
            self.notify(f"Not replayed: {message.summary}", severity="warning",
                        title="Reload failed")
            return
        if not self.last_set and self.mode == "last":
            self.action_run()
        else:
            self.action_rerun()
        self.notify("Code reloaded: replaying the set again.", title="Replay")

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, WorkbenchError):
            self.notify(exc.message, title=exc.title, severity="error")
        else:
            self.notify(f"{type(exc).__name__}: {exc}", title="Replay", severity="error")


def outcome_text(outcome: Outcome) -> str:
    """The compared parts of an outcome as pretty JSON (what the diff view shows)."""
    return json.dumps(comparable(outcome), indent=2, sort_keys=True, default=str,
                      ensure_ascii=False)


def _outcome_line(outcome: Outcome) -> str:
    parts = [outcome.status, f"{outcome.duration_ms:.1f} ms"]
    if outcome.code_version:
        parts.append(f"code {outcome.code_version}")
    return " · ".join(parts)
