"""`WorkbenchApp`: the Textual app of `iwb open`, over one `Runtime`.

The app is thin: it starts the runtime when it mounts (`start(strict=False)`, so a project
with errors still opens and shows them), bridges the runtime's bus to the screens (handled
events into the `LiveFeed`, everything else as Textual messages to the main screen),
applies the user's keymap, and stops the runtime when it quits. The screens do the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from workbench.errors import WorkbenchError
from workbench.runtime import collector
from workbench.runtime.bus import EventHandled
from workbench.runtime.bus import Message as BusMessage
from workbench.tui.commands import BindingCommands
from workbench.tui.feed import LiveFeed
from workbench.tui.keymap import Keymap, load_keymap
from workbench.tui.messages import RuntimeFailed, RuntimeStarted, from_bus
from workbench.tui.screens.help import HelpScreen, binding_ids
from workbench.tui.screens.main import MainScreen

if TYPE_CHECKING:
    from collections.abc import Callable

    from workbench.runtime.runtime import Runtime

log = logging.getLogger("iwb.tui")

STOP_DRAIN = 2.0
"""Seconds in-flight events get to finish when the app quits."""


class WorkbenchApp(App[int]):
    """The integration workbench.

    Args:
        runtime: the project's runtime, not started yet (the app starts and stops it).
        window: rows kept in the live event stream.
        listen: start the artifacts' listeners (False: load the project and open the
            capture store only).
        user_keymap: the user-wide keymap file (default `~/.config/iwb/keymap.toml`).
    """

    CSS_PATH = "app.tcss"
    TITLE = "iwb"
    COMMANDS: ClassVar = App.COMMANDS | {BindingCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit",
                tooltip="Stop the runtime (in-flight events finish) and quit"),
        Binding("question_mark", "help", "Keys", id="help",
                tooltip="Show every key binding, the filter syntax and the keymap format"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        window: int = 1000,
        listen: bool = True,
        user_keymap: Path | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.window = window
        self.listen = listen
        self.user_keymap = user_keymap
        self._gc_threshold: tuple[int, int, int] | None = None
        self.feed = LiveFeed(window)
        self.keymap = Keymap()
        self.main: MainScreen | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._start_attempted = False
        self._stopped = False

    def on_mount(self) -> None:
        self.apply_keymap()
        self.main = MainScreen(self.runtime, self.feed, self.window)
        self.push_screen(self.main)
        self.run_worker(self._start_runtime(), name="start runtime", group="runtime")

    def apply_keymap(self) -> None:
        """Read the user's and the project's keymap files and apply them."""
        self.keymap = load_keymap(self.runtime.root, binding_ids(), user_path=self.user_keymap)
        self.set_keymap(self.keymap.bindings)
        for problem in self.keymap.problems:
            self.notify(problem, title="Keymap", severity="warning", markup=False, timeout=10)

    # ------------------------------------------------------------------ runtime

    async def _start_runtime(self) -> None:
        assert self.main is not None
        self._unsubscribe = self.runtime.bus.subscribe(self._on_bus)
        self._start_attempted = True
        try:
            await self.runtime.start(strict=False, listen=self.listen)
        except WorkbenchError as exc:
            self.main.post_message(RuntimeFailed(exc.title, exc.message))
            return
        except Exception as exc:
            self.main.post_message(
                RuntimeFailed("The runtime could not start", f"{type(exc).__name__}: {exc}")
            )
            return
        # What is loaded now (Textual, the project, its plugins) lives as long as the app:
        # out of the collector's full passes, which otherwise pause the UI for tens of
        # milliseconds when events pour in; young collections fewer and larger.
        self._gc_threshold = collector.tune()
        self.main.post_message(RuntimeStarted())

    def _on_bus(self, message: BusMessage) -> None:
        # Called by the runtime for every message, on this loop: O(1) only.
        if isinstance(message, EventHandled):
            self.feed.add(message.event, message.outcome)
            return
        converted = from_bus(message)
        if converted is not None and self.main is not None:
            self.main.post_message(converted)

    async def shutdown(self) -> None:
        """Stop the runtime (once): listeners drain, the capture store is flushed."""
        if self._stopped:
            return
        self._stopped = True
        if self.main is not None:
            self.main.status.state = "stopping"
            self.main.status.render_status()
        if self._start_attempted:
            try:
                await self.runtime.stop(STOP_DRAIN)
            except Exception:  # quitting must work even when a listener misbehaves
                log.exception("stopping the runtime failed")
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._gc_threshold is not None:
            collector.restore(self._gc_threshold)

    # ------------------------------------------------------------------ actions

    async def action_quit(self) -> None:
        await self.shutdown()
        self.exit(0)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.keymap.bindings))

    async def on_unmount(self) -> None:
        await self.shutdown()
