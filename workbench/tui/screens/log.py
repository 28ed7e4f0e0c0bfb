"""The runtime log (`l`): the recent lines the runtime meant for users (reloads, listener
failures, connection errors). The full log, with every logger, is in `.iwb/iwb.log`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import RichLog

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "info": "", "debug": "dim"}


class LogScreen(ModalScreen[None]):
    """Shows recent runtime log lines; Escape closes it.

    Args:
        lines: (time text, level, message) tuples, oldest first.
        log_file: where the full log is written (shown in the title).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-log", tooltip="Close the runtime log"),
    ]

    DEFAULT_CSS = """
    LogScreen {
        align: center middle;
    }
    LogScreen > RichLog {
        width: 90%;
        height: 80%;
        border: thick $primary;
        background: $surface;
    }
    """

    def __init__(self, lines: Iterable[tuple[str, str, str]], log_file: str = "") -> None:
        super().__init__()
        self.lines = list(lines)
        self.log_file = log_file

    def compose(self) -> ComposeResult:
        log = RichLog(wrap=True, markup=False, highlight=False)
        log.border_title = "Runtime log — Escape closes" + (
            f" (full log: {self.log_file})" if self.log_file else ""
        )
        yield log

    def on_mount(self) -> None:
        log = self.query_one(RichLog)
        if not self.lines:
            log.write(Text("Nothing logged yet.", style="dim"))
        for when, level, message in self.lines:
            line = Text(f"{when} ", style="dim")
            line.append(f"{level:<7} ", style=LEVEL_STYLES.get(level, ""))
            line.append(message)
            log.write(line)

    def action_close(self) -> None:
        self.dismiss(None)
