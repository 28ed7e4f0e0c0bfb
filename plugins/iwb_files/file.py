"""`File`: what a handler learns about the file it is given.

    @inbox.on_create
    async def import_orders(file: files.File) -> int:
        rows = list(csv.DictReader(io.StringIO(file.text())))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.events import Event
from workbench.plugin import TransportView


@dataclass(slots=True)
class File(TransportView):
    """One file of a watched directory, as the event carries it."""

    path: Path
    """Absolute path of the file where it was found (before any move)."""
    name: str
    relative: str
    """Path relative to the watched directory, with `/` separators."""
    directory: Path
    change: str
    """`created`, `modified` or `deleted`."""
    size: int
    mtime: datetime
    data: bytes
    """The content (empty for deletions and for files larger than `max_size`)."""
    truncated: bool = False
    """True when the file was larger than `max_size`: `data` is empty, use `read()`."""
    content_type: str | None = None

    @classmethod
    def from_event(cls, event: Event) -> File:
        """Build the view from an `iwb.files.*` event."""
        transport = event.transport
        relative = str(transport.get("path") or event.subject or "")
        directory = Path(str(transport.get("directory") or event.source or "."))
        change = str(transport.get("change") or event.handler or "created")
        mtime = transport.get("mtime")
        return cls(
            path=directory / relative,
            name=Path(relative).name,
            relative=relative,
            directory=directory,
            change=change,
            size=int(transport.get("size") or len(event.data)),
            mtime=(
                datetime.fromtimestamp(float(mtime), UTC)
                if isinstance(mtime, int | float)
                else event.time
            ),
            data=event.data,
            truncated=bool(transport.get("truncated", False)),
            content_type=event.datacontenttype,
        )

    def read(self) -> bytes:
        """The content: `data`, or the file on disk when the event left it out."""
        return self.path.read_bytes() if self.truncated else self.data

    def text(self, encoding: str = "utf-8") -> str:
        """The content decoded (`utf-8-sig` is worth passing for spreadsheet exports)."""
        return self.read().decode(encoding)

    def json(self) -> Any:
        """The content parsed as JSON; raises `ValueError` if it is not."""
        return json.loads(self.read())
