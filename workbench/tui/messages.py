"""Textual messages that carry the runtime's bus messages to the screens.

The app subscribes one callback to `Runtime.bus`; handled events go to the `LiveFeed`
(batched, see `workbench.tui.feed`), every other bus message becomes one of these
messages, posted to the main screen (`from_bus`). They are rare: status changes, reloads,
log lines the runtime wants users to see.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from workbench.runtime.bus import ArtifactChanged, ReloadFinished, RuntimeLog
from workbench.runtime.bus import Message as BusMessage
from workbench.runtime.reload import ReloadReport


class ArtifactStatusChanged(Message):
    """An artifact's status, address or error changed (or it was removed)."""

    def __init__(self, name: str, status: str, address: str, error: str | None) -> None:
        super().__init__()
        self.name = name
        self.status = status
        """`removed` when a reload dropped the artifact."""
        self.address = address
        self.error = error


class ReloadCompleted(Message):
    """A hot reload ran; `report.ok` says whether it worked."""

    def __init__(self, report: ReloadReport) -> None:
        super().__init__()
        self.report = report


class RuntimeLogged(Message):
    """A log line of the runtime meant for users."""

    def __init__(self, level: str, text: str, fields: dict[str, Any]) -> None:
        super().__init__()
        self.level = level
        self.text = text
        self.fields = fields


class RuntimeStarted(Message):
    """The runtime loaded the project and started its listeners."""


class RuntimeFailed(Message):
    """The runtime could not start at all (for example, the project folder is missing)."""

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title = title
        self.text = text


def from_bus(message: BusMessage) -> Message | None:
    """The Textual message for a bus message other than `EventHandled` (None for that)."""
    if isinstance(message, ArtifactChanged):
        return ArtifactStatusChanged(
            message.name, message.status, message.address, message.error
        )
    if isinstance(message, ReloadFinished):
        return ReloadCompleted(message.report)
    if isinstance(message, RuntimeLog):
        return RuntimeLogged(message.level, message.message, dict(message.fields))
    return None
