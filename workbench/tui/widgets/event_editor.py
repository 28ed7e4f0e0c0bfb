"""`EventEditor`: a CloudEvents JSON editor that checks the event as it is typed.

What it checks, a short pause (`debounce`) after the last keystroke:

1. the text is JSON (a syntax error is reported with its line and column) and a JSON object;
2. it reads as an `Event` (`Event.from_cloudevent`), its attributes have the right types and
   `iwbhandler`, when given, names a handler of the artifact;
3. `iwbtransport` against the JSON schema of the artifact kind's transport fields
   (`Runtime.trigger_schema`), with the small checker below (type, enum, const, required,
   properties, additionalProperties, items, prefixItems, bounds, anyOf/oneOf/allOf, `$ref`);
4. `data` against the handler's payload type (`Runtime.payload_type`), parsed the way the
   runtime's binding parses it (`TypeAdapter(t).validate_json(event.data)`), one problem
   per field error with its path (`data.items[0].quantity`).

The editor only reports; the screen that hosts it decides what to do with an event that has
problems. It imports nothing of the runtime: the host hands it the schema and a function
that returns the payload type of a handler key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import TypeAdapter, ValidationError
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static, TextArea

from workbench.events import Event

Part = Literal["json", "event", "transport", "data"]
PayloadTypeOf = Callable[[str], Any]

STRING_ATTRIBUTES = ("id", "source", "type", "specversion", "iwbartifact", "iwbkind", "iwbhandler")
NULLABLE_STRING_ATTRIBUTES = ("subject", "datacontenttype", "dataschema")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the edited event."""

    part: Part
    """What it concerns: the JSON text, the envelope, the transport fields or the payload."""
    where: str
    """`line 3, column 7` for a syntax error, else the path (`data.items[0].quantity`)."""
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(slots=True)
class CheckResult:
    """The outcome of checking the editor's text."""

    event: Event | None
    """The event the text describes, or None when it does not read as one."""
    problems: list[Problem] = field(default_factory=list)
    payload: str = ""
    """Name of the payload type the data was checked against ('' when none)."""

    @property
    def ok(self) -> bool:
        return self.event is not None and not self.problems


# ---------------------------------------------------------------------------- checking


