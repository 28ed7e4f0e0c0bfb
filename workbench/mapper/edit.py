"""Change a mapping file and write it back, keeping its comments, order and layout.

Every function takes the file's text and returns new text (nothing is written until
`write_mapping`), so an editor can keep the texts for undo. `FieldEdit` is the same as a
small command object: `apply()` returns the new text and the edit that undoes it.

    text = set_expression(text, "customer", "src.customer.lower()")
    text = set_expression(text, "lines[].sku", "item.sku")        # inside an each rule
    text = set_option(text, "note", "default", "")                # a rule option
    text = delete_field(text, "billing.street")
    new, undo = FieldEdit("total", "order_total(src)").apply(text)

Paths are target field paths: `a.b` for a nested model's field, `a[].b` for a field of the
elements of an `each` rule. Missing nested tables are created; the elements of a list need an
existing `each` rule.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable, Item, String, Table

from workbench.errors import WorkbenchError
from workbench.mapper.spec import RULE_MARKERS


class EditError(WorkbenchError):
    """An edit cannot be applied to the file (a path through something that is not a
    table, a list field without an `each` rule)."""

    title = "Cannot edit the mapping"


_Node = Any  # TOMLDocument | Table | InlineTable


def _segments(path: str) -> list[tuple[str, bool]]:
    """`lines[].sku` → [("lines", True), ("sku", False)]."""
    out: list[tuple[str, bool]] = []
    for part in path.split("."):
        each = part.endswith("[]")
        name = part[:-2] if each else part
        if not name.isidentifier():
            raise EditError(f"{path!r} is not a field path (write a.b, or a[].b for list "
                            "elements)")
        out.append((name, each))
    if out[-1][1]:
        raise EditError(f"{path!r} ends in []: name a field of the elements (a[].b)")
    return out


def _is_rule(item: Any) -> bool:
    return isinstance(item, Table | InlineTable | dict) and any(m in item for m in RULE_MARKERS)


def _new_table(parent: _Node) -> Table | InlineTable:
    return tomlkit.inline_table() if isinstance(parent, InlineTable) else tomlkit.table()


def _string(text: str) -> String:
    if "\n" in text:
        return tomlkit.string(text, multiline=True, literal="'''" not in text)
    if '"' in text and "'" not in text:
        return tomlkit.string(text, literal=True)
    return tomlkit.string(text)


def _fields_root(doc: tomlkit.TOMLDocument, create: bool) -> _Node:
    if "fields" not in doc:
        if not create:
            raise EditError("the mapping has no [fields] table")
        doc.add(tomlkit.nl())
        doc.add("fields", tomlkit.table())
    return doc["fields"]


def _container(doc: tomlkit.TOMLDocument, path: str, create: bool) -> tuple[_Node, str]:
    segments = _segments(path)
    node = _fields_root(doc, create)
    walked: list[str] = []
    for name, each in segments[:-1]:
        walked.append(name + ("[]" if each else ""))
        child = node.get(name)
        if child is None:
            if not create or each:
                what = "an each rule" if each else "a table"
                raise EditError(f"{'.'.join(walked)!r} does not exist; add {what} for it first")
            node[name] = _new_table(node)
            child = node[name]
        if each:
            if not _is_rule(child) or "each" not in child:
                raise EditError(f"{'.'.join(walked)!r} is not a list rule (each = \"...\")")
            if "fields" not in child:
                if not create:
                    raise EditError(f"{'.'.join(walked)!r} has no element fields")
                if "expr" in child:
                    raise EditError(f"the elements of {'.'.join(walked)!r} are given by its expr")
                child["fields"] = _new_table(child)
            node = child["fields"]
        elif _is_rule(child):
            if "fields" not in child:
                raise EditError(f"{'.'.join(walked)!r} is given by an expression, not by fields")
            node = child["fields"]
        elif isinstance(child, Table | InlineTable):
            node = child
        else:
            if not create:
                raise EditError(f"{'.'.join(walked)!r} is not a table")
            node[name] = _new_table(node)
            node = node[name]
    return node, segments[-1][0]


def _plain(item: Any) -> Any:
    if isinstance(item, Item):
        return item.unwrap()
    return item


def get_field(text: str, path: str) -> Any:
    """The raw value at a field path (an expression string, a rule dict, a constant), or
    None when the field is not mapped."""
    doc = tomlkit.parse(text)
    try:
        node, key = _container(doc, path, create=False)
    except EditError:
        return None
    return _plain(node.get(key)) if key in node else None


def set_expression(text: str, path: str, expr: str) -> str:
    """Map field `path` by the expression `expr` (a rule keeps its other options)."""
    doc = tomlkit.parse(text)
    node, key = _container(doc, path, create=True)
    current = node.get(key)
    if _is_rule(current):
        if "const" in current:
            del current["const"]
        if "each" in current and "fields" in current:
            del current["fields"]
        current["expr"] = _string(expr)
    else:
        node[key] = _string(expr)
    return tomlkit.dumps(doc)


def set_rule(text: str, path: str, rule: Mapping[str, Any]) -> str:
    """Replace the rule of field `path` by a table of options (`{"each": ..., "fields":
    {...}}`); small rules are written inline."""
    doc = tomlkit.parse(text)
    node, key = _container(doc, path, create=True)
    flat = all(not isinstance(v, Mapping) for v in rule.values())
    if flat or isinstance(node, InlineTable):
        node[key] = _inline(rule)
    else:
        table = tomlkit.table()
        for option, value in rule.items():
            table[option] = _value(value, inline=False)
        node[key] = table
    return tomlkit.dumps(doc)


def _value(value: Any, *, inline: bool) -> Any:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        if inline:
            return _inline(value)
        table = tomlkit.table()
        for k, v in value.items():
            table[k] = _value(v, inline=False)
        return table
    return value


def _inline(values: Mapping[str, Any]) -> InlineTable:
    """An inline table spaced as people write them: `{ expr = "x", default = 0 }`."""
    parts = []
    for key, value in values.items():
        item = _inline(value) if isinstance(value, Mapping) else _value(value, inline=True)
        rendered = item.as_string() if isinstance(item, Item) else tomlkit.item(item).as_string()
        parts.append(f"{tomlkit.key(key).as_string()} = {rendered}")
    body = ", ".join(parts)
    table = tomlkit.parse(f"x = {{ {body} }}" if body else "x = {}")["x"]
    assert isinstance(table, InlineTable)
    return table


def set_option(text: str, path: str, option: str, value: Any) -> str:
    """Set (or, with None, remove) an option of field `path`'s rule; a plain expression
    becomes a rule `{ expr = ..., option = value }`."""
    doc = tomlkit.parse(text)
    node, key = _container(doc, path, create=value is not None)
    current = node.get(key)
    if current is None:
        if value is None:
            return text
        raise EditError(f"field {path!r} is not mapped; give it an expression first")
    if isinstance(current, String) or isinstance(current, str):
        if value is None:
            return text
        node[key] = _inline({"expr": str(current), option: value})
        return tomlkit.dumps(doc)
    if not _is_rule(current):
        raise EditError(f"field {path!r} is a nested model's table; options belong to rules")
    if value is None:
        if option in current:
            del current[option]
    else:
        current[option] = _value(value, inline=isinstance(current, InlineTable))
    return tomlkit.dumps(doc)


def delete_field(text: str, path: str) -> str:
    """Unmap field `path`; nested tables left empty are removed too."""
    doc = tomlkit.parse(text)
    try:
        node, key = _container(doc, path, create=False)
    except EditError:
        return text
    if key not in node:
        return text
    del node[key]
    segments = _segments(path)
    while len(segments) > 1 and not segments[-2][1]:
        segments = segments[:-1]
        parent_path = ".".join(n + ("[]" if e else "") for n, e in segments)
        parent, pkey = _container(doc, parent_path, create=False)
        child = parent.get(pkey)
        if isinstance(child, Table | InlineTable) and not _is_rule(child) and len(child) == 0:
            del parent[pkey]
        else:
            break
    return tomlkit.dumps(doc)


def new_mapping_text(
    sources: str | Mapping[str, str], target: str, *, uses: Sequence[str] = (),
    description: str = "", fields: Mapping[str, str] | None = None,
) -> str:
    """The text of a new mapping file."""
    doc = tomlkit.document()
    if description:
        doc.add(tomlkit.comment(description))
    head = tomlkit.table()
    if isinstance(sources, str):
        head["source"] = sources
    else:
        head["sources"] = dict(sources)
    head["target"] = target
    if uses:
        head["uses"] = list(uses)
    doc["mapping"] = head
    doc.add(tomlkit.nl())
    table = tomlkit.table()
    for name, expr in (fields or {}).items():
        table[name] = _string(expr)
    doc["fields"] = table
    return tomlkit.dumps(doc)


@dataclass(frozen=True, slots=True)
class FieldEdit:
    """Set (an expression string or a rule dict) or clear (None) one field."""

    path: str
    value: str | Mapping[str, Any] | None

    def apply(self, text: str) -> tuple[str, FieldEdit]:
        """The new text, and the edit that undoes this one."""
        before = get_field(text, self.path)
        if self.value is None:
            new = delete_field(text, self.path)
        elif isinstance(self.value, str):
            new = set_expression(text, self.path, self.value)
        else:
            new = set_rule(text, self.path, self.value)
        undo_value: str | Mapping[str, Any] | None
        if before is None or isinstance(before, str | Mapping):
            undo_value = before
        else:
            undo_value = {"const": before}
        return new, FieldEdit(self.path, undo_value)


def write_mapping(path: Path, text: str) -> None:
    """Replace the file atomically (a watcher never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
