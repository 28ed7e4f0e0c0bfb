"""What the mapper's source and target trees share: a tree of a type's fields built from
`SchemaNode`s, one node per field path (the node's data), rebuilt only when the fields
change — keeping the cursor and what was collapsed — and relabelled in place otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

if TYPE_CHECKING:
    from workbench.mapper.schema import SchemaNode


class SchemaTree(Tree[str]):
    """A tree of fields by path; subclasses say how a field's label reads (`_label`)."""

    DEFAULT_CSS = """
    SchemaTree {
        border: round $primary 40%;
        border-title-color: $text;
        overflow-x: hidden;
    }
    SchemaTree:focus {
        border: round $primary;
    }
    """

    CURSOR_TO_FIRST: ClassVar[bool] = False
    """After a rebuild that lost the cursor's field, put the cursor on the first field."""

    def __init__(self, root: str, title: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(root, id=id)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False
        self.border_title = title
        self._by_path: dict[str, TreeNode[str]] = {}
        self._schema: dict[str, SchemaNode] = {}
        self._shape: tuple[tuple[str, str], ...] = ()

    @property
    def selected_path(self) -> str | None:
        """The field path under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

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

    def _label(self, node: SchemaNode) -> Text:
        """The label of a field (each subclass has its own)."""
        raise NotImplementedError  # abstract: SourceTree and TargetTree define it

    def _show(self, roots: Sequence[SchemaNode], problem: str | None) -> None:
        """Show `roots`, or the `problem` in red instead when it is given."""
        shape = tuple((n.path, n.type) for root in roots for n in root.walk())
        if problem is not None:
            shape = (("!", problem),)
        if shape == self._shape:
            self._relabel_all()
            return
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
        if target is None and self.CURSOR_TO_FIRST and self._by_path:
            target = next(iter(self._by_path.values()))
        if target is not None:
            _ = self.last_line  # lay the lines out, so the node knows its line
            self.move_cursor(target)

    def _relabel_all(self) -> None:
        for path, node in self._by_path.items():
            self._relabel(node, self._label(self._schema[path]))

    def _relabel_path(self, path: str) -> None:
        if path in self._by_path:
            self._relabel(self._by_path[path], self._label(self._schema[path]))

    @staticmethod
    def _relabel(node: TreeNode[str], label: Text) -> None:
        # most labels stay the same from one change to the next: redraw only the others
        if node.label != label:
            node.set_label(label)
