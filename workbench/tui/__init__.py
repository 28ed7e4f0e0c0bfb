"""The workbench TUI (`iwb open`): a Textual app over one `Runtime`.

Owns `WorkbenchApp`, its screens and widgets. It talks only to the runtime (its methods,
its bus, its capture store) and never imports a plugin. Nothing here is imported by the
runtime, the project model or the plugins.

    from workbench.tui import open_project
    exit_code = open_project(Path("project"), profile="dev")
"""

from __future__ import annotations

import logging
from pathlib import Path

LOG_FILE = Path(".iwb") / "iwb.log"
"""Where `iwb open` writes the runtime's log, relative to the project."""
LOG_MAX_BYTES = 10 * 1024 * 1024
"""The log file rolls over to `iwb.log.1` at this size (two old files are kept)."""


def route_logging(path: Path, level: str = "info") -> logging.Handler:
    """Send every log record to `path` (JSON lines) and nowhere else.

    While the TUI runs, the terminal belongs to it: a log line written to stderr would
    tear the screen. Returns the handler (to close when the app ends).
    """
    from logging.handlers import RotatingFileHandler

    from workbench.headless import install_log_handler

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=LOG_MAX_BYTES, backupCount=2,
                                  encoding="utf-8")
    install_log_handler(handler, level)
    return handler


def open_project(root: Path, *, profile: str | None = None, reload: bool = True) -> int:
    """Run the workbench on a project until the user quits; returns the exit code.

    Args:
        root: the project directory.
        profile: overlay `Config.<profile>.toml`.
        reload: hot-reload changed modules.
    """
    from workbench.runtime.runtime import Runtime
    from workbench.tui.app import WorkbenchApp

    handler = route_logging(Path(root) / LOG_FILE)
    try:
        runtime = Runtime(Path(root), profile=profile, reload=reload)
        app = WorkbenchApp(runtime)
        result = app.run()
        return app.return_code if app.return_code is not None else (result or 0)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
