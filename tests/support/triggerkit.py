"""Test support for triggers tested without the runtime: a recording dispatch, a real
context, a serve helper.

`Recorder` stands in for the runtime's dispatch the way the contract describes it: it looks
up the artifact's handler for `event.handler`, binds transport views, `Event` and pydantic
parameters,
calls it and returns an `Outcome` (errors become `status="error"`, never exceptions).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import Artifact, Cursor, TransportView, Trigger, TriggerContext


def bind(func: Callable[..., Any], event: Event) -> dict[str, Any]:
    hints = typing.get_type_hints(func)
    kwargs: dict[str, Any] = {}
    for name in inspect.signature(func).parameters:
        hint = hints.get(name)
        if hint is Event:
            kwargs[name] = event
        elif isinstance(hint, type) and issubclass(hint, TransportView):
            kwargs[name] = hint.from_event(event)
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            kwargs[name] = hint.model_validate_json(event.data or b"{}")
    return kwargs


class Recorder:
    """A dispatch that runs the artifact's handlers and records every event."""

    def __init__(self, artifact: Artifact[Any]) -> None:
        self.artifact = artifact
        self.events: list[Event] = []
        self.outcomes: list[Outcome] = []
        self.rejected: list[tuple[Event, Outcome]] = []
        self.active = 0
        self.max_active = 0

    async def __call__(self, event: Event) -> Outcome:
        self.events.append(event)
        outcome = Outcome(event.id)
        spec = self.artifact.handlers[event.handler]
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            result = spec.func(**bind(spec.func, event))
            if inspect.isawaitable(result):
                result = await result
            outcome.value = outcome.result = result
        except Exception as exc:
            outcome.status = "error"
            outcome.disposition = "reject"
            outcome.error = ErrorInfo.from_exception(exc)
        finally:
            self.active -= 1
        self.outcomes.append(outcome)
        return outcome

    def reject(
        self,
        event: Event,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        outcome = Outcome(
            event.id, status="rejected", disposition="reject",
            error=ErrorInfo(error_type, message, details=list(details or [])),
        )
        self.rejected.append((event, outcome))
        return outcome

    def of(self, change: str) -> list[Event]:
        return [e for e in self.events if e.handler == change]


def make_context(
    root: Path,
    name: str,
    addresses: list[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> TriggerContext:
    """A trigger's context as the runtime builds it; `addresses` collects `set_address`
    calls, `settings` is the plugin's `[plugins.<kind>]` table."""
    state_dir = root / ".iwb" / "state"
    sink = addresses if addresses is not None else []
    return TriggerContext(
        name=name,
        project_root=root,
        state_dir=state_dir,
        cursor=Cursor(state_dir / f"{name}.json"),
        connections={},
        set_address=sink.append,
        settings=settings or {},
    )


@asynccontextmanager
async def serving(
    trigger: Trigger[Any], dispatch: Any, within: float = 5.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `trigger.serve()` in a task until the block ends; enter once it called ready()."""
    ready = asyncio.Event()
    task = asyncio.create_task(trigger.serve(dispatch, ready=ready.set))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=within, return_when="FIRST_COMPLETED")
    if waiter not in done:
        waiter.cancel()
        if task in done:
            task.result()
            raise AssertionError("serve() returned before calling ready()")
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        raise AssertionError(f"serve() did not call ready() within {within} s")
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def wait_until(
    predicate: Callable[[], bool], within: float = 5.0, what: str = "condition"
) -> None:
    ends = time.monotonic() + within
    while not predicate():
        if time.monotonic() > ends:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)
