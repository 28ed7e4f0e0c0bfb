"""Dispatch: one event → the artifact's current handler → an `Outcome`.

Owns the policies of an artifact (timeout, retries with backoff, concurrency limit), the
ack/commit decision (`Outcome.disposition`, at-least-once: ack only after success), and the
hand-off of every outcome to capture, metrics and the bus. Handlers are looked up on every
call through the artifact's state, so a reload that swaps the artifact swaps the handler
under a running listener; calls already running finish on the code they started with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

import workbench
from workbench.errors import WorkbenchError
from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import (
    Artifact,
    BindingError,
    HandlerSpec,
    Trigger,
    _sandbox,
    current_outcome,
)
from workbench.runtime.binding import BINDING_ERROR_TYPES, plan_for

if TYPE_CHECKING:
    from workbench.runtime.runtime import Runtime

_CORE_DIR = str(Path(workbench.__file__).parent)


class Status:
    """Artifact statuses, as shown in lists."""

    STARTING = "starting"
    LISTENING = "listening"
    RELOADING = "reloading"
    FAILED = "failed"
    RETRYING = "disconnected-retrying"
    STOPPED = "stopped"
    LOADED = "loaded"
    """Loaded, listener not started (offline replay/inject, `iwb check`)."""
    DISABLED = "disabled"
    """Declared with `enabled=False`: loaded, never listening."""


@dataclass(eq=False)
class ArtifactState:
    """Everything the runtime knows about one artifact."""

    name: str
    kind: str
    artifact: Artifact[Any]
    module: str
    code_version: str
    trigger_cls: type[Trigger[Any]]
    fingerprint: str
    status: str = Status.LOADED
    address: str = ""
    error: str | None = None
    """The last listener error (`serve()` raised), one line."""
    error_info: ErrorInfo | None = None
    import_error: WorkbenchError | None = None
    """A reload of its module failed: the last good code keeps serving."""
    trigger: Trigger[Any] | None = None
    task: asyncio.Task[None] | None = None
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    events: int = 0
    errors: int = 0
    last_event_at: float | None = None
    restarts: int = 0
    dispatch: ArtifactDispatch | None = None

    def handler_for(self, key: str) -> HandlerSpec | None:
        handlers = self.artifact.handlers
        spec = handlers.get(key)
        if spec is None and not key and len(handlers) == 1:
            spec = next(iter(handlers.values()))
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "address": self.address or self.artifact.address(),
            "module": self.module,
            "code_version": self.code_version,
            "handlers": {k: h.ref for k, h in self.artifact.handlers.items()},
            "events": self.events,
            "errors": self.errors,
            "error": self.error,
            "import_error": self.import_error.message if self.import_error else None,
            "declared_at": f"{self.artifact.declared_at[0]}:{self.artifact.declared_at[1]}",
        }


def jsonable(value: Any) -> Any:
    """A JSON view of a handler's return value, for capture and diffs."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_jsonable_python(value, fallback=repr, bytes_mode="utf8")


def _timeout_error(spec: HandlerSpec, timeout: float | None) -> ErrorInfo:
    return ErrorInfo(
        "HandlerTimeout",
        f"{spec.ref} did not finish within {timeout or 0:g} s (the artifact's timeout policy).",
    )


