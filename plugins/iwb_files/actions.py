"""The after-process actions: move a handled file away, or delete it.

Both are blocking filesystem calls; the trigger runs them in a worker thread.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

_NO_HARD_LINKS = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
)
"""`link()` errors that mean "not on this filesystem", not "the move cannot work"."""

MAX_SUFFIX = 10_000


def numbered(dest: Path, n: int) -> Path:
    """`dest` with `-n` before its suffix (`orders.csv` → `orders-2.csv`); `dest` for 0."""
    return dest if n == 0 else dest.with_name(f"{dest.stem}-{n}{dest.suffix}")


def move_into(src: Path, folder: Path, rel: str) -> Path | None:
    """Move `src` to `folder/rel`, taking a numbered name when that one exists.

    Args:
        src: the file to move.
        folder: the destination folder (created if missing).
        rel: the file's path relative to the watched directory (sub-folders are kept).

    Returns:
        Where the file went, or None when `src` was already gone (the handler moved it).

    Raises:
        OSError: the move failed (destination not a directory, no permission, disk full).
    """
    if not src.exists():
        return None
    dest = folder / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    for n in range(MAX_SUFFIX):
        candidate = numbered(dest, n)
        try:
            # link + unlink never overwrites: an existing name fails with FileExistsError,
            # where rename() would silently replace an earlier file of the same name.
            os.link(src, candidate)
        except FileExistsError:
            continue
        except FileNotFoundError:
            if not src.exists():
                return None
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if candidate.exists():
                continue
            shutil.move(src, candidate)
            return candidate
        try:
            os.unlink(src)
        except FileNotFoundError:
            pass
        return candidate
    raise FileExistsError(
        errno.EEXIST, f"no free name for {dest.name!r} after {MAX_SUFFIX} tries", str(dest)
    )


def delete(src: Path) -> bool:
    """Delete `src`; False when it was already gone.

    Raises:
        OSError: the file could not be deleted.
    """
    try:
        os.unlink(src)
    except FileNotFoundError:
        return False
    return True
