"""The data mapper's chooser: a list that opens under the title to pick the mapping (`m`)
or the preview's sample (`s`). Enter picks the highlighted entry, Escape closes it.

A plain list, mounted the first time it is needed: the mapper opens faster without two
drop-down selects and their overlays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option


class Picker(OptionList):
    """Offers entries (label, value) for one choice at a time."""

    DEFAULT_CSS = """
    Picker {
        height: auto;
        max-height: 12;
        border: round $accent;
        border-title-color: $text;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="mapper-close-picker",
                tooltip="Close the list without choosing"),
    ]

    class Picked(Message):
        """`value` was chosen for `kind` (`mapping` or `sample`)."""

        def __init__(self, kind: str, value: str) -> None:
            super().__init__()
            self.kind = kind
            self.value = value

    class Closed(Message):
        """The list was closed (after a choice or without one)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.kind = ""
        self.values: list[str] = []

    def offer(self, kind: str, title: str, entries: Sequence[tuple[str, str]],
              current: str | None) -> None:
        """List `entries` for choosing `kind`, the `current` value highlighted."""
        self.kind = kind
        self.border_title = f"{title} — Enter picks · Esc closes"
        self.values = [value for _, value in entries]
        self.set_options([Option(label, id=value) for label, value in entries])
        if self.values:
            self.highlighted = self.values.index(current) if current in self.values else 0

    @on(OptionList.OptionSelected)
    def _selected(self, message: OptionList.OptionSelected) -> None:
        message.stop()
        value = self.values[message.option_index]
        self.post_message(self.Closed())
        self.post_message(self.Picked(self.kind, value))

    def action_close(self) -> None:
        self.post_message(self.Closed())
