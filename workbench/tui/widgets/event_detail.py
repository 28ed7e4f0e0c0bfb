"""The detail pane: one event in full, or whatever the artifact tree has selected.

For an event: its CloudEvents attributes, its transport metadata (headers as a table),
the payload (JSON pretty-printed and highlighted, text as text, binary as a hex dump) and
the outcome (result, or the error with its traceback frames as file:line, duration, code
version, attempts, disposition, and the capture it replays). For a tree entry: the
artifact's state (with its import or listener error and traceback), a project problem, or
a function, type, mapping, connection or configuration value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from workbench.errors import ModuleImportError, ProjectError, WorkbenchError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.tui.source import handler_location

PAYLOAD_LIMIT = 64 * 1024
"""Payload bytes shown; the rest is summarised."""
HEX_LIMIT = 4 * 1024
"""Bytes of a binary payload shown as a hex dump."""
HIGHLIGHT_LIMIT = 16 * 1024
"""Longer text is shown plain: highlighting it would hold up the UI."""
THEME = "ansi_dark"

STATUS_STYLES = {"ok": "bold green", "error": "bold red", "rejected": "bold yellow"}


def hex_dump(data: bytes, limit: int = HEX_LIMIT) -> str:
    """`offset  hex bytes  |ascii|`, 16 bytes a line, at most `limit` bytes."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset:offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  |{text}|")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes")
    return "\n".join(lines)


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text[:4096])


