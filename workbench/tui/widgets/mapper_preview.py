"""The data mapper's preview: the whole output for the chosen sample, as JSON, and what
failed.

    ✓ maps without errors
    {
      "customer": "ada@example.com",
      ...
    }
    ✖ total: NameError: name 'order_totl' is not defined

A failed field is left out of the JSON and listed under it with its message; so are the
problems of the file and the sample.
"""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from workbench.tui.mapper_session import Analysis

MAX_LISTED = 50
"""Field problems listed under the JSON."""
_JSON = JSONHighlighter()
"""Colours JSON by regular expressions: a preview of hundreds of fields is laid out on
every change, and a full lexer costs tens of milliseconds there."""


def preview_renderable(analysis: Analysis | None) -> RenderableType:
    """The preview's content for an analysis (over the sample the screen names)."""
    if analysis is None:
        return Text("Loading…", style="dim")
    parts: list[RenderableType] = []
    errors = [(p, e) for p, v in analysis.fields.items() if not v.unmapped_required
              for e in v.errors]
    unmapped = analysis.unmapped
    head = Text()
    count = len(errors) + len(analysis.general)
    if count:
        head.append(f"✖ {count} error{'s' if count != 1 else ''}", style="bold red")
    elif unmapped:
        head.append(f"* {len(unmapped)} required field{'s' if len(unmapped) != 1 else ''} "
                    "not mapped", style="bold yellow")
    elif analysis.ok:
        head.append("✓ maps without errors", style="bold green")
    else:
        head.append("✖ the output does not validate", style="bold red")
    if count and unmapped:
        head.append(f" · {len(unmapped)} required not mapped", style="yellow")
    if analysis.output is None and not analysis.general:
        head.append(" · no sample to map", style="dim")
    parts.append(head)
    if analysis.output is not None:
        text = json.dumps(analysis.output, indent=2, ensure_ascii=False, default=str)
        parts.append(_JSON(Text(text, no_wrap=True, overflow="ellipsis")))
    for problem in analysis.general:
        parts.append(Text(f"✖ {problem}", style="red"))
    for path, error in errors[:MAX_LISTED]:
        line = Text("✖ ", style="red")
        line.append(path, style="bold red")
        line.append(f": {error}", style="red")
        parts.append(line)
    if len(errors) > MAX_LISTED:
        parts.append(Text(f"… and {len(errors) - MAX_LISTED} more", style="red"))
    for path in unmapped[:MAX_LISTED]:
        parts.append(Text(f"* {path}: required, not mapped", style="yellow"))
    return Group(*parts)


class MapperPreview(VerticalScroll):
    """The output of the mapping being edited, over the chosen sample."""

    DEFAULT_CSS = """
    MapperPreview {
        border: round $primary 40%;
        border-title-color: $text;
        padding: 0 1;
    }
    MapperPreview:focus {
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.border_title = "Preview"
        self.analysis: Analysis | None = None

    def compose(self) -> ComposeResult:
        yield Static(preview_renderable(None), id="mapper-preview-body")

    def show(self, analysis: Analysis) -> None:
        """Show what `analysis` maps its sample to."""
        self.analysis = analysis
        self.query_one("#mapper-preview-body", Static).update(preview_renderable(analysis))
