"""Replay results and the diff of a new outcome against a recorded one."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from workbench.events import Outcome

VOLATILE_SENT_KEYS = frozenset({"duration_ms", "date", "time", "latency_ms"})


def comparable(outcome: Outcome) -> dict[str, Any]:
    """The parts of an outcome that a replay compares: status, result, error type and
    message, and what was sent (minus timings). Durations, ids and code versions differ on
    every run and are left out."""
    sent = [
        {k: v for k, v in entry.items() if k not in VOLATILE_SENT_KEYS}
        for entry in outcome.sent
    ]
    for entry in sent:
        headers = entry.get("headers")
        if isinstance(headers, list):
            entry["headers"] = [h for h in headers if str(h[0]).lower() != "date"]
        elif isinstance(headers, dict):
            entry["headers"] = {k: v for k, v in headers.items() if k.lower() != "date"}
    return {
        "status": outcome.status,
        "result": outcome.result,
        "error": (
            {"type": outcome.error.type, "message": outcome.error.message}
            if outcome.error else None
        ),
        "sent": sent,
    }


def diff_outcomes(recorded: Outcome, new: Outcome) -> tuple[list[str], str]:
    """(names of the parts that differ, a unified diff of the two comparable views)."""
    old_view, new_view = comparable(recorded), comparable(new)
    changed = [k for k in old_view if old_view[k] != new_view[k]]
    if not changed:
        return [], ""
    old_text = json.dumps(old_view, indent=2, sort_keys=True, default=str).splitlines()
    new_text = json.dumps(new_view, indent=2, sort_keys=True, default=str).splitlines()
    diff = "\n".join(
        difflib.unified_diff(old_text, new_text, "recorded", "replayed", lineterm="")
    )
    return changed, diff


@dataclass(slots=True)
class ReplayResult:
    """One replayed event: what was recorded, what happens now, and the difference."""

    capture_id: str
    """The capture replayed (for a re-read: the message's latest earlier capture, or ""
    when it was never captured)."""
    artifact: str
    via: str
    recorded: Outcome | None
    """None: a re-read message with no earlier capture to compare with."""
    new: Outcome
    new_event_id: str
    changed: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def same(self) -> bool:
        return not self.changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "capture_id": self.capture_id,
            "new_event_id": self.new_event_id,
            "artifact": self.artifact,
            "via": self.via,
            "same": self.same,
            "changed": self.changed,
            "recorded": None if self.recorded is None else {
                "status": self.recorded.status,
                "code_version": self.recorded.code_version,
                "duration_ms": round(self.recorded.duration_ms, 3),
            },
            "new": {
                "status": self.new.status,
                "code_version": self.new.code_version,
                "duration_ms": round(self.new.duration_ms, 3),
            },
            "diff": self.diff,
        }
