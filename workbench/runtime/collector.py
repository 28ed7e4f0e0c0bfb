"""Garbage-collector settings for a process whose main work is the runtime.

Events and outcomes are short-lived containers (dicts, lists, dataclasses) allocated by
the thousand per second; with CPython's default thresholds a young collection runs every
700 allocations and the older generations are walked often — over everything loaded
(the project, its plugins, the TUI) and over the events waiting for the capture writer.
`tune()` freezes what is loaded at start (it is never collected) and makes young
collections rarer: measured in `scripts/bench-kafka`, the collector had been a third of
the cost of turning a Kafka record into an event.

The entry points call it once the runtime has started (`iwb run`, `iwb open`); a program
that embeds the `Runtime` decides for itself.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 20, 20)
"""Young collections every 10,000 net allocations (CPython's default: 700)."""


def tune() -> tuple[int, int, int]:
    """Freeze what is alive now and raise the thresholds; returns the previous ones."""
    previous: tuple[int, int, int] = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return previous


def restore(previous: tuple[int, int, int]) -> None:
    """Put the thresholds back and unfreeze (what was held may be collected again)."""
    gc.unfreeze()
    gc.set_threshold(*previous)