def payload_view(data: bytes, content_type: str | None) -> RenderableType:
    """The payload, pretty-printed: JSON highlighted, text as text, binary as hex."""
    if not data:
        return Text("(empty)", style="dim")
    shown = data[:PAYLOAD_LIMIT]
    more = len(data) - len(shown)
    tail = Text(f"… {more} more bytes", style="dim") if more else None
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json") or shown[:1] in (b"{", b"["):
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        else:
            code = json.dumps(parsed, indent=2, ensure_ascii=False)
            return _highlighted(code, "json")
    if _is_text(shown):
        text = shown.decode("utf-8")
        lexer = {"application/xml": "xml", "text/xml": "xml", "text/html": "html",
                 "application/yaml": "yaml", "text/csv": None}.get(ctype)
        return _with_tail(_highlighted(text, lexer) if lexer else Text(text), tail)
    return Text(hex_dump(data), style="")


def _highlighted(code: str, lexer: str) -> RenderableType:
    if len(code) > HIGHLIGHT_LIMIT:
        return Text(code)
    return Syntax(code, lexer, theme=THEME, word_wrap=True, background_color="default")


def _with_tail(body: RenderableType, tail: Text | None) -> RenderableType:
    return Group(body, tail) if tail is not None else body


def _kv_table(rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        if value is None or value == "" or value == {} or value == []:
            continue
        table.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return table


def _json_view(value: Any) -> RenderableType:
    if isinstance(value, str | int | float | bool) or value is None:
        return Text(json.dumps(value, ensure_ascii=False))
    return _highlighted(json.dumps(value, indent=2, ensure_ascii=False, default=str), "json")


def _headers_table(headers: Any) -> Table | None:
    pairs: list[tuple[str, str]] = []
    if isinstance(headers, dict):
        pairs = [(str(k), str(v)) for k, v in headers.items()]
    elif isinstance(headers, list):
        for entry in headers:
            if isinstance(entry, list | tuple) and len(entry) == 2:
                pairs.append((str(entry[0]), str(entry[1])))
    if not pairs:
        return None
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("header", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        table.add_row(name, value)
    return table


def _section(title: str) -> Rule:
    return Rule(Text(title, style="bold"), align="left", style="bright_black")


class EventDetail(VerticalScroll):
    """The detail pane of the main screen.

    Args:
        root: the project directory (file paths are shown relative to it).
    """

    DEFAULT_CSS = """
    EventDetail {
        border: round $primary 40%;
        padding: 0 1;
    }
    EventDetail:focus {
        border: round $primary;
    }
    EventDetail > Static {
        width: 1fr;
    }
    """

    def __init__(self, root: Path | None = None, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.root = root
        self.shown_id: str | None = None
        """Id of the event shown, or None."""
        self.border_title = "Detail"
        self._body = Static(Text("Select an event or an artifact.", style="dim"))

    def compose(self) -> Iterable[Static]:
        yield self._body

    # ------------------------------------------------------------------ public API

    def show_event(
        self,
        event: Event,
        outcome: Outcome,
        *,
        replay_of: str | None = None,
        marked: bool = False,
    ) -> None:
        """Show an event and its outcome."""
        self.shown_id = event.id
        self.border_title = f"Event {event.id[:12]}"
        parts: list[RenderableType] = [self._event_header(event, outcome, marked)]
        parts.append(_section("CloudEvent"))
        attributes = [
            ("id", event.id), ("source", event.source), ("type", event.type),
            ("subject", event.subject), ("time", event.time.isoformat()),
            ("datacontenttype", event.datacontenttype), ("artifact", event.artifact),
            ("kind", event.kind), ("handler", event.handler),
        ]
        attributes.extend((f"ext {k}", json.dumps(v, default=str))
                          for k, v in sorted(event.extensions.items()))
        parts.append(_kv_table(attributes))
        parts.extend(self._transport(event.transport))
        parts.append(_section(f"Payload ({len(event.data)} bytes)"))
        parts.append(payload_view(event.data, event.datacontenttype))
        parts.extend(self._outcome(outcome, replay_of))
        self._set(parts)

    def show_artifact(self, state: Any, events: int, rate: float) -> None:
        """Show an artifact's state (an `ArtifactState`), with its error if it has one."""
        self.shown_id = None
        self.border_title = f"Artifact {state.name}"
        file, line = state.artifact.declared_at
        rows: list[tuple[str, Any]] = [
            ("name", state.name), ("kind", state.kind),
            ("status", Text(state.status, style=STATUS_STYLES.get(state.status, ""))),
            ("address", state.address or state.artifact.address()),
            ("module", state.module), ("code version", state.code_version),
            ("declared at", f"{self._rel(file)}:{line}"),
            ("events", f"{events} ({rate:.1f}/s)"), ("errors", state.errors),
            ("restarts", state.restarts or None),
        ]
        parts: list[RenderableType] = []
        if state.import_error is not None:  # first: it is why the user looks here
            parts.append(_section("Import failed — the last good code keeps serving"))
            parts.extend(self._problem_body(state.import_error))
            parts.append(_section("Artifact"))
        parts.extend([_kv_table(rows), _section("Handlers")])
        handlers = Table.grid(padding=(0, 2))
        handlers.add_column(style="cyan", no_wrap=True)
        handlers.add_column()
        for key, spec in state.artifact.handlers.items():
            location = handler_location(spec.func)
            where = f"{self._rel(location[0])}:{location[1]}" if location else ""
            handlers.add_row(key or "(default)", f"{spec.ref}  {where}")
        parts.append(handlers)
        if state.error:
            parts.append(_section("Listener error"))
            parts.append(Text(state.error, style="red"))
            if state.error_info is not None:
                parts.extend(self._error_body(state.error_info))
        self._set(parts)

    def show_problem(self, error: WorkbenchError) -> None:
        """Show a project problem (a load or reload error), with its traceback."""
        self.shown_id = None
        self.border_title = error.title
        self._set([Text(error.title, style="bold red"), *self._problem_body(error)])

    def show_info(self, title: str, rows: Iterable[tuple[str, Any]],
                  extra: RenderableType | None = None) -> None:
        """Show a titled key/value table (functions, types, connections, ...)."""
        self.shown_id = None
        self.border_title = title
        parts: list[RenderableType] = [_kv_table(rows)]
        if extra is not None:
            parts.append(extra)
        self._set(parts)

    def clear_detail(self, message: str = "Select an event or an artifact.") -> None:
        """Show a hint instead of a detail."""
        self.shown_id = None
        self.border_title = "Detail"
        self._set([Text(message, style="dim")])

    # ------------------------------------------------------------------ pieces

    def _set(self, parts: list[RenderableType]) -> None:
        self._body.update(Group(*parts))
        self.scroll_home(animate=False)

    def _rel(self, file: str) -> str:
        if self.root is None:
            return file
        try:
            return str(Path(file).resolve().relative_to(self.root.resolve()))
        except (ValueError, OSError):
            return file

    def _event_header(self, event: Event, outcome: Outcome, marked: bool) -> Text:
        text = Text()
        text.append(outcome.status.upper(), style=STATUS_STYLES.get(outcome.status, "bold"))
        text.append(f"  {event.artifact}", style="bold")
        text.append(f"  {event.kind}  {outcome.duration_ms:.2f} ms", style="dim")
        if marked:
            text.append("  ● marked", style="magenta")
        return text

    def _transport(self, transport: dict[str, Any]) -> list[RenderableType]:
        if not transport:
            return []
        parts: list[RenderableType] = [_section("Transport")]
        scalars: list[tuple[str, Any]] = []
        nested: list[tuple[str, Any]] = []
        headers = None
        for key, value in transport.items():
            if key == "headers":
                headers = _headers_table(value)
                if headers is None and value:
                    nested.append((key, value))
            elif isinstance(value, dict | list):
                if value:
                    nested.append((key, value))
            else:
                scalars.append((key, value))
        parts.append(_kv_table(scalars))
        if headers is not None:
            parts.append(Text("headers", style="bold cyan"))
            parts.append(headers)
        for key, value in nested:
            parts.append(Text(key, style="bold cyan"))
            parts.append(_json_view(value))
        return parts

    def _outcome(self, outcome: Outcome, replay_of: str | None) -> list[RenderableType]:
        parts: list[RenderableType] = [_section("Outcome")]
        parts.append(_kv_table([
            ("status", Text(outcome.status, style=STATUS_STYLES.get(outcome.status, ""))),
            ("duration", f"{outcome.duration_ms:.3f} ms"),
            ("handler", outcome.handler), ("code version", outcome.code_version),
            ("attempts", outcome.attempts), ("disposition", outcome.disposition),
            ("replay of", replay_of),
        ]))
        if outcome.error is not None:
            parts.append(Text("error", style="bold red"))
            parts.extend(self._error_body(outcome.error))
        else:
            parts.append(Text("result", style="bold cyan"))
            parts.append(_json_view(outcome.result))
        if outcome.sent:
            parts.append(Text(f"sent ({len(outcome.sent)})", style="bold cyan"))
            parts.append(_json_view(outcome.sent))
        return parts

    def _error_body(self, error: ErrorInfo) -> list[RenderableType]:
        parts: list[RenderableType] = [
            Text.assemble((f"{error.type}: ", "bold red"), (error.message, "red"))
        ]
        for detail in error.details:
            loc = ".".join(str(p) for p in detail.get("loc", []))
            parts.append(Text(f"  {loc or '(payload)'}: {detail.get('msg', detail)}",
                              style="yellow"))
        if error.frames:
            frames = Table.grid(padding=(0, 1))
            frames.add_column(style="cyan", no_wrap=True)
            frames.add_column(style="dim")
            for frame in error.frames:
                frames.add_row(
                    f"{self._rel(frame.file)}:{frame.line}",
                    f"in {frame.function}" + (f"  {frame.code}" if frame.code else ""),
                )
            parts.append(frames)
        elif error.traceback:
            parts.append(Syntax(error.traceback, "pytb", theme=THEME, word_wrap=True,
                                background_color="default"))
        return parts

    def _problem_body(self, error: WorkbenchError) -> list[RenderableType]:
        parts: list[RenderableType] = []
        if isinstance(error, ProjectError) and error.location():
            parts.append(Text.from_markup(f"[bold cyan]at[/] {escape(error.location())}"))
        parts.append(Text(error.message, style="red"))
        if isinstance(error, ModuleImportError) and error.traceback:
            parts.append(Syntax(error.traceback.rstrip(), "pytb", theme=THEME,
                                word_wrap=True, background_color="default"))
        return parts
