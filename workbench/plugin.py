"""The public plugin contract: what a trigger plugin implements and what it may import.

A trigger plugin is a top-level package `iwb_<kind>` registered under the `iwb.plugins`
entry-point group. It supplies:

- an authoring class, a subclass of `Artifact`, that users declare in their modules
  (`api = http.Service(port=8080, base_path="/orders")`) and whose decorators register
  handlers (`@api.post("/")`);
- a `Trigger` subclass, the listener: `serve()` takes traffic and hands each `Event` to the
  runtime's `Dispatch`, then acts on the `Outcome` (reply, ack, commit, move the file);
- optionally: `inject()` through the real transport, `samples()` for the inject console,
  a transport model (the schema of `Event.transport`), parameter extractors for handler
  binding, and `ConnectionKind`s for `connections.toml`.

The runtime owns everything else: handler lookup, parameter binding, timeouts, retries,
concurrency limits, capture, hot reload, replay. A trigger never keeps a reference to a
handler function (so a reload can swap handlers under a running listener), never imports
user code, and never imports Textual or the runtime.

Shapes the contract carries:

- request/response (HTTP, gRPC unary, RPC over a broker): `outcome = await dispatch(event)`,
  then render the reply from `outcome.value` / `outcome.error`;
- broker consumers: ack/commit only after the outcome, following `outcome.disposition`;
- long-lived sessions (WebSocket, TCP, streams): one `dispatch` per message, the handler
  sends back through a plugin-provided `TransportView` (recorded with `record_outbound`);
- pollers with a cursor (FTP, mail, CDC): `context.cursor.load()/save()` persists it under
  `.iwb/state/`, so restarts and replays agree on where a listener stands.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from workbench.errors import NotSupportedError, TriggerConfigError
from workbench.events import ErrorInfo, Event, Outcome

__all__ = [
    "NOT_BOUND",
    "Artifact",
    "BindingError",
    "ConnectionKind",
    "Dispatch",
    "HandlerSpec",
    "Health",
    "Policy",
    "Sample",
    "TransportView",
    "Trigger",
    "TriggerContext",
    "current_outcome",
    "installed_plugins",
    "load_plugin",
    "record_outbound",
    "sandboxed",
]

ENTRY_POINT_GROUP = "iwb.plugins"

ConfigT = TypeVar("ConfigT", bound=BaseModel)
HandlerFunc = Callable[..., Any]


class _Unbound:
    def __repr__(self) -> str:
        return "NOT_BOUND"


NOT_BOUND: Any = _Unbound()
"""Returned by a parameter extractor that has nothing for this parameter."""


# --------------------------------------------------------------------------- policies


class Policy(BaseModel):
    """How the runtime handles each event of an artifact. Set on the artifact:
    `http.Service(..., timeout=5, concurrency=16)` or `policy=Policy(...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float | None = 30.0
    """Seconds a handler may run before it is cancelled (None: no limit)."""
    retries: int = 0
    """How many times a failed handler is retried before the outcome is an error."""
    retry_backoff: float = 0.1
    """First delay between retries, in seconds; doubles each time."""
    retry_backoff_max: float = 5.0
    concurrency: int = 64
    """How many events of this artifact may be handled at once."""


# --------------------------------------------------------------------------- authoring


@dataclass(slots=True)
class HandlerSpec:
    """A handler registered on an artifact. `meta` is plugin data (route, change kind) and
    is part of the listener's configuration; `func` is not, so changing code alone never
    restarts a listener."""

    key: str
    func: HandlerFunc
    meta: dict[str, Any] = field(default_factory=dict)
    policy: Policy | None = None
    """This handler's own policy (e.g. a longer timeout for one route); the artifact's
    when None. Like code, it is not part of the listener configuration."""

    @property
    def ref(self) -> str:
        """`module:function` — how outcomes and the TUI name the handler."""
        return f"{self.func.__module__}:{getattr(self.func, '__qualname__', self.func)}"


class Artifact(Generic[ConfigT]):
    """Base of every authoring class (`http.Service`, `files.Directory`, ...).

    Keyword arguments other than the policy ones are validated into `config_model`;
    a bad value raises `TriggerConfigError` at import time, so the loader reports it with
    the file and line of the declaration.
    """

    kind: ClassVar[str]
    """The plugin kind this artifact belongs to (its entry-point name)."""
    config_model: ClassVar[type[BaseModel]]
    default_policy: ClassVar[Policy] = Policy()

    def __init__(
        self,
        *,
        name: str | None = None,
        policy: Policy | None = None,
        timeout: float | _Unbound | None = NOT_BOUND,
        retries: int | None = None,
        concurrency: int | None = None,
        enabled: bool = True,
        **config: Any,
    ) -> None:
        self.name: str | None = name
        self.enabled = enabled
        """A disabled artifact is loaded (inject direct works) but its listener is not
        started, and readiness does not wait for it: `enabled=configurable("enabled", bool,
        default=True)` lets an environment switch a listener off."""
        """Set by the loader from the variable name when not given."""
        try:
            self.config: ConfigT = self.config_model(**config)  # type: ignore[assignment]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise TriggerConfigError(
                f"Invalid configuration for a {self.kind!r} artifact: {problems}",
                title="Invalid artifact configuration",
            ) from None
        overrides: dict[str, Any] = {}
        if not isinstance(timeout, _Unbound):
            overrides["timeout"] = timeout
        if retries is not None:
            overrides["retries"] = retries
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        base = policy or self.default_policy
        self.policy: Policy = base.model_copy(update=overrides) if overrides else base
        self.handlers: dict[str, HandlerSpec] = {}
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_name == "__init__":
            frame = frame.f_back  # skip subclass __init__ frames
        self.declared_at: tuple[str, int] = (frame.f_code.co_filename, frame.f_lineno)
        """File and line of the declaration, for `e` in the TUI and error messages."""

    def add_handler(
        self,
        key: str,
        func: HandlerFunc,
        *,
        timeout: float | _Unbound | None = NOT_BOUND,
        retries: int | None = None,
        **meta: Any,
    ) -> HandlerFunc:
        """Register `func` under `key`; returns `func` so this works as a decorator.

        `timeout` and `retries` override the artifact's policy for this handler only;
        other keyword arguments are plugin metadata (part of the listener configuration).
        """
        if key in self.handlers:
            raise TriggerConfigError(
                f"Artifact {self.name or self.kind!r} already has a handler for {key!r} "
                f"({self.handlers[key].ref}); each key takes one handler."
            )
        overrides: dict[str, Any] = {}
        if not isinstance(timeout, _Unbound):
            overrides["timeout"] = timeout
        if retries is not None:
            overrides["retries"] = retries
        policy = self.policy.model_copy(update=overrides) if overrides else None
        self.handlers[key] = HandlerSpec(key, func, dict(meta), policy)
        return func

    def connection_names(self) -> list[str]:
        """Connections this artifact uses (their config is part of its fingerprint)."""
        name = getattr(self.config, "connection", None)
        return [name] if isinstance(name, str) else []

    def address(self) -> str:
        """Where it listens, for lists: a port, folder, schedule, topic."""
        return ""

    def fingerprint(self, extra: Mapping[str, Any] | None = None) -> str:
        """Identity of the listener configuration: same fingerprint → swap handlers in place,
        different → restart the listener. Handler code is deliberately not part of it."""
        payload = {
            "kind": self.kind,
            "enabled": self.enabled,
            "config": self.config.model_dump(mode="json"),
            "handlers": {k: h.meta for k, h in sorted(self.handlers.items())},
            "extra": dict(extra or {}),
        }
        raw = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


class TransportView:
    """Base of plugin types that a handler can ask for by annotation (`req: http.Request`);
    the runtime builds one per call with `from_event`."""

    @classmethod
    def from_event(cls, event: Event) -> Any:  # pragma: no cover - abstract in spirit
        raise NotImplementedError(f"{cls.__name__} must implement from_event()")


class BindingError(Exception):
    """The event could not be bound to the handler's parameters. `kind` tells the plugin
    how to answer: `malformed` (HTTP 400), `unsupported_media_type` (415),
    `validation` (422), `missing` (422)."""

    def __init__(
        self, kind: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.details = details or []


# --------------------------------------------------------------------------- dispatch


class Dispatch(Protocol):
    """What the runtime gives a trigger: hand it an event, get the outcome back."""

    async def __call__(self, event: Event) -> Outcome:
        """Handle `event` with the artifact's current handler for `event.handler` and
        return the outcome (never raises for handler errors)."""
        ...

    def reject(
        self,
        event: Event,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Record an event that never reached a handler (oversized body, skipped run)."""
        ...


class Cursor:
    """A small JSON value a listener keeps across restarts (offset, LSN, replay id, seen
    file set). Stored under `.iwb/state/<artifact>.json`, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, default: Any = None) -> Any:
        try:
            return json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return default
        except ValueError:
            return default

    def save(self, value: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cursor-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
        os.replace(tmp, self.path)


@dataclass(slots=True)
class TriggerContext:
    """What a trigger may use from its surroundings."""

    name: str
    """The artifact name."""
    project_root: Path
    state_dir: Path
    """`.iwb/state/` — plugins keep cursors and scratch files here."""
    cursor: Cursor
    connections: Mapping[str, ConnectionKind[Any]]
    """Opened connections of the project, by name."""
    set_address: Callable[[str], None] = lambda _addr: None
    """Report where the listener actually listens (e.g. the bound port)."""
    set_status: Callable[[str], None] = lambda _status: None
    """Report a transport state while serving, e.g. `rebalancing`; calling `ready()` again
    returns the artifact to `listening`."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The plugin's own settings: iwb.toml's `[plugins.<kind>]` table (e.g. for `http`:
    `server = "hypercorn"`), with overrides from `iwb run --set KIND.KEY=VALUE`."""

    def connection(self, name: str) -> ConnectionKind[Any]:
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "(none)"
            raise TriggerConfigError(
                f"Artifact {self.name!r} uses connection {name!r}, which connections.toml "
                f"does not define. Defined: {known}."
            ) from None


@dataclass(slots=True)
class Sample:
    """A template event for the inject console (`iwb inject --sample NAME`)."""

    name: str
    description: str
    event: Event


class _AnyTransport(BaseModel):
    model_config = ConfigDict(extra="allow")


class Trigger(ABC, Generic[ConfigT]):
    """Turns one transport into `Event`s and back.

    One instance serves one artifact. The runtime creates it with the artifact (its config
    and handler metadata) and a context, then runs `serve()` in a task of its own; when the
    task is cancelled the trigger releases its sockets in `finally:`. If `serve()` raises,
    the artifact is marked failed and the runtime calls it again with backoff.
    """

    kind: ClassVar[str]
    artifact_class: ClassVar[type[Artifact[Any]]]
    """The authoring class users declare for this kind."""
    transport_model: ClassVar[type[BaseModel]] = _AnyTransport
    """Schema of `Event.transport` for this kind (drives the inject console's checks)."""
    connection_kinds: ClassVar[tuple[type[ConnectionKind[Any]], ...]] = ()
    """Connection kinds this plugin supplies for connections.toml."""

    def __init__(self, artifact: Artifact[ConfigT], context: TriggerContext) -> None:
        self.artifact = artifact
        self.config: ConfigT = artifact.config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    @abstractmethod
    async def serve(self, dispatch: Dispatch, *, ready: Callable[[], None]) -> None:
        """Take traffic until cancelled; call `ready()` once listening."""

    async def drain(self) -> None:
        """Stop taking new work (close the listening socket, pause the consumer) while
        in-flight events finish; the runtime cancels `serve()` once they have."""

    async def inject(self, event: Event) -> None:
        """Send `event` through the real transport, as a client would. The runtime sets
        `event.extensions["iwbinject"]`; carry it so the received event has it too."""
        raise NotSupportedError(
            f"The {self.kind!r} trigger cannot inject through its transport; "
            "use --via direct.",
        )

    async def reread(self, position: str, count: int) -> list[Event]:
        """Read up to `count` messages again from the transport's own log, from
        `position` (in the plugin's syntax, e.g. Kafka's `[topic/]partition@offset`), as
        events, without dispatching them and without moving the listener's position.
        Transports that keep no log to re-read raise `NotSupportedError`."""
        raise NotSupportedError(
            f"The {self.kind!r} transport keeps no log to re-read; replay captured events "
            "instead (iwb replay IDS or --last N).",
        )

    def log_match(self, event: Event) -> dict[str, Any] | None:
        """The transport fields that name `event`'s message in the transport's log (for
        Kafka: topic, partition and offset), so a re-read finds its earlier capture; None
        when the transport keeps no log."""
        return None

    def samples(self) -> list[Sample]:
        """Template events for the inject console."""
        return []

    def correlates(self, injected: Event, received: Event) -> bool:
        """Whether `received` is what `inject(injected)` produced, when the transport
        could not carry the `iwbinject` mark."""
        return received.data == injected.data and received.handler == injected.handler

    @classmethod
    def transport_schema(cls) -> dict[str, Any]:
        return cls.transport_model.model_json_schema()

    @classmethod
    def param_extractor(
        cls, param: inspect.Parameter, annotation: Any, handler: HandlerSpec
    ) -> Callable[[Event], Any] | None:
        """Return a function that pulls `param` out of an event (an HTTP path or query
        value, a header), or None to leave it to the runtime's rules (Event, TransportView,
        pydantic payload, default)."""
        return None

    @classmethod
    def describe_error(cls, error: ErrorInfo) -> str:
        """One line for logs; plugins may add transport detail."""
        return f"{error.type}: {error.message}"


# --------------------------------------------------------------------------- connections


@dataclass(slots=True)
class Health:
    """Result of a connection's health check."""

    ok: bool
    detail: str
    latency_ms: float = 0.0


ClientT = TypeVar("ClientT")


class ConnectionKind(ABC, Generic[ClientT]):
    """A kind of named connection in connections.toml (`kind = "http"`).

    The runtime validates the table into `config_model`, opens every connection before the
    listeners start and closes them after; handlers reach the client through
    `workbench.config.connection(name)`.
    """

    kind: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password", "token", "secret", "api_key"})

    def __init__(self, name: str, config: BaseModel) -> None:
        self.name = name
        self.config = config
        self._client: ClientT | None = None

    @abstractmethod
    async def open(self) -> ClientT:
        """Create the client (don't block on the network: `health()` checks reachability)."""

    async def close(self) -> None:
        """Release the client."""

    @abstractmethod
    async def health(self) -> Health:
        """Check that the far end answers."""

    @property
    def client(self) -> ClientT:
        if self._client is None:
            raise RuntimeError(f"connection {self.name!r} is not open")
        return self._client

    async def start(self) -> None:
        self._client = await self.open()

    def describe(self) -> dict[str, Any]:
        """The resolved config with secrets masked."""
        data = self.config.model_dump(mode="json")
        return {
            k: ("****" if any(s in k.lower() for s in self.secret_fields) and v else v)
            for k, v in data.items()
        }


# --------------------------------------------------------------------------- recording

current_outcome: ContextVar[Outcome | None] = ContextVar("iwb_current_outcome", default=None)
"""The outcome being built for the event handled in this task (set by the runtime)."""

_sandbox: ContextVar[bool] = ContextVar("iwb_sandbox", default=False)


def record_outbound(kind: str, **details: Any) -> None:
    """Note, on the current event's outcome, something the handler sent out. Connection
    kinds call this for every outbound call; a no-op outside a handler."""
    outcome = current_outcome.get()
    if outcome is not None:
        outcome.record_sent(kind, **details)


def sandboxed() -> bool:
    """True while replaying in sandbox mode: connections record calls instead of sending."""
    return _sandbox.get()


@contextmanager
def sandbox(enabled: bool = True) -> Iterator[None]:
    token = _sandbox.set(enabled)
    try:
        yield
    finally:
        _sandbox.reset(token)


# --------------------------------------------------------------------------- discovery


def installed_plugins() -> dict[str, EntryPoint]:
    """Entry points of the `iwb.plugins` group, by kind, without importing them."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(kind: str) -> type[Trigger[Any]]:
    """Import the trigger class registered for `kind`."""
    plugins = installed_plugins()
    if kind not in plugins:
        raise TriggerConfigError(
            f"No installed plugin provides the artifact kind {kind!r}. "
            f"Installed kinds: {', '.join(sorted(plugins)) or '(none)'}. "
            f"Install the plugin that provides it (e.g. `pip install iwb[{kind}]`).",
            title="Unknown artifact kind",
        )
    cls = plugins[kind].load()
    if not (isinstance(cls, type) and issubclass(cls, Trigger)):
        raise TriggerConfigError(
            f"The entry point {kind!r} = {plugins[kind].value!r} is not a Trigger subclass.",
            title="Broken plugin",
        )
    return cls


Handler = Callable[..., Awaitable[Any] | Any]
