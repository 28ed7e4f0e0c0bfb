"""`FilesTrigger`: watches a directory and hands each complete file to the runtime.

How a file travels:

1. watchfiles reports a change somewhere in the directory (the directory is watched, not
   the files: editors and uploaders replace files on save);
2. one worker per relative path looks at the file as it is now, so bursts of raw
   notifications collapse into one hand-over and one path is never handled twice at once;
3. the worker waits until size and mtime stay unchanged for `stable_for` seconds, reads the
   file, and dispatches a `created`/`modified` event (or `deleted` for a known file that
   disappeared);
4. after the outcome it runs `on_success` or `on_error` (move, delete or leave).

What decides created/modified/deleted is the ledger (`iwb_files.ledger`), not the raw
notification kind: a version that is settled is never handed over again, even after a
restart; a failed move or delete quarantines that version instead of looping over it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import os
import re
import stat
import tempfile
import time
import types
from collections.abc import AsyncGenerator, Callable
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict

from iwb_files.actions import delete, move_into
from iwb_files.artifact import (
    CREATED,
    DELETED,
    MODIFIED,
    Action,
    Change,
    Delete,
    Directory,
    DirectoryConfig,
    MoveTo,
)
from iwb_files.ledger import Ledger, Version
from workbench.errors import TriggerConfigError, WorkbenchError
from workbench.events import Event, Outcome
from workbench.plugin import Artifact, Dispatch, Sample, Trigger, TriggerContext

log = logging.getLogger("iwb.files")

INJECT_PREFIX = ".iwb-inject-"
"""Temporary files of `inject()`; never handed over, whatever the pattern."""

_DEBOUNCE_MS = 50
_STEP_MS = 10
_RUST_TIMEOUT_MS = 1_000


class InjectPathError(WorkbenchError):
    """An injected file event names a path the directory listener would not hand over."""

    title = "Cannot inject this file"


class FilesTransport(BaseModel):
    """The transport fields of a file event."""

    model_config = ConfigDict(extra="allow")

    path: str
    """Path relative to the watched directory, `/`-separated."""
    directory: str = ""
    """Absolute path of the watched directory."""
    change: Change = "created"
    size: int = 0
    mtime: float = 0.0
    """Modification time, seconds since the epoch."""
    truncated: bool = False
    """The file was larger than `max_size`; the event carries no data."""


def file_version(path: Path) -> Version | None:
    """`(size, mtime_ns)` of a regular file, or None if it is missing or not a file."""
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_size, st.st_mtime_ns)


def content_type(rel: str) -> str:
    """The media type guessed from the file extension (`.json` → `application/json`)."""
    guessed, _encoding = mimetypes.guess_type(PurePosixPath(rel).name, strict=False)
    return guessed or "application/octet-stream"


class FilesTrigger(Trigger[DirectoryConfig]):
    """Serves a `Directory`: notifications in, one event per complete file version out."""

    kind: ClassVar[str] = "files"
    artifact_class: ClassVar[type[Artifact[Any]]] = Directory
    transport_model: ClassVar[type[BaseModel]] = FilesTransport

    def __init__(self, artifact: Artifact[DirectoryConfig], context: TriggerContext) -> None:
        super().__init__(artifact, context)
        path = Path(self.config.path).expanduser()
        if not path.is_absolute():
            path = context.project_root / path
        self.directory: Path = path.resolve()
        """The watched directory, absolute."""
        self.ledger = Ledger(context.cursor)
        self._skip_dirs: tuple[str, ...] = tuple(
            rel for rel in (self._inside(a) for a in self._actions()) if rel is not None
        )
        self._marks: dict[str, str] = {}
        """Relative path → `iwbinject` mark of a file written or deleted by `inject()`."""
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._group: asyncio.TaskGroup | None = None
        self._dispatch: Dispatch | None = None
        self._stop: asyncio.Event | None = None
        self._draining = False
        self._limit = asyncio.Semaphore(max(1, artifact.policy.concurrency))

    # ------------------------------------------------------------------ filters

    def _actions(self) -> list[Action]:
        return [a for a in (self.config.on_success, self.config.on_error) if a is not None]

    def _folder(self, action: MoveTo) -> Path:
        folder = Path(action.folder).expanduser()
        return (folder if folder.is_absolute() else self.directory / folder).resolve()

    def _inside(self, action: Action) -> str | None:
        """The move folder relative to the directory when it lies inside it."""
        if not isinstance(action, MoveTo):
            return None
        try:
            return self._folder(action).relative_to(self.directory).as_posix()
        except ValueError:
            return None

    def _dir_wanted(self, rel_dir: str) -> bool:
        """Whether files below the relative folder may be handed over."""
        if rel_dir in ("", "."):
            return True
        if not self.config.recursive:
            return False
        for skip in self._skip_dirs:
            if rel_dir == skip or rel_dir.startswith(skip + "/"):
                return False
        ignore = self.config.ignore
        return not any(fnmatch(part, ig) for part in rel_dir.split("/") for ig in ignore)

    def wanted(self, rel: str) -> bool:
        """Whether a file at the relative path `rel` is one this directory hands over."""
        folder, _, name = rel.rpartition("/")
        if not name or name.startswith(INJECT_PREFIX) or not self._dir_wanted(folder):
            return False
        if any(fnmatch(name, ig) for ig in self.config.ignore):
            return False
        pattern = self.config.pattern
        return fnmatch(rel, pattern) or fnmatch(name, pattern)

    def _relative(self, path: Path) -> str | None:
        try:
            rel = path.relative_to(self.directory).as_posix()
        except ValueError:
            return None
        return None if rel in ("", ".") else rel

    def _scan(self, folder: Path) -> dict[str, Version]:
        """Wanted files under `folder` (itself inside the directory): relative path →
        version."""
        found: dict[str, Version] = {}
        for root, dirs, names in os.walk(folder):
            rel_root = self._relative(Path(root)) or ""
            if not self._dir_wanted(rel_root):
                dirs.clear()
                continue
            if not self.config.recursive:
                dirs.clear()
            for name in sorted(names):
                rel = f"{rel_root}/{name}" if rel_root else name
                if self.wanted(rel):
                    version = file_version(Path(root) / name)
                    if version is not None:
                        found[rel] = version
        return found

    # ------------------------------------------------------------------ serving

    @property
    def busy(self) -> bool:
        """Whether a file is being waited on, read, handled or moved right now."""
        return bool(self._workers)

    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        """Watch the directory until cancelled; `ready()` once changes are being recorded."""
        from watchfiles import awatch  # imported here: `import iwb_files` stays light

        await asyncio.to_thread(self._prepare)
        self.context.set_address(str(self.directory))
        self._dispatch = dispatch
        self._draining = False
        self._stop = stop = asyncio.Event()
        changes = awatch(
            self.directory,
            watch_filter=None,
            debounce=_DEBOUNCE_MS,
            step=_STEP_MS,
            stop_event=stop,
            rust_timeout=_RUST_TIMEOUT_MS,
            recursive=self.config.recursive,
            force_polling=self.config.force_polling or None,
            poll_delay_ms=max(1, int(self.config.poll_interval * 1000)),
        )
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    pump = group.create_task(self._pump(changes))
                    # awatch creates the OS watch before its first await, so once the
                    # generator is suspended inside, every later change is recorded. Only
                    # then list what is already there: a file arriving in between is seen
                    # twice at worst, and the ledger makes the second sighting a no-op.
                    # No event marks that moment; yielding to the loop until the pump
                    # task is suspended inside the generator is the only signal there is.
                    gen = cast(types.AsyncGeneratorType[Any, None], changes)
                    while not gen.ag_running and not pump.done():  # noqa: ASYNC110
                        await asyncio.sleep(0)
                    if pump.done():
                        pump.result()
                    await self._initial_scan()
                    ready()
                    await pump
                finally:
                    # set before the group cancels the pump: the watcher thread only
                    # notices the stop event, not the cancellation
                    stop.set()
        except BaseExceptionGroup as group_error:
            # one listener failure, shown as itself rather than as "1 sub-exception"
            first = group_error.exceptions[0]
            raise first from group_error
        finally:
            self._group = None
            self._dispatch = None
            self._stop = None
            self._workers.clear()
            self._dirty.clear()

    async def drain(self) -> None:
        """Stop taking new files: the watcher stops, files not yet handed over stay for the
        next start, and `serve()` returns once the files being handled are settled."""
        self._draining = True
        if self._stop is not None:
            self._stop.set()

    def _prepare(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TriggerConfigError(
                f"Artifact {self.name!r} cannot watch {str(self.directory)!r}: the directory "
                f"is missing and could not be created ({exc}). Fix the path or its parent.",
                title="Cannot watch directory",
            ) from exc
        for action in self._actions():
            if isinstance(action, MoveTo):
                folder = self._folder(action)
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    log.warning(
                        "files %r: cannot create the move folder %s (%s); moves into it "
                        "will fail and those files be quarantined until it is fixed",
                        self.name, folder, exc,
                    )

    async def _pump(self, changes: AsyncGenerator[set[tuple[Any, str]], None]) -> None:
        async for batch in changes:
            for _change, raw in batch:
                self._noticed(Path(raw))

    async def _initial_scan(self) -> None:
        present = await asyncio.to_thread(self._scan, self.directory)
        if self.config.process_existing:
            for rel, version in present.items():
                if not self.ledger.settled(rel, version):
                    self._notice(rel)
            for rel in sorted(self.ledger.all() - present.keys()):
                self._notice(rel)  # gone while the listener was down: a deletion
            return
        for rel, version in present.items():
            self.ledger.keep(rel, version)
        for rel in self.ledger.all() - present.keys():
            self.ledger.forget(rel)
        self.ledger.save()

    def _noticed(self, path: Path) -> None:
        rel = self._relative(path)
        if rel is None:
            return
        if path.is_dir():
            # a folder created or moved in: its files may never get events of their own
            if self._dir_wanted(rel):
                for found in self._scan(path):
                    self._notice(found)
            return
        if not path.exists():
            for known in self.ledger.under(rel):
                self._notice(known)  # a folder that went away takes its files with it
        if self.wanted(rel):
            self._notice(rel)

    def _notice(self, rel: str) -> None:
        if rel in self._workers:
            self._dirty.add(rel)  # the running worker looks again when it is done
            return
        if self._group is None:
            return
        self._workers[rel] = self._group.create_task(self._work(rel))

    async def _work(self, rel: str) -> None:
        try:
            while True:
                self._dirty.discard(rel)
                await self._settle(rel)
                if rel not in self._dirty:
                    return
        finally:
            self._workers.pop(rel, None)

    async def _settle(self, rel: str) -> None:
        """Bring the ledger up to date with the file at `rel`, handing it over if needed."""
        path = self.directory / rel
        while not self._draining:
            version = file_version(path)
            if version is None:
                if self.ledger.known(rel):
                    await self._deleted(rel)
                return
            if self.ledger.settled(rel, version):
                return
            change: Change = MODIFIED if self.ledger.known(rel) else CREATED
            stable = await self._wait_stable(path, version)
            if stable is None:
                continue  # gone or replaced by a folder while we waited: look again
            if self.ledger.settled(rel, stable):
                return
            await self._hand_over(rel, path, change, stable)
            return

    async def _wait_stable(self, path: Path, version: Version) -> Version | None:
        """The version once it stayed unchanged for `stable_for` s; None if it vanished."""
        stable_for = self.config.stable_for
        if stable_for <= 0:
            return version
        step = min(self.config.poll_interval, stable_for)
        loop = asyncio.get_running_loop()
        since = loop.time()
        while True:
            await asyncio.sleep(step)
            current = file_version(path)
            if current is None:
                return None
            now = loop.time()
            if current != version:
                version, since = current, now
            elif now - since >= stable_for:
                return version

    def _read(self, path: Path) -> tuple[bytes, bool, Version]:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            version = (st.st_size, st.st_mtime_ns)
            if st.st_size > self.config.max_size:
                return b"", True, version
            return fh.read(), False, version

    async def _hand_over(self, rel: str, path: Path, change: Change, version: Version) -> None:
        dispatch = self._dispatch
        if dispatch is None:
            return
        if change not in self.artifact.handlers:
            self.ledger.keep(rel, version)  # nothing handles this change; settle it
            self.ledger.save()
            return
        async with self._limit:
            if self._draining:
                return  # not handed over: the next start finds it unsettled
            try:
                data, truncated, version = await asyncio.to_thread(self._read, path)
            except FileNotFoundError:
                return  # gone before it could be read; its deletion event follows
            except OSError as exc:
                event = self.build_event(rel, change, version)
                dispatch.reject(event, "FileUnreadable", f"could not read {rel!r}: {exc}")
                self._quarantine(rel, version, f"it could not be read ({exc})")
                return
            event = self.build_event(rel, change, version, data, truncated=truncated)
            outcome = await dispatch(event)
            # shielded: once the handler has run, a stop must not leave the move half-done
            # or the ledger unsaved
            await asyncio.shield(self._after(rel, path, version, outcome))

    async def _after(self, rel: str, path: Path, version: Version, outcome: Outcome) -> None:
        action = self.config.on_success if outcome.ok else self.config.on_error
        if action is None:
            self.ledger.keep(rel, version)
            self.ledger.save()
            return
        current = file_version(path)
        if current is not None and current != version:
            # rewritten while it was being handled: keep the new content for the next
            # hand-over (a modification) instead of moving it away unseen
            self.ledger.keep(rel, version)
            self.ledger.save()
            return
        try:
            if isinstance(action, Delete):
                await asyncio.to_thread(delete, path)
            else:
                await asyncio.to_thread(move_into, path, self._folder(action), rel)
        except OSError as exc:
            what = "delete" if isinstance(action, Delete) else f"move it to {action.folder!r}"
            self._quarantine(rel, version, f"could not {what} ({exc})")
            return
        self.ledger.forget(rel)
        self.ledger.save()

    def _quarantine(self, rel: str, version: Version, why: str) -> None:
        log.warning(
            "files %r: %s %s; its outcome is captured, and this version of the file is "
            "quarantined: it will not be handed over again until it changes",
            self.name, rel, why,
        )
        self.ledger.quarantined(rel, version)
        self.ledger.save()

    async def _deleted(self, rel: str) -> None:
        version = self.ledger.seen.get(rel) or self.ledger.quarantine.get(rel) or (0, 0)
        self.ledger.forget(rel)
        self.ledger.save()
        dispatch = self._dispatch
        if dispatch is None or DELETED not in self.artifact.handlers:
            return
        async with self._limit:
            await dispatch(self.build_event(rel, DELETED, version))

    # ------------------------------------------------------------------ events

    def build_event(
        self,
        rel: str,
        change: Change,
        version: Version,
        data: bytes = b"",
        *,
        truncated: bool = False,
        claim_mark: bool = True,
    ) -> Event:
        """The event for one file version; with `claim_mark`, it takes the `iwbinject`
        mark left by an injection of that path."""
        size, mtime_ns = version
        event = Event(
            artifact=self.name,
            kind=self.kind,
            type=f"iwb.files.{change}",
            source=str(self.directory),
            subject=rel,
            data=data,
            datacontenttype=None if change == DELETED else content_type(rel),
            handler=change,
            transport={
                "path": rel,
                "directory": str(self.directory),
                "change": change,
                "size": size,
                "mtime": mtime_ns / 1e9,
                "truncated": truncated,
            },
        )
        mark = self._marks.pop(rel, None) if claim_mark else None
        if mark is not None:
            event.extensions["iwbinject"] = mark
        return event

    # ------------------------------------------------------------------ inject

    def _inject_path(self, event: Event) -> str:
        raw = event.transport.get("path") or event.subject
        if not raw:
            suffix = PurePosixPath(self._sample_name()).suffix
            raw = f"injected-{event.id[:8]}{suffix}"
        rel = PurePosixPath(str(raw).replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise InjectPathError(
                f"Injected file path {str(raw)!r} must be relative to {str(self.directory)!r} "
                "and stay inside it (no '..', no leading '/')."
            )
        text = rel.as_posix()
        if not self.wanted(text):
            skipped = ", ".join(self._skip_dirs) or "(none)"
            raise InjectPathError(
                f"Artifact {self.name!r} would not hand over {text!r}: it matches "
                f"pattern={self.config.pattern!r}, recursive={self.config.recursive}, "
                f"ignore={list(self.config.ignore)!r} and move folders {skipped} this way. "
                "Choose a path the directory watches."
            )
        return text

    async def inject(self, event: Event) -> None:
        """Write (or, for `deleted`, delete) the file in the directory, as a producer would.

        The content goes to a temporary name the listener ignores and is renamed into
        place, so the listener never sees a half-written file.

        Raises:
            InjectPathError: the path is outside the directory or not watched.
            FileNotFoundError: a `deleted` event names a file that does not exist.
        """
        rel = self._inject_path(event)
        raw_change = event.transport.get("change") or event.handler or CREATED
        deleting = raw_change == DELETED or event.type.endswith(".deleted")
        mark = str(event.extensions.get("iwbinject") or event.id)
        target = self.directory / rel
        self._marks[rel] = mark
        try:
            if deleting:
                await asyncio.to_thread(os.unlink, target)
            else:
                await asyncio.to_thread(self._write, target, event.data)
        except BaseException:
            self._marks.pop(rel, None)
            raise

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o644
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(prefix=INJECT_PREFIX, suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def correlates(self, injected: Event, received: Event) -> bool:
        same_path = received.transport.get("path") == self._inject_path(injected)
        return same_path and (received.handler == DELETED or received.data == injected.data)

    # ------------------------------------------------------------------ console

    def _sample_name(self) -> str:
        pattern = self.config.pattern
        name = pattern.replace("**/", "").replace("*", "sample").replace("?", "x")
        name = re.sub(r"\[!?([^\]])[^\]]*\]", r"\1", name)
        for candidate in (name, PurePosixPath(name).name, f"sample{PurePosixPath(name).suffix}"):
            if candidate and self.wanted(candidate):
                return candidate
        return "sample.txt"

    def samples(self) -> list[Sample]:
        """`created`: a small file named to match the pattern, with matching content."""
        rel = self._sample_name()
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix == ".csv":
            data = b"id,name,quantity\n1,Widget,3\n2,Gadget,5\n"
        elif suffix == ".json":
            data = json.dumps({"id": 1, "name": "Widget", "quantity": 3}, indent=2).encode()
        elif suffix in (".jsonl", ".ndjson"):
            data = b'{"id": 1, "name": "Widget"}\n{"id": 2, "name": "Gadget"}\n'
        else:
            data = b"Hello from iwb.\n"
        event = self.build_event(
            rel, CREATED, (len(data), time.time_ns()), data, claim_mark=False
        )
        return [Sample("created", f"A new file {rel!r} dropped into the directory.", event)]
