"""`InjectScreen`: build an event, check it as it is typed, send it, see the outcome.

The event comes from one of three sources, picked in the source list:

- a sample of the artifact's plugin (`Runtime.samples`), built to bind to its handler;
- a saved event in the project's `events/` folder (CloudEvents JSON; a file that names
  another artifact in `iwbartifact` is left out; a file that does not parse is listed, so it
  can be opened and fixed);
- the captured event the console was opened on.

It is edited as CloudEvents JSON and checked live (see `workbench.tui.widgets.event_editor`).
`ctrl+d` hands it to the handler in-process (`direct`), `ctrl+t` sends it through the
artifact's real transport; each send is a copy with a fresh id and time. An event whose
transport fields or payload do not fit is sent as it is, so the handler's error path can be
exercised, and the outcome says how many problems it was sent with; only text that does not
read as an event at all is refused. `ctrl+s` saves the edited text to `events/<name>.json`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Select, Static

from workbench.errors import WorkbenchError
from workbench.events import Event, Outcome
from workbench.tui.widgets.event_editor import EventEditor

if TYPE_CHECKING:
    from workbench.runtime.runtime import Runtime

Via = Literal["direct", "transport"]

FIXTURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_FRAMES = 12


@dataclass(frozen=True, slots=True)
class Source:
    """One entry of the source list: where an event text comes from."""

    key: str
    """`sample:<index>`, `saved:<file name>` or `captured`."""
    label: str
    text: str
    """The CloudEvents JSON shown in the editor."""
    name: str
    """Suggested fixture name when the event is saved."""


class InjectScreen(Screen[None]):
    """The inject console of one artifact."""

    DEFAULT_CSS: ClassVar[str] = """
    InjectScreen {
        layout: vertical;
    }
    InjectScreen #inject-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    InjectScreen #inject-pickers {
        height: auto;
    }
    InjectScreen #inject-artifact {
        width: 32;
    }
    InjectScreen #inject-source {
        width: 1fr;
    }
    InjectScreen #inject-body {
        height: 1fr;
    }
    InjectScreen #inject-editor {
        width: 3fr;
    }
    InjectScreen #inject-result {
        width: 2fr;
        border: round $border-blurred;
        border-title-color: $text;
    }
    InjectScreen #inject-outcome {
        width: 1fr;
        padding: 0 1;
    }
    InjectScreen #inject-actions {
        height: auto;
        padding: 0 1;
    }
    InjectScreen #inject-actions Button {
        margin-right: 1;
    }
    InjectScreen #fixture-name {
        width: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "close", "Close", id="inject-close",
            tooltip="Close the inject console (in the editor, Escape first leaves the editor)",
        ),
        Binding(
            "ctrl+d", "send('direct')", "Send direct", priority=True, id="inject-send-direct",
            tooltip="Hand the event to the artifact's handler in-process, with a fresh id",
        ),
        Binding(
            "ctrl+t", "send('transport')", "Send via transport", priority=True,
            id="inject-send-transport",
            tooltip="Send the event through the artifact's real transport (HTTP request, "
            "file drop, ...) and wait for its outcome",
        ),
        Binding(
            "ctrl+s", "save_fixture", "Save fixture", priority=True, id="inject-save-fixture",
            tooltip="Save the edited event as events/<name>.json in the project",
        ),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        artifact: str | None = None,
        event: Event | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.captured = event
        """The captured event the console was opened on, if any."""
        if artifact is None and event is not None and event.artifact in runtime.artifacts:
            artifact = event.artifact
        if artifact is None and runtime.artifacts:
            artifact = next(iter(runtime.artifacts))
        self.artifact: str | None = artifact
        self.sources: list[Source] = []
        self.source_key: str | None = None
        """The key of the source whose text was loaded last."""
        self.sending = False
        self.last_outcome: Outcome | None = None
        self.last_error: str | None = None
        """What went wrong with the last send when no outcome came back."""
        self.last_sent: Event | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="inject-title")
        options = [
            (f"{name} ({state.kind})", name) for name, state in self.runtime.artifacts.items()
        ]
        with Horizontal(id="inject-pickers"):
            yield Select(
                options, prompt="Artifact", allow_blank=not options,
                value=self.artifact if self.artifact else Select.NULL, id="inject-artifact",
            )
            yield Select([], prompt="Source", id="inject-source")
        with Horizontal(id="inject-body"):
            yield EventEditor(id="inject-editor")
            with VerticalScroll(id="inject-result") as result:
                result.border_title = "Outcome"
                yield Static(Text("Nothing sent yet.", style="dim"), id="inject-outcome")
        with Horizontal(id="inject-actions"):
            yield Button("Send direct ^d", id="send-direct", variant="primary")
            yield Button("Send via transport ^t", id="send-transport")
            yield Input(placeholder="fixture name (events/<name>.json)", id="fixture-name")
            yield Button("Save fixture ^s", id="save-fixture")
        yield Footer()

    def on_mount(self) -> None:
        if self.artifact is None:
            self._set_title("Inject: the project has no artifact")
            return
        self.use_artifact(self.artifact, prefer="captured" if self.captured else None)
        self.query_one(EventEditor).text_area.focus()

    @property
    def editor(self) -> EventEditor:
        return self.query_one("#inject-editor", EventEditor)

    def _set_title(self, text: str) -> None:
        self.query_one("#inject-title", Static).update(text)

    # ------------------------------------------------------------------ sources

    def use_artifact(self, name: str, *, prefer: str | None = None) -> None:
        """Target the artifact `name`: its schema, payload types and sources."""
        state = self.runtime.artifacts.get(name)
        if state is None:
            self.notify(f"The project has no artifact {name!r}.", severity="error",
                        title="No such artifact")
            return
        self.artifact = name
        self._set_title(f"Inject into {name} ({state.kind})")
        try:
            schema = self.runtime.trigger_schema(name)
        except Exception as exc:
            schema = {}
            self._report(exc, "No transport schema")

        def payload_type(handler: str) -> Any:
            return self.runtime.payload_type(name, handler)

        self.editor.set_target(
            artifact=name, kind=state.kind, handlers=list(state.artifact.handlers),
            schema=schema, payload_type=payload_type,
        )
        self.sources = self._collect_sources(name)
        select: Select[str] = self.query_one("#inject-source", Select)
        select.set_options([(s.label, s.key) for s in self.sources])
        keys = [s.key for s in self.sources]
        first = prefer if prefer in keys else (keys[0] if keys else None)
        if first is None:
            self._load_blank(name, state.kind)
        else:
            self.load_source(first)

    def _collect_sources(self, name: str) -> list[Source]:
        sources: list[Source] = []
        if self.captured is not None and self.captured.artifact in ("", name):
            ev = self.captured
            sources.append(
                Source(
                    "captured", f"captured · {ev.id[:12]} · {ev.summary(60)}",
                    _event_text(ev), f"captured-{ev.id[:8]}",
                )
            )
        try:
            samples = self.runtime.samples(name)
        except Exception as exc:
            samples = []
            self._report(exc, "Samples failed")
        for index, sample in enumerate(samples):
            label = f"sample · {sample.name}"
            if sample.description:
                label += f" — {sample.description}"
            sources.append(
                Source(f"sample:{index}", label, _event_text(sample.event), sample.name)
            )
        sources.extend(self._saved_sources(name))
        return sources

    def _events_folder(self) -> Path | None:
        try:
            return self.runtime.settings.folder("events")
        except Exception:
            return None

    def _saved_sources(self, name: str) -> list[Source]:
        folder = self._events_folder()
        if folder is None or not folder.is_dir():
            return []
        found: list[Source] = []
        for path in sorted(folder.glob("*.json")):
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            note = ""
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                note = " (invalid JSON)"
            else:
                named = raw.get("iwbartifact") if isinstance(raw, dict) else None
                if named and named != name:
                    continue
            found.append(Source(f"saved:{path.name}", f"saved · {path.name}{note}", text,
                                path.stem))
        return found

    def _load_blank(self, name: str, kind: str) -> None:
        blank = Event(artifact=name, kind=kind, type=f"iwb.{kind}.inject", source="iwb://inject")
        self.source_key = None
        self.editor.load_event(blank)
        self.query_one("#fixture-name", Input).value = f"{name}-event"

    def load_source(self, key: str) -> None:
        """Load the text of the source `key` into the editor."""
        source = next((s for s in self.sources if s.key == key), None)
        if source is None:
            self.notify(f"No event source {key!r}.", severity="error")
            return
        self.source_key = key
        select: Select[str] = self.query_one("#inject-source", Select)
        if select.value != key:
            select.value = key
        self.editor.load_text(source.text if source.text.endswith("\n") else source.text + "\n")
        self.query_one("#fixture-name", Input).value = source.name

    @on(Select.Changed, "#inject-artifact")
    def _artifact_picked(self, message: Select.Changed) -> None:
        value = message.value
        if isinstance(value, str) and value != self.artifact:
            self.use_artifact(value)

    @on(Select.Changed, "#inject-source")
    def _source_picked(self, message: Select.Changed) -> None:
        value = message.value
        if isinstance(value, str) and value != self.source_key:
            self.load_source(value)

    # ------------------------------------------------------------------ sending

    @on(Button.Pressed, "#send-direct")
    def _send_direct_pressed(self) -> None:
        self.action_send("direct")

    @on(Button.Pressed, "#send-transport")
    def _send_transport_pressed(self) -> None:
        self.action_send("transport")

    @on(Button.Pressed, "#save-fixture")
    def _save_pressed(self) -> None:
        self.action_save_fixture()

    def action_send(self, via: str) -> None:
        """Send a fresh copy of the edited event `direct` or via `transport`."""
        if self.artifact is None:
            self.notify("Pick an artifact first.", severity="warning")
            return
        if self.sending:
            self.notify("The previous event is still being handled.", severity="warning")
            return
        result = self.editor.check_now()
        if result.event is None:
            first = result.problems[0] if result.problems else "the text is not an event"
            self.notify(f"Not sent: {first}", severity="error", title="Cannot send")
            return
        mode: Via = "transport" if via == "transport" else "direct"
        event = result.event.copy()
        self._send(event, mode, len(result.problems))

    @work(exclusive=True, group="inject-send")
    async def _send(self, event: Event, via: Via, problems: int) -> None:
        assert self.artifact is not None
        name = self.artifact
        panel = self.query_one("#inject-result", VerticalScroll)
        self.sending = True
        panel.loading = True
        self.last_sent = event
        try:
            outcome = await self.runtime.inject(name, event, via)
        except Exception as exc:
            self.last_outcome = None
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._show(render_failure(exc, name, via, event))
        else:
            self.last_outcome = outcome
            self.last_error = None
            self._show(render_outcome(outcome, event, via, problems, self.runtime.root))
        finally:
            self.sending = False
            panel.loading = False

    def _show(self, renderable: RenderableType) -> None:
        self.query_one("#inject-outcome", Static).update(renderable)
        self.query_one("#inject-result", VerticalScroll).scroll_home(animate=False)

    # ------------------------------------------------------------------ saving

    def action_save_fixture(self) -> None:
        """Write the editor's text to `events/<fixture name>.json`."""
        name = self.query_one("#fixture-name", Input).value.strip().removesuffix(".json")
        if not FIXTURE_NAME.match(name):
            self.notify(
                f"{name!r} is not a usable file name: use letters, digits, '.', '_' and '-'.",
                severity="error", title="Not saved",
            )
            return
        text = self.editor.text
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            self.notify(f"Not saved: line {exc.lineno}, column {exc.colno}: {exc.msg}",
                        severity="error", title="Not saved")
            return
        if not isinstance(raw, dict):
            self.notify("Not saved: the event must be a JSON object.", severity="error",
                        title="Not saved")
            return
        folder = self._events_folder()
        if folder is None:
            self.notify("The project has no events folder.", severity="error", title="Not saved")
            return
        target = folder / f"{name}.json"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target.write_text(text if text.endswith("\n") else text + "\n", "utf-8")
        except OSError as exc:
            self.notify(f"Could not write {str(target)!r}: {exc}", severity="error",
                        title="Not saved")
            return
        self.notify(f"Saved {target.relative_to(self.runtime.root)}", title="Fixture saved")
        if self.artifact is not None:
            self._refresh_sources(f"saved:{target.name}")

    def _refresh_sources(self, selected: str) -> None:
        assert self.artifact is not None
        self.sources = self._collect_sources(self.artifact)
        self.source_key = selected
        select: Select[str] = self.query_one("#inject-source", Select)
        select.set_options([(s.label, s.key) for s in self.sources])
        if any(s.key == selected for s in self.sources):
            select.value = selected

    # ------------------------------------------------------------------ misc

    def action_close(self) -> None:
        self.dismiss(None)

    def _report(self, exc: BaseException, title: str) -> None:
        if isinstance(exc, WorkbenchError):
            self.notify(exc.message, title=exc.title, severity="error")
        else:
            self.notify(f"{type(exc).__name__}: {exc}", title=title, severity="error")


