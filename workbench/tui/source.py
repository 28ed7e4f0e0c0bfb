"""Where a handler is: its file and the line of its `def` (what `e` opens)."""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any

_SCAN = 40
"""Lines past the first decorator searched for the `def`."""


def handler_location(func: Callable[..., Any]) -> tuple[str, int] | None:
    """`(file, line)` of a function's `def` line (past its decorators), or None when the
    function has no Python code object (a builtin, a C extension)."""
    code = getattr(func, "__code__", None)
    if code is None:
        wrapped = getattr(func, "__wrapped__", None)
        return handler_location(wrapped) if wrapped is not None else None
    file, first = code.co_filename, code.co_firstlineno
    linecache.checkcache(file)  # the file may have been edited since it was read
    for line in range(first, first + _SCAN):
        text = linecache.getline(file, line).lstrip()
        if text.startswith(("def ", "async def ")):
            return file, line
        if not text:
            break
    return file, first
