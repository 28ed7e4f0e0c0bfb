"""The key help screen (`?`): every binding with its id, key and description, the filter
syntax and the keymap file format."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.tui.filters import FILTER_HELP
from workbench.tui.keymap import PROJECT_KEYMAP, user_keymap_path

if TYPE_CHECKING:
    from textual.app import App

KEYMAP_HELP = """\
[keymap]                 # in ~/.config/iwb/keymap.toml or <project>/.iwb/keymap.toml
filter = "ctrl+f"        # binding id = key (several keys: "ctrl+f,f3")
start-artifact = "ctrl+r"
Keys use Textual's names: a, A (shift+a), ctrl+x, f1, escape, enter, space, question_mark.
The project's file wins over the user's; unknown ids are reported and skipped."""


def binding_scopes() -> list[tuple[str, list[Binding]]]:
    """Every binding of the workbench, by where it applies: (scope, bindings)."""
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.screens.error import ErrorScreen
    from workbench.tui.screens.main import MainScreen
    from workbench.tui.widgets.event_stream import EventStream
    from workbench.tui.widgets.filter_bar import FilterBar

    scopes: list[tuple[str, Iterable[BindingType]]] = [
        ("app", WorkbenchApp.BINDINGS),
        ("main screen", MainScreen.BINDINGS),
        ("event stream", EventStream.BINDINGS),
        ("filter bar", FilterBar.BINDINGS),
        ("help screen", HelpScreen.BINDINGS),
        ("error screen", ErrorScreen.BINDINGS),
        *mapper_scopes(),
    ]
    return [
        (scope, [b for b in bindings if isinstance(b, Binding) and b.id])
        for scope, bindings in scopes
    ]


def mapper_scopes() -> list[tuple[str, Iterable[BindingType]]]:
    """The data mapper's bindings, when it is installed (see `MainScreen`)."""
    import importlib.util

    if importlib.util.find_spec("workbench.tui.screens.mapper") is None:
        return []
    from workbench.tui.screens.mapper import MapperScreen
    from workbench.tui.widgets.mapper_confirm import DiscardBar
    from workbench.tui.widgets.mapper_expression import ExpressionInput
    from workbench.tui.widgets.mapper_new import NewMappingForm
    from workbench.tui.widgets.mapper_picker import Picker
    from workbench.tui.widgets.mapper_proposals import ProposalList

    return [
        ("data mapper", MapperScreen.BINDINGS),
        ("mapper editor", ExpressionInput.BINDINGS),
        ("auto-map list", ProposalList.BINDINGS),
        ("mapper chooser", Picker.BINDINGS),
        ("unsaved question", DiscardBar.BINDINGS),
        ("new mapping form", NewMappingForm.BINDINGS),
    ]


def binding_ids() -> list[str]:
    """The id of every remappable binding."""
    return sorted({b.id for _scope, bindings in binding_scopes() for b in bindings if b.id})


def key_display(app: App[object], binding: Binding, keymap: Mapping[str, str]) -> str:
    """The keys of a binding after the keymap, as the footer shows them."""
    keys = keymap.get(binding.id or "", binding.key)
    shown = []
    for key in keys.split(","):
        key = key.strip()
        custom = binding.key_display if key == binding.key else None
        shown.append(app.get_key_display(dataclasses.replace(binding, key=key,
                                                               key_display=custom)))
    return ", ".join(shown)


class HelpScreen(ModalScreen[None]):
    """Lists every key binding; Escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-help",
                tooltip="Close the help screen"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 96;
        max-width: 100%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(self, keymap: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.keymap = dict(keymap or {})

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys — Escape closes"
            yield Static(self._content(), id="help-body")

    def _content(self) -> Group:
        table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        table.add_column("key", style="bold yellow", no_wrap=True)
        table.add_column("id", style="cyan", no_wrap=True)
        table.add_column("action")
        table.add_column("where", style="dim", no_wrap=True)
        for scope, bindings in binding_scopes():
            for binding in bindings:
                description = binding.description or binding.action
                if binding.tooltip:
                    description = f"{description} — {binding.tooltip}"
                table.add_row(key_display(self.app, binding, self.keymap), binding.id,
                              description, scope)
        table.add_row("ctrl+p", "command-palette",
                      "Command palette — every action above, searchable", "app")
        table.add_row("↑ ↓ PgUp PgDn", "", "Move in the focused pane; in the stream this "
                      "pauses following, and ↑ on the first row loads older events",
                      "stream, tree")
        table.add_row("tab", "", "Next pane", "app")
        user = user_keymap_path()
        return Group(
            Text("Keys", style="bold underline"),
            table,
            Text(""),
            Text("Filter syntax (/)", style="bold underline"),
            Text(FILTER_HELP),
            Text(""),
            Text("Keymap files", style="bold underline"),
            Text(f"User: {user}\nProject: {PROJECT_KEYMAP}", style="dim"),
            Text(KEYMAP_HELP),
        )

    def action_close(self) -> None:
        self.dismiss(None)
