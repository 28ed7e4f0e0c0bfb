"""The resolved configuration of one artifact (secrets masked): its declaration, its
policy, the configurable values of its module and the connections it uses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.config import Declared

SECRET_MARKERS = ("password", "token", "secret", "api_key", "apikey", "credential")


def mask_secrets(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with values under secret-looking keys masked (nested dicts too)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out[key] = mask_secrets(value)
        elif any(marker in key.lower() for marker in SECRET_MARKERS) and value:
            out[key] = "****"
        else:
            out[key] = value
    return out


def _json(value: Any) -> Syntax:
    return Syntax(json.dumps(value, indent=2, default=str), "json", theme="ansi_dark",
                  word_wrap=True, background_color="default")


class ConfigScreen(ModalScreen[None]):
    """Shows an artifact's resolved configuration; Escape closes it.

    Args:
        artifact: the artifact's name.
        config: its declared configuration (secrets already masked).
        policy: its dispatch policy.
        declared: the configurable values of its module (shown with `Declared.shown()`).
        connections: name → (kind, described config) of the connections it uses.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close-config",
                tooltip="Close the configuration view"),
    ]

    DEFAULT_CSS = """
    ConfigScreen {
        align: center middle;
    }
    ConfigScreen > VerticalScroll {
        width: 90;
        max-width: 100%;
        height: 80%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        artifact: str,
        config: Mapping[str, Any],
        policy: Mapping[str, Any],
        declared: Sequence[Declared],
        connections: Mapping[str, tuple[str, Mapping[str, Any]]],
    ) -> None:
        super().__init__()
        self.artifact = artifact
        self.config = dict(config)
        self.policy = dict(policy)
        self.declared = list(declared)
        self.connections = dict(connections)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = f"Configuration of {self.artifact} — Escape closes"
            yield Static(self._content(), id="config-body")

    def _content(self) -> Group:
        parts: list[RenderableType] = [
            Text("Declaration", style="bold underline"), _json(self.config),
            Text("Policy", style="bold underline"), _json(self.policy),
            Text("Configurable values of its module", style="bold underline"),
        ]
        if self.declared:
            table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
            for column in ("key", "value", "type", "from", "declared at"):
                table.add_column(column, overflow="fold")
            for item in self.declared:
                table.add_row(
                    f"{item.module}.{item.name}", repr(item.shown()), item.type_name,
                    item.origin, f"{item.file}:{item.line}",
                )
            parts.append(table)
        else:
            parts.append(Text("(none)", style="dim"))
        parts.append(Text("Connections", style="bold underline"))
        if self.connections:
            for name, (kind, described) in self.connections.items():
                parts.append(Text(f"{name} ({kind})", style="bold cyan"))
                parts.append(_json(described))
        else:
            parts.append(Text("(none)", style="dim"))
        return Group(*parts)

    def action_close(self) -> None:
        self.dismiss(None)
