"""The data mapper's question before unsaved changes are lost (closing the mapper, or
opening another mapping): `y` discards them, `n` or Escape keeps editing; ctrl+s (the
screen's) saves first."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static


class DiscardBar(Static, can_focus=True):
    """Asks whether to discard the unsaved changes."""

    DEFAULT_CSS = """
    DiscardBar {
        height: auto;
        padding: 0 1;
        background: $warning 30%;
        border: tall $warning;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Discard", id="mapper-discard",
                tooltip="Drop the unsaved changes of the mapping"),
        Binding("n,escape", "answer(False)", "Keep editing", id="mapper-keep-editing",
                tooltip="Go back to the mapping; nothing is lost"),
    ]

    class Answered(Message):
        """The user answered: `discard` says whether to drop the changes."""

        def __init__(self, discard: bool) -> None:
            super().__init__()
            self.discard = discard

    def ask(self, name: str, then: str) -> None:
        """Ask about the unsaved changes of mapping `name` before `then` (a phrase)."""
        text = Text()
        text.append(f"{name} has unsaved changes. ", style="bold")
        text.append(f"Discard them and {then}? ")
        text.append("y", style="bold")
        text.append(" discard · ")
        text.append("n", style="bold")
        text.append(" keep editing · ")
        text.append("ctrl+s", style="bold")
        text.append(" save")
        self.update(text)

    def action_answer(self, discard: bool) -> None:
        self.post_message(self.Answered(discard))
