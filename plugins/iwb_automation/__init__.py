"""Cron automations: jobs that run on a schedule, at startup, or on demand.

    import iwb_automation as automation

    nightly = automation.Automation(schedule="0 2 * * *", params={"days": 1})

    @nightly.run
    async def build_report(params: ReportParams, run: automation.Run) -> dict: ...

Each run is an event of kind `automation` (type `iwb.automation.run`) whose payload is the
JSON of the run's parameters; its transport says what started it (`schedule`, `manual`,
`startup`, `inject`), the cron time it was due at and the previous scheduled run.

This package imports only the public contract (`workbench.plugin`, `workbench.events`,
`workbench.errors`); aiocron is imported when a listener starts, never on import.
"""

from __future__ import annotations

from iwb_automation.artifact import Automation, AutomationConfig, check_cron
from iwb_automation.run import Run, RunTrigger
from iwb_automation.trigger import (
    EVENT_TYPE,
    AutomationNotRunningError,
    AutomationTransport,
    AutomationTrigger,
)

__all__ = [
    "EVENT_TYPE",
    "Automation",
    "AutomationConfig",
    "AutomationNotRunningError",
    "AutomationTransport",
    "AutomationTrigger",
    "Run",
    "RunTrigger",
    "check_cron",
]
