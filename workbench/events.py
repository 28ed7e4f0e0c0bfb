"""The event envelope and the outcome of handling it.

Every trigger turns what arrives into one `Event`: the CloudEvents attributes, the payload as
bytes, and a `transport` dict holding everything needed to reproduce the event faithfully
through the same transport (HTTP method/path/query/headers, file path/size/mtime, ...).
The runtime hands the event to a handler and records an `Outcome`: the result or the error
(with a traceback whose frames carry file:line), the duration, what the handler sent out and
the code version that ran.

Both serialise to plain JSON (`to_dict` / `from_dict`); an `Event` also reads and writes the
CloudEvents JSON format (`to_cloudevent` / `from_cloudevent`), which is the format of saved
events in a project's `events/` folder.

This module imports nothing of the workbench: plugins and the runtime both depend on it.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import traceback as tb_module
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SPECVERSION = "1.0"

Status = Literal["ok", "error", "rejected"]
"""`ok`: the handler returned. `error`: it raised, timed out or its input did not bind.
`rejected`: the event never reached a handler (oversized body, overlapping run, ...)."""

Disposition = Literal["ack", "retry", "reject"]
"""What the plugin should do with the message once the outcome is known:
`ack` (commit/delete), `retry` (nack and redeliver later), `reject` (dead-letter or drop)."""


_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


_MIX = 0x9E3779B97F4A7C15  # odd: multiplying by it permutes 64-bit numbers


def new_id() -> str:
    """A fresh event id: 32 hex characters, a scrambled per-process counter then a random
    per-process suffix. Unique within a process (the scramble is a bijection), across
    processes by the suffix; every event's first characters differ, so a short prefix
    names it; and it is several times cheaper than a UUID4 on the hot path."""
    return f"{(next(_ID_COUNTER) * _MIX) & 0xFFFFFFFFFFFFFFFF:016x}{_ID_PREFIX}"


def _now() -> datetime:
    return datetime.now(UTC)


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(slots=True)
class Event:
    """One thing that arrived on a transport, in CloudEvents terms.

    `artifact` and `kind` say where it arrived; `handler` names the handler key inside the
    artifact that should receive it (an HTTP route id, `on_create` for files, ...).
    """

    artifact: str
    """Name of the artifact that received the event."""
    kind: str
    """The trigger kind (the plugin's entry-point name), e.g. `http`."""
    type: str
    """CloudEvents `type`, e.g. `iwb.http.request`, `iwb.files.created`."""
    source: str
    """CloudEvents `source`: where it came from (URL, directory, schedule)."""
    data: bytes = b""
    """The payload, exactly as received."""
    transport: dict[str, Any] = field(default_factory=dict)
    """Transport fields that reproduce the event (headers, topic/offset, path, ...)."""
    handler: str = ""
    """The handler key inside the artifact this event is meant for."""
    subject: str | None = None
    datacontenttype: str | None = None
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=_now)
    extensions: dict[str, Any] = field(default_factory=dict)
    """Other CloudEvents extension attributes (e.g. `replayof`, `iwbinject`)."""

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (undecodable bytes replaced)."""
        return self.data.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The payload parsed as JSON; raises `ValueError` if it is not JSON."""
        return json.loads(self.data)

    def is_json(self) -> bool:
        ct = (self.datacontenttype or "").split(";")[0].strip().lower()
        return ct == "application/json" or ct.endswith("+json")

    def summary(self, width: int = 80) -> str:
        """A one-line description for lists and logs."""
        head = self.subject or self.type
        body = self.text.replace("\n", " ").strip() if self.data else ""
        line = f"{head} {body}".strip()
        return line if len(line) <= width else line[: width - 1] + "…"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; the payload as text when it is UTF-8, else base64."""
        out: dict[str, Any] = {
            "id": self.id,
            "artifact": self.artifact,
            "kind": self.kind,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": self.datacontenttype,
            "handler": self.handler,
            "transport": self.transport,
            "extensions": self.extensions,
        }
        try:
            out["data"] = self.data.decode("utf-8")
        except UnicodeDecodeError:
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        if "data_base64" in raw:
            data = base64.b64decode(raw["data_base64"])
        else:
            value = raw.get("data", "")
            data = value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode()
        return cls(
            id=raw.get("id") or new_id(),
            artifact=raw.get("artifact", ""),
            kind=raw.get("kind", ""),
            type=raw.get("type", ""),
            source=raw.get("source", ""),
            subject=raw.get("subject"),
            time=_parse_time(raw.get("time")),
            datacontenttype=raw.get("datacontenttype"),
            handler=raw.get("handler", ""),
            transport=dict(raw.get("transport") or {}),
            extensions=dict(raw.get("extensions") or {}),
            data=data,
        )

    def to_cloudevent(self) -> dict[str, Any]:
        """CloudEvents 1.0 JSON format. Workbench fields ride as extension attributes
        (`iwbartifact`, `iwbkind`, `iwbhandler`, `iwbtransport`)."""
        out: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.datacontenttype is not None:
            out["datacontenttype"] = self.datacontenttype
        out["iwbartifact"] = self.artifact
        out["iwbkind"] = self.kind
        if self.handler:
            out["iwbhandler"] = self.handler
        out["iwbtransport"] = self.transport
        out.update(self.extensions)
        parsed = _json_or_none(self.data) if self.is_json() else None
        if parsed is not None:
            out["data"] = parsed
        elif self.data:
            try:
                out["data"] = self.data.decode("utf-8")
            except UnicodeDecodeError:
                out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_cloudevent(cls, raw: dict[str, Any], *, artifact: str = "", kind: str = "") -> Event:
        """Read a CloudEvents JSON object (structured mode).

        Missing required attributes get workbench defaults so that a hand-written fixture
        with only `data` is still usable; `artifact`/`kind` fill in when the file has none.
        """
        if not isinstance(raw, dict):
            raise ValueError(f"a CloudEvent must be a JSON object, not {type(raw).__name__}")
        known = {
            "specversion", "id", "source", "type", "time", "subject", "datacontenttype",
            "data", "data_base64", "iwbartifact", "iwbkind", "iwbhandler", "iwbtransport",
            "dataschema",
        }
        ct = raw.get("datacontenttype")
        if "data_base64" in raw:
            data = base64.b64decode(raw["data_base64"])
        elif "data" in raw:
            value = raw["data"]
            if isinstance(value, str) and not (ct or "").endswith("json"):
                data = value.encode("utf-8")
            else:
                data = json.dumps(value).encode("utf-8")
                ct = ct or "application/json"
        else:
            data = b""
        transport = raw.get("iwbtransport") or {}
        if not isinstance(transport, dict):
            raise ValueError("the `iwbtransport` attribute must be a JSON object")
        return cls(
            id=str(raw.get("id") or new_id()),
            source=str(raw.get("source") or "iwb://inject"),
            type=str(raw.get("type") or "iwb.inject"),
            time=_parse_time(raw.get("time")),
            subject=raw.get("subject"),
            datacontenttype=ct,
            artifact=str(raw.get("iwbartifact") or artifact),
            kind=str(raw.get("iwbkind") or kind),
            handler=str(raw.get("iwbhandler") or ""),
            transport=dict(transport),
            extensions={k: v for k, v in raw.items() if k not in known},
            data=data,
        )

    def copy(self, **changes: Any) -> Event:
        """A copy with a fresh id (unless given) and the changes applied."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["id"] = new_id()
        values["time"] = _now()
        values["transport"] = json.loads(json.dumps(self.transport, default=str))
        values["extensions"] = dict(self.extensions)
        values.update(changes)
        return Event(**values)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _now()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _now()


