"""`Run`: what a handler learns about the run it performs.

    @nightly.run
    async def build_report(params: ReportParams, run: automation.Run) -> None:
        since = run.previous_run or run.started_at - timedelta(days=params.days)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from workbench.events import Event
from workbench.plugin import TransportView, current_outcome

RunTrigger = Literal["schedule", "manual", "startup", "inject"]
"""What started a run: a cron tick, `run_now()`, the listener starting, or an injection."""

TRIGGERS: tuple[RunTrigger, ...] = ("schedule", "manual", "startup", "inject")


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp from the transport as an aware datetime (UTC if naive)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(slots=True)
class Run(TransportView):
    """One run of an automation, as seen by its handler."""

    run_id: str
    """The event id of the run; skipped runs name it in their message."""
    trigger: RunTrigger
    started_at: datetime
    """When the run was started (the event time)."""
    scheduled_for: datetime | None = None
    """The cron time this run was due at (scheduled runs only)."""
    previous_run: datetime | None = None
    """The scheduled time of the previous scheduled run that started, kept across
    restarts; None before the first one."""
    schedule: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """The run's parameters: the automation's `params` overlaid by the run's own."""
    attempt: int = 1
    """1 for the first attempt, 2 for the first retry, ..."""

    @classmethod
    def from_event(cls, event: Event) -> Run:
        """Build the view from an `iwb.automation.run` event."""
        transport = event.transport
        trigger = transport.get("trigger")
        params: dict[str, Any] = {}
        if event.data:
            try:
                decoded = json.loads(event.data)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                params = decoded
        outcome = current_outcome.get()
        return cls(
            run_id=event.id,
            trigger=trigger if trigger in TRIGGERS else "manual",
            started_at=event.time,
            scheduled_for=parse_time(transport.get("scheduled_for")),
            previous_run=parse_time(transport.get("previous_run")),
            schedule=transport.get("schedule"),
            params=params,
            attempt=outcome.attempts if outcome is not None else 1,
        )
