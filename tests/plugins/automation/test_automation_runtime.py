"""The automation plugin end to end: a project with an Automation, run by the real Runtime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triggerkit import wait_until

from workbench.events import Event, Outcome
from workbench.runtime import Runtime
from workbench.runtime.bus import EventHandled

REPORT = {
    "artifacts/report.py": """
        import asyncio

        import iwb_automation as automation
        from pydantic import BaseModel

        class ReportParams(BaseModel):
            days: int = 1
            region: str = "eu"
            hold: float = 0.0

        nightly = automation.Automation(schedule="0 2 * * *", params={"days": 1})

        @nightly.run
        async def build_report(params: ReportParams, run: automation.Run) -> dict:
            await asyncio.sleep(params.hold)
            return {"days": params.days, "region": params.region, "trigger": run.trigger}
    """,
}

TICKER = {
    "artifacts/ticker.py": """
        import iwb_automation as automation

        every_second = automation.Automation(schedule="* * * * * *")

        @every_second.run
        async def tick(run: automation.Run) -> str:
            return run.scheduled_for.isoformat()
    """,
}


async def start(root: Path, started: list[Any]) -> Runtime:
    rt = Runtime(root)  # plugins come from the `iwb.plugins` entry points
    started.append(rt)
    await rt.start()
    await rt.wait_ready(5)
    return rt


def collect(
    rt: Runtime, artifact: str
) -> tuple[list[tuple[Event, Outcome]], Callable[[], None]]:
    handled: list[tuple[Event, Outcome]] = []

    def on(msg: object) -> None:
        if isinstance(msg, EventHandled) and msg.event.artifact == artifact:
            handled.append((msg.event, msg.outcome))

    return handled, rt.bus.subscribe(on)


def run_event(params: dict[str, Any]) -> Event:
    return Event(
        artifact="nightly", kind="automation", type="iwb.automation.run", source="test",
        data=json.dumps(params).encode(), datacontenttype="application/json", handler="run",
    )


async def test_inject_via_transport_and_direct(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(REPORT)
    rt = await start(root, started)
    assert rt.artifacts["nightly"].status == "listening"
    assert rt.artifacts["nightly"].address == "0 2 * * *"

    via_transport = await rt.inject("nightly", run_event({"region": "us"}), via="transport")
    assert via_transport.ok, via_transport.error
    assert via_transport.result == {"days": 1, "region": "us", "trigger": "inject"}

    direct = await rt.inject("nightly", run_event({"days": 4}), via="direct")
    assert direct.ok, direct.error
    # a direct injection skips the trigger: the payload is exactly what was sent
    assert direct.result == {"days": 4, "region": "eu", "trigger": "manual"}

    assert rt.capture is not None
    await rt.capture.flush()
    records = rt.capture.query(artifact="nightly")
    assert len(records) == 2
    injected = next(r for r in records if r.event.transport.get("trigger") == "inject")
    assert injected.event.source == "cron:0 2 * * *"
    assert "iwbinject" in injected.event.extensions
    assert json.loads(injected.event.data) == {"days": 1, "region": "us"}


async def test_an_overlapping_run_is_captured_as_rejected(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(REPORT)
    rt = await start(root, started)
    handled, unsubscribe = collect(rt, "nightly")
    try:
        slow = asyncio.create_task(
            rt.inject("nightly", run_event({"hold": 0.5}), via="transport")
        )
        # the project has no other artifact, so the one event in flight is the slow run
        await wait_until(lambda: rt.inflight == 1, what="the slow run to start")
        skipped = await rt.inject("nightly", run_event({}), via="transport")
        assert skipped.status == "rejected"
        assert skipped.error is not None and skipped.error.type == "OverlapSkipped"
        first = await asyncio.wait_for(slow, 5)
    finally:
        unsubscribe()
    assert first.ok
    assert [o.status for _, o in handled] == ["rejected", "ok"]
    assert rt.capture is not None
    await rt.capture.flush()
    statuses = sorted(r.status for r in rt.capture.query(artifact="nightly"))
    assert statuses == ["ok", "rejected"]


async def test_a_schedule_runs_under_the_runtime(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project({**REPORT, **TICKER})
    rt = await start(root, started)
    handled, unsubscribe = collect(rt, "every_second")
    try:
        await wait_until(lambda: len(handled) >= 1, within=5, what="a scheduled run")
    finally:
        unsubscribe()
    event, outcome = handled[0]
    assert outcome.ok, outcome.error
    assert event.transport["trigger"] == "schedule"
    assert outcome.result == event.transport["scheduled_for"]
    samples = rt.samples("nightly")
    assert [s.name for s in samples] == ["default", "schema-defaults"]
    assert json.loads(samples[1].event.data) == {"days": 1, "region": "eu", "hold": 0.0}