def check_event(
    text: str,
    *,
    artifact: str = "",
    kind: str = "",
    handlers: Sequence[str] = (),
    schema: Mapping[str, Any] | None = None,
    payload_type: PayloadTypeOf | None = None,
) -> CheckResult:
    """Check CloudEvents JSON text meant for `artifact`.

    Args:
        text: The editor's text.
        artifact: The artifact the event goes to (fills `iwbartifact` when missing).
        kind: The artifact's trigger kind (fills `iwbkind` when missing).
        handlers: The artifact's handler keys; a named `iwbhandler` must be one of them.
        schema: JSON schema of the transport fields (`Event.transport`).
        payload_type: Returns the payload type of a handler key, or None for no check.

    Returns:
        The event (None when the text is not one) and every problem found.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return CheckResult(None, [Problem("json", where, exc.msg)])
    if not isinstance(raw, dict):
        found = _json_type(raw)
        return CheckResult(
            None, [Problem("json", "event", f"must be a JSON object, not {found}")]
        )
    problems = _attribute_problems(raw, handlers)
    try:
        event = Event.from_cloudevent(raw, artifact=artifact, kind=kind)
    except (ValueError, TypeError) as exc:
        problems.append(Problem("event", "event", str(exc)))
        return CheckResult(None, problems)
    if schema:
        problems.extend(
            Problem("transport", where, message)
            for where, message in schema_problems(event.transport, schema, "iwbtransport")
        )
    payload = ""
    if payload_type is not None:
        try:
            target = payload_type(event.handler)
        except Exception:
            # the artifact went away or its handler table is mid-reload: nothing to check
            target = None
        if target is not None:
            payload = type_name(target)
            problems.extend(payload_problems(event, target))
    return CheckResult(event, problems, payload)


def _attribute_problems(raw: Mapping[str, Any], handlers: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    for name in STRING_ATTRIBUTES:
        if name in raw and not isinstance(raw[name], str):
            problems.append(
                Problem("event", name, f"must be a string, not {_json_type(raw[name])}")
            )
    for name in NULLABLE_STRING_ATTRIBUTES:
        if raw.get(name) is not None and not isinstance(raw[name], str):
            problems.append(
                Problem("event", name, f"must be a string or null, not {_json_type(raw[name])}")
            )
    if raw.get("specversion", "1.0") != "1.0":
        problems.append(
            Problem("event", "specversion", f"must be '1.0', not {raw['specversion']!r}")
        )
    stamp = raw.get("time")
    if stamp is not None:
        try:
            datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            problems.append(
                Problem("event", "time", f"{stamp!r} is not an RFC 3339 time "
                        "(e.g. 2024-01-01T12:00:00Z)")
            )
    transport = raw.get("iwbtransport")
    if transport is not None and not isinstance(transport, dict):
        problems.append(
            Problem("transport", "iwbtransport",
                    f"must be a JSON object, not {_json_type(transport)}")
        )
    handler = raw.get("iwbhandler")
    if isinstance(handler, str) and handler and handlers and handler not in handlers:
        known = ", ".join(repr(h) for h in handlers)
        problems.append(
            Problem("event", "iwbhandler", f"{handler!r} is not a handler here; handlers: {known}")
        )
    return problems


_ADAPTERS: dict[Any, TypeAdapter[Any] | None] = {}


def _adapter(target: Any) -> TypeAdapter[Any] | None:
    try:
        cached = _ADAPTERS.get(target, False)
    except TypeError:  # an unhashable annotation: build it each time
        cached = False
    if cached is not False:
        return cached  # type: ignore[return-value]
    try:
        adapter: TypeAdapter[Any] | None = TypeAdapter(target)
    except Exception:
        adapter = None
    try:
        _ADAPTERS[target] = adapter
    except TypeError:
        pass
    return adapter


def payload_problems(event: Event, target: Any) -> list[Problem]:
    """Check the payload the way the runtime binds it to a handler parameter of type `target`."""
    if not event.data.strip():
        # the parameter may have a default; the runtime reports a missing payload itself
        return []
    ct = event.datacontenttype
    if ct and not _json_content(ct):
        return [
            Problem("data", "datacontenttype",
                    f"{ct!r} is not JSON, but the handler parses a JSON payload into "
                    f"{type_name(target)}")
        ]
    adapter = _adapter(target)
    if adapter is None:
        return []
    try:
        adapter.validate_json(event.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            message = err["msg"]
            value = err.get("input")
            if err["type"] != "missing" and _scalar(value):
                message += f" (got {value!r})"
            problems.append(Problem("data", "data" + format_path(err["loc"]), message))
        return problems
    return []


def format_path(loc: Sequence[int | str]) -> str:
    """`("items", 0, "quantity")` → `.items[0].quantity`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def type_name(target: Any) -> str:
    """A short name for a payload annotation: `Order`, `dict`, `list[Order]`."""
    name = getattr(target, "__name__", None)
    if isinstance(name, str) and not getattr(target, "__args__", None):
        return name
    return re.sub(r"\b[\w.]+\.(\w+)", r"\1", repr(target)).replace("typing.", "")


def _json_content(ct: str) -> bool:
    main = ct.split(";", 1)[0].strip().lower()
    return main in ("application/json", "text/json") or main.endswith("+json")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _json_type(value) == name


