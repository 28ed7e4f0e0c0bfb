"""What a directory listener remembers about file versions, across restarts.

A version is `(size, mtime_ns)`. Two maps, keyed by the path relative to the directory:

- `seen`: files that stay in the directory and whose current version has been settled
  (handed over and left there, present at start without `process_existing`, or without a
  handler for the change). The same version is not handed over again; a new one is a
  modification; a seen file that disappears is a deletion.
- `quarantine`: versions whose after-process move or delete failed. They are not handed
  over again, so a failing move can never turn into a loop; a new version of the file is
  handled normally.

Both live in the artifact's cursor (`.iwb/state/<artifact>.json`).
"""

from __future__ import annotations

import logging
from typing import Any

from workbench.plugin import Cursor

log = logging.getLogger("iwb.files")

Version = tuple[int, int]
"""`(size, mtime_ns)` of a file."""


def _versions(raw: Any) -> dict[str, Version]:
    out: dict[str, Version] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        if (
            isinstance(key, str)
            and isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int) for v in value)
        ):
            out[key] = (int(value[0]), int(value[1]))
    return out


class Ledger:
    """The `seen` and `quarantine` maps of one directory listener, saved in its cursor."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor
        stored = cursor.load({})
        stored = stored if isinstance(stored, dict) else {}
        self.seen: dict[str, Version] = _versions(stored.get("seen"))
        self.quarantine: dict[str, Version] = _versions(stored.get("quarantine"))

    def known(self, rel: str) -> bool:
        """Whether the file is one the listener has settled before (any version)."""
        return rel in self.seen or rel in self.quarantine

    def settled(self, rel: str, version: Version) -> bool:
        """Whether this exact version needs nothing more."""
        return self.seen.get(rel) == version or self.quarantine.get(rel) == version

    def keep(self, rel: str, version: Version) -> None:
        """The file stays in the directory at this version."""
        self.quarantine.pop(rel, None)
        self.seen[rel] = version

    def quarantined(self, rel: str, version: Version) -> None:
        """The after-process action failed for this version."""
        self.seen.pop(rel, None)
        self.quarantine[rel] = version

    def forget(self, rel: str) -> None:
        """The file left the directory (moved, deleted)."""
        self.seen.pop(rel, None)
        self.quarantine.pop(rel, None)

    def under(self, folder: str) -> list[str]:
        """Known paths inside the relative folder `folder`."""
        prefix = folder.rstrip("/") + "/"
        return [rel for rel in {*self.seen, *self.quarantine} if rel.startswith(prefix)]

    def all(self) -> set[str]:
        return {*self.seen, *self.quarantine}

    def save(self) -> None:
        value = {
            "seen": {rel: list(v) for rel, v in sorted(self.seen.items())},
            "quarantine": {rel: list(v) for rel, v in sorted(self.quarantine.items())},
        }
        try:
            self.cursor.save(value)
        except OSError as exc:  # keep serving; only the memory across restarts is at risk
            log.warning("could not save the file ledger to %s: %s", self.cursor.path, exc)