@dataclass(slots=True, frozen=True)
class Frame:
    """One frame of a traceback: where the error passed through."""

    file: str
    line: int
    function: str
    code: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


@dataclass(slots=True)
class ErrorInfo:
    """An error as recorded in an outcome."""

    type: str
    """The exception class name, e.g. `ValueError`, or a binding error kind."""
    message: str
    traceback: str = ""
    frames: list[Frame] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    """Structured details, e.g. pydantic field errors `{"loc": [...], "msg": ..., "type": ...}`."""

    @property
    def where(self) -> str:
        """`file:line` of the innermost frame, or ''."""
        return f"{self.frames[-1].file}:{self.frames[-1].line}" if self.frames else ""

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, skip_prefixes: tuple[str, ...] = ()
    ) -> ErrorInfo:
        """Record an exception with its frames; frames whose file starts with one of
        `skip_prefixes` (the workbench's own dispatch machinery) are left out."""
        extracted = tb_module.extract_tb(exc.__traceback__)
        frames = [
            Frame(f.filename, f.lineno or 0, f.name, (f.line or "").strip())
            for f in extracted
            if not f.filename.startswith(skip_prefixes)
        ]
        text = "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type=type(exc).__name__, message=str(exc), traceback=text, frames=frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
            "frames": [
                {"file": f.file, "line": f.line, "function": f.function, "code": f.code}
                for f in self.frames
            ],
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ErrorInfo:
        return cls(
            type=raw.get("type", ""),
            message=raw.get("message", ""),
            traceback=raw.get("traceback", ""),
            frames=[Frame(**f) for f in raw.get("frames", [])],
            details=list(raw.get("details", [])),
        )


@dataclass(slots=True)
class Outcome:
    """What happened when the runtime handled one event."""

    event_id: str
    status: Status = "ok"
    result: Any = None
    """The handler's return value as JSON (pydantic models dumped, bytes decoded)."""
    error: ErrorInfo | None = None
    duration_ms: float = 0.0
    sent: list[dict[str, Any]] = field(default_factory=list)
    """What the handler sent out: replies, published messages, outbound calls."""
    code_version: str = ""
    """Hash of the handler module's source that produced this outcome."""
    handler: str = ""
    """`module:function` of the handler that ran."""
    attempts: int = 1
    disposition: Disposition = "ack"
    """The ack/commit decision for the plugin (see `Disposition`)."""
    value: Any = field(default=None, compare=False, repr=False)
    """The handler's raw return value (not stored; plugins render replies from it)."""
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    """The exception the handler raised, if any (not stored)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record_sent(self, kind: str, **details: Any) -> None:
        """Note something the handling sent out (`http.response`, `http.request`, ...)."""
        self.sent.append({"kind": kind, **details})

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "status": self.status,
            "result": self.result,
            "error": self.error.to_dict() if self.error else None,
            "duration_ms": round(self.duration_ms, 3),
            "sent": self.sent,
            "code_version": self.code_version,
            "handler": self.handler,
            "attempts": self.attempts,
            "disposition": self.disposition,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Outcome:
        err = raw.get("error")
        return cls(
            event_id=raw.get("event_id", ""),
            status=raw.get("status", "ok"),
            result=raw.get("result"),
            error=ErrorInfo.from_dict(err) if err else None,
            duration_ms=float(raw.get("duration_ms", 0.0)),
            sent=list(raw.get("sent", [])),
            code_version=raw.get("code_version", ""),
            handler=raw.get("handler", ""),
            attempts=int(raw.get("attempts", 1)),
            disposition=raw.get("disposition", "ack"),
        )
