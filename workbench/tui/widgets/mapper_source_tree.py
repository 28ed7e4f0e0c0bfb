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
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from workbench.tui.mapper_session import NO_VALUE

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


class SourceTree(Tree[str]):
    """The left pane of the mapper: source fields and sample values."""

    DEFAULT_CSS = """
    SourceTree {
        border: round $primary 40%;
        border-title-color: $text;
        overflow-x: hidden;
    }
    SourceTree:focus {
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("sources", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False
        self.border_title = "Source"
        self.marked: str | None = None
        """The source path marked for linking."""
        self._by_path: dict[str, TreeNode[str]] = {}
        self._schema: dict[str, SchemaNode] = {}
        self._shape: tuple[tuple[str, str], ...] = ()
        self._values: Mapping[str, Any] = {}
        self._counts: Mapping[str, int] = {}

    @property
    def selected_path(self) -> str | None:
        """The source path under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

    def show(self, roots: Sequence[SchemaNode], values: Mapping[str, Any],
             counts: Mapping[str, int], problem: str | None = None) -> None:
        """Show the source trees with the sample's values (`problem`: why there are no
        trees, e.g. an unknown source type)."""
        self._values, self._counts = values, counts
        shape = tuple((n.path, n.type) for root in roots for n in root.walk())
        if problem is not None:
            shape = (("!", problem),)
        if shape == self._shape:
            for path, node in self._by_path.items():
                self._relabel(node, self._label(self._schema[path]))
            return
        self._rebuild(roots, shape, problem)

    def _rebuild(self, roots: Sequence[SchemaNode], shape: tuple[tuple[str, str], ...],
                 problem: str | None) -> None:
        collapsed = {p for p, node in self._by_path.items() if not node.is_expanded}
        current = self.selected_path
        self.clear()
        self._by_path.clear()
        self._schema.clear()
        self._shape = shape
        if problem is not None:
            self.root.add_leaf(Text(problem, style="red"))
            return

        def add(parent: TreeNode[str], node: SchemaNode) -> None:
            self._schema[node.path] = node
            label = self._label(node)
            if node.children:
                branch = parent.add(label, node.path, expand=node.path not in collapsed)
                self._by_path[node.path] = branch
                for child in node.children:
                    add(branch, child)
            else:
                self._by_path[node.path] = parent.add_leaf(label, node.path)

        for root in roots:
            add(self.root, root)
        target = self._by_path.get(current or "")
        if target is not None:
            _ = self.last_line  # lay the lines out, so the node knows its line
            self.move_cursor(target)

    def mark(self, path: str | None) -> None:
        """Mark the field `path` for linking (None: unmark)."""
        previous, self.marked = self.marked, path
        for changed in (previous, path):
            if changed is not None and changed in self._by_path:
                self._relabel(self._by_path[changed], self._label(self._schema[changed]))

    def _relabel(self, node: TreeNode[str], label: Text) -> None:
        # most labels stay the same from one change to the next: redraw only the others
        if node.label != label:
            node.set_label(label)

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
