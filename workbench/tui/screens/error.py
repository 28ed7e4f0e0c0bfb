"""A full-screen error: the runtime could not start, or an error worth reading in full."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ErrorScreen(ModalScreen[None]):
    """Shows an error's title and message; Escape closes it, q quits.

    Args:
        title: the error's title (`WorkbenchError.title`).
        message: what failed and what to do.
        details: a traceback or more lines, shown dim.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-error", tooltip="Close this error"),
        Binding("q", "app.quit", "Quit", id="quit",
                tooltip="Stop the runtime (in-flight events finish) and quit"),
    ]

    DEFAULT_CSS = """
    ErrorScreen {
        align: center middle;
    }
    ErrorScreen > VerticalScroll {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 80%;
        border: thick $error;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.details = details

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = f"{self.title_text} — Escape closes, q quits"
            parts = [Text(self.message, style="red")]
            if self.details:
                parts.append(Text(self.details, style="dim"))
            yield Static(Group(*parts), id="error-body")

    def action_close(self) -> None:
        self.dismiss(None)
