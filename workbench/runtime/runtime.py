"""The `Runtime`: one project's artifacts, listeners, dispatch, capture, reload and replay.

The TUI and `iwb run` drive the same object; neither reaches into a plugin. Lifecycle:

    rt = Runtime(Path("project"), profile="dev", reload=True)
    await rt.start()              # load (all errors at once), open capture + connections, listen
    await rt.wait_ready()
    ...                           # rt.inject(), rt.replay(), rt.reload(), rt.bus.subscribe()
    await rt.stop()               # drain in-flight work, stop listeners, flush capture

Each artifact's listener runs in its own asyncio task and fails alone: a `serve()` that
raises marks the artifact `disconnected-retrying` and is started again with exponential
backoff, while every other artifact keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.config import Declared, set_open_connections, set_project_root
from workbench.errors import (
    ArtifactNotFoundError,
    ProjectError,
    ProjectLoadError,
    TriggerConfigError,
    WorkbenchError,
)
from workbench.events import ErrorInfo, Event, Outcome, new_id
from workbench.mapper import set_current as set_current_mappings
from workbench.plugin import (
    Artifact,
    ConnectionKind,
    Cursor,
    Sample,
    Trigger,
    TriggerContext,
    installed_plugins,
    load_plugin,
    sandbox,
)
from workbench.project.config import ConfigResolver
from workbench.project.connections import (
    ConnectionSpec,
    build_connections,
    load_connection_specs,
    spec_fingerprint,
)
from workbench.project.loader import LoadedModule, LoadResult, ProjectLoader, plugin_settings
from workbench.project.settings import ProjectSettings, load_settings
from workbench.runtime.bus import ArtifactChanged, Bus, EventHandled, ReloadFinished, RuntimeLog
from workbench.runtime.capture import CaptureSettings, CaptureStore
from workbench.runtime.deadlines import Deadlines
from workbench.runtime.dispatch import ArtifactDispatch, ArtifactState, Status
from workbench.runtime.metrics import Metrics
from workbench.runtime.reload import ReloadReport, is_mapping_file, is_watched, watch_project
from workbench.runtime.replay import ReplayResult, diff_outcomes
from workbench.samples import NO_PAYLOAD, payload_annotation

if TYPE_CHECKING:
    from workbench.mapper.registry import MappingRegistry

log = logging.getLogger("iwb.runtime")

Via = Literal["direct", "transport"]

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class Runtime:
    """Runs one project.

    Args:
        root: the project directory.
        profile: overlay `Config.<profile>.toml` on `Config.toml`.
        reload: watch the project and hot-reload changed modules.
        settings: settings for plugins by kind (e.g. `{"http": {"server": "hypercorn"}}`),
            over iwb.toml's `[plugins.<kind>]` tables.
        env: environment for configurable overrides (default `os.environ`).
        capture: record events in `.iwb/captures.db` (default from iwb.toml).
        plugins: trigger classes by kind, in addition to the installed entry points (for
            embedding the runtime and for tests).
    """

    def __init__(
        self,
        root: Path,
        *,
        profile: str | None = None,
        reload: bool = False,
        settings: Mapping[str, Mapping[str, Any]] | None = None,
        env: Mapping[str, str] | None = None,
        capture: bool | None = None,
        plugins: Mapping[str, type[Trigger[Any]]] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.profile = profile
        self.reload_enabled = reload
        self.env: Mapping[str, str] = env if env is not None else os.environ
        self.bus = Bus()
        self.metrics = Metrics()
        self.artifacts: dict[str, ArtifactState] = {}
        self.connections: dict[str, ConnectionKind[Any]] = {}
        self.connection_specs: dict[str, ConnectionSpec] = {}
        self.load_errors: list[WorkbenchError] = []
        self.mappings: MappingRegistry | None = None
        """The project's data mappings (mappings/*.toml), loaded after its modules."""
        self.last_reload: ReloadReport | None = None
        self.inflight = 0
        """Events being handled right now (stop() waits for them to finish)."""
        self._idle = asyncio.Event()
        self._settings_override = {k: dict(v) for k, v in (settings or {}).items()}
        self._capture_flag = capture
        self.project_settings: ProjectSettings | None = None
        self.loader: ProjectLoader | None = None
        self.resolver: ConfigResolver | None = None
        self.capture: CaptureStore | None = None
        self._plugins: dict[str, type[Trigger[Any]]] = dict(plugins or {})
        self._waiters: dict[str, list[tuple[str, Event, asyncio.Future[Outcome]]]] = {}
        self.deadlines = Deadlines()
        """Handler timeouts of every artifact (see `workbench.runtime.deadlines`)."""
        self._sandboxed: set[str] = set()
        """Inject marks of events sent through a transport in sandbox mode."""
        self._reload_lock = asyncio.Lock()
        self._watch_stop: asyncio.Event | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self._listen = True
        self._only: set[str] | None = None

    # ================================================================== loading

    @property
    def settings(self) -> ProjectSettings:
        if self.project_settings is None:
            raise RuntimeError("the runtime has not loaded its project yet")
        return self.project_settings

    def load(self) -> list[WorkbenchError]:
        """Load the project: settings, Config.toml, connections.toml, every module, every
        artifact's plugin. Returns every problem found (also kept in `load_errors`)."""
        errors: list[WorkbenchError] = []
        if not self.root.is_dir():
            raise ProjectLoadError(
                [ProjectError(f"Project directory {str(self.root)!r} does not exist.")]
            )
        try:
            self.project_settings = load_settings(self.root)
        except WorkbenchError as exc:
            raise ProjectLoadError([exc]) from None
        set_project_root(self.root)
        resolver = ConfigResolver(self.root, self.profile, self.env)
        specs, spec_errors = load_connection_specs(self.root, resolver)
        errors.extend(spec_errors)
        resolver.connection_names = set(specs)
        self.loader = ProjectLoader(self.root, self.project_settings)
        result = self.loader.load(resolver, kinds=self.kinds())
        errors.extend(resolver_errors_not_in(result, resolver))
        errors.extend(result.errors)
        errors.extend(self.loader.duplicate_names())
        self.resolver = resolver
        self.connection_specs = specs
        conns, conn_errors = build_connections(
            specs, self._connection_kinds() if specs else {}
        )
        errors.extend(conn_errors)
        self.connections = conns
        for name, (art, loaded) in self.loader.artifacts().items():
            try:
                state = self._new_state(name, art, loaded)
            except WorkbenchError as exc:
                errors.append(exc)
                continue
            self.artifacts[name] = state
        errors.extend(self._load_mappings(resolver))
        self.load_errors = errors
        return errors

    def _load_mappings(self, resolver: ConfigResolver) -> list[WorkbenchError]:
        """(Re)load mappings/*.toml against the modules in service; a mapping that fails
        keeps its last good compiled version serving."""
        folder = self.settings.folder("mappings")
        if self.mappings is None:
            if not any(folder.glob("*.toml")):
                set_current_mappings(None)
                return []  # no mappings: the compiler is not even imported
            from workbench.mapper.registry import MappingRegistry

            self.mappings = MappingRegistry(folder, self.root)
        set_current_mappings(self.mappings)
        return list(self.mappings.load(resolver))

    def _connection_kinds(self) -> dict[str, type[ConnectionKind[Any]]]:
        """Connection kinds of every installed plugin. A plugin that fails to import is
        logged and skipped: it only matters to a project that uses it, and that project
        gets the error on its artifact."""
        kinds: dict[str, type[ConnectionKind[Any]]] = {}
        for kind in self.kinds():
            try:
                plugin = self._plugin(kind)
            except Exception as exc:
                log.warning("plugin %r failed to load: %s", kind, exc)
                continue
            for conn_kind in plugin.connection_kinds:
                kinds[conn_kind.kind] = conn_kind
        return kinds

    def kinds(self) -> list[str]:
        """Every artifact kind this runtime can run."""
        return sorted(set(installed_plugins()) | set(self._plugins))

    def _plugin(self, kind: str) -> type[Trigger[Any]]:
        if kind not in self._plugins:
            self._plugins[kind] = load_plugin(kind)
        return self._plugins[kind]

    def _fingerprint(self, art: Artifact[Any]) -> str:
        extra = {
            name: spec_fingerprint(self.connection_specs[name])
            for name in art.connection_names()
            if name in self.connection_specs
        }
        return art.fingerprint(extra)

    def _new_state(self, name: str, art: Artifact[Any], loaded: LoadedModule) -> ArtifactState:
        plugin = self._plugin(art.kind)
        for conn in art.connection_names():
            if conn not in self.connection_specs:
                known = ", ".join(sorted(self.connection_specs)) or "(none)"
                file, line = art.declared_at
                raise TriggerConfigError(
                    f"{_rel(self.root, file)}:{line}: artifact {name!r} uses connection "
                    f"{conn!r}, which connections.toml does not define. Defined: {known}.",
                    title="Unknown connection",
                )
        state = ArtifactState(
            name=name, kind=art.kind, artifact=art, module=loaded.name,
            code_version=loaded.code_version, trigger_cls=plugin,
            fingerprint=self._fingerprint(art),
            semaphore=asyncio.Semaphore(art.policy.concurrency),
        )
        state.dispatch = ArtifactDispatch(self, state)
        return state

    # ================================================================== lifecycle

    async def start(
        self,
        *,
        only: Iterable[str] | None = None,
        listen: bool = True,
        strict: bool = True,
    ) -> None:
        """Load the project and start it.

        Args:
            only: start only these artifacts' listeners (all by default).
            listen: start listeners at all (False: offline inject/replay).
            strict: refuse to start when the project has any error (`iwb run`); when
                False, start what loaded and keep the errors in `load_errors` (the TUI).
        """
        errors = self.load()
        if errors and strict:
            raise ProjectLoadError(errors)
        for err in errors:
            self._attach_import_error(err)
        await self._open_capture()
        await self._open_connections()
        self._started = True
        self._listen = listen
        self._only = None if only is None else set(only)
        if listen:
            names = list(self.artifacts) if only is None else list(only)
            for name in names:
                self._start_listener(self._state(name))
        if self.reload_enabled:
            self._watch_stop = asyncio.Event()
            self._watch_task = asyncio.create_task(
                watch_project(self, self._watch_stop), name="iwb-watch"
            )
        self._log("info", "runtime started", project=str(self.root), artifacts=len(self.artifacts))

    async def _open_capture(self) -> None:
        cap = self.settings.capture
        enabled = cap.enabled if self._capture_flag is None else self._capture_flag
        self.capture = CaptureStore(
            CaptureSettings(
                path=self.settings.state_dir / "captures.db",
                max_bytes=int(cap.max_mb * 1024 * 1024),
                max_age_seconds=cap.max_age_days * 86400.0,
                extra_redact_headers=list(cap.redact_headers),
                extra_redact_fields=list(cap.redact_fields),
                enabled=enabled,
            )
        )
        await self.capture.open()

    async def _open_connections(self) -> None:
        for name, conn in self.connections.items():
            try:
                await conn.start()
            except Exception as exc:
                self._log("error", f"connection {name!r} failed to open: {exc}", connection=name)
        set_open_connections(self.connections)

    async def stop(self, drain_seconds: float | None = None) -> None:
        """Drain in-flight work (up to `drain_seconds`), stop listeners, flush capture."""
        if self._stopping:
            return
        self._stopping = True
        deadline = drain_seconds
        if deadline is None:
            deadline = self.project_settings.runtime.drain_seconds if self.project_settings else 10
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self._watch_task is not None:
            await _finish_task(self._watch_task, 2.0)
        states = [s for s in self.artifacts.values() if s.trigger is not None]
        await asyncio.gather(*(self._drain(s) for s in states), return_exceptions=True)
        if self.inflight > 0:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), deadline)
        if self.inflight:
            self._log("warning", f"stopping with {self.inflight} event(s) still in flight")
        await asyncio.gather(
            *(self._stop_listener(s) for s in self.artifacts.values()), return_exceptions=True
        )
        for conn in self.connections.values():
            try:
                await conn.close()
            except Exception as exc:
                log.warning("closing connection %s failed: %s", conn.name, exc)
        set_open_connections({})
        if self.capture is not None:
            await self.capture.close()
        self._started = False
        self._log("info", "runtime stopped")

    async def _drain(self, state: ArtifactState) -> None:
        if state.trigger is not None:
            try:
                await state.trigger.drain()
            except Exception as exc:
                log.warning("draining %s failed: %s", state.name, exc)

    @property
    def ready(self) -> bool:
        """Every started artifact is listening (and at least the project loaded)."""
        started = [s for s in self.artifacts.values() if s.task is not None]
        return self._started and all(s.status == Status.LISTENING for s in started)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until every started listener is listening; raises TimeoutError naming the
        artifacts that are not."""
        ends = time.monotonic() + timeout
        for state in list(self.artifacts.values()):
            if state.task is None:
                continue
            remaining = ends - time.monotonic()
            try:
                await asyncio.wait_for(state.listening.wait(), max(remaining, 0.001))
            except TimeoutError:
                waiting = [
                    f"{s.name} ({s.status}{': ' + s.error if s.error else ''})"
                    for s in self.artifacts.values()
                    if s.task is not None and s.status != Status.LISTENING
                ]
                raise TimeoutError(
                    f"not listening after {timeout:g} s: {', '.join(waiting)}"
                ) from None

    # ------------------------------------------------------------------ listeners

    def _context(self, state: ArtifactState) -> TriggerContext:
        state_dir = self.settings.state_dir / "state"

        def set_address(address: str) -> None:
            state.address = address
            self._publish_status(state)

        def set_status(status: str) -> None:
            self._set_status(state, status)

        settings = dict(plugin_settings(self.settings, state.kind))
        settings.update(self._settings_override.get(state.kind, {}))
        return TriggerContext(
            name=state.name,
            project_root=self.root,
            state_dir=state_dir,
            cursor=Cursor(state_dir / f"{state.name}.json"),
            connections=self.connections,
            set_address=set_address,
            set_status=set_status,
            settings=settings,
        )

    def _wants_listener(self, name: str) -> bool:
        """Whether this runtime runs `name`'s listener (not for offline commands)."""
        return self._started and self._listen and (self._only is None or name in self._only)

    def _start_listener(self, state: ArtifactState) -> None:
        if not state.artifact.enabled:
            self._set_status(state, Status.DISABLED)
            return
        if state.task is not None and not state.task.done():
            return
        state.listening.clear()
        state.task = asyncio.create_task(self._supervise(state), name=f"iwb-listener-{state.name}")

    async def _supervise(self, state: ArtifactState) -> None:
        backoff = BACKOFF_START
        while True:
            self._set_status(state, Status.STARTING)
            started = time.monotonic()
            try:
                trigger = state.trigger_cls(state.artifact, self._context(state))
                state.trigger = trigger
                assert state.dispatch is not None
                await trigger.serve(state.dispatch, ready=lambda: self._mark_listening(state))
            except asyncio.CancelledError:
                self._set_status(state, Status.STOPPED)
                self.metrics.up.labels(state.name).set(0)
                raise
            except Exception as exc:
                state.listening.clear()
                error = f"{type(exc).__name__}: {exc}"
                # the same failure again (a broker still down) is worth a line, not an alarm
                repeated = error == state.error
                state.error_info = ErrorInfo.from_exception(exc)
                state.error = error
                self.metrics.up.labels(state.name).set(0)
                if time.monotonic() - started > BACKOFF_MAX:
                    backoff = BACKOFF_START  # it ran for a while: start the backoff over
                self._set_status(state, Status.RETRYING)
                self._log(
                    "info" if repeated else "error",
                    f"listener {state.name!r} failed: {state.error}; retrying in {backoff:g} s",
                    artifact=state.name,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                state.restarts += 1
                continue
            self._set_status(state, Status.STOPPED)
            self.metrics.up.labels(state.name).set(0)
            return

    def _mark_listening(self, state: ArtifactState) -> None:
        state.error = None
        state.error_info = None
        self._set_status(state, Status.LISTENING)
        self.metrics.up.labels(state.name).set(1)
        state.listening.set()

    async def _stop_listener(self, state: ArtifactState) -> None:
        task, state.task = state.task, None
        if task is not None:
            await _finish_task(task, 5.0)
        state.trigger = None
        state.listening.clear()
        if state.status != Status.LOADED:
            self._set_status(state, Status.STOPPED)

    def _set_status(self, state: ArtifactState, status: str) -> None:
        if state.status != status:
            state.status = status
            self._publish_status(state)

    def _publish_status(self, state: ArtifactState) -> None:
        self.bus.publish(
            ArtifactChanged(
                state.name, state.status, state.address,
                state.import_error.message if state.import_error else state.error,
            )
        )

    def _state(self, name: str) -> ArtifactState:
        try:
            return self.artifacts[name]
        except KeyError:
            known = ", ".join(sorted(self.artifacts)) or "(none)"
            raise ArtifactNotFoundError(
                f"The project has no artifact {name!r}. Artifacts: {known}."
            ) from None

    async def start_artifact(self, name: str) -> None:
        self._start_listener(self._state(name))

    async def stop_artifact(self, name: str) -> None:
        state = self._state(name)
        await self._drain(state)
        await self._stop_listener(state)

    async def restart_artifact(self, name: str) -> None:
        state = self._state(name)
        await self._stop_listener(state)
        self._start_listener(state)

    # ================================================================== events

    def sandboxed_event(self, event: Event) -> bool:
        """Whether `event` arrived from a sandboxed inject through a transport (its handler
        then runs in sandbox mode, wherever the transport delivered it)."""
        return bool(self._sandboxed) and event.extensions.get("iwbinject") in self._sandboxed

    def idle(self) -> None:
        """Called by dispatch when the last in-flight event finished."""
        self._idle.set()

    def finish(self, state: ArtifactState, event: Event, outcome: Outcome) -> None:
        """Account for a handled event: counters, metrics, capture, bus, inject waiters."""
        state.events += 1
        state.last_event_at = time.time()
        error_type = None
        if outcome.status != "ok":
            state.errors += 1
            error_type = outcome.error.type if outcome.error else "Unknown"
        self.metrics.record_event(
            state.name, state.kind, outcome.status, error_type, outcome.duration_ms / 1000.0
        )
        if self.capture is not None:
            self.capture.append(event, outcome)
        self.bus.publish(EventHandled(event, outcome))
        if self._waiters:
            self._match_injection(state, event, outcome)

    def _match_injection(self, state: ArtifactState, event: Event, outcome: Outcome) -> None:
        waiters = self._waiters.get(state.name)
        if not waiters:
            return
        mark = event.extensions.get("iwbinject")
        for entry in list(waiters):
            token, injected, fut = entry
            hit = mark == token if mark is not None else (
                state.trigger is not None and state.trigger.correlates(injected, event)
            )
            if hit:
                waiters.remove(entry)
                if not fut.done():
                    fut.set_result(outcome)
                return

    def samples(self, name: str) -> list[Sample]:
        """The plugin's sample events for an artifact (for `--sample` and the console)."""
        state = self._state(name)
        trigger = state.trigger or state.trigger_cls(state.artifact, self._context(state))
        samples = trigger.samples()
        for sample in samples:
            sample.event.artifact = name
            sample.event.kind = state.kind
        return samples

    def trigger_schema(self, name: str) -> dict[str, Any]:
        """JSON schema of the artifact kind's transport fields (`Event.transport`)."""
        return self._state(name).trigger_cls.transport_schema()

    def payload_type(self, name: str, handler: str = "") -> Any:
        """The type a handler parses its payload into (a pydantic model, `dict`, ...), or
        None when it takes no payload — for validating events before they are sent."""
        state = self._state(name)
        spec = state.handler_for(handler)
        if spec is None:
            return None
        annotation = payload_annotation(spec, state.trigger_cls)
        return None if annotation is NO_PAYLOAD else annotation

    async def inject(
        self, name: str, event: Event, via: Via = "direct", *, timeout: float = 30.0,
        sandboxed: bool = False,
    ) -> Outcome:
        """Hand `event` to the artifact: `direct` calls dispatch in-process; `transport`
        sends it through the plugin's real transport and waits for the resulting outcome."""
        state = self._state(name)
        event.artifact = name
        event.kind = state.kind
        if via == "direct":
            assert state.dispatch is not None
            with sandbox(sandboxed):
                return await state.dispatch(event)
        if not state.artifact.enabled:
            raise WorkbenchError(
                f"Artifact {name!r} is disabled (enabled=False), so its transport does not "
                "listen; send the event with --via direct, or enable the artifact.",
                title="Artifact disabled",
            )
        if state.trigger is None or state.status != Status.LISTENING:
            if state.task is None:
                self._start_listener(state)
            await asyncio.wait_for(state.listening.wait(), timeout)
        assert state.trigger is not None
        token = new_id()
        event.extensions["iwbinject"] = token
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(name, [])
        entry = (token, event, fut)
        waiters.append(entry)
        if sandboxed:
            self._sandboxed.add(token)
        try:
            with sandbox(sandboxed):
                await state.trigger.inject(event)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{name!r}: the event was sent through the {state.kind} transport, but no "
                f"outcome arrived within {timeout:g} s."
            ) from None
        finally:
            self._sandboxed.discard(token)
            if entry in waiters:
                waiters.remove(entry)
            if not waiters and self._waiters.get(name) is waiters:
                del self._waiters[name]

    async def replay(
        self,
        ids: Iterable[str] = (),
        *,
        last: int | None = None,
        artifact: str | None = None,
        via: Via = "direct",
        sandboxed: bool = False,
    ) -> list[ReplayResult]:
        """Replay captured events to the current handlers and diff the outcomes."""
        if self.capture is None:
            raise RuntimeError("the runtime is not started")
        await self.capture.flush()
        records = [self.capture.get(i) for i in ids]
        if last is not None:
            records.extend(self.capture.last(last, artifact=artifact))
        results: list[ReplayResult] = []
        for record in records:
            original = record.event
            event = original.copy(extensions={**original.extensions, "replayof": record.id})
            event.extensions.pop("iwbinject", None)
            new = await self.inject(record.artifact, event, via, sandboxed=sandboxed)
            changed, diff = diff_outcomes(record.outcome, new)
            results.append(
                ReplayResult(
                    capture_id=record.id, artifact=record.artifact, via=via,
                    recorded=record.outcome, new=new, new_event_id=event.id,
                    changed=changed, diff=diff,
                )
            )
        return results

    async def replay_log(
        self, name: str, position: str, count: int, *, sandboxed: bool = False
    ) -> list[ReplayResult]:
        """Read up to `count` messages again from the transport's own log (Kafka: a
        partition from an offset; see `Trigger.reread`), hand them to the current handler
        in order, and diff each outcome against the latest earlier capture of the same
        message (`recorded` is None when it was never captured)."""
        if self.capture is None:
            raise RuntimeError("the runtime is not started")
        state = self._state(name)
        trigger = state.trigger or state.trigger_cls(state.artifact, self._context(state))
        events = await trigger.reread(position, count)
        await self.capture.flush()
        earlier = []
        for event in events:
            match = trigger.log_match(event)
            earlier.append(None if match is None else self.capture.find_message(name, match))
        assert state.dispatch is not None
        results: list[ReplayResult] = []
        for event, record in zip(events, earlier, strict=True):
            event.artifact, event.kind = name, state.kind
            if record is not None:
                event.extensions["replayof"] = record.id
            with sandbox(sandboxed):
                new = await state.dispatch(event)
            changed, diff = ([], "") if record is None else diff_outcomes(record.outcome, new)
            results.append(
                ReplayResult(
                    capture_id="" if record is None else record.id, artifact=name,
                    via="log", recorded=None if record is None else record.outcome, new=new,
                    new_event_id=event.id, changed=changed, diff=diff,
                )
            )
        return results

    # ================================================================== reload

    async def reload(self, paths: Iterable[Path] | None = None) -> ReloadReport:
        """Re-import what changed and apply it: swap handlers in place where the listener
        configuration is unchanged, restart only the listeners whose configuration changed,
        keep the last good code where a module fails."""
        async with self._reload_lock:
            started = time.perf_counter()
            report = ReloadReport(paths=sorted(str(p) for p in paths or ()))
            try:
                await self._reload(paths, report)
            except WorkbenchError as exc:
                report.errors.append(exc)
            report.duration_ms = (time.perf_counter() - started) * 1000.0
            self.last_reload = report
            self.metrics.reload_duration.observe(report.duration_ms / 1000.0)
            for name in report.swapped:
                self.metrics.reloads.labels(name, "swapped").inc()
            for name in report.restarted:
                self.metrics.reloads.labels(name, "restarted").inc()
            for err in report.errors:
                self.metrics.reloads.labels(getattr(err, "module", "") or "", "failed").inc()
            self._log(
                "error" if report.errors else "info", report.summary(),
                duration_ms=round(report.duration_ms, 2), swapped=report.swapped,
                restarted=report.restarted, added=report.added, removed=report.removed,
            )
            self.bus.publish(ReloadFinished(report))
            return report

    async def _reload(self, paths: Iterable[Path] | None, report: ReloadReport) -> None:
        assert self.loader is not None
        changed = [Path(p).resolve() for p in paths] if paths is not None else None
        mapping_files = [p for p in changed or () if is_mapping_file(self, p)]
        if changed is not None and mapping_files:
            changed = [p for p in changed if p not in mapping_files]  # not modules
        full = changed is None or any(
            p.suffix == ".toml" or self.loader.folder_of(p) != "artifacts" for p in changed
        )
        resolver = ConfigResolver(self.root, self.profile, self.env)
        specs, spec_errors = load_connection_specs(self.root, resolver)
        report.errors.extend(spec_errors)
        resolver.connection_names = set(specs)
        if full:
            result = self.loader.load(resolver, kinds=self.kinds())
        else:
            assert changed is not None
            targets = [("artifacts", p) for p in changed if p.exists()]
            result = self.loader.load(resolver, targets, fresh_all=False, kinds=self.kinds())
            # a deleted artifact module drops out of loader.modules inside load()
        report.errors.extend(resolver_errors_not_in(result, resolver))
        report.errors.extend(result.errors)
        report.modules = sorted(result.modules)
        if full or mapping_files:
            report.errors.extend(self._load_mappings(resolver))
            report.mappings = list(self.mappings.recompiled) if self.mappings else []
        self.resolver = resolver
        if not spec_errors:
            await self._apply_connections(specs, report)
        new = self.loader.artifacts()
        for name, (art, loaded) in new.items():
            state = self.artifacts.get(name)
            if state is None:
                try:
                    state = self._new_state(name, art, loaded)
                except WorkbenchError as exc:
                    report.errors.append(exc)
                    continue
                self.artifacts[name] = state
                report.added.append(name)
                if self._wants_listener(name) or (self._started and self._only is not None):
                    self._start_listener(state)
                continue
            state.import_error = None
            if state.artifact is art:
                continue
            fingerprint = self._fingerprint(art)
            if fingerprint == state.fingerprint or state.task is None:
                state.artifact = art
                state.code_version = loaded.code_version
                state.module = loaded.name
                state.fingerprint = fingerprint
                if state.trigger is not None:
                    state.trigger.artifact = art
                report.swapped.append(name)
                if state.task is None and self._wants_listener(name):
                    self._start_listener(state)  # e.g. switched from enabled=False
            else:
                self._set_status(state, Status.RELOADING)
                await self._stop_listener(state)
                try:
                    plugin = self._plugin(art.kind)
                except WorkbenchError as exc:
                    report.errors.append(exc)
                    continue
                state.artifact, state.trigger_cls = art, plugin
                state.kind = art.kind
                state.code_version, state.module = loaded.code_version, loaded.name
                state.fingerprint = fingerprint
                state.semaphore = asyncio.Semaphore(art.policy.concurrency)
                state.restarts += 1
                self._start_listener(state)
                report.restarted.append(name)
        for name in [n for n in self.artifacts if n not in new]:
            state = self.artifacts.pop(name)
            await self._stop_listener(state)
            report.removed.append(name)
            self.bus.publish(ArtifactChanged(name, "removed"))
        for err in report.errors:
            self._attach_import_error(err)

    async def _apply_connections(
        self, specs: dict[str, ConnectionSpec], report: ReloadReport
    ) -> None:
        old = self.connection_specs
        changed = {
            n for n in set(old) | set(specs)
            if n not in old or n not in specs
            or spec_fingerprint(old[n]) != spec_fingerprint(specs[n])
        }
        if not changed:
            return
        conns, conn_errors = build_connections(
            {n: specs[n] for n in changed if n in specs}, self._connection_kinds()
        )
        report.errors.extend(conn_errors)
        if conn_errors:
            return
        for name in changed:
            if name in self.connections:
                try:
                    await self.connections.pop(name).close()
                except Exception as exc:
                    log.warning("closing connection %s failed: %s", name, exc)
        for name, conn in conns.items():
            try:
                await conn.start()
            except Exception as exc:
                report.errors.append(WorkbenchError(f"connection {name!r} failed to open: {exc}"))
            self.connections[name] = conn
        self.connection_specs = specs
        set_open_connections(self.connections)

    def _attach_import_error(self, err: WorkbenchError) -> None:
        module = getattr(err, "module", None)
        if not module:
            return
        for state in self.artifacts.values():
            if state.module == module:
                state.import_error = err
                self._publish_status(state)

    def is_watched(self, path: Path) -> bool:
        return self.loader is not None and is_watched(self, path)

    # ================================================================== views

    def declared_config(self) -> list[Declared]:
        return self.loader.declared() if self.loader else []

    def _log(self, level: str, message: str, **fields: Any) -> None:
        getattr(log, level if level != "warning" else "warning")(message, extra={"fields": fields})
        self.bus.publish(RuntimeLog(level, message, fields))


def resolver_errors_not_in(result: LoadResult, resolver: ConfigResolver) -> list[WorkbenchError]:
    """Errors the resolver found outside any module import (Config.toml syntax, a missing
    profile file), which the load result does not carry."""
    in_result = {id(e) for e in result.errors}
    return [e for e in resolver.errors if id(e) not in in_result]


async def _finish_task(task: asyncio.Task[Any], timeout: float) -> None:
    task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except (asyncio.CancelledError, TimeoutError):
        pass
    except Exception as exc:
        log.warning("task %s ended with %r", task.get_name(), exc)


def _rel(root: Path, file: str) -> str:
    try:
        return str(Path(file).resolve().relative_to(root))
    except ValueError:
        return file
