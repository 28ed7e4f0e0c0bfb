"""The artifact tree: the project's artifacts by group, its problems and its other parts.

    ▼ Integration as API
      ▶ ● orders listening · :8080/orders · 12 ev 0.4/s
    ▼ Problems
        ✖ artifacts/broken.py:3: syntax error: invalid syntax
    ▼ Other
      ▶ Functions (4)
      ▶ Connections (1)

An artifact's node shows its status (coloured), address and event count and rate; its
children are its handlers (with file:line). An artifact whose module failed to import
shows the error's file:line instead of its address. Groups come from
`workbench.tui.groups`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from workbench.errors import ProjectError, WorkbenchError
from workbench.runtime.dispatch import ArtifactState, Status
from workbench.tui.groups import GROUP_ORDER, OTHER, OTHER_ENTRIES, group_of
from workbench.tui.project_view import OtherParts, TreeEntry
from workbench.tui.source import handler_location

STATUS_STYLES: dict[str, str] = {
    Status.LISTENING: "green",
    Status.STARTING: "yellow",
    Status.RELOADING: "yellow",
    Status.FAILED: "bold red",
    Status.RETRYING: "dark_orange",
    Status.STOPPED: "bright_black",
    Status.LOADED: "blue",
    Status.DISABLED: "bright_black italic",
}
"""The colour of each artifact status."""

PROBLEMS = "Problems"


def status_style(status: str) -> str:
    """The colour of a status (unknown statuses are plain)."""
    return STATUS_STYLES.get(status, "")


def short_address(address: str, root: Path | None = None) -> str:
    """An address for a narrow label: a loopback URL becomes `:port/path`, a folder
    inside the project becomes relative to it."""
    if root is not None and address.startswith(str(root) + "/"):
        return address[len(str(root)) + 1:]
    for prefix in ("http://127.0.0.1", "http://localhost", "https://127.0.0.1",
                   "https://localhost"):
        if address.startswith(prefix + ":"):
            return address[len(prefix):]
    return address


def error_where(error: WorkbenchError) -> str:
    """`file:line` of a project error, or ''."""
    return error.location() if isinstance(error, ProjectError) else ""


class ArtifactTree(Tree[TreeEntry]):
    """The left pane of the main screen."""

    DEFAULT_CSS = """
    ArtifactTree {
        border: round $primary 40%;
        overflow-x: hidden;
    }
    ArtifactTree:focus {
        border: round $primary;
    }
    """

    class EntryHighlighted(Message):
        """The cursor moved onto a node."""

        def __init__(self, tree: ArtifactTree, entry: TreeEntry | None) -> None:
            super().__init__()
            self.tree = tree
            self.entry = entry

        @property
        def control(self) -> ArtifactTree:
            return self.tree

    def __init__(
        self, root: Path | None = None, *, id: str | None = None,  # noqa: A002
    ) -> None:
        super().__init__("project", id=id)
        self.project_root = root
        self.show_root = False
        self.guide_depth = 2
        self._artifact_nodes: dict[str, TreeNode[TreeEntry]] = {}
        self._labels: dict[str, str] = {}
        self._structure: tuple[Any, ...] = ()
        self.border_title = "Artifacts"

    # ------------------------------------------------------------------ public API

    @property
    def selected(self) -> TreeEntry | None:
        """The entry under the cursor."""
        node = self.cursor_node
        return node.data if node is not None else None

    @property
    def selected_artifact(self) -> str | None:
        """The artifact under the cursor (an artifact node or one of its handlers)."""
        entry = self.selected
        return entry.artifact if entry is not None else None

    def artifact_names(self) -> list[str]:
        """Artifacts shown, in tree order."""
        return list(self._artifact_nodes)

    def show(
        self,
        artifacts: Sequence[ArtifactState],
        problems: Sequence[WorkbenchError],
        other: OtherParts,
        stats: Callable[[str], tuple[int, float]],
    ) -> None:
        """Build the tree (keeping the cursor on the same entry where it still exists).

        Args:
            artifacts: the runtime's artifact states.
            problems: load or reload errors that belong to no artifact.
            other: functions, types, mappings, connections and configuration.
            stats: artifact name → (events, events per second).
        """
        selected = self.selected
        expanded = {
            self._node_id(node) for node in self._walk(self.root) if node.is_expanded
        }
        first_build = not self._structure
        self.clear()
        self._artifact_nodes = {}
        self._labels = {}
        by_group: dict[str, list[ArtifactState]] = {}
        for state in artifacts:
            by_group.setdefault(group_of(state.kind), []).append(state)
        for group in GROUP_ORDER:
            if group == OTHER:
                if problems:
                    self._add_problems(problems, expanded, first_build)
                self._add_other(other, expanded, first_build)
                continue
            members = sorted(by_group.get(group, []), key=lambda s: s.name)
            entry = TreeEntry("group", group)
            label = Text(group, style="bold")
            label.append(f" ({len(members)})", style="dim")
            node = self.root.add(label, entry, allow_expand=bool(members))
            if members and (first_build or self._node_id(node) in expanded):
                node.expand()
            for state in members:
                self._add_artifact(node, state, stats(state.name), expanded)
        self._structure = self._shape(artifacts, problems, other)
        self.root.expand()
        if selected is not None:
            self._select(selected)

    def needs_rebuild(
        self,
        artifacts: Sequence[ArtifactState],
        problems: Sequence[WorkbenchError],
        other: OtherParts,
    ) -> bool:
        """Whether the tree's structure (not just its labels) changed."""
        return self._shape(artifacts, problems, other) != self._structure

    def update_artifact(self, state: ArtifactState, events: int, rate: float) -> None:
        """Refresh one artifact's label (status, address, counts)."""
        node = self._artifact_nodes.get(state.name)
        if node is None:
            return
        label = self._artifact_label(state, events, rate)
        if self._labels.get(state.name) != label.plain:
            self._labels[state.name] = label.plain
            node.set_label(label)

    def select_artifact(self, name: str) -> None:
        """Move the cursor to an artifact."""
        node = self._artifact_nodes.get(name)
        if node is not None:
            self.move_cursor(node)

    # ------------------------------------------------------------------ events

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[TreeEntry]) -> None:
        event.stop()
        self.post_message(self.EntryHighlighted(self, event.node.data))

    # ------------------------------------------------------------------ building

    def _add_artifact(
        self,
        parent: TreeNode[TreeEntry],
        state: ArtifactState,
        stats: tuple[int, float],
        expanded: set[str],
    ) -> None:
        file, line = state.artifact.declared_at
        entry = TreeEntry("artifact", state.name, state.name, file, line, state)
        label = self._artifact_label(state, *stats)
        node = parent.add(label, entry)
        self._labels[state.name] = label.plain
        self._artifact_nodes[state.name] = node
        if state.import_error is not None:
            message = state.import_error.message.splitlines()[0]
            node.add_leaf(
                Text(message, style="red"),
                TreeEntry("artifact", state.name, state.name, file, line, state),
            )
        for key, spec in state.artifact.handlers.items():
            h_file, h_line = handler_location(spec.func) or (file, line)
            text = Text(key or "(default)")
            text.append(f" → {getattr(spec.func, '__name__', spec.ref)}", style="dim")
            node.add_leaf(text, TreeEntry("handler", key, state.name, h_file, h_line, spec))
        if self._node_id(node) in expanded:
            node.expand()

    def _artifact_label(self, state: ArtifactState, events: int, rate: float) -> Text:
        text = Text()
        if state.import_error is not None:
            text.append("✖ ", style="bold red")
            text.append(state.name, style="bold")
            where = error_where(state.import_error)
            text.append(" import failed", style="bold red")
            if where:
                text.append(f" {where}", style="red")
        else:
            style = status_style(state.status)
            text.append("● ", style=style)
            text.append(state.name, style="bold")
            text.append(f" {state.status}", style=style)
        text.append(f" {events} ev")
        if rate:
            text.append(f" {rate:.1f}/s", style="cyan")
        if state.import_error is None:
            address = short_address(state.address or state.artifact.address(), self.project_root)
            if address:
                text.append(f" {address}", style="dim")
        return text

    def _add_problems(
        self, problems: Sequence[WorkbenchError], expanded: set[str], first: bool
    ) -> None:
        label = Text(PROBLEMS, style="bold red")
        label.append(f" ({len(problems)})", style="red")
        node = self.root.add(label, TreeEntry("group", PROBLEMS))
        for error in problems:
            where = error_where(error)
            first_line = error.message.splitlines()[0] if error.message else error.title
            text = Text("✖ ", style="red")
            text.append(first_line if where and first_line.startswith(where)
                        else f"{where + ': ' if where else ''}{first_line}")
            file = error.file if isinstance(error, ProjectError) else None
            line = error.line if isinstance(error, ProjectError) else None
            node.add_leaf(text, TreeEntry("problem", error.title, None, file, line, error))
        node.expand()

    def _add_other(self, other: OtherParts, expanded: set[str], first: bool) -> None:
        top = self.root.add(Text(OTHER, style="bold"), TreeEntry("group", OTHER))
        if first or self._node_id(top) in expanded:
            top.expand()
        sections: dict[str, list[tuple[Text, TreeEntry]]] = {name: [] for name in OTHER_ENTRIES}
        for item in other.functions:
            sections["Functions"].append(
                (self._item_text(item["name"], item.get("file", "")),
                 TreeEntry("function", item["name"], file=item.get("file"), data=item))
            )
        for item in other.types:
            sections["Types"].append(
                (self._item_text(item["name"], item.get("file", "")),
                 TreeEntry("type", item["name"], file=item.get("file"), data=item))
            )
        for item in other.mappings:
            sections["Data mappings"].append(
                (self._item_text(item["name"], item.get("file", "")),
                 TreeEntry("mapping", item["name"], file=item.get("file"), data=item))
            )
        for name, kind, described in other.connections:
            sections["Connections"].append(
                (self._item_text(name, kind),
                 TreeEntry("connection", name, data=(kind, described)))
            )
        for declared in other.config:
            text = Text(f"{declared.module}.{declared.name}")
            text.append(f" = {declared.shown()!r}", style="cyan")
            text.append(f" ({declared.origin})", style="dim")
            sections["Configurations"].append(
                (text, TreeEntry("config", f"{declared.module}.{declared.name}",
                                 file=declared.file, line=declared.line, data=declared))
            )
        for title in OTHER_ENTRIES:
            entries = sections[title]
            label = Text(title)
            label.append(f" ({len(entries)})", style="dim")
            node = top.add(label, TreeEntry("section", title), allow_expand=bool(entries))
            for text, entry in entries:
                node.add_leaf(text, entry)
            if entries and self._node_id(node) in expanded:
                node.expand()

    @staticmethod
    def _item_text(name: str, detail: str) -> Text:
        text = Text(name)
        if detail:
            text.append(f"  {detail}", style="dim")
        return text

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _node_id(node: TreeNode[TreeEntry]) -> str:
        entry = node.data
        return f"{entry.kind}:{entry.name}" if entry is not None else "root"

    def _walk(self, node: TreeNode[TreeEntry]) -> Iterable[TreeNode[TreeEntry]]:
        yield node
        for child in node.children:
            yield from self._walk(child)

    def _select(self, wanted: TreeEntry) -> None:
        for node in self._walk(self.root):
            entry = node.data
            if entry is not None and (entry.kind, entry.name, entry.artifact) == (
                wanted.kind, wanted.name, wanted.artifact
            ):
                parent = node.parent
                while parent is not None:
                    parent.expand()
                    parent = parent.parent
                self.call_after_refresh(self.move_cursor, node)
                return

    @staticmethod
    def _shape(
        artifacts: Sequence[ArtifactState],
        problems: Sequence[WorkbenchError],
        other: OtherParts,
    ) -> tuple[Any, ...]:
        return (
            tuple(
                (s.name, s.kind, tuple(s.artifact.handlers), id(s.artifact),
                 s.import_error.message if s.import_error else None)
                for s in artifacts
            ),
            tuple(e.message for e in problems),
            tuple(f["name"] for f in other.functions),
            tuple(t["name"] for t in other.types),
            tuple(m["name"] for m in other.mappings),
            tuple((n, k, tuple(sorted(map(str, d.items())))) for n, k, d in other.connections),
            tuple((d.module, d.name, repr(d.shown()), d.origin) for d in other.config),
        )
