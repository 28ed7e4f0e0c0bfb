"""The headless runtime: lifecycle, dispatch, capture, hot reload, replay and inject.

Owns: the `Runtime` object that the TUI and `iwb run` both drive. Must not import Textual,
the TUI, or any plugin (plugins are found through entry points).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.runtime.dispatch import ArtifactState, Status
    from workbench.runtime.reload import ReloadReport
    from workbench.runtime.replay import ReplayResult
    from workbench.runtime.runtime import Runtime

__all__ = ["ArtifactState", "ReloadReport", "ReplayResult", "Runtime", "Status"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `workbench.runtime.capture` can be used without loading the rest.
    if name == "Runtime":
        from workbench.runtime.runtime import Runtime

        return Runtime
    if name in ("ArtifactState", "Status"):
        from workbench.runtime import dispatch

        return getattr(dispatch, name)
    if name == "ReloadReport":
        from workbench.runtime.reload import ReloadReport

        return ReloadReport
    if name == "ReplayResult":
        from workbench.runtime.replay import ReplayResult

        return ReplayResult
    raise AttributeError(name)
