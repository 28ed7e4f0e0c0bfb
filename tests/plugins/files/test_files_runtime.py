"""The files plugin end to end: a project with a Directory, run by the real Runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from files_support import wait_until

from workbench.events import Event, Outcome
from workbench.runtime import Runtime
from workbench.runtime.bus import EventHandled

INBOX = {
    "artifacts/orders.py": """
        import iwb_files as files

        inbox = files.Directory(
            path="inbox", pattern="*.csv", stable_for=0.1,
            on_success=files.MoveTo("processed"), on_error=files.MoveTo("failed"),
        )

        @inbox.on_create
        async def import_orders(file: files.File) -> dict:
            lines = file.text().splitlines()
            if lines[0] != "id,qty":
                raise ValueError(f"unexpected header {lines[0]!r} in {file.name}")
            return {"file": file.relative, "rows": len(lines) - 1}
    """,
}


async def start(root: Path, started: list[Any]) -> Runtime:
    rt = Runtime(root)  # plugins come from the `iwb.plugins` entry points
    started.append(rt)
    await rt.start()
    await rt.wait_ready(5)
    return rt


def collect(rt: Runtime) -> tuple[list[tuple[Event, Outcome]], Callable[[], None]]:
    handled: list[tuple[Event, Outcome]] = []

    def on(msg: object) -> None:
        if isinstance(msg, EventHandled):
            handled.append((msg.event, msg.outcome))

    return handled, rt.bus.subscribe(on)


async def test_a_dropped_file_is_handled_captured_and_moved(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(INBOX)
    rt = await start(root, started)
    state = rt.artifacts["inbox"]
    directory = (root / "inbox").resolve()
    assert state.status == "listening"
    assert state.address == str(directory)
    handled, unsubscribe = collect(rt)
    try:
        (directory / "batch.csv").write_text("id,qty\n1,2\n2,5\n")
        (directory / "broken.csv").write_text("nope\n")
        await wait_until(lambda: len(handled) == 2, what="both files to be handled")
        await wait_until(
            lambda: (directory / "processed" / "batch.csv").exists()
            and (directory / "failed" / "broken.csv").exists(),
            what="both files to be moved",
        )
    finally:
        unsubscribe()
    by_name = {event.subject: outcome for event, outcome in handled}
    assert by_name["batch.csv"].ok
    assert by_name["batch.csv"].result == {"file": "batch.csv", "rows": 2}
    assert by_name["batch.csv"].handler.endswith(":import_orders")
    assert by_name["broken.csv"].status == "error"
    assert by_name["broken.csv"].error is not None
    assert "unexpected header" in by_name["broken.csv"].error.message

    assert rt.capture is not None
    await rt.capture.flush()
    records = rt.capture.query(artifact="inbox")
    assert {r.subject for r in records} == {"batch.csv", "broken.csv"}
    ok = next(r for r in records if r.subject == "batch.csv")
    assert ok.status == "ok"
    assert ok.event.data == b"id,qty\n1,2\n2,5\n"
    assert ok.event.transport["path"] == "batch.csv"
    assert not (directory / "batch.csv").exists()


async def test_inject_through_the_directory_and_direct(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(INBOX)
    rt = await start(root, started)
    directory = (root / "inbox").resolve()
    event = Event(
        artifact="inbox", kind="files", type="iwb.files.created", source="test",
        subject="injected.csv", data=b"id,qty\n9,1\n", handler="created",
        transport={"path": "injected.csv"},
    )
    outcome = await rt.inject("inbox", event, via="transport", timeout=5)
    assert outcome.ok, outcome.error
    assert outcome.result == {"file": "injected.csv", "rows": 1}
    await wait_until(
        lambda: (directory / "processed" / "injected.csv").exists(), what="the move"
    )
    assert rt.capture is not None
    await rt.capture.flush()
    record = rt.capture.query(artifact="inbox")[0]
    assert record.event.extensions.get("iwbinject") == event.extensions["iwbinject"]

    direct = await rt.inject("inbox", event.copy(data=b"id,qty\n1,1\n2,2\n"), via="direct")
    assert direct.ok
    assert direct.result == {"file": "injected.csv", "rows": 2}
    # a direct injection goes straight to the handler: nothing is written or moved
    assert not (directory / "injected.csv").exists()


async def test_samples_are_offered_through_the_runtime(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(INBOX)
    rt = await start(root, started)
    samples = rt.samples("inbox")
    assert [s.name for s in samples] == ["created"]
    sample = samples[0].event
    assert sample.subject == "sample.csv"
    assert sample.data.startswith(b"id,")
    outcome = await rt.inject("inbox", sample.copy(), via="transport", timeout=5)
    # the sample went through the directory; its columns are not the ones this handler wants
    assert outcome.status == "error"
    assert outcome.error is not None and "unexpected header" in outcome.error.message
    directory = (root / "inbox").resolve()
    await wait_until(lambda: (directory / "failed" / "sample.csv").exists(), what="the move")


async def test_stop_drains_and_the_next_start_takes_what_is_left(
    make_project: Callable[[dict[str, str]], Path], started: list[Any]
) -> None:
    root = make_project(INBOX)
    rt = await start(root, started)
    await rt.stop(1)
    directory = (root / "inbox").resolve()
    (directory / "later.csv").write_text("id,qty\n1,1\n")
    rt = await start(root, started)
    handled, unsubscribe = collect(rt)
    try:
        await wait_until(lambda: len(handled) == 1, what="the file left while stopped")
    finally:
        unsubscribe()
    assert handled[0][0].subject == "later.csv"
    await asyncio.wait_for(
        wait_until(lambda: (directory / "processed" / "later.csv").exists(), what="the move"),
        5,
    )