class ArtifactDispatch:
    """The `Dispatch` a trigger gets for its artifact."""

    __slots__ = ("runtime", "state")

    def __init__(self, runtime: Runtime, state: ArtifactState) -> None:
        self.runtime = runtime
        self.state = state

    async def __call__(self, event: Event) -> Outcome:
        state = self.state
        if not event.artifact:
            event.artifact = state.name
        if not event.kind:
            event.kind = state.kind
        spec = state.handler_for(event.handler)
        outcome = Outcome(event.id, code_version=state.code_version)
        if spec is None:
            known = ", ".join(sorted(state.artifact.handlers)) or "(none)"
            outcome.status = "error"
            outcome.disposition = "reject"
            outcome.error = ErrorInfo(
                "NoHandler",
                f"Artifact {state.name!r} has no handler for {event.handler!r}. "
                f"Its handlers: {known}.",
            )
            self.runtime.finish(state, event, outcome)
            return outcome
        outcome.handler = spec.ref
        self.runtime.inflight += 1
        try:
            async with state.semaphore:
                token = current_outcome.set(outcome)
                sandbox_token = (
                    _sandbox.set(True) if self.runtime.sandboxed_event(event) else None
                )
                started = time.perf_counter()
                try:
                    await self._run(spec, event, outcome, state)
                finally:
                    outcome.duration_ms = (time.perf_counter() - started) * 1000.0
                    current_outcome.reset(token)
                    if sandbox_token is not None:
                        _sandbox.reset(sandbox_token)
        finally:
            self.runtime.inflight -= 1
            if self.runtime.inflight == 0:
                self.runtime.idle()
        self.runtime.finish(state, event, outcome)
        return outcome

    async def _run(
        self, spec: HandlerSpec, event: Event, outcome: Outcome, state: ArtifactState
    ) -> None:
        policy = spec.policy or state.artifact.policy
        try:
            plan = plan_for(spec, state.trigger_cls)
        except Exception as exc:
            outcome.status = "error"
            outcome.disposition = "reject"
            outcome.error = ErrorInfo.from_exception(exc, skip_prefixes=(_CORE_DIR,))
            outcome.error.type = "HandlerSignatureError"
            return
        deadlines = self.runtime.deadlines
        attempt = 0
        while True:
            attempt += 1
            outcome.attempts = attempt
            try:
                kwargs = plan.bind(event)
            except BindingError as exc:
                outcome.status = "error"
                outcome.disposition = "reject"  # the same input will never bind
                outcome.error = ErrorInfo(
                    BINDING_ERROR_TYPES.get(exc.kind, "ValidationError"), str(exc),
                    details=exc.details,
                )
                outcome.exception = exc
                return
            timeout = policy.timeout
            call = deadlines.start(timeout) if timeout else None
            error: ErrorInfo | None
            try:
                if plan.is_async:
                    result = await spec.func(**kwargs)
                else:
                    result = await asyncio.to_thread(spec.func, **kwargs)
                    if asyncio.iscoroutine(result):
                        result = await result
            except asyncio.CancelledError:
                if call is None or not call.timed_out():
                    raise
                error = _timeout_error(spec, timeout)
                failure: BaseException = TimeoutError(error.message)
            except Exception as exc:
                if call is not None and call.expired:
                    # the handler turned the deadline's cancellation into an error of its own
                    call.timed_out()
                    error = _timeout_error(spec, timeout)
                else:
                    error = ErrorInfo.from_exception(exc, skip_prefixes=(_CORE_DIR,))
                    details = getattr(exc, "details", None)
                    if isinstance(details, list):
                        error.details = [d for d in details if isinstance(d, dict)]
                failure = exc
            else:
                if call is not None:
                    call.settle()
                error = None
            finally:
                if call is not None:
                    call.end()
            if error is not None:
                outcome.error = error
                outcome.exception = failure
                if attempt > policy.retries:
                    outcome.status = "error"
                    outcome.disposition = "reject"
                    return
                delay = min(policy.retry_backoff * 2 ** (attempt - 1), policy.retry_backoff_max)
                await asyncio.sleep(delay)
                continue
            outcome.status = "ok"
            outcome.error = None
            outcome.exception = None
            outcome.value = result
            outcome.result = jsonable(result)
            outcome.disposition = "ack"
            return

    def reject(
        self,
        event: Event,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        state = self.state
        if not event.artifact:
            event.artifact = state.name
        if not event.kind:
            event.kind = state.kind
        outcome = Outcome(
            event.id, status="rejected", disposition="reject",
            error=ErrorInfo(error_type, message, details=list(details or [])),
            code_version=state.code_version,
        )
        self.runtime.finish(state, event, outcome)
        return outcome


OnFinish = Callable[[ArtifactState, Event, Outcome], None]
