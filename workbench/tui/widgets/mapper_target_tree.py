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

from workbench.tui.mapper_session import FieldView, brief
from workbench.tui.widgets.mapper_schema_tree import SchemaTree

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


class TargetTree(SchemaTree):
    """The middle pane of the mapper: target fields, marks and expressions."""

    CURSOR_TO_FIRST = True

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("target", "Target", id=id)
        self._views: Mapping[str, FieldView] = {}

    def show(self, roots: Sequence[SchemaNode], views: Mapping[str, FieldView],
             problem: str | None = None) -> None:
        """Show the target fields (`problem`: why there are none, e.g. an unknown type)."""
        self._views = views
        self._show(roots, problem if not roots else None)

    def _label(self, node: SchemaNode) -> Text:
        view = self._views.get(node.path)
        if view is None:
            return Text(node.name)
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
