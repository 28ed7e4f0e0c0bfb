"""Where keys are in a TOML file, and TOML files read with located errors.

`tomllib` parses a document but forgets where each key was; error messages want
`Config.toml:12`. `key_lines()` scans the text once and maps every key path — table headers
(`[a]`, `[a.b]`, `[[a]]`), `key = value` lines (dotted keys too), keys of inline tables and
elements of arrays (by index, as pydantic reports them in an error's `loc`) — to the 1-based
line it starts on. The scan is tolerant: a line it does not understand is skipped, never
raised on, because it only ever adds line numbers to errors found elsewhere.

Imports nothing from the rest of the project except the error tree.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, ProjectError

__all__ = ["TomlFile", "key_lines", "read_toml", "syntax_error_position"]

KeyPath = tuple[str, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]*")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


class _ScanError(Exception):
    """The scanner met something it does not understand; it skips to the next line."""


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.found: dict[KeyPath, int] = {}

    # ------------------------------------------------------------------ helpers

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def record(self, path: KeyPath, pos: int, *, implicit: bool = False) -> None:
        if implicit:
            self.found.setdefault(path, self.line_at(pos))
        else:
            self.found[path] = self.line_at(pos)

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_blank(self) -> None:
        """Skip whitespace, newlines and comments (between statements and in arrays)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def expect(self, token: str) -> None:
        self.skip_spaces()
        if not self.peek(token):
            raise _ScanError(token)
        self.pos += len(token)

    # ------------------------------------------------------------------ grammar

    def basic_string(self) -> str:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\":
                self.pos += 2
            elif ch == '"':
                self.pos += 1
                raw = self.text[start : self.pos]
                try:
                    return str(json.loads(raw))
                except ValueError:
                    return raw[1:-1]
            elif ch == "\n":
                raise _ScanError("unterminated string")
            else:
                self.pos += 1
        raise _ScanError("unterminated string")

    def literal_string(self) -> str:
        end = self.text.find("'", self.pos + 1)
        if end < 0 or "\n" in self.text[self.pos : end]:
            raise _ScanError("unterminated string")
        value = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def multiline_string(self, quote: str) -> None:
        self.pos += 3
        while self.pos < len(self.text):
            if quote == '"' and self.text[self.pos] == "\\":
                self.pos += 2
            elif self.peek(quote * 3):
                self.pos += 3
                # up to two quotes may sit right before the closing delimiter
                extra = 0
                while extra < 2 and self.peek(quote):
                    self.pos += 1
                    extra += 1
                return
            else:
                self.pos += 1
        raise _ScanError("unterminated multi-line string")

    def key(self) -> KeyPath:
        parts: list[str] = []
        while True:
            self.skip_spaces()
            if self.peek('"'):
                parts.append(self.basic_string())
            elif self.peek("'"):
                parts.append(self.literal_string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    raise _ScanError("key")
                parts.append(match.group())
                self.pos = match.end()
            self.skip_spaces()
            if self.peek("."):
                self.pos += 1
                continue
            return tuple(parts)

    def keyval(self, prefix: KeyPath) -> None:
        start = self.pos
        key = self.key()
        self.expect("=")
        for i in range(1, len(key)):
            self.record(prefix + key[:i], start, implicit=True)
        self.record(prefix + key, start)
        self.value(prefix + key)

    def value(self, path: KeyPath) -> None:
        self.skip_spaces()
        if self.peek('"""') or self.peek("'''"):
            self.multiline_string(self.text[self.pos])
        elif self.peek('"'):
            self.basic_string()
        elif self.peek("'"):
            self.literal_string()
        elif self.peek("["):
            self.array(path)
        elif self.peek("{"):
            self.inline_table(path)
        else:
            match = _SCALAR.match(self.text, self.pos)
            if match is None or not match.group().strip():
                raise _ScanError("value")
            self.pos = match.end()

    def array(self, path: KeyPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_blank()
            if self.pos >= len(self.text):
                raise _ScanError("unterminated array")
            if self.peek("]"):
                self.pos += 1
                return
            self.record((*path, str(index)), self.pos)
            self.value((*path, str(index)))
            index += 1
            self.skip_blank()
            if self.peek(","):
                self.pos += 1
            elif not self.peek("]"):
                raise _ScanError("array")

    def inline_table(self, path: KeyPath) -> None:
        self.pos += 1
        while True:
            self.skip_spaces()
            if self.peek("}"):
                self.pos += 1
                return
            self.keyval(path)
            self.skip_spaces()
            if self.peek(","):
                self.pos += 1
            elif not self.peek("}"):
                raise _ScanError("inline table")

    def document(self) -> dict[KeyPath, int]:
        table: KeyPath = ()
        array_counts: dict[KeyPath, int] = {}
        while True:
            self.skip_blank()
            if self.pos >= len(self.text):
                return self.found
            start = self.pos
            try:
                if self.peek("[["):
                    self.pos += 2
                    key = self.key()
                    self.expect("]]")
                    index = array_counts.get(key, -1) + 1
                    array_counts[key] = index
                    for i in range(1, len(key)):
                        self.record(key[:i], start, implicit=True)
                    self.record(key, start, implicit=True)
                    table = (*key, str(index))
                    self.record(table, start)
                elif self.peek("["):
                    self.pos += 1
                    key = self.key()
                    self.expect("]")
                    for i in range(1, len(key)):
                        self.record(key[:i], start, implicit=True)
                    self.record(key, start)
                    table = key
                else:
                    self.keyval(table)
                self.skip_spaces()
                if self.peek("#") or self.peek("\n") or self.peek("\r"):
                    self.skip_line()
            except _ScanError:
                self.pos = max(self.pos, start)
                self.skip_line()


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path of a TOML document to the 1-based line where it is defined.

    Args:
        text: the TOML source.

    Returns:
        `{("orders",): 3, ("orders", "max_items"): 4, ("orders", "ids", "0"): 5, ...}`;
        array elements and array-of-tables entries are keyed by their index as a string.
    """
    return _Scanner(text).document()


def syntax_error_position(
    exc: tomllib.TOMLDecodeError, text: str
) -> tuple[str, int | None, int | None]:
    """Split tomllib's message into the reason, the line and the column.

    Args:
        exc: the error tomllib raised.
        text: the document it was parsing (an error "at end of document" gets its last line).

    Returns:
        `(reason, line, column)`; line and column are None when tomllib did not say.
    """
    message = str(exc)
    match = _AT_LINE.search(message)
    if match is not None:
        return message[: match.start()], int(match.group(1)), int(match.group(2))
    match = _AT_END.search(message)
    if match is not None:
        return f"{message[: match.start()]} at the end of the file", text.count("\n") + 1, None
    return message, None, None


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A parsed TOML file that remembers where its keys are."""

    name: str
    """The file as messages name it (relative to the project root)."""
    path: Path
    data: dict[str, Any]
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def line(self, *path: str | int) -> int | None:
        """The line of `path`, or of its deepest enclosing key that is in the file.

        Args:
            *path: key path components; ints (list indexes in pydantic locs) are accepted.
        """
        keys = tuple(str(p) for p in path)
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return None

    def has(self, *path: str) -> bool:
        """Whether the parsed data holds a value at `path`."""
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def get(self, *path: str) -> Any:
        """The value at `path` (KeyError when absent, see `has`)."""
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict):
                raise KeyError(part)
            node = node[part]
        return node


def read_toml(path: Path, name: str, error: type[ProjectError] = ConfigError) -> TomlFile:
    """Read and parse a TOML file.

    Args:
        path: the file.
        name: how messages name it, e.g. `Config.toml`.
        error: the error class to raise (a ProjectError subclass).

    Raises:
        ProjectError: (of class `error`) the file cannot be read or does not parse; the
            error carries the file and, for syntax errors, the line.
    """
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{name} is not valid UTF-8 text ({exc.reason} at byte {exc.start}). Save it as UTF-8.",
            file=name,
        ) from exc
    except OSError as exc:
        raise error(f"Cannot read {name}: {exc.strerror or exc}.", file=name) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason, line, column = syntax_error_position(exc, text)
        where = (
            ""
            if line is None
            else f" (line {line}, column {column})"
            if column
            else (f" (line {line})")
        )
        raise error(
            f"{name} is not valid TOML: {reason}{where}. Fix the syntax there.",
            file=name,
            line=line,
            title="Invalid TOML",
        ) from exc
    return TomlFile(name=name, path=path, data=data, lines=key_lines(text))
