"""Test support for the files trigger: the shared trigger kit, and a quiet window."""

from __future__ import annotations

import asyncio
from typing import Any

from triggerkit import Recorder, make_context, serving, wait_until

__all__ = ["Recorder", "make_context", "quiet", "serving", "wait_until"]


async def quiet(trigger: Any, seconds: float = 0.5) -> None:
    """Wait until the trigger is idle, then watch a bounded window in which nothing may
    start. Showing that something does *not* happen needs such a window; it is kept
    several times longer than the debounce + stable_for of the tests that use it."""
    await wait_until(lambda: not trigger.busy, what="the trigger to be idle")
    await asyncio.sleep(seconds)
    await wait_until(lambda: not trigger.busy, what="the trigger to be idle")
