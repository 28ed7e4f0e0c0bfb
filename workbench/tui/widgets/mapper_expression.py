"""The data mapper's expression editor: one line for the selected target field.

It completes the word at the end of the line (a source path such as `src.items`, an
element variable inside an `each` rule, an input, a `uses` function, a helper): the rest
of the first completion shows dimmed, and → or tab takes it. Enter applies the line to the
field; Escape first puts back what the field holds, and a second Escape leaves the editor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input

Completer = Callable[[str], tuple[str, list[str]]]
"""The line → (the word being completed, its full completions)."""


class ExpressionSuggester(Suggester):
    """Suggests the line completed with the first completion of its last word."""

    def __init__(self, completer: Completer) -> None:
        # the completions depend on the selected field: no cache, and case matters
        super().__init__(use_cache=False, case_sensitive=True)
        self.completer = completer

    async def get_suggestion(self, value: str) -> str | None:
        word, candidates = self.completer(value)
        if not word or not candidates:
            return None
        return value[: len(value) - len(word)] + candidates[0]


class ExpressionInput(Input):
    """The expression of the selected target field.

    Args:
        completer: gives the completions of the line's last word.
    """

    DEFAULT_CSS = """
    ExpressionInput {
        width: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Revert / leave", id="mapper-leave-editor",
                tooltip="Put back the field's expression; pressed again, leave the editor"),
        Binding("tab", "complete", "Complete", id="mapper-complete", show=False,
                tooltip="Take the completion shown after the cursor (→ takes it too)"),
    ]

    class Left(Message):
        """Escape on an unchanged line: the user is done with the editor."""

    def __init__(self, completer: Completer, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(placeholder="select a target field, then type its expression",
                         suggester=ExpressionSuggester(completer), compact=True,
                         select_on_focus=False, id=id)
        self.completer = completer
        self.original = ""
        """What the field holds (Escape puts it back)."""
        self.path: str | None = None
        """The target field being edited."""

    def load(self, path: str | None, text: str) -> None:
        """Show the field `path`'s expression (None: no field selected)."""
        self.path = path
        self.original = text
        self.value = text
        self.cursor_position = len(text)
        self.disabled = path is None

    @property
    def changed(self) -> bool:
        """The line differs from what the field holds."""
        return self.value != self.original

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "complete":
            # without a completion, tab moves the focus as everywhere else
            return bool(self._suggestion) and self.cursor_at_end
        return True

    def action_complete(self) -> None:
        self.value = self._suggestion
        self.cursor_position = len(self.value)

    def action_leave(self) -> None:
        if self.changed:
            self.value = self.original
            self.cursor_position = len(self.value)
        else:
            self.post_message(self.Left())
