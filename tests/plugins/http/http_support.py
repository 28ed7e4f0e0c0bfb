"""Test support for the HTTP trigger: a recording dispatch with the HTTP binding rules
(the context and serve helpers are the shared trigger kit's).

`Recorder` stands in for the runtime's dispatch the way the contract describes it: it looks
up the artifact's handler for `event.handler`, binds `Request`/`Event` parameters, the
plugin's own extractors (path, query, header) and a pydantic body, calls the handler and
returns an `Outcome` (errors become `status="error"` with the live exception, never raised).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import triggerkit
from pydantic import BaseModel
from testkit import free_port as free_port  # re-exported for the HTTP tests
from triggerkit import make_context as make_context  # re-exported for the HTTP tests
from triggerkit import serving as serving  # re-exported for the HTTP tests

from iwb_http import HttpTrigger
from workbench.events import ErrorInfo, Event, Outcome
from workbench.plugin import BindingError, TransportView


def bind(trigger_cls: type[HttpTrigger], spec: Any, event: Event) -> dict[str, Any]:
    hints = typing.get_type_hints(spec.func, include_extras=True)
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(spec.func).parameters.items():
        hint = hints.get(name, param.annotation)
        if hint is Event:
            kwargs[name] = event
        elif isinstance(hint, type) and issubclass(hint, TransportView):
            kwargs[name] = hint.from_event(event)
        elif (extract := trigger_cls.param_extractor(param, hint, spec)) is not None:
            kwargs[name] = extract(event)
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            kwargs[name] = hint.model_validate_json(event.data or b"{}")
    return kwargs


class Recorder(triggerkit.Recorder):
    """A dispatch that runs the service's handlers with the HTTP binding rules (path, query
    and header values) and records every event."""

    async def __call__(self, event: Event) -> Outcome:
        self.events.append(event)
        outcome = Outcome(event.id)
        spec = self.artifact.handlers[event.handler]
        try:
            result = spec.func(**bind(HttpTrigger, spec, event))
            if inspect.isawaitable(result):
                result = await result
            outcome.value = outcome.result = result
        except BindingError as exc:
            outcome.status = "error"
            outcome.error = ErrorInfo("ValidationError", str(exc), details=exc.details)
        except Exception as exc:
            outcome.status = "error"
            outcome.error = ErrorInfo.from_exception(exc)
            outcome.exception = exc
        self.outcomes.append(outcome)
        return outcome
