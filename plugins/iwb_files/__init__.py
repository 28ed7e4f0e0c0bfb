"""Local directory watchers: hand each complete file to a handler, then move or delete it.

    import iwb_files as files

    inbox = files.Directory(path="inbox", pattern="*.csv", stable_for=0.2,
                            on_success=files.MoveTo("processed"),
                            on_error=files.MoveTo("failed"))

    @inbox.on_create
    async def import_orders(file: files.File) -> dict: ...

Each file version is one event of kind `files` (type `iwb.files.created`, `.modified` or
`.deleted`) whose payload is the file's bytes and whose transport holds the relative path,
directory, size and mtime. Injecting through the transport writes the file.

This package imports only the public contract (`workbench.plugin`, `workbench.events`,
`workbench.errors`); watchfiles is imported when a listener starts.
"""

from __future__ import annotations

from iwb_files.artifact import (
    CHANGES,
    CREATED,
    DELETED,
    MODIFIED,
    Action,
    Change,
    Delete,
    Directory,
    DirectoryConfig,
    MoveTo,
)
from iwb_files.file import File
from iwb_files.trigger import INJECT_PREFIX, FilesTransport, FilesTrigger, InjectPathError

__all__ = [
    "CHANGES",
    "CREATED",
    "DELETED",
    "INJECT_PREFIX",
    "MODIFIED",
    "Action",
    "Change",
    "Delete",
    "Directory",
    "DirectoryConfig",
    "File",
    "FilesTransport",
    "FilesTrigger",
    "InjectPathError",
    "MoveTo",
]
