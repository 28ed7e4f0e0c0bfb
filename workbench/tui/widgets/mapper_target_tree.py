"""The data mapper's target tree: the target type's fields and how each is mapped.

    * customer: str                       (required, not mapped: yellow)
    ✓ total: float ← order_total(src)
    ✖ items: int ← each src.items → sum   (an error on the field: red)
    ▼ lines: list[InvoiceLine] ← each src.items
        ✓ sku: str ← item.sku

Each node's data is its target path (`lines[].sku`), as mapping files and
`workbench.mapper.edit` name fields. A rule for a field the target type does not have is
listed at the end, in red. Rebuilding keeps the cursor and what was collapsed; when only
marks and expressions change, labels are updated in place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from workbench.tui.mapper_session import FieldView, brief

if TYPE_CHECKING:
    from workbench.mapper.schema import SchemaNode

MARKS: dict[str, tuple[str, str]] = {
    "error": ("✖", "bold red"),
    "unmapped": ("*", "bold yellow"),
    "warning": ("!", "yellow"),
    "mapped": ("✓", "green"),
    "optional": ("·", "dim"),
}
"""State → (mark, style) of a field's label."""


def field_state(view: FieldView) -> str:
    """`error`, `unmapped` (required, not mapped), `warning`, `mapped` or `optional`."""
    if view.unmapped_required:
        return "unmapped"
    if view.errors:
        return "error"
    if view.warnings:
        return "warning"
    return "mapped" if view.node.mapped else "optional"


class TargetTree(Tree[str]):
    """The middle pane of the mapper: target fields, marks and expressions."""

    DEFAULT_CSS = """
    TargetTree {
        border: round $primary 40%;
        border-title-color: $text;
        overflow-x: hidden;
    }
    TargetTree:focus {
        border: round $primary;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("target", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False
        """Enter edits the field under the cursor; space opens and closes nodes."""
        self.border_title = "Target"
        self._by_path: dict[str, TreeNode[str]] = {}
        self._shape: tuple[tuple[str, str], ...] = ()
        self._views: Mapping[str, FieldView] = {}

    @property
    def selected_path(self) -> str | None:
        """The target path under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

    def show(self, roots: Sequence[SchemaNode], views: Mapping[str, FieldView],
             problem: str | None = None) -> None:
        """Show the target fields (`problem`: why there are none, e.g. an unknown type)."""
        self._views = views
        shape = tuple((n.path, n.type) for root in roots for n in root.walk())
        if problem is not None and not roots:
            shape = (("!", problem),)
        if shape == self._shape:
            for path, node in self._by_path.items():
                if path in views:
                    label = self._label(views[path])
                    if node.label != label:  # redraw only the lines that changed
                        node.set_label(label)
            return
        collapsed = {p for p, node in self._by_path.items() if not node.is_expanded}
        current = self.selected_path
        self.clear()
        self._by_path.clear()
        self._shape = shape
        if problem is not None and not roots:
            self.root.add_leaf(Text(problem, style="red"))
            return

        def add(parent: TreeNode[str], node: SchemaNode) -> None:
            label = self._label(views[node.path]) if node.path in views else Text(node.name)
            if node.children:
                branch = parent.add(label, node.path, expand=node.path not in collapsed)
                self._by_path[node.path] = branch
                for child in node.children:
                    add(branch, child)
            else:
                self._by_path[node.path] = parent.add_leaf(label, node.path)

        for root in roots:
            add(self.root, root)
        _ = self.last_line  # lay the lines out, so nodes know their lines
        target = self._by_path.get(current or "")
        if target is None and self._by_path:
            target = next(iter(self._by_path.values()))
        if target is not None:
            self.move_cursor(target)

    def select_path(self, path: str) -> bool:
        """Put the cursor on the field `path` (opening its parents); False if not shown."""
        node = self._by_path.get(path)
        if node is None:
            return False
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        _ = self.last_line
        self.move_cursor(node)
        return True

    def _label(self, view: FieldView) -> Text:
        node = view.node
        mark, style = MARKS[field_state(view)]
        text = Text()
        text.append(f"{mark} ", style=style)
        name_style = "bold yellow" if view.unmapped_required else (
            "bold red" if view.errors else ""
        )
        text.append(node.name, style=name_style)
        if view.extra:
            text.append(" (not in the target type)", style="red")
        else:
            text.append(f": {node.type}", style="dim")
        shown = brief(view.raw)
        if shown:
            text.append(" ← ", style="dim")
            text.append(shown, style="red" if view.errors else "green")
        return text
