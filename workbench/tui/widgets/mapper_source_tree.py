"""The data mapper's source tree: the fields of the mapping's sources, with the sample's
values.

    ▼ src: Order
        customer: str = "ada@example.com"
      ▼ items: list[Item] (2)
          sku: str = "TEA-01"          (a list's fields show its first element)
        note: str | None = null

Each node's data is its source path (`src.items[].sku`), the path `l` links from. A field
marked for linking shows `⇢`. Rebuilding keeps the cursor and what was collapsed; when only
the values change, labels are updated in place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.text import Text

from workbench.tui.mapper_session import NO_VALUE
from workbench.tui.widgets.mapper_schema_tree import SchemaTree

if TYPE_CHECKING:
    from workbench.mapper.schema import SchemaNode

VALUE_WIDTH = 32
"""Characters of a sample value shown in a label."""


def show_value(value: Any, width: int = VALUE_WIDTH) -> str:
    """A sample value in a few characters, JSON-like."""
    if isinstance(value, BaseModel):
        return "{…}"
    if isinstance(value, Mapping):
        return "{…}" if value else "{}"
    if isinstance(value, list | tuple):
        return f"[{len(value)}]"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class SourceTree(SchemaTree):
    """The left pane of the mapper: source fields and sample values."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("sources", "Source", id=id)
        self.marked: str | None = None
        """The source path marked for linking."""
        self._values: Mapping[str, Any] = {}
        self._counts: Mapping[str, int] = {}

    def show(self, roots: Sequence[SchemaNode], values: Mapping[str, Any],
             counts: Mapping[str, int], problem: str | None = None) -> None:
        """Show the source trees with the sample's values (`problem`: why there are no
        trees, e.g. an unknown source type)."""
        self._values, self._counts = values, counts
        self._show(roots, problem)

    def mark(self, path: str | None) -> None:
        """Mark the field `path` for linking (None: unmark)."""
        previous, self.marked = self.marked, path
        for changed in (previous, path):
            if changed is not None:
                self._relabel_path(changed)

    def _label(self, node: SchemaNode) -> Text:
        text = Text()
        if node.path == self.marked:
            text.append("⇢ ", style="bold reverse magenta")
        text.append(node.name, style="bold" if node.kind == "object" else "")
        text.append(f": {node.type}", style="dim")
        if node.path in self._counts:
            text.append(f" ({self._counts[node.path]})", style="dim")
        elif node.kind == "value":
            value = self._values.get(node.path, NO_VALUE)
            if value is not NO_VALUE:
                text.append(" = ")
                text.append(show_value(value), style="cyan")
        return text
