"""The capture store: appending, ordering, queries, bounds, redaction, failures, readers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import CaptureNotFoundError, WorkbenchError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.runtime.capture import CaptureSettings, CaptureStore
from workbench.runtime.redaction import REDACTED

REPO = Path(__file__).resolve().parents[2]


def make(
    artifact: str = "orders",
    kind: str = "http",
    *,
    data: bytes = b'{"order": 1}',
    subject: str | None = "POST /orders",
    status: str = "ok",
    event_id: str | None = None,
    headers: list[list[str]] | None = None,
    error: ErrorInfo | None = None,
    extensions: dict[str, Any] | None = None,
) -> tuple[Event, Outcome]:
    event = Event(
        artifact=artifact,
        kind=kind,
        type=f"iwb.{kind}.event",
        source=f"iwb://{artifact}",
        subject=subject,
        data=data,
        datacontenttype="application/json",
        handler="on_event",
        transport={"headers": headers or [["content-type", "application/json"]]},
        extensions=extensions or {},
    )
    if event_id is not None:
        event.id = event_id
    outcome = Outcome(
        event_id=event.id,
        status=status,  # type: ignore[arg-type]
        result={"ok": status == "ok"},
        error=error,
        duration_ms=1.25,
        code_version="v1",
        handler=f"{artifact}:on_event",
    )
    return event, outcome


async def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def settings(tmp_path: Path, **changes: Any) -> CaptureSettings:
    values: dict[str, Any] = {"path": tmp_path / ".iwb" / "captures.db", "flush_interval": 0.01}
    return CaptureSettings.model_validate({**values, **changes})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CaptureStore]:
    capture = CaptureStore(settings(tmp_path))
    await capture.open()
    yield capture
    await capture.close()


# ---------------------------------------------------------------------- appending


async def test_append_flush_and_read_back(store: CaptureStore) -> None:
    event, outcome = make(data=b'{"order": 7}', extensions={"replayof": "abc123"})
    store.append(event, outcome)
    assert store.pending == 1
    assert await store.flush() == 1
    assert store.pending == 0
    assert store.path.is_file()

    record = store.get(event.id)
    assert (record.id, record.artifact, record.kind, record.status) == (
        event.id, "orders", "http", "ok"
    )
    assert record.handler == "orders:on_event"
    assert record.subject == "POST /orders"
    assert record.type == "iwb.http.event"
    assert record.duration_ms == 1.25
    assert record.code_version == "v1"
    assert record.replay_of == "abc123"
    assert record.summary == event.summary()
    assert record.error_type is None
    assert record.size == len(record.event_json.encode()) + len(record.outcome_json.encode())
    assert abs(record.time - time.time()) < 60
    assert record.event.to_dict() == event.to_dict()
    assert record.outcome.to_dict() == outcome.to_dict()

    data = record.to_dict()
    assert list(data) == [
        "id", "seq", "time", "artifact", "kind", "type", "subject", "handler", "status",
        "error_type", "duration_ms", "summary", "code_version", "replay_of",
    ]
    assert datetime.fromisoformat(data["time"]).timestamp() == pytest.approx(record.time)
    full = record.to_dict(full=True)
    assert full["event"]["data"] == '{"order": 7}'
    assert full["outcome"]["result"] == {"ok": True}
    json.dumps(full)


async def test_background_task_writes_without_flush(store: CaptureStore) -> None:
    store.append(*make())
    await wait_for(lambda: store.count() == 1)


async def test_batch_size_triggers_a_write(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path, flush_interval=30.0, batch_size=5))
    await capture.open()
    try:
        for _ in range(4):
            capture.append(*make())
        for _ in range(20):  # let the background task run, were it woken
            await asyncio.sleep(0)
        assert capture.count() == 0  # under batch_size, within flush_interval
        capture.append(*make())
        await wait_for(lambda: capture.count() == 5)
    finally:
        await capture.close()


async def test_order_newest_first_and_last_in_chronological_order(store: CaptureStore) -> None:
    ids = []
    for i in range(10):
        event, outcome = make(data=f'{{"n": {i}}}'.encode())
        ids.append(event.id)
        store.append(event, outcome)
    await store.flush()
    records = store.query()
    assert [r.id for r in records] == ids[::-1]
    assert [r.seq for r in records] == sorted((r.seq for r in records), reverse=True)
    assert [r.id for r in store.last(3)] == ids[-3:]
    assert store.last(0) == []


async def test_outcome_changed_after_append_is_recorded(store: CaptureStore) -> None:
    event, outcome = make()
    store.append(event, outcome)
    outcome.record_sent("http.response", status=201)  # a plugin replying after dispatch
    await store.flush()
    assert store.get(event.id).outcome.sent == [{"kind": "http.response", "status": 201}]


async def test_values_json_does_not_know_are_stored_as_json_views(store: CaptureStore) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    event, outcome = make()
    outcome.result = {"when": datetime(2024, 1, 2), "tags": {"a"}, "thing": Opaque()}
    event.transport["raw"] = b"bytes"
    store.append(event, outcome)
    await store.flush()
    record = store.get(event.id)
    assert record.outcome.result == {"when": "2024-01-02T00:00:00", "tags": ["a"],
                                     "thing": "opaque!"}
    assert record.event.transport["raw"] == "bytes"


async def test_text_that_is_not_valid_unicode_is_still_captured(store: CaptureStore) -> None:
    # A plugin that decoded raw bytes with surrogateescape hands over lone surrogates.
    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    event, outcome = make(subject=f"GET /{raw}", headers=[["x-name", raw]])
    outcome.result = {"name": raw}
    store.append(event, outcome)
    await store.flush()
    record = store.get(event.id)
    assert record.subject == "GET /caf?"
    assert record.event.transport["headers"] == [["x-name", raw]]
    assert record.outcome.result == {"name": raw}


async def test_an_outcome_that_cannot_be_serialised_still_leaves_a_row(
    store: CaptureStore,
) -> None:
    event, outcome = make()
    loop: dict[str, Any] = {}
    loop["self"] = loop  # circular: no JSON for it
    outcome.result = loop
    store.append(event, outcome)
    await store.flush()
    record = store.get(event.id)
    assert record.error_type == "SerialisationError"
    assert record.event.artifact == "orders"
    assert record.outcome.error is not None


async def test_same_event_id_replaces_the_older_capture(store: CaptureStore) -> None:
    event, first = make(event_id="dup-event-1")
    store.append(event, first)
    await store.flush()
    _, second = make(event_id="dup-event-1", status="error")
    store.append(event, second)
    store.append(event, second)  # twice in one batch as well
    await store.flush()
    assert store.count() == 1
    record = store.get("dup-event-1")
    assert record.status == "error"
    stats = store.stats()
    assert stats["rows"] == 1 and stats["bytes"] == record.size


# ---------------------------------------------------------------------- queries


async def test_filters_run_in_sql(store: CaptureStore) -> None:
    boom = ErrorInfo(type="KeyError", message="missing field 'sku_code'")
    store.append(*make("orders", "http", data=b'{"item": "Widget 50% off"}'))
    store.append(*make("orders", "http", status="error", error=boom))
    store.append(*make("billing", "kafka", data=b'{"invoice": "INV_1"}'))
    store.append(*make("billing", "kafka", status="rejected", subject="too big"))
    store.append(*make("files", "files", data=b"plain text WIDGET"))
    await store.flush()
    middle = time.time()
    while time.time() <= middle:  # the next capture gets a later timestamp
        pass
    store.append(*make("orders", "http", data=b'{"item": "gadget"}'))
    await store.flush()

    assert store.count() == 6
    assert {r.artifact for r in store.query(artifact="billing")} == {"billing"}
    assert store.count(artifact="billing") == 2
    assert store.count(kind="http") == 3
    assert [r.error_type for r in store.query(status="error")] == ["KeyError"]
    assert [r.subject for r in store.query(status="rejected")] == ["too big"]
    assert store.count(status="ok") == 4
    assert store.count(artifact="orders", status="ok") == 2
    assert [r.summary for r in store.query(since=middle)] == ['POST /orders {"item": "gadget"}']
    assert store.count(until=middle) == 5
    assert store.count(since=middle - 3600, until=middle) == 5
    # text: case-insensitive, over summary, event JSON and the error
    assert store.count(text="widget") == 2
    assert store.count(text="SKU_CODE") == 1
    assert store.count(text="keyerror") == 1
    # % and _ are literal characters, not wildcards
    assert [r.artifact for r in store.query(text="50%")] == ["orders"]
    assert store.count(text="50%off") == 0
    assert store.count(text="INV_1") == 1
    assert store.count(text="INV_") == 1
    assert store.count(text="V_1") == 1
    assert store.count(text="NV1") == 0
    assert store.count(text="O_DER") == 0
    with pytest.raises(WorkbenchError, match="Unknown capture status 'err'"):
        store.query(status="err")


async def test_limit_and_paging_with_before_seq(store: CaptureStore) -> None:
    for i in range(7):
        store.append(*make(data=f'{{"n": {i}}}'.encode()))
    await store.flush()
    first = store.query(limit=3)
    second = store.query(limit=3, before_seq=first[-1].seq)
    third = store.query(limit=3, before_seq=second[-1].seq)
    seqs = [r.seq for r in first + second + third]
    assert len(seqs) == 7 and seqs == sorted(seqs, reverse=True)
    assert store.count(before_seq=first[-1].seq) == 4


async def test_get_by_id_or_its_start_and_not_found(store: CaptureStore) -> None:
    for event_id in ("abcdef0011", "abcdef0022", "0123456789ab", "ffff00000011", "eeee00000011"):
        store.append(*make(event_id=event_id))
    await store.flush()
    assert store.get("abcdef0011").id == "abcdef0011"
    assert store.get("0123456").id == "0123456789ab"  # the start of an id
    assert store.get("abcdef002").id == "abcdef0022"
    with pytest.raises(CaptureNotFoundError, match="starts with '456789ab'"):
        store.get("456789ab")  # the end of an id is not a name for it
    with pytest.raises(CaptureNotFoundError, match="several") as ambiguous:
        store.get("abcdef")
    assert "abcdef0011" in str(ambiguous.value) and "abcdef0022" in str(ambiguous.value)
    with pytest.raises(CaptureNotFoundError, match="at least 6 characters"):
        store.get("0011")
    with pytest.raises(CaptureNotFoundError) as missing:
        store.get("feedfacecafe")
    assert "'feedfacecafe'" in str(missing.value)
    assert "iwb captures" in str(missing.value)
    with pytest.raises(CaptureNotFoundError):
        store.get("EF0022")  # ids are case-sensitive


async def test_last_n_per_artifact(store: CaptureStore) -> None:
    orders = []
    for i in range(6):
        event, outcome = make("orders" if i % 2 == 0 else "billing")
        store.append(event, outcome)
        if event.artifact == "orders":
            orders.append(event.id)
    await store.flush()
    assert [r.id for r in store.last(2, artifact="orders")] == orders[-2:]
    assert [r.id for r in store.last(10, artifact="orders")] == orders
    assert store.last(5, artifact="nothing") == []


async def test_stats(store: CaptureStore) -> None:
    store.append(*make("orders"))
    store.append(*make("orders", status="error", error=ErrorInfo("ValueError", "bad")))
    store.append(*make("billing", status="rejected"))
    await store.flush()
    stats = store.stats()
    assert stats["rows"] == 3
    assert stats["bytes"] == sum(r.size for r in store.query())
    assert stats["file_bytes"] > 0
    assert stats["errors"] == 1 and stats["rejected"] == 1
    assert stats["by_status"] == {"ok": 1, "error": 1, "rejected": 1}
    assert stats["artifacts"]["orders"]["rows"] == 2
    assert stats["artifacts"]["orders"]["errors"] == 1
    assert stats["artifacts"]["billing"] == {
        "rows": 1, "errors": 0, "rejected": 1, "bytes": stats["artifacts"]["billing"]["bytes"]
    }
    assert stats["oldest"] is not None and stats["newest"] >= stats["oldest"]
    assert stats["pending"] == 0


# ---------------------------------------------------------------------- redaction


async def test_secrets_are_redacted_before_they_are_stored(store: CaptureStore) -> None:
    event, outcome = make(
        data=b'{"user": "ann", "password": "hunter2"}',
        headers=[["Authorization", "Bearer sekrit"], ["accept", "*/*"]],
    )
    outcome.record_sent("http.response", headers={"Set-Cookie": "session=sekrit"})
    store.append(event, outcome)
    await store.flush()
    record = store.get(event.id)
    assert "hunter2" not in record.event_json and "sekrit" not in record.event_json
    assert "sekrit" not in record.outcome_json
    assert "hunter2" not in record.summary
    assert json.loads(record.event.data) == {"user": "ann", "password": REDACTED}
    assert record.event.transport["headers"] == [["Authorization", REDACTED], ["accept", "*/*"]]
    assert record.outcome.sent[0]["headers"] == {"Set-Cookie": REDACTED}
    assert store.count(text="hunter2") == 0
    # what the handler saw is not changed
    assert event.transport["headers"][0][1] == "Bearer sekrit"


# ---------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("count", "padding"),
    [
        (3000, 1500),  # about 6 MB of large captures into a 1 MiB store
        (12000, 0),  # tiny captures: indexes and columns weigh more than the JSON
    ],
)
async def test_size_bound_keeps_the_file_small_and_the_newest_rows(
    tmp_path: Path, count: int, padding: int
) -> None:
    bound = 1024 * 1024
    capture = CaptureStore(settings(tmp_path, max_bytes=bound))
    await capture.open()
    pad = "x" * padding
    ids = []
    try:
        for i in range(count):
            event, outcome = make(data=f'{{"n": {i}, "pad": "{pad}"}}'.encode())
            ids.append(event.id)
            capture.append(event, outcome)
            if i % 250 == 0:
                await capture.flush()
                assert capture.path.stat().st_size <= bound * 1.05
        await capture.flush()
        assert capture.path.stat().st_size <= bound * 1.05
        kept = capture.count()
        assert 0 < kept < count / 2
        assert [r.id for r in capture.last(kept)] == ids[-kept:]  # the oldest went first
        assert capture.stats()["bytes"] <= bound
    finally:
        await capture.close()
    assert capture.path.stat().st_size <= bound * 1.05


async def test_age_bound_deletes_old_rows_and_the_file_shrinks(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path, max_age_seconds=3600))
    await capture.open()
    try:
        for i in range(400):
            capture.append(*make(data=json.dumps({"n": i, "pad": "y" * 4000}).encode()))
        await capture.flush()
        full = capture.file_bytes()
        assert full > 400 * 4000
        assert capture.count() == 400
        assert await capture.prune() == 0  # nothing is an hour old yet
        assert await capture.prune(now=time.time() + 3601) == 400
        assert capture.count() == 0
        capture.append(*make())
        await capture.flush()
        assert await capture.prune() == 0
        assert capture.count() == 1
    finally:
        await capture.close()
    assert capture.path.stat().st_size < full / 4


async def test_age_bound_is_applied_in_the_background(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path, max_age_seconds=0.3))
    await capture.open()
    try:
        capture.append(*make())
        await capture.flush()
        assert capture.count() == 1
        await wait_for(lambda: capture.count() == 0)
    finally:
        await capture.close()


# ---------------------------------------------------------------------- lifecycle


async def test_close_writes_pending_appends(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path, flush_interval=30.0))
    await capture.open()
    for _ in range(150):
        capture.append(*make())
    await capture.close()
    reader = CaptureStore.open_readonly(capture.path)
    try:
        assert reader.count() == 150
    finally:
        reader.close_readonly()
    capture.append(*make())  # after close: ignored, never raised
    assert capture.pending == 0


async def test_appends_before_open_are_kept(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path))
    capture.append(*make())
    await capture.open()
    await capture.flush()
    assert capture.count() == 1
    await capture.close()


async def test_reopening_keeps_rows_and_the_order(tmp_path: Path) -> None:
    async with CaptureStore(settings(tmp_path)) as first:
        first.append(*make())
        await first.flush()
        old = first.last(1)[0]
    async with CaptureStore(settings(tmp_path)) as second:
        event, outcome = make()
        second.append(event, outcome)
        await second.flush()
        assert second.count() == 2
        assert second.get(event.id).seq > old.seq
        assert second.stats()["bytes"] == sum(r.size for r in second.query())


async def test_disabled_store_records_nothing(tmp_path: Path) -> None:
    capture = CaptureStore(settings(tmp_path, enabled=False))
    await capture.open()
    capture.append(*make())
    assert await capture.flush() == 0
    assert capture.query() == [] and capture.count() == 0
    await capture.close()
    assert not capture.path.exists()


async def test_open_fails_clearly_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "captures.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkbenchError, match="Cannot open the capture store"):
        await CaptureStore(CaptureSettings(path=path)).open()
    with pytest.raises(WorkbenchError, match="not a readable capture store"):
        CaptureStore.open_readonly(path)


# ---------------------------------------------------------------------- readers


async def test_readonly_reader_sees_what_the_writer_writes(store: CaptureStore) -> None:
    store.append(*make())
    await store.flush()
    reader = CaptureStore.open_readonly(store.path)
    try:
        assert reader.count() == 1
        event, outcome = make("billing", status="error")
        store.append(event, outcome)
        await store.flush()
        assert reader.count() == 2
        assert reader.get(event.id).status == "error"
        assert reader.get(event.id[:8]).id == event.id
        assert [r.id for r in reader.last(1)] == [event.id]
        assert reader.stats()["rows"] == 2
        reader.append(*make())  # a read-only store records nothing
        assert reader.pending == 0
    finally:
        reader.close_readonly()
    assert store.count() == 2


async def test_a_reader_in_another_process_while_the_writer_runs(store: CaptureStore) -> None:
    for _ in range(3):
        store.append(*make())
    await store.flush()
    script = (
        "import sys; from workbench.runtime.capture import CaptureStore; "
        "s = CaptureStore.open_readonly(sys.argv[1]); print(s.count(), s.last(1)[0].id)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(store.path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().split() == ["3", store.last(1)[0].id]


def test_open_readonly_without_a_database(tmp_path: Path) -> None:
    with pytest.raises(CaptureNotFoundError, match="No capture store at") as info:
        CaptureStore.open_readonly(tmp_path / ".iwb" / "captures.db")
    assert "iwb run" in str(info.value)


# ---------------------------------------------------------------------- failures


async def test_a_failed_write_never_raises_and_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture = CaptureStore(settings(tmp_path, busy_timeout=0.05))
    await capture.open()
    try:
        first, _ = make()
        capture.append(first, make()[1])
        await capture.flush()
        # Another process takes the write lock and keeps it.
        blocker = sqlite3.connect(capture.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        second, third = make()[0], make()[0]
        with caplog.at_level(logging.ERROR, logger="workbench.runtime.capture"):
            capture.append(second, make()[1])
            assert await capture.flush() == 0
            capture.append(third, make()[1])
            assert await capture.flush() == 0
        assert capture.pending == 2
        assert capture.count() == 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "retrying" in errors[0].getMessage()
        blocker.execute("ROLLBACK")
        blocker.close()
        # The background task retries on its own, in order.
        await wait_for(lambda: capture.pending == 0)
        assert [r.id for r in capture.last(3)] == [first.id, second.id, third.id]
    finally:
        await capture.close()
