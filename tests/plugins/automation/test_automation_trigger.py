"""The automation trigger: schedule ticks, the overlap rule, manual and injected runs."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from triggerkit import Recorder, make_context, serving, wait_until

import iwb_automation as automation
from workbench.errors import TriggerConfigError
from workbench.events import Event


class ReportParams(BaseModel):
    days: int = 1
    region: str = "eu"


class Window(BaseModel):
    start: str = "00:00"
    length_hours: int


class FullParams(BaseModel):
    name: str
    limit: int
    ratio: float = 0.5
    dry_run: bool
    tags: list[str]
    window: Window


def trigger_for(
    root: Path, artifact: automation.Automation, addresses: list[str] | None = None
) -> automation.AutomationTrigger:
    return automation.AutomationTrigger(
        artifact, make_context(root, artifact.name or "job", addresses)
    )


async def test_an_every_second_schedule_fires(tmp_path: Path) -> None:
    job = automation.Automation(name="ticker", schedule="* * * * * *", params={"n": 1})
    runs: list[automation.Run] = []

    @job.run
    async def tick(params: ReportParams, run: automation.Run) -> str:
        runs.append(run)
        return run.run_id

    addresses: list[str] = []
    trigger = trigger_for(tmp_path, job, addresses)
    rec = Recorder(job)
    async with serving(trigger, rec):
        assert addresses == ["* * * * * *"]
        await wait_until(lambda: len(rec.events) >= 2, within=5, what="two ticks")
    first, second = rec.events[:2]
    assert first.kind == "automation"
    assert first.type == "iwb.automation.run"
    assert first.source == "cron:* * * * * *"
    assert first.handler == "run"
    assert first.datacontenttype == "application/json"
    assert json.loads(first.data) == {"n": 1}
    assert first.transport["trigger"] == "schedule"
    assert first.transport["schedule"] == "* * * * * *"
    due = datetime.fromisoformat(first.transport["scheduled_for"])
    assert due.microsecond == 0
    assert abs((first.time - due).total_seconds()) < 1.0
    # each run knows the scheduled time of the one before
    assert second.transport["previous_run"] == first.transport["scheduled_for"]
    assert datetime.fromisoformat(second.transport["scheduled_for"]) > due
    assert runs[0].trigger == "schedule"
    assert runs[0].scheduled_for == due
    assert all(o.ok for o in rec.outcomes)
    stored = json.loads((tmp_path / ".iwb" / "state" / "ticker.json").read_text())
    assert stored["previous_run"] >= second.transport["scheduled_for"]


async def test_previous_run_survives_a_restart(tmp_path: Path) -> None:
    job = automation.Automation(name="ticker", schedule="* * * * * *")

    @job.run
    async def tick() -> None: ...

    rec = Recorder(job)
    async with serving(trigger_for(tmp_path, job), rec):
        await wait_until(lambda: len(rec.events) >= 1, what="a tick")
    last = json.loads((tmp_path / ".iwb" / "state" / "ticker.json").read_text())["previous_run"]

    restarted = trigger_for(tmp_path, job)
    assert restarted.previous_run == last
    assert restarted.build_event().transport["previous_run"] == last


async def test_a_run_that_would_overlap_is_skipped_and_recorded(tmp_path: Path) -> None:
    job = automation.Automation(name="slow")
    release = asyncio.Event()

    @job.run
    async def slow() -> None:
        await release.wait()

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        first = asyncio.create_task(trigger.run_now())
        await wait_until(lambda: rec.active == 1, what="the first run to start")
        skipped = await trigger.run_now({"days": 3})
        assert skipped.status == "rejected"
        assert skipped.error is not None
        assert skipped.error.type == "OverlapSkipped"
        running_id = rec.events[0].id
        assert skipped.error.message == f"previous run {running_id} still running"
        assert len(rec.rejected) == 1
        rejected_event = rec.rejected[0][0]
        assert json.loads(rejected_event.data) == {"days": 3}
        release.set()
        done = await asyncio.wait_for(first, 5)
    assert done.ok
    assert len(rec.events) == 1  # the skipped run never reached the handler


async def test_scheduled_ticks_skip_while_a_run_is_still_going(tmp_path: Path) -> None:
    job = automation.Automation(name="slow", schedule="* * * * * *")
    release = asyncio.Event()

    @job.run
    async def slow() -> None:
        await release.wait()

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        await wait_until(lambda: len(rec.rejected) >= 1, within=5, what="a skipped tick")
        release.set()
        await wait_until(lambda: rec.active == 0, what="the run to finish")
    event, outcome = rec.rejected[0]
    assert event.transport["trigger"] == "schedule"
    assert outcome.error is not None and outcome.error.type == "OverlapSkipped"
    assert rec.events[0].id in outcome.error.message
    assert rec.max_active == 1


async def test_allow_overlap_runs_concurrently(tmp_path: Path) -> None:
    job = automation.Automation(name="parallel", allow_overlap=True)
    both_running = asyncio.Event()
    active = [0]

    @job.run
    async def work() -> None:
        active[0] += 1
        if active[0] == 2:
            both_running.set()
        await asyncio.wait_for(both_running.wait(), 5)

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        outcomes = await asyncio.gather(trigger.run_now(), trigger.run_now())
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert rec.max_active == 2
    assert rec.rejected == []


async def test_manual_run_merges_params_over_the_configured_ones(tmp_path: Path) -> None:
    job = automation.Automation(name="report", params={"days": 1, "region": "eu"})
    got: list[tuple[ReportParams, automation.Run]] = []

    @job.run
    async def build_report(params: ReportParams, run: automation.Run) -> dict[str, Any]:
        got.append((params, run))
        return params.model_dump()

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        outcome = await trigger.run_now({"days": 7})
    assert outcome.ok
    assert outcome.result == {"days": 7, "region": "eu"}
    params, run = got[0]
    assert params == ReportParams(days=7, region="eu")
    assert run.trigger == "manual"
    assert run.scheduled_for is None
    assert run.params == {"days": 7, "region": "eu"}
    assert rec.events[0].source == "manual"
    assert rec.events[0].subject == "manual"


async def test_inject_is_a_manual_run_that_carries_the_mark(tmp_path: Path) -> None:
    job = automation.Automation(name="report", schedule="0 2 * * *", params={"days": 1})

    @job.run
    async def build_report(params: ReportParams) -> int:
        return params.days

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        injected = Event(
            artifact="report", kind="automation", type="iwb.automation.run", source="t",
            data=b'{"region": "us"}', extensions={"iwbinject": "tok-1"},
        )
        await trigger.inject(injected)
    received = rec.events[0]
    assert received.extensions["iwbinject"] == "tok-1"
    assert received.transport["trigger"] == "inject"
    assert received.source == "cron:0 2 * * *"
    assert json.loads(received.data) == {"days": 1, "region": "us"}
    assert trigger.correlates(injected, received)
    assert rec.outcomes[0].result == 1


async def test_inject_wants_a_json_object(tmp_path: Path) -> None:
    job = automation.Automation(name="report")

    @job.run
    async def build_report() -> None: ...

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        for data in (b"[1, 2]", b"not json"):
            event = Event(artifact="report", kind="automation", type="t", source="t", data=data)
            with pytest.raises(ValueError, match="JSON object"):
                await trigger.inject(event)
    assert rec.events == []


async def test_runs_need_a_serving_listener(tmp_path: Path) -> None:
    job = automation.Automation(name="report")

    @job.run
    async def build_report() -> None: ...

    trigger = trigger_for(tmp_path, job)
    with pytest.raises(automation.AutomationNotRunningError, match="'report' is not running"):
        await trigger.run_now()


async def test_run_at_startup(tmp_path: Path) -> None:
    job = automation.Automation(name="boot", run_at_startup=True, params={"days": 2})

    @job.run
    async def boot(run: automation.Run) -> str:
        return run.trigger

    rec = Recorder(job)
    async with serving(trigger_for(tmp_path, job), rec):
        await wait_until(lambda: len(rec.outcomes) == 1, what="the startup run")
    assert rec.outcomes[0].result == "startup"
    assert json.loads(rec.events[0].data) == {"days": 2}


async def test_drain_stops_new_runs(tmp_path: Path) -> None:
    job = automation.Automation(name="ticker", schedule="* * * * * *")

    @job.run
    async def tick() -> None: ...

    trigger = trigger_for(tmp_path, job)
    rec = Recorder(job)
    async with serving(trigger, rec):
        await trigger.drain()
        with pytest.raises(automation.AutomationNotRunningError):
            await trigger.run_now()
    assert rec.rejected == []


def test_a_bad_schedule_is_reported_at_declaration() -> None:
    with pytest.raises(TriggerConfigError, match=r"'0 25 \* \* \*'.*Bad hour"):
        automation.Automation(schedule="0 25 * * *")
    with pytest.raises(TriggerConfigError, match=r"'every day'.*2 field"):
        automation.Automation(schedule="every day")
    with pytest.raises(TriggerConfigError, match=r"'\* \* \* \* \* \* \*'.*7 field"):
        automation.Automation(schedule="* * * * * * *")
    with pytest.raises(TriggerConfigError, match="'Mars/Olympus'"):
        automation.Automation(schedule="0 2 * * *", timezone="Mars/Olympus")
    with pytest.raises(TriggerConfigError, match="params"):
        automation.Automation(params={"when": datetime.now()})
    job = automation.Automation(schedule=" 0  2 * * MON ", timezone="Europe/Paris")
    assert job.config.schedule == "0 2 * * MON"
    assert job.address() == "0 2 * * MON"
    assert automation.Automation().address() == "manual"


def test_one_run_handler_and_no_default_timeout() -> None:
    job = automation.Automation(schedule="0 2 * * *")
    assert job.policy.timeout is None
    assert automation.Automation(timeout=60).policy.timeout == 60

    @job.run
    async def first() -> None: ...

    with pytest.raises(TriggerConfigError, match="'run'"):

        @job.run
        async def second() -> None: ...


def test_samples(tmp_path: Path) -> None:
    job = automation.Automation(name="report", params={"days": 1})

    @job.run
    async def build_report(run: automation.Run, params: FullParams) -> None: ...

    samples = {s.name: s.event for s in trigger_for(tmp_path, job).samples()}
    assert list(samples) == ["default", "schema-defaults"]
    assert json.loads(samples["default"].data) == {"days": 1}
    assert samples["default"].transport["trigger"] == "manual"
    filled = json.loads(samples["schema-defaults"].data)
    assert filled == {
        "name": "",
        "limit": 0,
        "ratio": 0.5,
        "dry_run": False,
        "tags": [],
        "window": {"start": "00:00", "length_hours": 0},
    }
    FullParams.model_validate(filled)

    plain = automation.Automation(name="plain")

    @plain.run
    async def untyped(run: automation.Run) -> None: ...

    assert [s.name for s in trigger_for(tmp_path, plain).samples()] == ["default"]


def test_run_view_from_a_bare_event() -> None:
    event = Event(
        artifact="x", kind="automation", type="iwb.automation.run", source="manual",
        data=b'{"days": 2}',
        transport={"trigger": "schedule", "scheduled_for": "2024-05-01T02:00:00+02:00"},
    )
    run = automation.Run.from_event(event)
    assert run.run_id == event.id
    assert run.trigger == "schedule"
    assert run.params == {"days": 2}
    assert run.scheduled_for is not None
    assert run.scheduled_for.utcoffset() == timedelta(hours=2)
    assert run.attempt == 1
    odd = automation.Run.from_event(
        Event(artifact="x", kind="automation", type="t", source="s", data=b"[]",
              transport={"trigger": "nonsense"})
    )
    assert odd.trigger == "manual"
    assert odd.params == {}


def test_a_tick_is_matched_to_the_cron_time_it_was_due_at(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    job = automation.Automation(name="nightly", schedule="0 2 * * *", timezone="Europe/Paris")
    trigger = trigger_for(tmp_path, job)
    due = datetime(2024, 5, 1, 2, 0, tzinfo=paris)
    # a little late, and a little early (loop clock and wall clock drift apart)
    assert trigger._due_time(datetime(2024, 5, 1, 2, 0, 0, 3000, tzinfo=paris)) == due
    assert trigger._due_time(datetime(2024, 5, 1, 1, 59, 59, 900_000, tzinfo=paris)) == due
    # 02:00 does not exist on the day clocks go forward; cron runs the job at 03:00
    spring = datetime(2024, 3, 31, 3, 0, 0, 1000, tzinfo=paris)
    assert trigger._due_time(spring) == datetime(2024, 3, 31, 3, 0, tzinfo=paris)