def schema_problems(
    value: Any, schema: Mapping[str, Any], path: str, root: Mapping[str, Any] | None = None
) -> list[tuple[str, str]]:
    """Check `value` against a JSON schema (the subset pydantic writes).

    Returns:
        `(path, message)` pairs, empty when the value fits.
    """
    root = schema if root is None else root
    schema = _deref(schema, root)
    problems: list[tuple[str, str]] = []
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            results = [schema_problems(value, b, path, root) for b in branches]
            if not any(not r for r in results):
                typed = [
                    r for b, r in zip(branches, results, strict=True)
                    if _type_fits(value, _deref(b, root))
                ]
                if len(typed) == 1:
                    problems.extend(typed[0])
                else:
                    expected = " or ".join(_describe(_deref(b, root)) for b in branches)
                    problems.append((path, f"expected {expected}, got {_json_type(value)}"))
    for branch in schema.get("allOf") or ():
        problems.extend(schema_problems(value, branch, path, root))
    if "const" in schema and value != schema["const"]:
        problems.append((path, f"must be {schema['const']!r}"))
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        problems.append((path, f"must be one of {', '.join(repr(e) for e in enum)}"))
    if not _type_fits(value, schema):
        problems.append((path, f"expected {_describe(schema)}, got {_json_type(value)}"))
        return problems
    if isinstance(value, str):
        problems.extend(_string_problems(value, schema, path))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        problems.extend(_number_problems(value, schema, path))
    elif isinstance(value, list):
        problems.extend(_array_problems(value, schema, path, root))
    elif isinstance(value, dict):
        problems.extend(_object_problems(value, schema, path, root))
    return problems


def _deref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    if not isinstance(target, Mapping):
        return {}
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    return []


def _type_fits(value: Any, schema: Mapping[str, Any]) -> bool:
    types = _types(schema)
    return not types or any(_is_type(value, t) for t in types)


def _describe(schema: Mapping[str, Any]) -> str:
    types = _types(schema)
    if types:
        return "/".join(types)
    if "const" in schema:
        return repr(schema["const"])
    return "a value of another shape"


