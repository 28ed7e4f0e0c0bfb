"""The `Automation` authoring class and its configuration.

    nightly = automation.Automation(schedule="0 2 * * *", params={"days": 1})

    @nightly.run
    async def build_report(params: ReportParams, run: automation.Run) -> dict: ...

The cron expression and the time zone are checked when the module is imported, so a typo
is reported with the file and line of the declaration instead of when the first tick is due.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.plugin import NOT_BOUND, Artifact, HandlerFunc, Policy

F = TypeVar("F", bound=HandlerFunc)

RUN_KEY = "run"
"""The handler key of an automation's only handler."""


def check_cron(spec: str) -> str:
    """Validate a 5-field (minute precision) or 6-field (leading seconds) cron expression.

    Args:
        spec: the expression, e.g. `"0 2 * * *"` or `"*/10 * * * * *"`.

    Returns:
        The expression with surrounding blanks removed.

    Raises:
        ValueError: the expression does not parse; the message shows it and says why.
    """
    # cronsim is the parser aiocron schedules with, so what passes here is what will run.
    from datetime import UTC, datetime

    from cronsim import CronSim, CronSimError

    cleaned = " ".join(spec.split())
    fields = len(cleaned.split())
    if fields not in (5, 6):
        raise ValueError(
            f"schedule {spec!r} has {fields} field(s); write 5 fields "
            "(minute hour day-of-month month day-of-week, e.g. '0 2 * * *') "
            "or 6 with leading seconds (e.g. '*/30 * * * * *')"
        )
    try:
        CronSim(cleaned, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(
            f"schedule {spec!r} is not a valid cron expression ({exc}); "
            "example: '0 2 * * *' runs daily at 02:00"
        ) from None
    return cleaned


class AutomationConfig(BaseModel):
    """Configuration of an `Automation`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str | None = None
    """Cron expression (5 fields, or 6 with leading seconds); None: manual runs only."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The startup parameters: the payload of every run, overlaid by a manual run's own."""
    allow_overlap: bool = False
    """Start a run while the previous one is still going; when False the new run is
    skipped and recorded as rejected (`OverlapSkipped`)."""
    run_at_startup: bool = False
    """Run once as soon as the listener is up, besides the schedule."""
    timezone: str | None = None
    """IANA time zone the schedule is read in (e.g. `Europe/Paris`); None: the host's."""

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {value!r} is not a known IANA time zone; "
                "use a name such as 'UTC' or 'Europe/Paris'"
            ) from None
        return value

    @field_validator("params")
    @classmethod
    def _json_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"params must be JSON values (they become the run's payload): {exc}"
            ) from None
        return value


class Automation(Artifact[AutomationConfig]):
    """A job that runs on a cron schedule, at startup, or on demand.

    Each run is one event (type `iwb.automation.run`) whose payload is the JSON of the run's
    parameters, so a handler can take them as a pydantic model and ask for the `Run` view
    for the run's id, trigger and scheduled time. Every run, and every run skipped because
    the previous one was still going, is captured like any other event: the capture store
    is the run history.

    The default policy has no timeout (`timeout=None`): automations are batch jobs whose
    length depends on the data. Pass `timeout=` to bound them; with `allow_overlap=False`
    a run that hangs makes every later run be skipped (each skip is recorded).
    """

    kind: ClassVar[str] = "automation"
    config_model: ClassVar[type[BaseModel]] = AutomationConfig
    default_policy: ClassVar[Policy] = Policy(timeout=None)

    def __init__(
        self,
        *,
        schedule: str | None = None,
        params: dict[str, Any] | None = None,
        allow_overlap: bool = False,
        run_at_startup: bool = False,
        timezone: str | None = None,
        name: str | None = None,
        policy: Policy | None = None,
        timeout: float | None = NOT_BOUND,
        retries: int | None = None,
        concurrency: int | None = None,
    ) -> None:
        """Declare an automation.

        Args:
            schedule: cron expression, 5 fields (`"0 2 * * *"`) or 6 with leading seconds
                (`"*/10 * * * * *"`); None for manual runs only.
            params: default parameters of every run (a JSON object).
            allow_overlap: let a run start while the previous one is still running.
            run_at_startup: also run once when the listener starts.
            timezone: IANA zone the schedule is read in; default the host's local zone.
            name: artifact name; the loader uses the variable name when omitted.
            policy: a complete `Policy`; `timeout`, `retries`, `concurrency` override parts.
            timeout: seconds a run may take (default: no limit).
            retries: how many times a failed run is retried.
            concurrency: how many runs may execute at once (with `allow_overlap=True`).

        Raises:
            TriggerConfigError: the schedule, time zone or params do not validate.
        """
        super().__init__(
            name=name,
            policy=policy,
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
            schedule=schedule,
            params=dict(params or {}),
            allow_overlap=allow_overlap,
            run_at_startup=run_at_startup,
            timezone=timezone,
        )

    def run(self, func: F) -> F:
        """Register the function that performs each run (decorator).

        Raises:
            TriggerConfigError: the automation already has its run handler.
        """
        self.add_handler(RUN_KEY, func)
        return func

    def address(self) -> str:
        """The schedule, or `manual` for an automation without one."""
        return self.config.schedule or "manual"

    @property
    def source(self) -> str:
        """CloudEvents `source` of this automation's runs."""
        schedule = self.config.schedule
        return f"cron:{schedule}" if schedule else "manual"
