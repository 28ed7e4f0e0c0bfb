"""The capture store: every event the runtime handles, with its outcome, in SQLite.

The runtime calls `CaptureStore.append(event, outcome)` on the hot path, right after a
dispatch. `append` only puts the pair on an in-memory queue. A background task of the store
hands the queue to a dedicated writer thread every `flush_interval` seconds (sooner when
`batch_size` events wait); there each event is redacted (see `workbench.runtime.redaction`),
serialised to JSON and inserted. Serialising at write time keeps `append` cheap and lets a
plugin note what it sent back (`outcome.sent`) right after the dispatch returned.

Rows go in as multi-row `INSERT ... SELECT * FROM (VALUES ...)` statements of up to 1024
rows, not `executemany`: each SQLite call gives the GIL back and must take it again, and
while the event loop thread is busy that takes up to the interpreter's switch interval
(5 ms), so one statement per chunk is what keeps the writer fast under load.

A failed write (the database locked by another process, a full disk, ...) is logged and
retried at the next flush with the rows it held, in order; `append` never raises. `close()`
writes everything appended before it was called.

The database is `.iwb/captures.db` of the project, in WAL mode, so the TUI, `iwb captures`
and other processes read it while the runtime writes. Reads run in SQL on their own
connection: `query`, `get`, `last`, `count` and `stats` are synchronous and also work on a
store opened with `CaptureStore.open_readonly(path)` where no runtime is running.

Bounds:

- **age**: rows captured more than `max_age_seconds` ago are deleted (checked every
  `max_age_seconds / 10`, at most every minute, also while idle);
- **size**: `max_bytes` bounds the database and its WAL together: the WAL gets three
  checkpoint intervals (`max_bytes / 32` each, at most 4 MiB), the database pages the rest
  (the "page budget" below). When the pages in use pass 85 % of the page budget, the
  oldest rows are deleted until about 75 % remains in use (a small step: a deletion goes
  through the WAL too). The store keeps running totals of the rows and of their
  stored JSON bytes (the `size` column) and the measured bytes on disk per stored byte
  (other columns, indexes, page slack); it estimates the space in use after each chunk and
  asks SQLite for the page counts only when the estimate nears the mark or after every
  page budget / 8 bytes written, so no check sums the table. A chunk holds at most about
  a twentieth of the page budget on disk, so the file cannot run far past the mark between
  two checks. The database uses `auto_vacuum = INCREMENTAL`:
  after a deletion, free pages beyond what the next cycle reuses are given back with
  `PRAGMA incremental_vacuum`, so the file shrinks when rows age out.
- **WAL**: the writer never checkpoints on commit; a checkpoint thread with its own
  connection copies the WAL into the database after every checkpoint interval written
  (SQLite works without the GIL meanwhile); when those side checkpoints fall behind, the
  writer checkpoints between two writes; the WAL file is cut back to two intervals
  (`journal_size_limit`) after checkpoints and emptied on close.

Table `captures`, one row per event (`id` is the event id, unique; a second event with the
same id replaces the first):

    seq           INTEGER PRIMARY KEY AUTOINCREMENT   append order, never reused
    id            TEXT UNIQUE                         the event id
    time          REAL                                when the store received it (unix s)
    artifact, kind, type, subject, handler            where it went (handler: module:function)
    status        TEXT                                ok / error / rejected
    error_type, error_message, duration_ms, code_version, replay_of
    summary       TEXT                                Event.summary() of the redacted event
    size          INTEGER                             bytes of event_json + outcome_json
    event_json, outcome_json                          Event.to_dict() / Outcome.to_dict()

with indexes on (artifact, seq), (status, seq), (time) and (kind, seq).

This module belongs to the runtime; it imports only `workbench.events`, `workbench.errors`
and the redaction rules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.errors import CaptureNotFoundError, WorkbenchError
from workbench.events import Event, Outcome
from workbench.runtime.redaction import (
    DEFAULT_REDACT_FIELDS,
    DEFAULT_REDACT_HEADERS,
    Redactor,
    compact_json,
    compile_field_patterns,
    compile_header_patterns,
)

__all__ = ["CaptureRecord", "CaptureSettings", "CaptureStore"]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024

SCHEMA_VERSION = 1

HIGH_WATER = 0.85
"""Fraction of `max_bytes` in use above which the oldest rows are deleted."""
LOW_WATER = 0.75
"""Fraction of `max_bytes` left in use after such a deletion."""
CHUNK_FRACTION = 20
"""One write statement holds at most `max_bytes / CHUNK_FRACTION` bytes of JSON."""
BLOCK_SIZES = (8, 64, 512, 1024)
"""Rows per prepared insert statement; a chunk is padded up to the next size (17 columns
x 1024 rows stays under SQLite's smallest limit of host parameters, 32766)."""
PAGE_SIZE = 16384
"""Page size of a new capture database."""
PREFIX_MIN = 6
"""The fewest characters of an id (from its start or its end) that `get` accepts."""
STATUSES = ("ok", "error", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time REAL NOT NULL,
    artifact TEXT NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    handler TEXT NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    duration_ms REAL NOT NULL,
    summary TEXT NOT NULL,
    code_version TEXT NOT NULL,
    replay_of TEXT,
    size INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    outcome_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS captures_artifact_seq ON captures (artifact, seq);
CREATE INDEX IF NOT EXISTS captures_status ON captures (status, seq);
CREATE INDEX IF NOT EXISTS captures_time ON captures (time);
CREATE INDEX IF NOT EXISTS captures_kind ON captures (kind, seq);
"""
# The two JSON columns come last: listing reads the short columns without touching the
# overflow pages of long payloads.

_COLUMNS = (
    "id", "time", "artifact", "kind", "type", "subject", "handler", "status", "error_type",
    "error_message", "duration_ms", "summary", "code_version", "replay_of", "size",
    "event_json", "outcome_json",
)
_WIDTH = len(_COLUMNS)
_SIZE_INDEX = _COLUMNS.index("size")
_SELECT = (
    "SELECT id, seq, time, artifact, kind, type, subject, handler, status, error_type, "
    "error_message, duration_ms, summary, code_version, replay_of, size, event_json, "
    "outcome_json FROM captures"
)
_PAGES = "SELECT * FROM pragma_page_count(), pragma_freelist_count()"


def _block_sql(rows: int, *, replace: bool) -> str:
    """An insert of `rows` rows; rows whose id is NULL (padding) are skipped."""
    marks = "(" + ",".join("?" * _WIDTH) + ")"
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return (
        f"{verb} INTO captures ({', '.join(_COLUMNS)}) "
        f"SELECT * FROM (VALUES {','.join([marks] * rows)}) WHERE column1 IS NOT NULL"
    )


_BLOCKS = {size: _block_sql(size, replace=False) for size in BLOCK_SIZES}
_REPLACE_BLOCKS = {size: _block_sql(size, replace=True) for size in BLOCK_SIZES}

Row = tuple[Any, ...]
_T = TypeVar("_T")


class CaptureSettings(BaseModel):
    """Where captures go and how much of them is kept. Extra keys are rejected."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    path: Path
    """The SQLite file, normally `<project>/.iwb/captures.db`; parent folders are created."""
    max_bytes: int = Field(default=256 * MiB, gt=0)
    """Upper bound, in bytes, of the database file and its WAL together; the oldest rows go
    first."""
    max_age_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Rows captured longer ago than this are deleted."""
    redact_headers: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT_HEADERS))
    """Header names whose values are stored as `[redacted]`; case-insensitive globs
    (`*-signature`, `*token*`)."""
    redact_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACT_FIELDS))
    """Regular expressions searched case-insensitively in JSON object keys (payload,
    transport, result, sent entries); the values of matching keys are stored as `[redacted]`."""
    extra_redact_headers: list[str] = Field(default_factory=list)
    """More header globs, added to `redact_headers` (a project's `iwb.toml` rules)."""
    extra_redact_fields: list[str] = Field(default_factory=list)
    """More key patterns, added to `redact_fields` (a project's `iwb.toml` rules)."""
    flush_interval: float = Field(default=0.05, gt=0)
    """Seconds between background writes of appended events."""
    batch_size: int = Field(default=2000, gt=0)
    """Appended events that trigger a write before `flush_interval` is up, and the most
    handed to the writer thread at once (inserted in statements of at most 1024 rows)."""
    enabled: bool = True
    """When false, `append` records nothing and the database is not created."""
    busy_timeout: float = Field(default=5.0, ge=0)
    """Seconds a write waits for a lock held by another connection before it fails (and is
    retried at the next flush)."""

    @field_validator("redact_headers", "extra_redact_headers")
    @classmethod
    def _check_headers(cls, value: list[str]) -> list[str]:
        compile_header_patterns(value)
        return value

    @field_validator("redact_fields", "extra_redact_fields")
    @classmethod
    def _check_fields(cls, value: list[str]) -> list[str]:
        compile_field_patterns(value)
        return value

    def redactor(self) -> Redactor:
        """The `Redactor` for these rules (base lists plus the extra ones)."""
        return Redactor(
            [*self.redact_headers, *self.extra_redact_headers],
            [*self.redact_fields, *self.extra_redact_fields],
        )


@dataclass
class CaptureRecord:
    """One stored capture: the indexed columns, and the event and outcome on demand."""

    id: str
    """The event id."""
    seq: int
    """Append order in the store; later captures have larger numbers."""
    time: float
    """When the store received the event (unix seconds)."""
    artifact: str
    kind: str
    type: str
    subject: str | None
    handler: str
    """`module:function` of the handler that ran, or the event's handler key if none ran."""
    status: str
    """`ok`, `error` or `rejected` (see `workbench.events.Status`)."""
    error_type: str | None
    duration_ms: float
    summary: str
    code_version: str
    replay_of: str | None
    """The id of the capture this event replays, if it is a replay."""
    error_message: str | None = None
    size: int = 0
    """Bytes of the stored JSON."""
    event_json: str = field(default="{}", repr=False)
    outcome_json: str = field(default="{}", repr=False)

    @cached_property
    def event(self) -> Event:
        """The stored (redacted) event."""
        return Event.from_dict(json.loads(self.event_json))

    @cached_property
    def outcome(self) -> Outcome:
        """The stored (redacted) outcome."""
        return Outcome.from_dict(json.loads(self.outcome_json))

    @property
    def captured_at(self) -> datetime:
        """`time` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time, UTC)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """A JSON-able dict (`iwb captures --json`); `full` adds `event` and `outcome`."""
        out: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "time": self.captured_at.isoformat(),
            "artifact": self.artifact,
            "kind": self.kind,
            "type": self.type,
            "subject": self.subject,
            "handler": self.handler,
            "status": self.status,
            "error_type": self.error_type,
            "duration_ms": self.duration_ms,
            "summary": self.summary,
            "code_version": self.code_version,
            "replay_of": self.replay_of,
        }
        if full:
            out["event"] = json.loads(self.event_json)
            out["outcome"] = json.loads(self.outcome_json)
        return out

    @classmethod
    def _from_row(cls, row: Row) -> CaptureRecord:
        (id_, seq, time_, artifact, kind, type_, subject, handler, status, error_type,
         error_message, duration_ms, summary, code_version, replay_of, size, event_json,
         outcome_json) = row
        return cls(
            id=id_, seq=seq, time=time_, artifact=artifact, kind=kind, type=type_,
            subject=subject, handler=handler, status=status, error_type=error_type,
            duration_ms=duration_ms, summary=summary, code_version=code_version,
            replay_of=replay_of, error_message=error_message, size=size,
            event_json=event_json, outcome_json=outcome_json,
        )


_Pending = tuple[Event, Outcome, float]

_TRANSIENT = (sqlite3.OperationalError, sqlite3.ProgrammingError, OSError)
"""Write errors expected to pass: a lock, a full or failing disk, a connection gone bad."""

_ROW_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
    ValueError,
)
"""Errors one row can cause (a value SQLite will not take). The rows of the chunk are then
written one by one and only the row that fails is dropped, with a log line. Any other
error keeps every row of the write for the next attempt."""


class CaptureStore:
    """Appends events and outcomes to `.iwb/captures.db` and answers queries over them.

    Use `await open()` before appending and `await close()` at shutdown (or
    `async with CaptureStore(settings) as store:`). `append` belongs to the event loop
    thread that opened the store; the writing happens on two threads of the store's own
    (`iwb-capture`: redact, serialise, insert, prune; `iwb-capture-checkpoint`). The read
    methods are synchronous, safe from any thread, and run a query each (a full-text
    `text` search scans the table: call it off the event loop when the store is large).
    `CaptureStore.open_readonly(path)` reads a store no runtime has open.

    Args:
        settings: Location, bounds, redaction rules and write cadence.
    """

    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings
        self.path = settings.path
        self._redactor = settings.redactor()
        # Event-loop state.
        self._pending: list[_Pending] = []
        self._appended = 0
        self._taken = 0
        self._accepting = settings.enabled
        self._readonly = False
        self._opened = False
        self._closing = False
        self._closed = False
        self._warned_closed = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._write_lock: asyncio.Lock | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        # Reads: one connection behind a lock, usable from any thread.
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        # Writer-thread state: only jobs on the writer thread change it.
        self._writer: sqlite3.Connection | None = None
        self._backlog: list[Row] = []
        self._backlog_len = 0
        self._failures = 0
        self._rows = 0
        self._total_size = 0
        self._page_size = 4096
        self._used_estimate = 0.0
        self._since_check = 0
        self._disk_ratio = 2.0
        self._last_age_check = 0.0
        self._wal_bytes = 0
        self._wal_frames = 0
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_future: Future[None] | None = None
        self._checkpoint_bytes = min(4 * MiB, max(128 * 1024, settings.max_bytes // 32))
        # The WAL beside the database counts against `max_bytes` too: it is checkpointed
        # every `_checkpoint_bytes` and cut back to twice that, so the pages of the database
        # get what remains.
        self._db_bytes = settings.max_bytes - 3 * self._checkpoint_bytes
        self._wal_path = f"{settings.path}-wal"
        self._age_interval = min(60.0, settings.max_age_seconds / 10)

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the folder, the database and its schema, and start the background writer.

        Raises:
            WorkbenchError: the database cannot be created or is not a capture store.
        """
        if self._opened:
            return
        if self._closed:
            raise WorkbenchError(
                f"The capture store {str(self.path)!r} was closed; create a new CaptureStore "
                "to open it again.",
                title="Capture store closed",
            )
        self._opened = True
        if not self.settings.enabled:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iwb-capture")
        self._checkpointer = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="iwb-capture-checkpoint"
        )
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        try:
            await self._in_writer(self._open_job)
            self._reader = _connect_reader(self.path, uri=False)
        except (sqlite3.Error, OSError) as exc:
            await self._in_writer(self._close_job)
            self._executor.shutdown(wait=False)
            self._executor = None
            self._opened = False
            raise WorkbenchError(
                f"Cannot open the capture store {str(self.path)!r}: {exc}. Check that the "
                "folder is writable; if the file is damaged, move it away and start again.",
                title="Capture store unavailable",
            ) from exc
        self._task = asyncio.create_task(self._flush_loop(), name="iwb-capture-flush")

    async def close(self) -> None:
        """Write every event appended so far, stop the background writer and close the files.

        Write failures are retried a few times; what still cannot be written is reported in
        the log. Calling `close` twice is harmless.
        """
        if self._closed:
            return
        self._closing = True
        if self._task is not None and self._wake is not None:
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._executor is None:
            if self._pending:
                logger.error(
                    "%d event(s) were appended to the capture store %s, which was never "
                    "opened; they are not captured.",
                    len(self._pending),
                    self.path,
                )
                self._pending.clear()
        else:
            for attempt in range(4):
                await self.flush()
                if not self._pending and not self._backlog_len:
                    break
                await asyncio.sleep(0.1 * (attempt + 1))
            self._accepting = False
            lost = len(self._pending) + self._backlog_len
            if lost:
                logger.error(
                    "%d captured event(s) could not be written to %s and are lost.",
                    lost,
                    self.path,
                )
            self._pending.clear()
            await self._in_writer(self._close_job)
            self._executor.shutdown(wait=False)
            self._executor = None
        self._accepting = False
        self._closed = True
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    async def __aenter__(self) -> CaptureStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @classmethod
    def open_readonly(cls, path: Path | str) -> CaptureStore:
        """A store whose read methods work on an existing database; nothing is written.

        Safe while a runtime writes the same file (WAL). Close it with `close_readonly()`.

        Raises:
            CaptureNotFoundError: there is no capture database at `path`.
            WorkbenchError: the file is not a capture database.
        """
        path = Path(path)
        if not path.is_file():
            raise CaptureNotFoundError(
                f"No capture store at {str(path)!r}. Captures are recorded while the project "
                "runs (`iwb run` or `iwb open`); run it and send it an event first.",
                title="No capture store",
            )
        store = cls(CaptureSettings(path=path, enabled=False))
        store._readonly = True
        store._opened = True
        try:
            store._reader = _connect_reader(path, uri=True)
            store._reader.execute("SELECT seq FROM captures LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            store.close_readonly()
            raise WorkbenchError(
                f"{str(path)!r} is not a readable capture store: {exc}. It is written by "
                "`iwb run` / `iwb open`; move the file away if it is damaged.",
                title="Capture store unavailable",
            ) from exc
        return store

    def close_readonly(self) -> None:
        """Close the read connection of a store from `open_readonly`."""
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self._closed = True

    # ------------------------------------------------------------------ writing

    def append(self, event: Event, outcome: Outcome) -> None:
        """Queue an event and its outcome for the store. Never blocks and never raises.

        The pair is serialised when it is written (within `flush_interval`), so changes a
        plugin makes to the outcome right after the dispatch are recorded.
        """
        if not self._accepting:
            if self.settings.enabled and not self._warned_closed:
                self._warned_closed = True
                logger.warning(
                    "The capture store %s is closed; event %s and later ones are not captured.",
                    self.path,
                    event.id,
                )
            return
        pending = self._pending
        pending.append((event, outcome, time.time()))
        self._appended += 1
        if len(pending) >= self.settings.batch_size and self._wake is not None:
            self._wake.set()

    async def flush(self) -> int:
        """Write everything appended so far and wait for it.

        Returns:
            The number of rows written. When a write fails, the rows are kept for the next
            flush and `flush` returns early (see `pending`).
        """
        if self._executor is None:
            return 0
        target = self._appended
        written = 0
        while True:
            written += await self._write()
            if self._failures or (self._taken >= target and not self._backlog_len):
                return written

    async def prune(self, now: float | None = None) -> int:
        """Write what is pending, then apply the age and size bounds now.

        Args:
            now: The time the age bound counts back from (default: the current time).

        Returns:
            The number of rows deleted.
        """
        if self._executor is None:
            return 0
        await self.flush()
        return await self._in_writer(
            self._maintenance, time.time() if now is None else now, True
        )

    @property
    def pending(self) -> int:
        """Events appended but not yet written."""
        return len(self._pending) + self._backlog_len

    async def _write(self) -> int:
        assert self._write_lock is not None
        async with self._write_lock:
            size = self.settings.batch_size
            items = self._pending[:size]
            del self._pending[:size]
            self._taken += len(items)
            if not items and not self._backlog_len:
                return 0
            return await self._in_writer(self._write_job, items)

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        interval = self.settings.flush_interval
        while not self._closing:
            if len(self._pending) < self.settings.batch_size:
                delay = interval
                if self._failures:
                    delay = min(5.0, interval * 2 ** min(self._failures, 10))
                try:
                    async with asyncio.timeout(delay):
                        await wake.wait()
                except TimeoutError:
                    pass
            wake.clear()
            if self._closing:
                break
            try:
                if self._pending or self._backlog_len:
                    await self._write()
                elif self._wal_bytes or time.time() - self._last_age_check >= self._age_interval:
                    await self._in_writer(self._idle_job, time.time())
            except Exception:  # a bug here must not end capturing for the whole run
                logger.exception("The capture store's background writer failed; continuing.")

    async def _in_writer(self, func: Callable[..., _T], *args: Any) -> _T:
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        # Shielded: a job handed to the writer runs to its end even if the caller is
        # cancelled, so rows taken off the queue are never dropped on the floor.
        return await asyncio.shield(loop.run_in_executor(self._executor, func, *args))

    # ------------------------------------------------------------------ writer thread

    def _open_job(self) -> None:
        conn = self._connect_writer()
        self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        rows, total = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM captures"
        ).fetchone()
        self._rows, self._total_size = int(rows), int(total)
        # The bounds may be smaller than in the last run.
        self._maintenance(time.time(), True)

    def _connect_writer(self) -> sqlite3.Connection:
        if self._writer is not None:
            return self._writer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One writer connection, used on the single writer thread only; the flag lets a
        # failed open be cleaned up from whichever thread notices.
        conn = sqlite3.connect(
            self.path,
            timeout=self.settings.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            _init_schema(conn, wal_limit=2 * self._checkpoint_bytes)
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        return conn

    def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _close_job(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
            self._checkpointer = None
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        if self._writer is not None:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                logger.warning("Could not checkpoint the capture store %s: %s", self.path, exc)
        self._drop_writer()

    def _idle_job(self, now: float) -> None:
        if now - self._last_age_check >= self._age_interval:
            self._maintenance(now, True)
        self._maybe_checkpoint(idle=True)

    def _write_job(self, items: list[_Pending]) -> int:
        rows = self._backlog
        self._backlog = []
        serialise = self._serialise
        rows.extend([serialise(event, outcome, at) for event, outcome, at in items])
        self._backlog_len = len(rows)
        high = self._db_bytes * HIGH_WATER
        recheck = self._db_bytes / 8
        done = 0
        try:
            conn = self._connect_writer()
            while done < len(rows):
                end = self._chunk_end(rows, done)
                added = self._insert_chunk(conn, rows[done:end])
                done = end
                self._backlog_len = len(rows) - done
                self._wal_bytes += added
                self._since_check += added
                self._used_estimate += added * self._disk_ratio
                now = time.time()
                age_due = now - self._last_age_check >= self._age_interval
                # Measure when the estimate nears the mark, and now and then anyway, so
                # the estimate never drifts far from the file.
                if self._used_estimate > high or self._since_check > recheck or age_due:
                    self._maintenance(now, age_due)
                self._maybe_checkpoint()  # per chunk: a batch can be large
        except Exception as exc:  # transient (locked, disk full) or not: keep the rows
            self._backlog = rows[done:]
            self._backlog_len = len(self._backlog)
            self._drop_writer()
            self._failures += 1
            if self._failures == 1:
                logger.error(
                    "Could not write %d capture(s) to %s (%s: %s); keeping them and retrying.",
                    len(self._backlog), self.path, type(exc).__name__, exc,
                    exc_info=not isinstance(exc, _TRANSIENT),
                )
            else:
                logger.debug("Capture write retry %d failed: %s", self._failures, exc)
            return done
        if self._failures:
            logger.warning("The capture store %s is writable again.", self.path)
            self._failures = 0
        return done

    def _chunk_end(self, rows: list[Row], start: int) -> int:
        """End of the chunk from `start`: at most one block of rows, `batch_size` rows, and
        `max_bytes / CHUNK_FRACTION` bytes on disk (so one chunk cannot carry the file far
        past the high-water mark)."""
        limit = min(len(rows), start + min(self.settings.batch_size, BLOCK_SIZES[-1]))
        budget = self._db_bytes / CHUNK_FRACTION / self._disk_ratio
        end, size = start, 0
        while end < limit:
            size += rows[end][_SIZE_INDEX]
            end += 1
            if size >= budget:
                break
        return end

    def _insert_chunk(self, conn: sqlite3.Connection, chunk: list[Row]) -> int:
        """Insert rows in one statement; returns the stored bytes added."""
        try:
            try:
                _execute_block(conn, chunk, _BLOCKS)
            except sqlite3.IntegrityError:
                # An id already stored (a redelivered event): the newer capture replaces it.
                return self._replace_chunk(conn, chunk)
        except _ROW_ERRORS as exc:
            if len(chunk) == 1:
                logger.error(
                    "The capture of event %r cannot be stored and is dropped: %s", chunk[0][0], exc
                )
                return 0
            return sum(self._insert_chunk(conn, [row]) for row in chunk)
        added: int = sum(row[_SIZE_INDEX] for row in chunk)
        self._rows += len(chunk)
        self._total_size += added
        return added

    def _replace_chunk(self, conn: sqlite3.Connection, chunk: list[Row]) -> int:
        latest = {row[0]: row for row in chunk}
        unique = list(latest.values())
        ids = list(latest)
        conn.execute("BEGIN IMMEDIATE")
        try:
            count, old = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM captures "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchone()
            _execute_block(conn, unique, _REPLACE_BLOCKS)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        added: int = sum(row[_SIZE_INDEX] for row in unique) - int(old)
        self._rows += len(unique) - int(count)
        self._total_size += added
        return max(0, added)

    def _serialise(self, event: Event, outcome: Outcome, captured_at: float) -> Row:
        for _attempt in range(2):
            try:
                return self._row(event, outcome, captured_at)
            except Exception:  # e.g. the outcome changed while it was read; try again
                continue
        return self._fallback_row(event, outcome, captured_at)

    def _row(self, event: Event, outcome: Outcome, captured_at: float) -> Row:
        redactor = self._redactor
        transport, data = redactor.redact_event_parts(event)
        event_dict = event.to_dict()
        event_dict["transport"] = transport
        if data is event.data:
            summary = event.summary()
        else:
            event_dict["data"] = data.decode("utf-8")
            summary = dataclasses.replace(event, data=data).summary()
        result, sent = redactor.redact_outcome_parts(outcome)
        outcome_dict = outcome.to_dict()
        outcome_dict["result"] = result
        outcome_dict["sent"] = sent
        event_json, event_size = _storable_json(event_dict)
        outcome_json, outcome_size = _storable_json(outcome_dict)
        error = outcome.error
        replay_of = event.extensions.get("replayof")
        subject = event.subject
        return (
            _text(event.id),
            captured_at,
            _text(event.artifact),
            _text(event.kind),
            _text(event.type),
            None if subject is None else _text(subject),
            _text(outcome.handler or event.handler),
            _text(outcome.status),
            None if error is None else _text(error.type),
            None if error is None else _text(error.message[:2000]),
            float(outcome.duration_ms),
            _text(summary),
            _text(outcome.code_version),
            None if replay_of is None else _text(replay_of),
            event_size + outcome_size,
            event_json,
            outcome_json,
        )

    def _fallback_row(self, event: Event, outcome: Outcome, captured_at: float) -> Row:
        """A row for a pair that does not serialise: the envelope, without the payload."""
        logger.warning("Event %s could not be serialised; stored without its payload.", event.id)
        problem = "the event or its outcome could not be serialised as JSON"
        event_id, artifact, kind, kind_type = (
            _text(event.id), _text(event.artifact), _text(event.kind), _text(event.type)
        )
        handler, status = _text(outcome.handler or event.handler), _text(outcome.status)
        event_json, event_size = _storable_json(
            {
                "id": event_id, "artifact": artifact, "kind": kind, "type": kind_type,
                "source": _text(event.source), "handler": _text(event.handler),
                "transport": {}, "extensions": {}, "data": "",
            }
        )
        outcome_json, outcome_size = _storable_json(
            {
                "event_id": event_id, "status": status, "handler": handler,
                "error": {"type": "SerialisationError", "message": problem},
            }
        )
        return (
            event_id, captured_at, artifact, kind, kind_type, None, handler, status,
            "SerialisationError", problem, 0.0, kind_type, "", None,
            event_size + outcome_size, event_json, outcome_json,
        )

    # ------------------------------------------------------------------ bounds (writer)

    def _maintenance(self, now: float, age: bool) -> int:
        """Apply the bounds; a failure is logged and retried at the next check."""
        try:
            return self._enforce_bounds(now, age=age)
        except (sqlite3.Error, OSError) as exc:
            self._drop_writer()
            logger.warning("Could not apply the capture store bounds (%s); will retry.", exc)
            return 0

    def _enforce_bounds(self, now: float, *, age: bool) -> int:
        """Delete rows past the age and size bounds; give surplus free pages back."""
        conn = self._connect_writer()
        max_bytes = self._db_bytes
        page = self._page_size
        deleted = 0
        if age:
            self._last_age_check = time.time()  # not `now`, which a caller may move
            cutoff = now - self.settings.max_age_seconds
            count, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM captures WHERE time < ?", (cutoff,)
            ).fetchone()
            if count:
                conn.execute("DELETE FROM captures WHERE time < ?", (cutoff,))
                self._forget(int(count), int(size))
                deleted += int(count)
        pages, free = conn.execute(_PAGES).fetchone()
        used = (pages - free) * page
        if self._total_size > 0:
            # Bytes on disk per stored JSON byte: other columns, indexes, page slack.
            self._disk_ratio = max(1.0, used / self._total_size)
        trimmed = False
        if used > max_bytes * HIGH_WATER and self._rows > 0:
            to_free = (used - max_bytes * LOW_WATER) / self._disk_ratio
            average = max(1.0, self._total_size / self._rows)
            oldest = max(1, min(self._rows, math.ceil(to_free / average)))
            last_seq, count, size = conn.execute(
                "SELECT MAX(seq), COUNT(*), COALESCE(SUM(size), 0) FROM "
                "(SELECT seq, size FROM captures ORDER BY seq LIMIT ?)",
                (oldest,),
            ).fetchone()
            if count:
                conn.execute("DELETE FROM captures WHERE seq <= ?", (last_seq,))
                self._forget(int(count), int(size))
                deleted += int(count)
                trimmed = True
        if deleted or pages * page > max_bytes * 0.95:
            pages, free = conn.execute(_PAGES).fetchone()
            used = (pages - free) * page
            # After trimming a full store to the low-water mark, the free pages up to the
            # high-water mark stay in the file, so it does not shrink and grow again on
            # every cycle; any other surplus of free pages goes back to the file system.
            slack = 16.0 * page
            if trimmed:
                slack += (HIGH_WATER - LOW_WATER) * max_bytes
            target = min(used + slack, max_bytes * 0.95)
            surplus = min(int(free), math.floor((pages * page - target) / page))
            if surplus > 0:
                # executescript steps the pragma to its end in one call (execute frees one
                # page per call).
                conn.executescript(f"PRAGMA incremental_vacuum({surplus});")
                pages, free = conn.execute(_PAGES).fetchone()
                used = (pages - free) * page
        self._used_estimate = float(used)
        self._since_check = 0
        return deleted

    def _forget(self, rows: int, size: int) -> None:
        self._rows = max(0, self._rows - rows)
        self._total_size = max(0, self._total_size - size)

    # Checkpoints copy the WAL into the database file and fsync it, a large part of the
    # cost of writing. They run on a thread of their own with their own connection (SQLite
    # works without the GIL meanwhile), so the writer goes on with the next batch.

    def _maybe_checkpoint(self, *, idle: bool = False) -> None:
        if self._checkpointer is None or not self._wal_bytes:
            return
        try:  # what is on disk decides: pages, indexes and deletions all go to the WAL
            wal_size = os.stat(self._wal_path).st_size
        except OSError:
            wal_size = 0
        if not idle and wal_size < self._checkpoint_bytes:
            return
        if wal_size > 2 * self._checkpoint_bytes:
            # Side checkpoints never caught up with the writes, so the WAL never restarted:
            # checkpoint here, between two writes, where it completes, and cut the file.
            try:
                self._connect_writer().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                logger.debug("Capture checkpoint failed: %s", exc)
            self._wal_bytes = 0
            return
        future = self._checkpoint_future
        if future is None or future.done():
            self._wal_bytes = 0
            self._checkpoint_future = self._checkpointer.submit(self._checkpoint_job, "PASSIVE")

    def _checkpoint_job(self, mode: str) -> None:
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = sqlite3.connect(
                    self.path,
                    timeout=self.settings.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            self._checkpoint_conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        except sqlite3.Error as exc:
            logger.debug("Capture checkpoint failed: %s", exc)
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None

    # ------------------------------------------------------------------ reading

    def query(
        self,
        *,
        artifact: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[CaptureRecord]:
        """Captures matching every given filter, newest first.

        Args:
            artifact: Only this artifact.
            kind: Only this trigger kind.
            status: Only `ok`, `error` or `rejected`.
            since: Captured at or after this unix time.
            until: Captured before this unix time.
            text: Case-insensitive substring of the summary, the event JSON, the error type
                or the error message (`%` and `_` match themselves).
            limit: At most this many records.
            before_seq: Only captures older than this `seq` (to page through results).

        Raises:
            WorkbenchError: `status` is not one of the known statuses.
        """
        where, params = _where(artifact, kind, status, since, until, text, before_seq)
        sql = f"{_SELECT}{where} ORDER BY seq DESC LIMIT ?"
        rows = self._read(sql, [*params, max(0, limit)])
        return [CaptureRecord._from_row(row) for row in rows]

    def count(
        self,
        *,
        artifact: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        before_seq: int | None = None,
    ) -> int:
        """How many captures match the filters (the same filters as `query`)."""
        where, params = _where(artifact, kind, status, since, until, text, before_seq)
        rows = self._read(f"SELECT COUNT(*) FROM captures{where}", params)
        return int(rows[0][0]) if rows else 0

    def find_message(self, artifact: str, match: dict[str, Any]) -> CaptureRecord | None:
        """The latest capture of `artifact` whose transport fields equal `match` (e.g. a
        Kafka record's topic, partition and offset: the same message read again), or None.

        Each key of `match` must be a plain field name (letters, digits, `_`).
        """
        where, params = " WHERE artifact = ?", [artifact]
        for key, value in match.items():
            if not key.isidentifier():
                raise ValueError(f"{key!r} is not a transport field name")
            where += f" AND json_extract(event_json, '$.transport.{key}') = ?"
            params.append(value)
        rows = self._read(f"{_SELECT}{where} ORDER BY seq DESC LIMIT 1", params)
        return CaptureRecord._from_row(rows[0]) if rows else None

    def last(self, n: int = 1, artifact: str | None = None) -> list[CaptureRecord]:
        """The `n` latest captures (of one artifact, if given), oldest first."""
        return list(reversed(self.query(artifact=artifact, limit=n)))

    def get(self, capture_id: str) -> CaptureRecord:
        """The capture with this event id, or the one capture whose id starts with it.

        Args:
            capture_id: A full event id, or at least 6 characters from its start that only
                one capture has (the first characters of every event id differ; the lists
                show the first 12).

        Raises:
            CaptureNotFoundError: no capture has that id, or the fragment is too short or
                matches several captures.
        """
        rows = self._read(f"{_SELECT} WHERE id = ?", [capture_id])
        if rows:
            return CaptureRecord._from_row(rows[0])
        hint = "List the captures with `iwb captures` (add --json for full ids)."
        if len(capture_id) < PREFIX_MIN:
            raise CaptureNotFoundError(
                f"No capture has the id {capture_id!r}, and a part of an id needs at least "
                f"{PREFIX_MIN} characters. {hint}",
            )
        # The start of an id: a range over the unique index on id.
        rows = self._read(
            f"{_SELECT} WHERE id >= ? AND id < ? ORDER BY id LIMIT 3",
            [capture_id, capture_id + "\U0010ffff"],
        )
        if len(rows) == 1:
            return CaptureRecord._from_row(rows[0])
        if rows:
            ids = ", ".join(repr(row[0]) for row in rows)
            raise CaptureNotFoundError(
                f"{capture_id!r} matches several captures ({ids}, ...); give more "
                f"characters. {hint}",
                title="Ambiguous capture id",
            )
        raise CaptureNotFoundError(
            f"No capture has an id that starts with {capture_id!r}. {hint}"
        )

    def stats(self) -> dict[str, Any]:
        """Totals of the store.

        Returns:
            `{"path", "rows", "bytes" (stored JSON), "file_bytes" (database and WAL on
            disk), "max_bytes", "max_age_seconds", "oldest", "newest" (ISO 8601 or None),
            "by_status": {status: rows}, "errors": rows with status error,
            "rejected": rows with status rejected, "artifacts": {name: {"rows", "errors",
            "rejected", "bytes"}}, "pending": appended but not yet written}`.
        """
        groups = self._read(
            "SELECT artifact, status, COUNT(*), COALESCE(SUM(size), 0) FROM captures "
            "GROUP BY artifact, status",
            [],
        )
        bounds = self._read("SELECT MIN(time), MAX(time) FROM captures", [])
        artifacts: dict[str, dict[str, int]] = {}
        by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
        rows_total = bytes_total = 0
        for artifact, status, count, size in groups:
            entry = artifacts.setdefault(
                artifact, {"rows": 0, "errors": 0, "rejected": 0, "bytes": 0}
            )
            entry["rows"] += count
            entry["bytes"] += size
            if status == "error":
                entry["errors"] += count
            elif status == "rejected":
                entry["rejected"] += count
            by_status[status] = by_status.get(status, 0) + count
            rows_total += count
            bytes_total += size
        oldest, newest = bounds[0] if bounds else (None, None)
        return {
            "path": str(self.path),
            "rows": rows_total,
            "bytes": bytes_total,
            "file_bytes": self.file_bytes(),
            "max_bytes": self.settings.max_bytes,
            "max_age_seconds": self.settings.max_age_seconds,
            "oldest": _iso(oldest),
            "newest": _iso(newest),
            "by_status": by_status,
            "errors": by_status.get("error", 0),
            "rejected": by_status.get("rejected", 0),
            "artifacts": artifacts,
            "pending": self.pending,
        }

    def file_bytes(self) -> int:
        """Bytes on disk of the database file and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += Path(f"{self.path}{suffix}").stat().st_size
            except FileNotFoundError:
                pass
        return total

    def _read(self, sql: str, params: list[Any]) -> list[Row]:
        with self._read_lock:
            conn = self._reader
            if conn is None:
                if not self._readonly and not self.settings.enabled and self.path.is_file():
                    conn = self._reader = _connect_reader(self.path, uri=True)
                elif self._closed:
                    raise WorkbenchError(
                        f"The capture store {str(self.path)!r} is closed; open it again "
                        "with CaptureStore.open_readonly() to read it.",
                        title="Capture store closed",
                    )
                else:
                    return []
            return conn.execute(sql, params).fetchall()


# ---------------------------------------------------------------------- helpers


def _init_schema(conn: sqlite3.Connection, *, wal_limit: int) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {version} is newer than this iwb understands ({SCHEMA_VERSION})"
        )
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
        # Both must be set before the first table exists (an older file is converted by
        # VACUUM). 16 KiB pages: a quarter of the WAL frames and system calls per row of 4 KiB.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.execute("PRAGMA synchronous = NORMAL")
    # The writer never checkpoints on commit; see CaptureStore._maybe_checkpoint.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(f"PRAGMA journal_size_limit = {wal_limit}")
    conn.execute("PRAGMA cache_size = -16384")
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _connect_reader(path: Path, *, uri: bool) -> sqlite3.Connection:
    target = f"{path.resolve().as_uri()}?mode=ro" if uri else str(path)
    conn = sqlite3.connect(
        target, uri=uri, timeout=5.0, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA query_only = ON")
    return conn


def _storable_json(value: dict[str, Any]) -> tuple[str, int]:
    """`value` as compact JSON that SQLite can store, and its size in UTF-8 bytes."""
    text = compact_json(value)
    if text.isascii():  # O(1) on CPython: a flag of the string object
        return text, len(text)
    try:
        return text, len(text.encode("utf-8"))
    except UnicodeEncodeError:
        # Lone surrogates (text decoded with `surrogateescape`) have no UTF-8 form; JSON
        # can still carry them as \u escapes.
        text = json.dumps(value, separators=(",", ":"), default=str)
        return text, len(text)


def _text(value: object) -> str:
    """A short text column: `str(value)`, lone surrogates replaced so SQLite takes it."""
    if type(value) is str and value.isascii():
        return value
    text = str(value)
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _execute_block(conn: sqlite3.Connection, rows: list[Row], blocks: dict[int, str]) -> None:
    """Insert `rows` (at most the largest block) with one statement, padded with NULL rows."""
    count = len(rows)
    size = next(size for size in BLOCK_SIZES if size >= count)
    params: list[Any] = list(itertools.chain.from_iterable(rows))
    if size > count:
        params.extend(itertools.repeat(None, (size - count) * _WIDTH))
    conn.execute(blocks[size], params)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(
    artifact: str | None,
    kind: str | None,
    status: str | None,
    since: float | None,
    until: float | None,
    text: str | None,
    before_seq: int | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if artifact is not None:
        clauses.append("artifact = ?")
        params.append(artifact)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if status is not None:
        if status not in STATUSES:
            raise WorkbenchError(
                f"Unknown capture status {status!r}; use one of {', '.join(STATUSES)}.",
                title="Bad capture filter",
            )
        clauses.append("status = ?")
        params.append(status)
    if since is not None:
        clauses.append("time >= ?")
        params.append(since)
    if until is not None:
        clauses.append("time < ?")
        params.append(until)
    if before_seq is not None:
        clauses.append("seq < ?")
        params.append(before_seq)
    if text:
        pattern = f"%{_escape_like(text)}%"
        clauses.append(
            "(summary LIKE ? ESCAPE '\\' OR event_json LIKE ? ESCAPE '\\' "
            "OR error_type LIKE ? ESCAPE '\\' OR error_message LIKE ? ESCAPE '\\')"
        )
        params.extend([pattern] * 4)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _iso(value: float | None) -> str | None:
    return datetime.fromtimestamp(value, UTC).isoformat() if value is not None else None