def _string_problems(value: str, schema: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    out = []
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        out.append((path, f"must have at least {low} characters"))
    if isinstance(high, int) and len(value) > high:
        out.append((path, f"must have at most {high} characters"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                out.append((path, f"must match {pattern!r}"))
        except re.error:
            pass
    return out


def _number_problems(
    value: float, schema: Mapping[str, Any], path: str
) -> list[tuple[str, str]]:
    out = []
    checks: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
        ("minimum", lambda v, b: v >= b, "≥"),
        ("maximum", lambda v, b: v <= b, "≤"),
        ("exclusiveMinimum", lambda v, b: v > b, ">"),
        ("exclusiveMaximum", lambda v, b: v < b, "<"),
    )
    for key, fits, sign in checks:
        bound = schema.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool) and not fits(
            value, bound
        ):
            out.append((path, f"must be {sign} {bound}"))
    return out


def _array_problems(
    value: list[Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]
) -> list[tuple[str, str]]:
    out = []
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        out.append((path, f"must have at least {low} items, has {len(value)}"))
    if isinstance(high, int) and len(value) > high:
        out.append((path, f"must have at most {high} items, has {len(value)}"))
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    for index, (item, item_schema) in enumerate(zip(value, prefix, strict=False)):
        out.extend(schema_problems(item, item_schema, f"{path}[{index}]", root))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index in range(len(prefix), len(value)):
            out.extend(schema_problems(value[index], items, f"{path}[{index}]", root))
    return out


def _object_problems(
    value: dict[str, Any], schema: Mapping[str, Any], path: str, root: Mapping[str, Any]
) -> list[tuple[str, str]]:
    out = []
    for name in schema.get("required") or ():
        if name not in value:
            out.append((f"{path}.{name}", "required field is missing"))
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            out.extend(schema_problems(item, properties[name], f"{path}.{name}", root))
        elif extra is False:
            known = ", ".join(properties) or "(none)"
            out.append((f"{path}.{name}", f"unknown field; fields: {known}"))
        elif isinstance(extra, Mapping):
            out.extend(schema_problems(item, extra, f"{path}.{name}", root))
    return out


# ---------------------------------------------------------------------------- widget


class EventEditor(Vertical):
    """A JSON editor for one CloudEvent, with the problems of what is typed below it."""

    DEFAULT_CSS: ClassVar[str] = """
    EventEditor {
        height: 1fr;
    }
    EventEditor > TextArea {
        height: 1fr;
    }
    EventEditor > #event-problems {
        height: auto;
        max-height: 8;
        padding: 0 1;
        color: $text-success;
    }
    EventEditor > #event-problems.-invalid {
        color: $text-error;
    }
    """

    class Checked(Message):
        """The text was checked (after an edit settled, or on demand)."""

        def __init__(self, editor: EventEditor, result: CheckResult) -> None:
            super().__init__()
            self.editor = editor
            self.result = result

        @property
        def control(self) -> EventEditor:
            return self.editor

    def __init__(
        self,
        *,
        debounce: float = 0.15,
        id: str | None = None,  # noqa: A002 - Textual's name for it
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.debounce = debounce
        """Seconds without an edit before the text is checked."""
        self.artifact = ""
        self.kind = ""
        self.handlers: list[str] = []
        self.schema: dict[str, Any] = {}
        self.payload_type: PayloadTypeOf | None = None
        self.result = CheckResult(None, [Problem("json", "event", "nothing loaded yet")])
        """The last check's result."""
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        editor = TextArea.code_editor("", language="json", id="event-json", soft_wrap=False)
        editor.border_title = "Event (CloudEvents JSON)"
        yield editor
        yield Static("", id="event-problems")

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#event-json", TextArea)

    @property
    def text(self) -> str:
        return self.text_area.text

    def set_target(
        self,
        *,
        artifact: str,
        kind: str,
        handlers: Sequence[str],
        schema: Mapping[str, Any],
        payload_type: PayloadTypeOf | None,
    ) -> None:
        """Say which artifact the event is for; the text is checked again."""
        self.artifact, self.kind = artifact, kind
        self.handlers = list(handlers)
        self.schema = dict(schema)
        self.payload_type = payload_type
        if self.is_mounted:
            self.check_now()

    def load_text(self, text: str) -> None:
        """Replace the text (undo history starts anew) and check it at once."""
        self.text_area.load_text(text)
        self.text_area.cursor_location = (0, 0)
        self.check_now()

    def load_event(self, event: Event) -> None:
        """Show `event` as CloudEvents JSON."""
        self.load_text(json.dumps(event.to_cloudevent(), indent=2, default=str) + "\n")

    def on_text_area_changed(self, message: TextArea.Changed) -> None:
        message.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.debounce, self.check_now, name="event-check")

    def check_now(self) -> CheckResult:
        """Check the text now (cancelling a pending check) and show the result."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.result = check_event(
            self.text, artifact=self.artifact, kind=self.kind, handlers=self.handlers,
            schema=self.schema, payload_type=self.payload_type,
        )
        self._show(self.result)
        self.post_message(self.Checked(self, self.result))
        return self.result

    def _show(self, result: CheckResult) -> None:
        panel = self.query_one("#event-problems", Static)
        panel.set_class(not result.ok, "-invalid")
        panel.update(describe_result(result))


def describe_result(result: CheckResult) -> Text:
    """The text under the editor: a one-line verdict, then one line per problem."""
    if result.ok:
        assert result.event is not None
        parts = ["✓ valid"]
        if result.event.handler:
            parts.append(f"handler {result.event.handler}")
        if result.payload:
            parts.append(f"payload {result.payload}")
        return Text(" · ".join(parts))
    count = len(result.problems)
    head = f"✗ {count} problem{'s' if count != 1 else ''}"
    if result.event is None:
        head += " (cannot send: the text is not an event)"
    out = Text(head)
    for problem in result.problems:
        out.append("\n  ")
        out.append(problem.where, style="bold")
        out.append(f": {problem.message}")
    return out
