"""The data mapper's form for a new mapping: its name, source type and target type (the
project's pydantic models, `module:Class`).

Enter in the name creates the mapping (unsaved until ctrl+s, auto-map proposals offered
at once); Escape cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Select, Static


class NewMappingForm(Vertical):
    """Name, source and target of a new mapping."""

    DEFAULT_CSS = """
    NewMappingForm {
        height: auto;
        border: round $accent;
        border-title-color: $text;
        padding: 0 1;
    }
    NewMappingForm > Horizontal {
        height: auto;
    }
    NewMappingForm #mapper-new-name {
        width: 1fr;
    }
    NewMappingForm Select {
        width: 2fr;
    }
    NewMappingForm #mapper-new-hint {
        height: auto;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="mapper-cancel-new",
                tooltip="Close the form without creating a mapping"),
        Binding("ctrl+n", "submit", "Create", id="mapper-create",
                tooltip="Create the mapping (Enter in the name field does too)"),
    ]

    class Submitted(Message):
        """Create mapping `name` from `source` to `target`."""

        def __init__(self, name: str, source: str, target: str) -> None:
            super().__init__()
            self.name = name
            self.source = source
            self.target = target

    class Cancelled(Message):
        """The form was closed."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.border_title = "New mapping — Enter creates · Esc cancels"

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Input(placeholder="name, e.g. order_to_invoice", id="mapper-new-name")
            yield Select[str]([], prompt="source type", id="mapper-new-source")
            yield Select[str]([], prompt="target type", id="mapper-new-target")
        yield Static("", id="mapper-new-hint")

    def open(self, types: Sequence[str]) -> None:
        """Offer the model references `types`; the name field gets the focus."""
        options = [(ref, ref) for ref in types]
        for select_id in ("#mapper-new-source", "#mapper-new-target"):
            self.query_one(select_id, Select).set_options(options)
        self.query_one("#mapper-new-name", Input).value = ""
        hint = "Pick the source and target types, name the mapping, press Enter."
        if not types:
            hint = "The project has no pydantic models in types/: add one first."
        self.say(hint)
        self.query_one("#mapper-new-name", Input).focus()

    def say(self, message: str, *, error: bool = False) -> None:
        self.query_one("#mapper-new-hint", Static).update(
            Text(message, style="red" if error else "dim")
        )

    @on(Input.Submitted, "#mapper-new-name")
    def _name_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        self.action_submit()

    def action_submit(self) -> None:
        name = self.query_one("#mapper-new-name", Input).value.strip()
        source = self.query_one("#mapper-new-source", Select).value
        target = self.query_one("#mapper-new-target", Select).value
        if not name:
            self.say("Give the mapping a name.", error=True)
            return
        if not isinstance(source, str) or not isinstance(target, str):
            self.say("Pick a source type and a target type.", error=True)
            return
        self.post_message(self.Submitted(name, source, target))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
