"""`DiffView`: two texts side by side, the lines that differ highlighted.

The rows are aligned with `difflib.SequenceMatcher`: equal lines sit on one row, a replaced
block pairs its lines row by row (the characters that changed inside a pair are marked),
deleted lines have an empty right side and inserted lines an empty left side.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

Tag = Literal["equal", "replace", "delete", "insert"]

LEFT_STYLE = "on #4b1e22"
RIGHT_STYLE = "on #1c4226"
LEFT_MARK = "bold #ffd7d7 on #8a2a32"
RIGHT_MARK = "bold #d7ffd7 on #2a7a3a"
NUMBER_STYLE = "dim"


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of the side-by-side view; a side is None where it has no line."""

    tag: Tag
    left_no: int | None
    left: str | None
    right_no: int | None
    right: str | None

    @property
    def changed(self) -> bool:
        return self.tag != "equal"


def side_by_side(left: list[str], right: list[str]) -> list[DiffRow]:
    """Align two lists of lines into rows."""
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                DiffRow("equal", i + 1, left[i], j + 1, right[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        if tag == "replace":
            for k in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + k, j1 + k
                rows.append(
                    DiffRow(
                        "replace",
                        i + 1 if i < i2 else None, left[i] if i < i2 else None,
                        j + 1 if j < j2 else None, right[j] if j < j2 else None,
                    )
                )
        elif tag == "delete":
            rows.extend(DiffRow("delete", i + 1, left[i], None, None) for i in range(i1, i2))
        else:
            rows.extend(DiffRow("insert", None, None, j + 1, right[j]) for j in range(j1, j2))
    return rows


def _marked(line: str, other: str | None, base: str, mark: str) -> Text:
    """`line` in the style of its side, the characters that differ from `other` marked."""
    text = Text(line, style=base, end="")
    if other is None:
        return text
    matcher = difflib.SequenceMatcher(None, other, line, autojunk=False)
    for tag, _o1, _o2, start, end in matcher.get_opcodes():
        if tag in ("replace", "insert") and end > start:
            text.stylize(mark, start, end)
    return text


def render_rows(
    rows: list[DiffRow], left_title: str, right_title: str
) -> Table:
    """A two-column Rich table of the rows (line numbers beside each side)."""
    table = Table(
        box=None, expand=True, show_header=True, header_style="bold", padding=(0, 1),
        show_edge=False,
    )
    table.add_column("", justify="right", style=NUMBER_STYLE, no_wrap=True, width=4)
    table.add_column(left_title, ratio=1, overflow="fold")
    table.add_column("", justify="right", style=NUMBER_STYLE, no_wrap=True, width=4)
    table.add_column(right_title, ratio=1, overflow="fold")
    for row in rows:
        if row.tag == "equal":
            left = Text(row.left or "")
            right = Text(row.right or "")
        else:
            left = (
                _marked(row.left, row.right, LEFT_STYLE, LEFT_MARK)
                if row.left is not None else Text("")
            )
            right = (
                _marked(row.right, row.left, RIGHT_STYLE, RIGHT_MARK)
                if row.right is not None else Text("")
            )
        table.add_row(
            str(row.left_no) if row.left_no else "", left,
            str(row.right_no) if row.right_no else "", right,
        )
    return table


class DiffView(VerticalScroll):
    """Shows a recorded text and a new text side by side."""

    DEFAULT_CSS: ClassVar[str] = """
    DiffView {
        height: 1fr;
        border: round $border-blurred;
        padding: 0 1;
    }
    DiffView:focus-within {
        border: round $border;
    }
    DiffView > #diff-body {
        width: 1fr;
        height: auto;
    }
    """

    def __init__(
        self,
        *,
        placeholder: str = "Nothing to compare yet.",
        id: str | None = None,  # noqa: A002 - Textual's name for it
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.placeholder = placeholder
        self.rows: list[DiffRow] = []
        """The rows shown, empty when a message is shown instead."""

    def compose(self) -> ComposeResult:
        yield Static(Text(self.placeholder, style="dim"), id="diff-body")

    def show(
        self,
        left: str,
        right: str,
        *,
        left_title: str = "recorded",
        right_title: str = "new",
        heading: RenderableType | None = None,
    ) -> None:
        """Compare `left` with `right`, line by line."""
        self.rows = side_by_side(left.splitlines(), right.splitlines())
        table = render_rows(self.rows, left_title, right_title)
        body: RenderableType = table if heading is None else Group(heading, table)
        self.query_one("#diff-body", Static).update(body)
        self.scroll_home(animate=False)

    def show_message(self, message: str) -> None:
        """Show a message instead of a comparison."""
        self.rows = []
        self.query_one("#diff-body", Static).update(Text(message, style="dim"))

    @property
    def changed_rows(self) -> list[DiffRow]:
        return [row for row in self.rows if row.changed]
