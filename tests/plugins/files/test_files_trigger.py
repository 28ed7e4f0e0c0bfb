"""The files trigger over a real directory: watching, stability, actions, ledger, inject."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from files_support import Recorder, make_context, quiet, serving, wait_until
from pydantic import ValidationError

import iwb_files as files
from workbench.errors import TriggerConfigError
from workbench.events import Event


def make(root: Path, name: str = "inbox", **config: Any) -> files.Directory:
    config.setdefault("path", "inbox")
    config.setdefault("stable_for", 0.1)
    artifact = files.Directory(name=name, **config)
    return artifact


def trigger_for(
    root: Path, artifact: files.Directory, addresses: list[str] | None = None
) -> files.FilesTrigger:
    return files.FilesTrigger(artifact, make_context(root, artifact.name or "inbox", addresses))


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


async def test_create_modify_delete_are_each_handed_over_once(tmp_path: Path) -> None:
    inbox = make(tmp_path)
    seen: list[files.File] = []

    @inbox.on_create
    async def created(file: files.File) -> None:
        seen.append(file)

    @inbox.on_modify
    async def modified(file: files.File) -> None:
        seen.append(file)

    @inbox.on_delete
    async def deleted(file: files.File) -> None:
        seen.append(file)

    addresses: list[str] = []
    trigger = trigger_for(tmp_path, inbox, addresses)
    rec = Recorder(inbox)
    async with serving(trigger, rec):
        directory = (tmp_path / "inbox").resolve()
        assert addresses == [str(directory)]
        target = directory / "notes.txt"
        write(target, "first")
        await wait_until(lambda: len(rec.events) == 1, what="the created event")
        await quiet(trigger)
        write(target, "second version")
        await wait_until(lambda: len(rec.events) == 2, what="the modified event")
        await quiet(trigger)
        target.unlink()
        await wait_until(lambda: len(rec.events) == 3, what="the deleted event")
        await quiet(trigger)

    assert [e.handler for e in rec.events] == ["created", "modified", "deleted"]
    created_event, modified_event, deleted_event = rec.events
    assert created_event.type == "iwb.files.created"
    assert created_event.kind == "files"
    assert created_event.artifact == "inbox"
    assert created_event.source == str(directory)
    assert created_event.subject == "notes.txt"
    assert created_event.data == b"first"
    assert created_event.datacontenttype == "text/plain"
    assert created_event.transport["path"] == "notes.txt"
    assert created_event.transport["directory"] == str(directory)
    assert created_event.transport["size"] == 5
    assert created_event.transport["truncated"] is False
    assert modified_event.type == "iwb.files.modified"
    assert modified_event.data == b"second version"
    assert deleted_event.type == "iwb.files.deleted"
    assert deleted_event.data == b""
    assert [f.change for f in seen] == ["created", "modified", "deleted"]
    assert seen[0].path == directory / "notes.txt"
    assert seen[0].text() == "first"
    assert all(o.ok for o in rec.outcomes)


async def test_pattern_and_recursive_select_files(tmp_path: Path) -> None:
    inbox = make(tmp_path, pattern="*.csv", recursive=True)

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    directory = tmp_path / "inbox"
    async with serving(trigger, rec):
        write(directory / "a.csv", "1")
        write(directory / "b.txt", "2")
        write(directory / "sub" / "c.csv", "3")
        write(directory / "sub" / "deeper" / "d.csv", "4")
        write(directory / ".hidden.csv", "5")
        write(directory / ".git" / "e.csv", "6")
        await wait_until(lambda: len(rec.events) >= 3, what="three csv files")
        await quiet(trigger)
    assert sorted(e.subject or "" for e in rec.events) == ["a.csv", "sub/c.csv", "sub/deeper/d.csv"]
    assert rec.events[0].datacontenttype == "text/csv"


async def test_not_recursive_ignores_sub_folders(tmp_path: Path) -> None:
    inbox = make(tmp_path, pattern="*.csv")

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    directory = tmp_path / "inbox"
    write(directory / "sub" / "old.csv", "0")
    async with serving(trigger, rec):
        write(directory / "sub" / "c.csv", "3")
        write(directory / "a.csv", "1")
        await wait_until(lambda: len(rec.events) >= 1, what="a.csv")
        await quiet(trigger)
    assert [e.subject for e in rec.events] == ["a.csv"]


async def test_a_growing_file_is_handed_over_once_and_complete(tmp_path: Path) -> None:
    inbox = make(tmp_path, stable_for=0.4, poll_interval=0.05)
    contents: list[bytes] = []

    @inbox.on_create
    async def created(file: files.File) -> None:
        contents.append(file.data)

    @inbox.on_modify
    async def modified(file: files.File) -> None:
        contents.append(file.data)

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    target = tmp_path / "inbox" / "upload.bin"
    async with serving(trigger, rec):
        with target.open("wb") as fh:
            for step in range(6):
                fh.write(bytes([step]) * 1000)
                fh.flush()
                # a slow producer: each chunk lands well within stable_for of the last
                await asyncio.sleep(0.1)
        await wait_until(lambda: len(rec.events) == 1, what="the upload")
        await quiet(trigger, 0.8)
    assert len(contents) == 1
    assert contents[0] == b"".join(bytes([s]) * 1000 for s in range(6))
    assert rec.events[0].handler == "created"


async def test_move_on_success_and_on_error(tmp_path: Path) -> None:
    inbox = make(
        tmp_path,
        pattern="*.csv",
        recursive=True,
        on_success=files.MoveTo("processed"),
        on_error=files.MoveTo("failed"),
    )

    @inbox.on_create
    async def created(file: files.File) -> int:
        if file.name.startswith("bad"):
            raise ValueError(f"cannot import {file.name}")
        return len(file.data)

    @inbox.on_delete
    async def deleted(file: files.File) -> None:
        raise AssertionError("a moved file is not a deletion")

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    directory = tmp_path / "inbox"
    async with serving(trigger, rec):
        assert (directory / "processed").is_dir()
        assert (directory / "failed").is_dir()
        write(directory / "good.csv", "a,b\n")
        write(directory / "bad.csv", "x\n")
        write(directory / "sub" / "nested.csv", "n\n")
        await wait_until(
            lambda: (directory / "processed" / "good.csv").exists()
            and (directory / "failed" / "bad.csv").exists()
            and (directory / "processed" / "sub" / "nested.csv").exists(),
            what="the files to be moved",
        )
        await quiet(trigger)
    assert sorted(e.subject or "" for e in rec.events) == ["bad.csv", "good.csv", "sub/nested.csv"]
    assert {o.status for o in rec.outcomes} == {"ok", "error"}
    assert not (directory / "good.csv").exists()
    assert not (directory / "bad.csv").exists()
    assert (directory / "processed" / "good.csv").read_text() == "a,b\n"
    # the moved files are neither deletions nor new files of the (recursive) watch
    assert rec.of("deleted") == []


async def test_move_to_a_taken_name_gets_a_numbered_suffix(tmp_path: Path) -> None:
    inbox = make(tmp_path, on_success=files.MoveTo("done"))

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    directory = tmp_path / "inbox"
    write(directory / "done" / "report.csv", "earlier")
    write(directory / "done" / "report-1.csv", "earlier too")
    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    async with serving(trigger, rec):
        write(directory / "report.csv", "latest")
        await wait_until(
            lambda: (directory / "done" / "report-2.csv").exists(), what="the suffixed move"
        )
        await quiet(trigger)
    assert (directory / "done" / "report.csv").read_text() == "earlier"
    assert (directory / "done" / "report-1.csv").read_text() == "earlier too"
    assert (directory / "done" / "report-2.csv").read_text() == "latest"
    assert len(rec.events) == 1


async def test_delete_action_removes_the_file_without_a_deleted_event(tmp_path: Path) -> None:
    inbox = make(tmp_path, on_success=files.Delete())

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    @inbox.on_delete
    async def deleted(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    target = tmp_path / "inbox" / "once.txt"
    async with serving(trigger, rec):
        write(target, "bye")
        await wait_until(lambda: not target.exists(), what="the file to be deleted")
        await quiet(trigger)
    assert [e.handler for e in rec.events] == ["created"]


async def test_failed_move_is_quarantined_not_looped_and_survives_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "inbox"
    # a regular file where the move folder should be: every move into it fails
    write(directory / "processed", "not a folder")

    def declare() -> files.Directory:
        inbox = make(tmp_path, pattern="*.csv", on_success=files.MoveTo("processed"))

        @inbox.on_create
        async def created(file: files.File) -> None: ...

        @inbox.on_modify
        async def modified(file: files.File) -> None: ...

        return inbox

    inbox = declare()
    rec = Recorder(inbox)
    trigger = trigger_for(tmp_path, inbox)
    target = directory / "orders.csv"
    async with serving(trigger, rec):
        write(target, "1,2\n")
        await wait_until(lambda: len(rec.events) == 1, what="the first hand-over")
        await quiet(trigger, 0.6)
    assert len(rec.events) == 1
    assert target.exists()
    assert "quarantined" in caplog.text
    stored = json.loads((tmp_path / ".iwb" / "state" / "inbox.json").read_text())
    st = target.stat()
    assert stored["quarantine"] == {"orders.csv": [st.st_size, st.st_mtime_ns]}

    # a new listener over the same state: the quarantined version is not handed over again
    inbox = declare()
    rec = Recorder(inbox)
    trigger = trigger_for(tmp_path, inbox)
    async with serving(trigger, rec):
        await quiet(trigger, 0.6)
        assert rec.events == []
        # a new version of the file is handled again (and quarantined again)
        write(target, "1,2\n3,4\n")
        await wait_until(lambda: len(rec.events) == 1, what="the new version")
        await quiet(trigger, 0.6)
    assert [e.handler for e in rec.events] == ["modified"]
    assert rec.events[0].data == b"1,2\n3,4\n"
    stored = json.loads((tmp_path / ".iwb" / "state" / "inbox.json").read_text())
    assert stored["quarantine"]["orders.csv"][0] == len(b"1,2\n3,4\n")


async def test_process_existing_hands_over_files_already_there(tmp_path: Path) -> None:
    directory = tmp_path / "inbox"
    write(directory / "a.txt", "A")
    write(directory / "b.txt", "B")
    inbox = make(tmp_path)

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    async with serving(trigger, rec):
        await wait_until(lambda: len(rec.events) == 2, what="the existing files")
        await quiet(trigger)
    assert sorted(e.data for e in rec.events) == [b"A", b"B"]


async def test_without_process_existing_only_later_changes_count(tmp_path: Path) -> None:
    directory = tmp_path / "inbox"
    write(directory / "old.txt", "old")
    inbox = make(tmp_path, process_existing=False)

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    @inbox.on_modify
    async def modified(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    async with serving(trigger, rec):
        await quiet(trigger)
        assert rec.events == []
        write(directory / "old.txt", "changed")
        await wait_until(lambda: len(rec.events) == 1, what="the modification")
    assert rec.events[0].handler == "modified"
    assert rec.events[0].data == b"changed"


async def test_a_file_right_after_ready_is_not_missed(tmp_path: Path) -> None:
    inbox = make(tmp_path, process_existing=False, stable_for=0)

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    for attempt in range(3):
        trigger = trigger_for(tmp_path, inbox)
        rec = Recorder(inbox)
        async with serving(trigger, rec):
            write(tmp_path / "inbox" / f"early-{attempt}.txt", "x")
            await wait_until(lambda: len(rec.events) == 1, what="the early file")  # noqa: B023


async def test_a_restart_does_not_repeat_handled_files_and_reports_deletions(
    tmp_path: Path,
) -> None:
    def declare() -> files.Directory:
        inbox = make(tmp_path)

        @inbox.on_create
        async def created(file: files.File) -> None: ...

        @inbox.on_delete
        async def deleted(file: files.File) -> None: ...

        return inbox

    directory = tmp_path / "inbox"
    inbox = declare()
    rec = Recorder(inbox)
    async with serving(trigger_for(tmp_path, inbox), rec):
        write(directory / "keep.txt", "k")
        write(directory / "drop.txt", "d")
        await wait_until(lambda: len(rec.events) == 2, what="both files")

    (directory / "drop.txt").unlink()  # while the listener is down
    inbox = declare()
    rec = Recorder(inbox)
    trigger = trigger_for(tmp_path, inbox)
    async with serving(trigger, rec):
        await wait_until(lambda: len(rec.events) == 1, what="the deletion")
        await quiet(trigger)
    assert [(e.handler, e.subject) for e in rec.events] == [("deleted", "drop.txt")]


async def test_one_path_is_never_handled_twice_at_once(tmp_path: Path) -> None:
    inbox = make(tmp_path, stable_for=0.05)
    release = asyncio.Event()
    started = asyncio.Event()

    @inbox.on_create
    async def created(file: files.File) -> None:
        started.set()
        await release.wait()

    @inbox.on_modify
    async def modified(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    target = tmp_path / "inbox" / "busy.txt"
    async with serving(trigger, rec):
        write(target, "v1")
        await asyncio.wait_for(started.wait(), 5)
        write(target, "v2")
        # the change is noticed while v1 is still being handled; it must wait its turn
        await wait_until(lambda: "busy.txt" in trigger._dirty, what="the change to be noticed")
        assert len(rec.events) == 1
        release.set()
        await wait_until(lambda: len(rec.events) == 2, what="the modification")
        await quiet(trigger)
    assert rec.max_active == 1
    assert [e.data for e in rec.events] == [b"v1", b"v2"]
    assert [e.handler for e in rec.events] == ["created", "modified"]


async def test_a_large_file_is_passed_without_data(tmp_path: Path) -> None:
    inbox = make(tmp_path, max_size=10)
    read: list[bytes] = []

    @inbox.on_create
    async def created(file: files.File) -> None:
        read.append(file.read())

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    async with serving(trigger, rec):
        write(tmp_path / "inbox" / "big.txt", "x" * 100)
        await wait_until(lambda: len(rec.events) == 1, what="the big file")
    assert rec.events[0].data == b""
    assert rec.events[0].transport["truncated"] is True
    assert rec.events[0].transport["size"] == 100
    assert read == [b"x" * 100]


async def test_inject_writes_the_file_through_the_directory(tmp_path: Path) -> None:
    inbox = make(tmp_path, pattern="*.json")

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    @inbox.on_delete
    async def deleted(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    directory = tmp_path / "inbox"
    async with serving(trigger, rec):
        event = Event(
            artifact="inbox", kind="files", type="iwb.files.created", source="test",
            data=b'{"id": 7}', handler="created", transport={"path": "order-7.json"},
            extensions={"iwbinject": "mark-1"},
        )
        await trigger.inject(event)
        assert (directory / "order-7.json").read_bytes() == b'{"id": 7}'
        await wait_until(lambda: len(rec.events) == 1, what="the injected file")
        await quiet(trigger)
        received = rec.events[0]
        assert received.extensions["iwbinject"] == "mark-1"
        assert received.data == b'{"id": 7}'
        assert received.datacontenttype == "application/json"
        assert trigger.correlates(event, received)
        assert not [p for p in directory.iterdir() if p.name.startswith(files.INJECT_PREFIX)]

        gone = Event(
            artifact="inbox", kind="files", type="iwb.files.deleted", source="test",
            handler="deleted", transport={"path": "order-7.json"},
            extensions={"iwbinject": "mark-2"},
        )
        await trigger.inject(gone)
        await wait_until(lambda: len(rec.events) == 2, what="the injected deletion")
    assert not (directory / "order-7.json").exists()
    assert rec.events[1].handler == "deleted"
    assert rec.events[1].extensions["iwbinject"] == "mark-2"


async def test_inject_refuses_paths_the_directory_would_not_hand_over(tmp_path: Path) -> None:
    inbox = make(tmp_path, pattern="*.csv", on_success=files.MoveTo("done"), recursive=True)
    trigger = trigger_for(tmp_path, inbox)
    for path in ("../escape.csv", "/etc/x.csv", "notes.txt", "done/a.csv", ".hidden.csv"):
        event = Event(
            artifact="inbox", kind="files", type="iwb.files.created", source="t",
            data=b"1", handler="created", transport={"path": path},
        )
        with pytest.raises(files.InjectPathError) as info:
            await trigger.inject(event)
        assert repr(path) in str(info.value) or path in str(info.value)
    assert not (tmp_path / "escape.csv").exists()


def test_samples_match_the_pattern(tmp_path: Path) -> None:
    csv = trigger_for(tmp_path, make(tmp_path, pattern="*.csv")).samples()
    assert [s.name for s in csv] == ["created"]
    event = csv[0].event
    assert event.subject == "sample.csv"
    assert event.transport["path"] == "sample.csv"
    assert event.data.decode().splitlines()[0] == "id,name,quantity"
    assert event.datacontenttype == "text/csv"

    named = trigger_for(tmp_path, make(tmp_path, pattern="orders-*.json")).samples()[0].event
    assert named.subject == "orders-sample.json"
    assert json.loads(named.data)["id"] == 1
    assert named.datacontenttype == "application/json"

    plain = trigger_for(tmp_path, make(tmp_path)).samples()[0].event
    assert plain.data.decode().strip()
    assert plain.handler == "created"


def test_bad_configuration_is_reported_at_declaration(tmp_path: Path) -> None:
    with pytest.raises(TriggerConfigError, match="stable_for"):
        files.Directory(path="inbox", stable_for=-1)
    with pytest.raises(TriggerConfigError, match="pattern"):
        files.Directory(path="inbox", pattern=" ")
    with pytest.raises(TriggerConfigError, match="watched directory itself"):
        files.Directory(path="inbox", on_success=files.MoveTo("."))
    declare: Any = files.Directory  # a typo in a keyword, as a project module could make
    with pytest.raises(TypeError, match="unknown_option"):
        declare(path="inbox", unknown_option=1)
    with pytest.raises(ValidationError, match="unknown_option"):
        files.DirectoryConfig.model_validate({"path": "inbox", "unknown_option": 1})
    inbox = files.Directory(path="inbox")

    @inbox.on_create
    async def first(file: files.File) -> None: ...

    with pytest.raises(TriggerConfigError, match="created"):

        @inbox.on_create
        async def second(file: files.File) -> None: ...


def test_file_view_from_event(tmp_path: Path) -> None:
    event = Event(
        artifact="inbox", kind="files", type="iwb.files.created", source=str(tmp_path),
        data=b'{"a": 1}', handler="created", datacontenttype="application/json",
        transport={
            "path": "sub/x.json", "directory": str(tmp_path), "change": "created",
            "size": 8, "mtime": 1_700_000_000.5, "truncated": False,
        },
    )
    view = files.File.from_event(event)
    assert view.path == tmp_path / "sub" / "x.json"
    assert view.name == "x.json"
    assert view.relative == "sub/x.json"
    assert view.size == 8
    assert view.mtime.timestamp() == 1_700_000_000.5
    assert view.json() == {"a": 1}
    assert view.text() == '{"a": 1}'


async def test_drain_stops_new_hand_overs_and_serve_returns(tmp_path: Path) -> None:
    inbox = make(tmp_path, stable_for=0.05)

    @inbox.on_create
    async def created(file: files.File) -> None: ...

    trigger = trigger_for(tmp_path, inbox)
    rec = Recorder(inbox)
    async with serving(trigger, rec) as task:
        write(tmp_path / "inbox" / "a.txt", "a")
        await wait_until(lambda: len(rec.events) == 1, what="the first file")
        await trigger.drain()
        await asyncio.wait_for(task, 5)  # serve returns by itself once drained
        write(tmp_path / "inbox" / "b.txt", "b")
    assert len(rec.events) == 1
    # b.txt was never handed over, so the next start takes it
    rec = Recorder(inbox)
    trigger = trigger_for(tmp_path, inbox)
    async with serving(trigger, rec):
        await wait_until(lambda: len(rec.events) == 1, what="b.txt after the restart")
        await quiet(trigger)
    assert [e.subject for e in rec.events] == ["b.txt"]


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, iwb_files, iwb_automation\n"
        "heavy = {'watchfiles', 'aiocron', 'cronsim', 'tzlocal'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ},
    )
    assert out.stdout.strip() == "[]"


async def test_a_path_that_cannot_be_a_directory_fails_serve_with_a_clear_error(
    tmp_path: Path,
) -> None:
    write(tmp_path / "inbox", "a file, not a folder")
    inbox = make(tmp_path)
    trigger = trigger_for(tmp_path, inbox)
    with pytest.raises(TriggerConfigError, match="cannot watch") as info:
        await trigger.serve(Recorder(inbox), ready=lambda: None)
    assert str(tmp_path / "inbox") in str(info.value)
