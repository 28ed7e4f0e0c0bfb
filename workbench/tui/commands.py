"""The command palette (ctrl+p): every key binding of the workbench, as a command.

The commands are read from the bindings active on the screen the palette was opened from
(after the user's keymap is applied), so the palette always matches the keys: each command
shows its description, its tooltip, its key and its binding id. Bindings that are disabled
on the screen (for example an action with nothing to act on) are left out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from textual.binding import ActiveBinding
from textual.command import DiscoveryHit, Hit, Hits, Provider


class BindingCommands(Provider):
    """A command palette provider built from the key bindings."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Awaitable[bool]]]]:
        app = self.app
        commands: list[tuple[str, str, Callable[[], Awaitable[bool]]]] = []
        seen: set[str] = set()
        active: dict[str, ActiveBinding] = self.screen.active_bindings
        for active_binding in active.values():
            node, binding, enabled, tooltip = active_binding
            if not enabled or binding.id is None or binding.system or binding.id in seen:
                continue
            seen.add(binding.id)
            name = binding.description or binding.action.replace("_", " ")
            key = app.get_key_display(binding)
            help_text = f"{tooltip or binding.tooltip} — key {key} — id {binding.id}"
            commands.append((name, help_text, partial(app.run_action, binding.action, node)))
        return sorted(commands, key=lambda command: command[0].lower())

    async def discover(self) -> Hits:
        """Every binding, for the palette's empty query."""
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Bindings whose description matches the query (fuzzy)."""
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = max(matcher.match(name), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
