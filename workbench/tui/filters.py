"""The event filter of the stream: `artifact:orders status:error timeout`.

Syntax (the help screen shows `FILTER_HELP`):

- `artifact:NAME` (or `a:NAME`): only events of that artifact;
- `kind:KIND` (or `k:KIND`): only that trigger kind (`http`, `files`, ...);
- `status:ok|error|rejected` (or `s:...`): only that outcome status;
- any other word is free text, searched case-insensitively in the event's summary, its
  payload and attributes, and the error type and message. Quote text with spaces:
  `"out of stock"`.

The same filter runs in SQL over the capture store (`query_kwargs`, for history) and in
Python over live events (`matches`), so a filtered view stays filtered as events arrive.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError

STATUSES = ("ok", "error", "rejected")

FILTER_HELP = """\
artifact:NAME   only events of one artifact (short: a:NAME)
kind:KIND       only one trigger kind, e.g. kind:http (short: k:KIND)
status:STATUS   ok, error or rejected (short: s:STATUS)
WORDS           free text in the summary, payload, attributes or error ("quote spaces")
Example:        artifact:orders status:error out of stock
Escape clears the filter; the filter searches the whole capture history."""

_FIELDS = {"artifact": "artifact", "a": "artifact", "kind": "kind", "k": "kind",
           "status": "status", "s": "status"}


class FilterSyntaxError(WorkbenchError):
    """A filter expression that cannot be parsed."""

    title = "Bad filter"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A parsed filter; every given part must match."""

    artifact: str | None = None
    kind: str | None = None
    status: str | None = None
    text: str | None = None

    @property
    def empty(self) -> bool:
        """True when the filter lets everything through."""
        return not (self.artifact or self.kind or self.status or self.text)

    @classmethod
    def parse(cls, expression: str) -> EventFilter:
        """Parse a filter expression (see the module docstring).

        Raises:
            FilterSyntaxError: unbalanced quotes, an unknown status, or a field given twice.
        """
        try:
            words = shlex.split(expression)
        except ValueError as exc:
            raise FilterSyntaxError(
                f"Cannot read the filter {expression!r}: {exc}. Close the quotes, e.g. "
                '"out of stock".'
            ) from exc
        values: dict[str, str] = {}
        text: list[str] = []
        for word in words:
            name, sep, value = word.partition(":")
            field = _FIELDS.get(name.lower()) if sep else None
            if field is None or not value:
                text.append(word)
                continue
            if field in values and values[field] != value:
                raise FilterSyntaxError(
                    f"The filter gives {field} twice ({values[field]!r} and {value!r}); "
                    "give it once."
                )
            values[field] = value
        status = values.get("status")
        if status is not None:
            status = status.lower()
            if status not in STATUSES:
                raise FilterSyntaxError(
                    f"Unknown status {status!r} in the filter; use one of "
                    f"{', '.join(STATUSES)}."
                )
        return cls(
            artifact=values.get("artifact"),
            kind=values.get("kind"),
            status=status,
            text=" ".join(text) or None,
        )

    def query_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `CaptureStore.query` / `count`."""
        return {"artifact": self.artifact, "kind": self.kind, "status": self.status,
                "text": self.text}

    def matches(
        self,
        *,
        artifact: str,
        kind: str,
        status: str,
        haystack: str,
    ) -> bool:
        """Whether a live event matches.

        Args:
            artifact: the event's artifact.
            kind: its trigger kind.
            status: its outcome status.
            haystack: text to search for the free-text part (summary, payload,
                attributes, error), in any case.
        """
        if self.artifact is not None and artifact != self.artifact:
            return False
        if self.kind is not None and kind != self.kind:
            return False
        if self.status is not None and status != self.status:
            return False
        return not self.text or self.text.lower() in haystack.lower()

    def describe(self) -> str:
        """The filter written back in its own syntax."""
        parts = [
            f"{name}:{value}"
            for name, value in (("artifact", self.artifact), ("kind", self.kind),
                                ("status", self.status))
            if value is not None
        ]
        if self.text:
            parts.append(shlex.quote(self.text) if " " in self.text else self.text)
        return " ".join(parts)