def _event_text(event: Event) -> str:
    return json.dumps(event.to_cloudevent(), indent=2, default=str) + "\n"


STATUS_STYLES = {"ok": "bold green", "error": "bold red", "rejected": "bold yellow"}


def render_outcome(
    outcome: Outcome, event: Event, via: str, problems: int, root: Path | None = None
) -> RenderableType:
    """The outcome panel: verdict line, result or error with its frames, what was sent.

    Frame files under `root` (the project) are shown relative to it.
    """
    head = Text()
    head.append(f" {outcome.status.upper()} ", style=STATUS_STYLES.get(outcome.status, "bold")
                + " reverse")
    head.append(f"  {outcome.duration_ms:.1f} ms · via {via}")
    lines: list[RenderableType] = [head]
    info = Text(f"event {event.id}", style="dim")
    if outcome.handler:
        info.append(f"\nhandler {outcome.handler}")
    if outcome.code_version:
        info.append(f" · code {outcome.code_version}")
    lines.append(info)
    if problems:
        lines.append(
            Text(f"sent with {problems} validation problem{'s' if problems != 1 else ''}",
                 style="yellow")
        )
    if outcome.error is not None:
        err = outcome.error
        lines.append(Text(""))
        lines.append(Text(f"{err.type}: {err.message}", style="bold red"))
        for detail in err.details:
            if "loc" in detail:
                loc = ".".join(str(p) for p in detail.get("loc", []))
                line = f"{loc}: {detail.get('msg', '')}"
            else:
                line = ", ".join(f"{key}: {value}" for key, value in detail.items())
            lines.append(Text(f"  {line}", style="red"))
        frames = err.frames[-MAX_FRAMES:]
        if frames:
            lines.append(Text("Traceback (innermost last)", style="bold"))
            for frame in frames:
                row = Text("  ")
                row.append(f"{_relative(frame.file, root)}:{frame.line}", style="underline")
                row.append(f" in {frame.function}")
                if frame.code:
                    row.append(f"\n      {frame.code}", style="dim")
                lines.append(row)
    else:
        lines.append(Text(""))
        lines.append(Text("Result", style="bold"))
        lines.append(_json_block(outcome.result))
    if outcome.sent:
        lines.append(Text(""))
        lines.append(Text(f"Sent ({len(outcome.sent)})", style="bold"))
        for entry in outcome.sent:
            lines.append(_json_block(entry))
    return Group(*lines)


def render_failure(exc: BaseException, name: str, via: str, event: Event) -> RenderableType:
    """The outcome panel when no outcome came back (the transport failed, a timeout, ...)."""
    head = Text()
    head.append(" NOT DELIVERED ", style="bold red reverse")
    head.append(f"  via {via} to {name}")
    title = exc.title if isinstance(exc, WorkbenchError) else type(exc).__name__
    message = exc.message if isinstance(exc, WorkbenchError) else str(exc)
    return Group(
        head,
        Text(f"event {event.id}", style="dim"),
        Text(""),
        Text(f"{title}: {message}", style="bold red"),
    )


def _relative(file: str, root: Path | None) -> str:
    if root is None:
        return file
    try:
        return str(Path(file).relative_to(root))
    except ValueError:
        return file


def _json_block(value: Any) -> RenderableType:
    text = json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return Syntax(text, "json", theme="ansi_dark", word_wrap=True, background_color="default")
