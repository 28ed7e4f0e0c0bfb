"""Redaction of secrets from events and outcomes before they are stored.

The capture store keeps every event and its outcome on disk, so credentials that travel in
headers or payloads must not land there. A `Redactor` applies two rules:

- **Header rule**: header names matched case-insensitively against glob patterns
  (`authorization`, `*-signature`, `*token*`; `*` is any run of characters, `?` one
  character). Headers live under any transport key whose name ends in `headers`
  (`headers`, `response_headers`, ...), either as a dict or as a list of `[name, value]`
  pairs (the order and duplicates of HTTP, Kafka and mail headers survive). The value of a
  matching header becomes `"[redacted]"`. A header whose name matches a field pattern is
  redacted too.
- **Field rule**: regular expressions searched case-insensitively in the keys of JSON
  objects (`password` matches `password`, `user_password` and `PasswordHash`). It applies
  to the payload when the payload parses as a JSON object or array (the payload is then
  re-serialised compactly), to the keys of the transport dict at any depth, to the
  handler's result, and to the keys of the `sent` entries of an outcome (outbound calls,
  replies), whose headers follow the header rule and whose JSON bodies the field rule.

Values of matching keys are replaced whole, whatever their type. Payloads that are not
JSON are left as they are. The input objects are never modified: the redacted parts are
copies, built only where something changed.

Both rules are compiled into one regular expression each and the verdict for every name
seen is cached. When every field pattern is a plain word (the defaults are), a payload whose
text contains none of the words is not parsed at all. Redaction costs a few microseconds
per event.

This module imports only `workbench.events`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pydantic_core import to_json

from workbench.events import Event, Outcome

__all__ = [
    "DEFAULT_REDACT_FIELDS",
    "DEFAULT_REDACT_HEADERS",
    "REDACTED",
    "Redactor",
    "compact_json",
    "compile_field_patterns",
    "compile_header_patterns",
]

REDACTED = "[redacted]"
"""What a redacted value is replaced with."""

DEFAULT_REDACT_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-twilio-signature",
    "*-signature",
    "*token*",
)
"""Header name globs redacted by default (case-insensitive)."""

DEFAULT_REDACT_FIELDS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "credential",
    "private_key",
    "privatekey",
    "private-key",
)
"""JSON key patterns redacted by default (regular expressions, searched case-insensitively).

