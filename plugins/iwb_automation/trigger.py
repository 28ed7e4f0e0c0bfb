"""`AutomationTrigger`: fires an automation's runs on its schedule, at startup and on demand.

Every run goes the same way, whatever started it: build the run event, apply the overlap
rule, hand the event to the runtime. A run that would overlap a running one (with
`allow_overlap=False`) never reaches the handler; it is recorded through
`dispatch.reject(..., "OverlapSkipped", ...)`, so the capture store holds the whole run
history, skips included.

The cursor keeps the scheduled time of the last scheduled run that started, so after a
restart the next run still reports it as `previous_run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from iwb_automation.artifact import RUN_KEY, Automation, AutomationConfig
from iwb_automation.run import RunTrigger
from iwb_automation.samples import example_for, params_model
from workbench.errors import WorkbenchError
from workbench.events import Event, Outcome
from workbench.plugin import Artifact, Dispatch, Sample, Trigger, TriggerContext

log = logging.getLogger("iwb.automation")

EVENT_TYPE = "iwb.automation.run"

_TICK_TOLERANCE = timedelta(milliseconds=500)
"""How early or late a tick may fire and still be matched to its cron time: the loop
clock and the wall clock drift apart a little over a long-running process."""


class AutomationNotRunningError(WorkbenchError):
    """A run was requested through the trigger while its listener is not serving."""

    title = "Automation not running"


class AutomationTransport(BaseModel):
    """The transport fields of a run event."""

    model_config = ConfigDict(extra="allow")

    trigger: RunTrigger = "manual"
    scheduled_for: str | None = None
    """ISO time the run was due at (scheduled runs)."""
    schedule: str | None = None
    previous_run: str | None = None
    """ISO scheduled time of the previous scheduled run that started."""


class AutomationTrigger(Trigger[AutomationConfig]):
    """Runs an `Automation` with aiocron; `run_now()` and `inject()` start manual runs."""

    kind: ClassVar[str] = "automation"
    artifact_class: ClassVar[type[Artifact[Any]]] = Automation
    transport_model: ClassVar[type[BaseModel]] = AutomationTransport

    def __init__(self, artifact: Artifact[AutomationConfig], context: TriggerContext) -> None:
        super().__init__(artifact, context)
        self._dispatch: Dispatch | None = None
        self._active: dict[str, Event] = {}
        """Runs in progress, by run id (the overlap rule looks here)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cron: Any = None
        self._draining = False
        stored = context.cursor.load({})
        previous = stored.get("previous_run") if isinstance(stored, dict) else None
        self._previous_run: str | None = previous if isinstance(previous, str) else None

    # ------------------------------------------------------------------ serving

    @property
    def source(self) -> str:
        schedule = self.config.schedule
        return f"cron:{schedule}" if schedule else "manual"

    @property
    def running(self) -> list[str]:
        """Ids of the runs in progress."""
        return list(self._active)

    @property
    def previous_run(self) -> str | None:
        """ISO scheduled time of the last scheduled run that started (kept in the cursor)."""
        return self._previous_run

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        """Schedule the runs until cancelled; `ready()` once the schedule is armed."""
        schedule = self.config.schedule
        self.context.set_address(schedule or "manual")
        self._dispatch = dispatch
        self._draining = False
        try:
            if schedule:
                import aiocron  # imported here: a project without automations never loads it

                self._cron = aiocron.crontab(
                    schedule, func=self._on_tick, start=True, tz=self._tz()
                )
            ready()
            if self.config.run_at_startup:
                self._spawn(self.run_now(trigger="startup"))
            await asyncio.Future()  # runs happen in tasks; this only waits to be cancelled
        finally:
            if self._cron is not None:
                self._cron.stop()
                self._cron = None
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._dispatch = None

    async def drain(self) -> None:
        """Stop starting runs (schedule and manual); runs in progress go on until the
        runtime stops the listener."""
        self._draining = True
        if self._cron is not None:
            self._cron.stop()

    def _tz(self) -> tzinfo:
        if self.config.timezone:
            from zoneinfo import ZoneInfo

            return ZoneInfo(self.config.timezone)
        from tzlocal import get_localzone  # aiocron's own default, so the two agree

        zone: tzinfo = get_localzone()
        return zone

    def _on_tick(self) -> None:
        # Called by aiocron at each tick; the run gets a task of its own so a long run
        # never delays the next tick (which may then be skipped by the overlap rule).
        self._spawn(self.run_now(trigger="schedule", scheduled_for=self._due_time()))

    def _due_time(self, now: datetime | None = None) -> datetime:
        """The cron time a tick firing at `now` (default: now) was due at."""
        from cronsim import CronSim

        assert self.config.schedule is not None
        fired = now if now is not None else datetime.now(self._tz())
        due: datetime = next(
            CronSim(self.config.schedule, fired + _TICK_TOLERANCE, reverse=True)
        )
        return due

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # the runtime records handler errors; this is a bug in the trigger
            log.exception("automation %r: a run could not be started", self.name)

    # ------------------------------------------------------------------ runs

    async def run_now(
        self,
        params: dict[str, Any] | None = None,
        trigger: RunTrigger = "manual",
        *,
        scheduled_for: datetime | None = None,
        mark: str | None = None,
    ) -> Outcome:
        """Start a run now, through the same path as a scheduled one, and wait for it.

        Args:
            params: overrides merged over the automation's `params`.
            trigger: what started it, as the handler's `Run.trigger` reports it.
            scheduled_for: the cron time a scheduled run is due at.
            mark: the `iwbinject` mark an injected run carries.

        Returns:
            The run's outcome; `rejected` with `OverlapSkipped` when the previous run is
            still going and the automation does not allow overlap.

        Raises:
            AutomationNotRunningError: the listener is not serving.
        """
        dispatch = self._dispatch
        if dispatch is None or self._draining:
            raise AutomationNotRunningError(
                f"Automation {self.name!r} is not running, so it cannot start a run through "
                "its listener. Start the artifact first, or inject with --via direct."
            )
        event = self.build_event(params, trigger, scheduled_for=scheduled_for, mark=mark)
        if self._active and not self.config.allow_overlap:
            other = next(iter(self._active))
            return dispatch.reject(
                event, "OverlapSkipped", f"previous run {other} still running"
            )
        self._active[event.id] = event
        if trigger == "schedule" and scheduled_for is not None:
            self._remember(event, scheduled_for)
        try:
            return await dispatch(event)
        finally:
            self._active.pop(event.id, None)

    def build_event(
        self,
        params: dict[str, Any] | None = None,
        trigger: RunTrigger = "manual",
        *,
        scheduled_for: datetime | None = None,
        mark: str | None = None,
    ) -> Event:
        """The run event: the merged params as JSON, the run's circumstances in transport."""
        merged = {**self.config.params, **(params or {})}
        event = Event(
            artifact=self.name,
            kind=self.kind,
            type=EVENT_TYPE,
            source=self.source,
            subject=trigger,
            data=json.dumps(merged).encode("utf-8"),
            datacontenttype="application/json",
            handler=RUN_KEY,
            transport={
                "trigger": trigger,
                "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
                "schedule": self.config.schedule,
                "previous_run": self._previous_run,
            },
        )
        if mark is not None:
            event.extensions["iwbinject"] = mark
        return event

    def _remember(self, event: Event, scheduled_for: datetime) -> None:
        self._previous_run = scheduled_for.isoformat()
        try:
            self.context.cursor.save(
                {
                    "previous_run": self._previous_run,
                    "previous_run_id": event.id,
                    "saved_at": datetime.now(UTC).isoformat(),
                }
            )
        except OSError as exc:  # the run still happens; only the restart memory is lost
            log.warning("automation %r: could not save its cursor: %s", self.name, exc)

    async def inject(self, event: Event) -> None:
        """A manual run with the event's JSON object as parameter overrides.

        Raises:
            ValueError: the payload is not a JSON object.
            AutomationNotRunningError: the listener is not serving.
        """
        overrides: dict[str, Any] = {}
        if event.data.strip():
            try:
                decoded = json.loads(event.data)
            except ValueError as exc:
                raise ValueError(
                    f"An automation run takes a JSON object of parameters; the payload "
                    f"{event.summary(60)!r} is not JSON ({exc})."
                ) from None
            if not isinstance(decoded, dict):
                raise ValueError(
                    f"An automation run takes a JSON object of parameters, not "
                    f"{type(decoded).__name__} ({event.summary(60)!r})."
                )
            overrides = decoded
        mark = event.extensions.get("iwbinject")
        await self.run_now(overrides, "inject", mark=str(mark) if mark is not None else event.id)

    def correlates(self, injected: Event, received: Event) -> bool:
        mark = injected.extensions.get("iwbinject")
        return mark is not None and received.extensions.get("iwbinject") == mark

    # ------------------------------------------------------------------ console

    def samples(self) -> list[Sample]:
        """`default`: the configured params; `schema-defaults`: every field of the
        handler's parameter model filled, when it takes one."""
        out = [
            Sample(
                "default",
                "A manual run with the automation's configured params.",
                self.build_event(),
            )
        ]
        spec = self.artifact.handlers.get(RUN_KEY)
        model = params_model(spec.func) if spec is not None else None
        if model is not None:
            event = self.build_event()
            event.data = json.dumps(example_for(model)).encode("utf-8")
            out.append(
                Sample(
                    "schema-defaults",
                    f"A manual run with every field of {model.__name__} filled.",
                    event,
                )
            )
        return out
