"""The filter bar above the event stream (`/`): `artifact:orders status:error text`.

Enter applies the filter (it runs over the whole capture store), Escape clears it and
hides the bar. The syntax is in `workbench.tui.filters`.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input

from workbench.tui.filters import EventFilter, FilterSyntaxError


class FilterBar(Input):
    """A one-line filter input; hidden until `open()`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "clear_filter", "Clear filter", id="clear-filter",
            tooltip="Clear the filter and show every event again",
        ),
    ]

    DEFAULT_CSS = """
    FilterBar {
        display: none;
        border: round $accent;
        height: 3;
    }
    FilterBar.-open {
        display: block;
    }
    """

    class Applied(Message):
        """The user entered a filter."""

        def __init__(self, bar: FilterBar, event_filter: EventFilter) -> None:
            super().__init__()
            self.bar = bar
            self.filter = event_filter

        @property
        def control(self) -> FilterBar:
            return self.bar

    class Cleared(Message):
        """The user cleared the filter (or closed the empty bar)."""

        def __init__(self, bar: FilterBar, was_active: bool) -> None:
            super().__init__()
            self.bar = bar
            self.was_active = was_active
            """A filter was in force (the stream must show everything again)."""

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's keyword
        super().__init__(
            placeholder="artifact:NAME kind:KIND status:ok|error|rejected text … "
                        "(Enter applies, Escape clears)",
            id=id,
        )
        self.border_title = "Filter"
        self.active: EventFilter | None = None
        """The filter in force, or None."""

    def open(self) -> None:
        """Show the bar and focus it at once: keys typed right after `/` go into it."""
        self.add_class("-open")
        self.screen.set_focus(self)

    def close(self) -> None:
        """Hide the bar (the filter stays in force)."""
        if self.active is None:
            self.remove_class("-open")

    async def action_submit(self) -> None:
        text = self.value.strip()
        if not text:
            self.action_clear_filter()
            return
        try:
            parsed = EventFilter.parse(text)
        except FilterSyntaxError as exc:
            self.app.notify(exc.message, title=exc.title, severity="error")
            return
        self.active = parsed
        self.border_title = f"Filter: {parsed.describe()}"
        self.post_message(self.Applied(self, parsed))

    def action_clear_filter(self) -> None:
        was_active = self.active is not None
        self.active = None
        self.value = ""
        self.border_title = "Filter"
        self.remove_class("-open")
        self.post_message(self.Cleared(self, was_active))