They are plain words on purpose: when every pattern is a plain word, a payload that contains
none of them (compared in lower case) is not even parsed."""

_CACHE_LIMIT = 8192
"""Names remembered per rule before the verdict cache starts over."""

_PLAIN, _SECRET, _HEADERS, _BODY = 0, 1, 2, 3
"""What a transport key holds: an ordinary value, a secret, headers, or maybe a JSON body."""

_BODY_KEYS = frozenset({"body", "data", "payload", "json", "content"})
"""Keys of `sent` entries whose string value may be a JSON document worth redacting."""



def _make_compact_encoder() -> Callable[[Any], str]:
    fallback = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, check_circular=False, default=str
    )
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return fallback.encode
    # The C encoder that JSONEncoder.encode builds on every call, built once: a capture
    # encodes two documents per event, and the per-call set-up is a quarter of the cost.
    chunks = c_make_encoder(
        None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode(value: Any) -> str:
        # pydantic-core's serialiser (Rust) is about three times faster than the C
        # encoder; lone surrogates and the like it refuses go the stdlib way.
        try:
            return to_json(value, fallback=str).decode("utf-8")
        except (ValueError, TypeError, UnicodeError):
            pass
        cls = type(value)
        if cls is dict or cls is list:
            return "".join(chunks(value, 0))
        return fallback.encode(value)

    return encode


compact_json: Callable[[Any], str] = _make_compact_encoder()
"""Compact JSON (no spaces, UTF-8 kept), as pydantic serialises: datetimes in ISO 8601,
sets and tuples as lists, bytes as text, models dumped; other values JSON does not know
as their `str()`. Text pydantic refuses (lone surrogates) goes through the stdlib encoder."""

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_\-]+")
"""A field pattern that is a plain word: as a regex it matches exactly that text."""


def _glob_to_regex(glob: str) -> str:
    return re.escape(glob).replace(r"\*", ".*").replace(r"\?", ".")


def _cached_search(cache: dict[str, bool], regex: re.Pattern[str] | None, text: str) -> bool:
    """`regex.search(text)` as a bool, remembered (names repeat on every event)."""
    hit = cache.get(text)
    if hit is None:
        hit = regex is not None and regex.search(text) is not None
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = hit
    return hit


def compile_header_patterns(globs: Iterable[str]) -> str:
    """The regular expression (source) that matches a whole header name against `globs`.

    Raises:
        ValueError: a glob is empty.
    """
    parts = []
    for glob in globs:
        if not glob.strip():
            raise ValueError("a header pattern must not be empty")
        parts.append(_glob_to_regex(glob.strip()))
    return f"^(?:{'|'.join(parts)})$" if parts else ""


def compile_field_patterns(patterns: Iterable[str]) -> str:
    """The regular expression (source) that searches a key for any of `patterns`.

    Raises:
        ValueError: a pattern is empty or is not a valid regular expression.
    """
    parts = []
    for pattern in patterns:
        if not pattern:
            raise ValueError("a field pattern must not be empty")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"the field pattern {pattern!r} is not a regular expression: {exc}"
            ) from exc
        parts.append(f"(?:{pattern})")
    return "|".join(parts)


def _compile(sources: Iterable[str]) -> re.Pattern[str] | None:
    joined = "|".join(s for s in sources if s)
    return re.compile(joined, re.IGNORECASE) if joined else None


class Redactor:
    """Replaces secrets in events and outcomes with `"[redacted]"`.

    Args:
        headers: Header name globs (see the module docstring); matched whole,
            case-insensitively.
        fields: Regular expressions searched case-insensitively in JSON object keys.

    Raises:
        ValueError: a pattern is empty or invalid.
    """

    def __init__(
        self,
        headers: Iterable[str] = DEFAULT_REDACT_HEADERS,
        fields: Iterable[str] = DEFAULT_REDACT_FIELDS,
    ) -> None:
        fields = list(fields)
        headers = [glob.strip() for glob in headers]
        header_source = compile_header_patterns(headers)
        field_source = compile_field_patterns(fields)
        self._field_re = _compile([field_source])
        # A header is redacted when its name matches a header glob or a field pattern.
        self._header_re = _compile([header_source, field_source])
        self._field_cache: dict[str, bool] = {}
        self._header_cache: dict[str, bool] = {}
        self._kind_cache: dict[str, int] = {}
        # A key can only match plain-word patterns if the raw JSON text contains one of the
        # words (ASCII text without \u escapes, compared in lower case).
        self._field_words: re.Pattern[bytes] | None = (
            _any_word([f.lower() for f in fields])
            if fields and all(_PLAIN_WORD.fullmatch(f) for f in fields)
            else None
        )
        # Likewise for a whole transport dict: a header name can only match a glob if it
        # contains the glob's longest literal part.
        literals = [_literal_part(glob) for glob in headers]
        self._transport_words: re.Pattern[bytes] | None = (
            _any_word([*literals, *(f.lower() for f in fields)])
            if self._field_words is not None and literals and all(literals)
            and all(word.isascii() for word in literals)
            else None
        )

    # ------------------------------------------------------------------ verdicts

    def is_secret_header(self, name: str) -> bool:
        """True if a header called `name` is redacted."""
        return _cached_search(self._header_cache, self._header_re, name)

    def is_secret_field(self, key: str) -> bool:
        """True if the value under the JSON key `key` is redacted."""
        return _cached_search(self._field_cache, self._field_re, key)

    # ------------------------------------------------------------------ public API

    def redact_event(self, event: Event) -> Event:
        """A copy of `event` with secret headers, transport keys and payload fields redacted.

        The copy keeps the id, time and every other attribute of the event.
        """
        transport, data = self.redact_event_parts(event)
        return dataclasses.replace(event, transport=transport, data=data)

    def redact_outcome(self, outcome: Outcome) -> Outcome:
        """A copy of `outcome` with secret keys of the result and of `sent` redacted."""
        result, sent = self.redact_outcome_parts(outcome)
        return dataclasses.replace(outcome, result=result, sent=sent)

    def redact_event_parts(self, event: Event) -> tuple[dict[str, Any], bytes]:
        """The redacted `(transport, data)` of `event`.

        Each is the original object when nothing in it needed redacting, so callers must
        treat both as read-only.
        """
        return self.redact_transport(event.transport), self.redact_payload(event.data)

    def redact_outcome_parts(self, outcome: Outcome) -> tuple[Any, list[dict[str, Any]]]:
        """The redacted `(result, sent)` of `outcome` (originals when unchanged, read-only)."""
        result = self.redact_json(outcome.result)
        sent: list[dict[str, Any]] = outcome.sent
        new_sent: list[dict[str, Any]] | None = None
        for index, entry in enumerate(sent):
            red = self._redact_sent_entry(entry) if isinstance(entry, dict) else entry
            if red is not entry:
                if new_sent is None:
                    new_sent = list(sent)
                new_sent[index] = red
        return result, (new_sent if new_sent is not None else sent)

    def redact_transport(self, transport: dict[str, Any]) -> dict[str, Any]:
        """`transport` with header values and secret keys redacted (original if unchanged).

        Header lists under `*headers` keys follow the header rule at any depth (the
        records of a batch event carry their own headers). A bulky transport (a list of
        more than `_BULKY` items) whose JSON text contains no header or field pattern word
        is returned without walking it; small ones are walked, which is cheaper.
        """
        words = self._transport_words
        if words is not None and _is_bulky(transport):
            try:
                text = to_json(transport, fallback=str)
            except (ValueError, TypeError, UnicodeError):
                text = b"\\u"
            if text.isascii() and b"\\u" not in text and words.search(text.lower()) is None:
                return transport
        return self._redact_mapping(transport, body_keys=False)

    def redact_payload(self, data: bytes) -> bytes:
        """`data` with secret keys redacted when it is a JSON object or array.

        Anything else (text, binary, a JSON scalar, invalid JSON) comes back unchanged.
        """
        if not _looks_like_json_container(data) or not self._may_hold_secret_key(data):
            return data
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return data
        red = self.redact_json(parsed)
        if red is parsed:
            return data
        return compact_json(red).encode("utf-8")

    def redact_json(self, value: Any) -> Any:
        """A JSON value with the values of secret keys replaced, at any depth.

        Returns `value` itself when nothing matched.
        """
        if isinstance(value, dict):
            return self._redact_json_dict(value)
        if isinstance(value, list):
            return self._redact_json_list(value)
        return value

    # ------------------------------------------------------------------ internals

    def _may_hold_secret_key(self, data: bytes) -> bool:
        """False only when no key of the JSON text `data` can match a field pattern."""
        words = self._field_words
        if words is None:
            return self._field_re is not None
        if not data.isascii() or b"\\u" in data:
            return True
        return words.search(data.lower()) is not None

    def _redact_json_dict(self, value: dict[Any, Any]) -> dict[Any, Any]:
        out: dict[Any, Any] | None = None
        cache = self._field_cache
        for key, item in value.items():
            hit = cache.get(key)
            if hit is None:
                hit = isinstance(key, str) and self.is_secret_field(key)
            if hit:
                new: Any = REDACTED
            elif type(item) is dict:
                new = self._redact_json_dict(item)
            elif type(item) is list:
                new = self._redact_json_list(item)
            else:
                continue
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _redact_json_list(self, value: list[Any]) -> list[Any]:
        return self._redact_list(value, self._redact_json_dict)

    def _redact_list(
        self, value: list[Any], redact_dict: Callable[[dict[Any, Any]], dict[Any, Any]]
    ) -> list[Any]:
        """`redact_dict` applied to each object of a list, at any depth of nested lists."""
        out: list[Any] | None = None
        for index, item in enumerate(value):
            if isinstance(item, dict):
                new: Any = redact_dict(item)
            elif isinstance(item, list):
                new = self._redact_list(item, redact_dict)
            else:
                continue
            if new is not item:
                if out is None:
                    out = list(value)
                out[index] = new
        return value if out is None else out

    def _key_kind(self, key: str) -> int:
        kind = self._kind_cache.get(key)
        if kind is None:
            lowered = key.lower()
            if self.is_secret_field(key):
                kind = _SECRET
            elif lowered.endswith("headers"):
                kind = _HEADERS
            elif lowered in _BODY_KEYS:
                kind = _BODY
            else:
                kind = _PLAIN
            if len(self._kind_cache) >= _CACHE_LIMIT:
                self._kind_cache.clear()
            self._kind_cache[key] = kind
        return kind

    def _redact_mapping(self, value: dict[Any, Any], *, body_keys: bool) -> dict[Any, Any]:
        """Field rule on the keys; header rule under `*headers` keys; JSON bodies if asked."""
        out: dict[Any, Any] | None = None
        cache = self._kind_cache
        for key, item in value.items():
            try:
                kind = cache[key]
            except (KeyError, TypeError):
                if not isinstance(key, str):
                    continue
                kind = self._key_kind(key)
            if kind == _SECRET:
                new: Any = REDACTED
            elif kind == _HEADERS:
                new = self._redact_headers(item)
            else:
                cls = type(item)
                if cls is str:
                    if kind != _BODY or not body_keys:
                        continue
                    new = self._redact_text_body(item)
                elif cls is dict or isinstance(item, dict):
                    new = self._redact_mapping(item, body_keys=body_keys)
                elif cls is list or isinstance(item, list):
                    # objects in lists (a batch's records) follow the same rules
                    new = self._redact_list(
                        item, functools.partial(self._redact_mapping, body_keys=body_keys)
                    )
                else:
                    continue
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _redact_headers(self, headers: Any) -> Any:
        cache = self._header_cache
        if isinstance(headers, list):
            pairs: list[Any] | None = None
            for index, pair in enumerate(headers):
                try:
                    hit = cache[pair[0]]
                except (KeyError, TypeError, IndexError):
                    if type(pair) not in (list, tuple) or len(pair) != 2:
                        continue
                    if not isinstance(pair[0], str):
                        continue
                    hit = self.is_secret_header(pair[0])
                if hit and type(pair) in (list, tuple) and len(pair) == 2:
                    if pairs is None:
                        pairs = list(headers)
                    pairs[index] = [pair[0], REDACTED]
            return headers if pairs is None else pairs
        if isinstance(headers, dict):
            out: dict[Any, Any] | None = None
            for name in headers:
                known = cache.get(name)
                if known is None:
                    known = isinstance(name, str) and self.is_secret_header(name)
                if known:
                    if out is None:
                        out = dict(headers)
                    out[name] = REDACTED
            return headers if out is None else out
        return headers

    def _redact_sent_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        return self._redact_mapping(entry, body_keys=True)

    def _redact_text_body(self, text: str) -> str:
        stripped = text.lstrip()
        if not stripped or stripped[0] not in "{[":
            return text
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return text
        red = self.redact_json(parsed)
        return text if red is parsed else compact_json(red)


_BULKY = 16
"""Items of a list in a transport from which searching its JSON text beats walking it."""


def _is_bulky(transport: dict[str, Any]) -> bool:
    for value in transport.values():
        if type(value) is list and len(value) > _BULKY:
            return True
    return False


def _any_word(words: list[str]) -> re.Pattern[bytes]:
    """A bytes pattern that finds any of the ASCII `words`. A word that contains another
    is left out (the shorter one finds it too): fewer alternatives, and fewer first
    characters the engine stops at, make the search several times faster."""
    unique = set(words)
    minimal = sorted(w for w in unique if not any(o != w and o in w for o in unique))
    return re.compile(b"|".join(re.escape(w.encode("ascii")) for w in minimal))


def _literal_part(glob: str) -> str:
    """The longest run of a header glob without `*` or `?`, in lower case ("" if none)."""
    return max(re.split(r"[*?]", glob.lower()), key=len, default="")


def _looks_like_json_container(data: bytes) -> bool:
    """Cheap test before parsing: a JSON object or array starts with `{` or `[`."""
    head = data[:1]
    if head == b"{" or head == b"[":
        return True
    return data[:64].lstrip()[:1] in (b"{", b"[")
