"""The data mapper's key bar: every key that works where the focus is, on one line, the
way Textual's `Footer` shows them (after the user's keymap; keys that do nothing here are
dimmed).

    esc Close  ^s Save  ^z Undo  ^y Redo  e Edit  l Link  d Unmap  a Auto-map  ...  ^p palette

One widget that redraws its line when the bindings change: the mapper moves the focus
between its panes all the time, and `Footer` builds a widget per key on every move, which
costs more than everything else the mapper draws (tens of milliseconds each time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.screen import Screen

KEY_STYLE = "bold $footer-key-foreground"
DESCRIPTION_STYLE = "$footer-description-foreground"
DISABLED_STYLE = "$text-disabled"


class KeyBar(Static):
    """The keys of the focused pane and the screen, with what they do."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.refresh_keys)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh_keys()

    def refresh_keys(self) -> None:
        """Draw the keys of the bindings active now."""
        app = self.app
        parts: list[str | tuple[str, str]] = []
        seen: set[str] = set()
        palette = None
        for _node, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if binding.action == "app.command_palette" or binding.key == "ctrl+p":
                palette = binding
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            key = app.get_key_display(binding)
            parts.append((f" {key} ", KEY_STYLE if enabled else DISABLED_STYLE))
            parts.append((f"{binding.description} ", DESCRIPTION_STYLE if enabled
                          else DISABLED_STYLE))
        if palette is not None and app.ENABLE_COMMAND_PALETTE:
            parts.append((f"  {app.get_key_display(palette)} ", KEY_STYLE))
            parts.append(("palette", DESCRIPTION_STYLE))
        self.update(Content.assemble(*parts))
