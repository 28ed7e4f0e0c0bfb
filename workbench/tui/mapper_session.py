"""The data mapper's editing session, as plain data: the mapping's text with undo and redo,
what the text means (trees, problems by field, the preview over a sample), samples,
completion, linking and the editor's view of a rule.

No widget here: the mapper screen (`workbench.tui.screens.mapper`) shows an `Analysis`
and turns keys into calls on a `MapperSession`. Everything comes from the `Runtime` (its
mapping registry, capture store, artifacts and settings) and the mapper core
(`workbench.mapper`: `edit` for every change, `schema` for trees and auto-map, `evaluate`
for the field-by-field preview). `analyze` and `collect_samples` are safe to run in a
thread: they read the runtime and write nothing.

Undo keeps the core's `FieldEdit`s and the inverses they return (the status line names
them), and the exact text before each change: undoing a deletion through its inverse
would put the key back at the end of its table, and the file should come back as it was,
comments and order included.

The mapper core's heavier modules (tomlkit, the checker, the interpreter) are imported
when first used, so listing the mapper's key bindings at startup costs next to nothing.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from workbench.errors import WorkbenchError
from workbench.mapper.helpers import HELPERS, SAFE_BUILTINS
from workbench.mapper.typeinfo import is_model, qualified

if TYPE_CHECKING:
    from workbench.config import ConfigSource
    from workbench.mapper.edit import FieldEdit
    from workbench.mapper.errors import Issue
    from workbench.mapper.registry import MappingRegistry
    from workbench.mapper.resolve import Bound
    from workbench.mapper.schema import Proposal, SchemaNode
    from workbench.mapper.spec import MappingSpec
    from workbench.runtime.runtime import Runtime

__all__ = [
    "NO_VALUE", "Analysis", "Change", "FieldView", "MapperSession", "MapperSessionError",
    "Sample", "analyze", "brief", "check", "collect_samples", "completions", "editor_config",
    "editor_text", "edits_for", "link_expression", "mapping_names", "model_refs",
    "new_session", "output_value", "proposal_edits", "proposals", "run_preview",
    "sample_text", "set_field", "typed_sample",
]

MAX_CAPTURED = 10
"""Captured events offered as samples (the newest)."""
MAX_SCANNED = 200
"""Captures read per artifact to find those that fit the source type."""
MAX_UNDO = 500
"""Changes kept for undo."""
NO_VALUE: Any = object()
"""A field the sample (or the output) has no value for."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.?\Z|\Z")


class MapperSessionError(WorkbenchError):
    """An action of the data mapper cannot be done (a link between fields that do not fit,
    a rule that does not parse, a mapping name that is taken)."""

    title = "Data mapper"


# ---------------------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class Change:
    """One undoable change of the mapping text."""

    label: str
    """What it did, for the status line: `set total`, `auto-map 3 fields`."""
    before: str
    after: str
    edits: tuple[FieldEdit, ...]
    inverse: tuple[FieldEdit, ...]
    """The core's inverse of each edit, last edit first."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One input for the preview."""

    key: str
    """`example`, `capture:<id>`, `file:<name>` or `typed`."""
    label: str
    payload: Any
    """What the sample text shows: the source's payload (several sources: an object keyed
    by source name)."""


def source_values(sources: Sequence[str], payload: Any) -> dict[str, Any]:
    """The value of each source from a sample's payload.

    Raises:
        MapperSessionError: several sources, and the payload is not an object with their
            names as keys.
    """
    if len(sources) == 1:
        return {sources[0]: payload}
    if isinstance(payload, dict) and all(name in payload for name in sources):
        return {name: payload[name] for name in sources}
    raise MapperSessionError(
        f"the mapping has the sources {', '.join(sources)}: the sample must be an object "
        f"with those keys, e.g. {{{', '.join(f'{n!r}: {{...}}' for n in sources)}}}"
        .replace("'", '"')
    )


class MapperSession:
    """The mapping being edited: its text, the saved text, undo and redo.

    Args:
        runtime: the running project.
        name: the mapping's name (`mappings/<name>.toml`).
        text: the text to start from (a new mapping); by default the file's.

    Raises:
        MapperSessionError: the file cannot be read.
    """

    def __init__(self, runtime: Runtime, name: str, text: str | None = None) -> None:
        self.runtime = runtime
        self.name = name
        self.path = mappings_folder(runtime) / f"{name}.toml"
        self.saved: str | None
        """The text on disk (None: the mapping was never saved)."""
        if text is None:
            try:
                text = self.path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise MapperSessionError(
                    f"cannot read the mapping file {str(self.path)!r}: {exc}"
                ) from exc
            self.saved = text
        else:
            self.saved = None
        self.text = text
        self.undo_stack: list[Change] = []
        self.redo_stack: list[Change] = []

    @property
    def dirty(self) -> bool:
        """The text differs from the file (or was never saved)."""
        return self.text != self.saved

    def apply(self, edits: Sequence[FieldEdit], label: str) -> Change:
        """Apply field edits as one change (undone together).

        Raises:
            EditError: an edit does not fit the file; nothing changed.
        """
        text = self.text
        inverse: list[FieldEdit] = []  # the core's inverse edits, last first
        for edit in edits:
            text, undo = edit.apply(text)
            inverse.insert(0, undo)
        change = Change(label, self.text, text, tuple(edits), tuple(inverse))
        if text != self.text:
            self.text = text
            self.undo_stack.append(change)
            del self.undo_stack[:-MAX_UNDO]
            self.redo_stack.clear()
        return change

    def undo(self) -> Change | None:
        """Undo the last change (None when there is none)."""
        if not self.undo_stack:
            return None
        change = self.undo_stack.pop()
        self.text = change.before
        self.redo_stack.append(change)
        return change

    def redo(self) -> Change | None:
        """Redo the last undone change (None when there is none)."""
        if not self.redo_stack:
            return None
        change = self.redo_stack.pop()
        self.text = change.after
        self.undo_stack.append(change)
        return change

    def replace_text(self, text: str, *, saved: bool) -> None:
        """Start over from `text` (the file changed on disk); undo history is dropped."""
        self.text = text
        if saved:
            self.saved = text
        self.undo_stack.clear()
        self.redo_stack.clear()

    def save(self) -> None:
        """Write the text to the file (atomically: a watcher never sees half of it)."""
        from workbench.mapper.edit import write_mapping

        write_mapping(self.path, self.text)
        self.saved = self.text


def mappings_folder(runtime: Runtime) -> Path:
    return runtime.settings.folder("mappings")


def editor_config(runtime: Runtime) -> ConfigSource:
    """Where the inputs of unsaved text get their Config.toml values: a resolver of its
    own for each check (the runtime's records what the project declares, and the editor
    checks the same inputs again on every change)."""
    from workbench.project.config import ConfigResolver

    return ConfigResolver(runtime.root, runtime.profile, runtime.env)


def mapping_names(runtime: Runtime) -> list[str]:
    """The project's mapping files, by name (`mappings/*.toml`)."""
    if runtime.mappings is not None:
        return runtime.mappings.names()
    folder = mappings_folder(runtime)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.toml") if not p.name.startswith("."))


def model_refs(runtime: Runtime) -> list[str]:
    """`module:Class` of every pydantic model in the project's types folder."""
    if runtime.loader is None:
        return []
    from workbench.mapper.resolve import resolve_ref

    out = []
    for entry in runtime.loader.inventory().get("types", []):
        ref = f"{entry['module']}:{entry['name']}"
        try:
            if is_model(resolve_ref(ref)):
                out.append(ref)
        except LookupError:
            continue
    return sorted(out)


def new_session(runtime: Runtime, name: str, source: str, target: str) -> MapperSession:
    """A new, unsaved mapping from `source` to `target` (type references `module:Class`).

    Raises:
        MapperSessionError: the name is not an identifier, a mapping has it already, or a
            type does not resolve to a pydantic model.
    """
    if not _NAME.match(name) or not name[0].isalpha():
        raise MapperSessionError(
            f"{name!r} is not a mapping name: letters, digits and _, starting with a letter"
        )
    from workbench.mapper.edit import new_mapping_text
    from workbench.mapper.resolve import resolve_ref

    if (mappings_folder(runtime) / f"{name}.toml").exists():
        raise MapperSessionError(f"mapping {name!r} exists; open it, or choose another name")
    for ref in (source, target):
        try:
            obj = resolve_ref(ref)
        except LookupError as exc:
            raise MapperSessionError(f"unknown type {ref!r}: {exc}") from None
        if not is_model(obj):
            raise MapperSessionError(f"{ref!r} is not a pydantic model")
    text = new_mapping_text(source, target, description=f"{name}: {source} -> {target}")
    return MapperSession(runtime, name, text)


# ---------------------------------------------------------------------------- analysis


@dataclass(slots=True)
class FieldView:
    """What the target tree shows of one target field."""

    node: SchemaNode
    raw: Any
    """The field's entry in the file: an expression, a rule table, a constant, or None."""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: bool = False
    """A rule for a field the target type does not have."""
    unmapped_required: bool = False
    """Required and not mapped, in a part of the target that is mapped (the fields of an
    optional model nobody maps are not needed)."""

    @property
    def path(self) -> str:
        return self.node.path


@dataclass(slots=True)
class Analysis:
    """What one revision of the text means, over one sample."""

    revision: int
    text: str
    spec: MappingSpec | None
    bound: Bound | None
    issues: list[Issue]
    sources: list[SchemaNode]
    targets: list[SchemaNode]
    fields: dict[str, FieldView]
    """Target path → view, for every node of the target tree (and extra rules)."""
    values: dict[str, Any]
    """Source path → the sample's value there (a list's fields: its first element's)."""
    counts: dict[str, int]
    """Source list path → number of elements in the sample."""
    general: list[str]
    """Problems that belong to no field (the file, its types, the sample)."""
    output: Any = None
    """The preview: the target as JSON-able data (failed fields left out)."""
    ok: bool = False
    """The sample maps without an error."""
    duration_ms: float = 0.0

    @property
    def error_count(self) -> int:
        return len(self.general) + sum(
            len(v.errors) for v in self.fields.values() if not v.unmapped_required
        )

    @property
    def unmapped(self) -> list[str]:
        return [p for p, v in self.fields.items() if v.unmapped_required]

    def scope(self, target_path: str) -> dict[str, SchemaNode]:
        """Name → source node of what expressions of `target_path` can walk: the sources,
        and the element variables of the `each` rules around it."""
        from workbench.mapper.schema import SchemaNode
        from workbench.mapper.spec import normalize_path, parent_path

        out = {node.name: node for node in self.sources}
        if self.spec is None:
            return out
        rules = {rule.path: rule for rule in self.spec.walk()}
        chain: list[str] = []
        path = normalize_path(target_path)
        while path:
            path = parent_path(path)
            if path:
                chain.insert(0, path)
        for ancestor in chain:
            rule = rules.get(ancestor)
            if rule is None or not rule.binds:
                continue
            expr = rule.each if rule.kind == "each" else rule.expr
            node = _node_of_expr(expr.text, out) if expr is not None else None
            if node is None:
                continue
            if rule.kind == "each":
                # the element: a node of its own, whose fields are the list's children
                out[rule.var] = SchemaNode(
                    rule.var, f"{node.path}[]", node.type, None, True,
                    "object" if node.children else "value", children=node.children,
                )
            else:
                out[rule.var] = node
        return out


def _node_of_expr(text: str, scope: Mapping[str, SchemaNode]) -> SchemaNode | None:
    """The source node a plain dotted path (`src.items`, `item.sub`) stands for."""
    parts = text.strip().split(".")
    if not all(_NAME.match(p) for p in parts):
        return None
    node = scope.get(parts[0])
    for part in parts[1:]:
        if node is None:
            return None
        node = next((c for c in node.children if c.name == part), None)
    return node


def analyze(
    registry: MappingRegistry, config: ConfigSource | None, name: str, text: str,
    payload: Any, revision: int,
) -> Analysis:
    """Check `text` as mapping `name` and evaluate it over `payload` (see `Sample`).

    Never raises for a bad mapping or a bad sample: every problem lands on its field or in
    `general`.
    """
    analysis = check(registry, config, name, text, revision)
    run_preview(analysis, registry, payload)
    return analysis


def check(
    registry: MappingRegistry, config: ConfigSource | None, name: str, text: str,
    revision: int,
) -> Analysis:
    """What `text` means as mapping `name`: trees, and its problems by field (no preview
    yet: see `run_preview`)."""
    from workbench.mapper.schema import source_trees, target_tree
    from workbench.mapper.spec import normalize_path

    started = time.perf_counter()
    bound, issues = registry.check_text(name, text, config)
    spec = bound.spec if bound is not None else None
    general = [_issue_text(i) for i in issues if i.level == "error" and not i.field]
    sources: list[SchemaNode] = []
    targets: list[SchemaNode] = []
    if bound is not None and spec is not None and len(bound.sources) == len(spec.sources):
        sources = source_trees(bound.sources)
    if bound is not None and is_model(bound.target):
        targets = target_tree(bound.target, spec)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = {}
    fields = _field_views(targets, spec, data)
    for issue in issues:
        if not issue.field:
            continue
        view = fields.get(normalize_path(issue.field))
        if view is None:
            if issue.level == "error":
                general.append(_issue_text(issue))
            continue
        (view.errors if issue.level == "error" else view.warnings).append(issue.message)
    analysis = Analysis(
        revision=revision, text=text, spec=spec, bound=bound, issues=issues, sources=sources,
        targets=targets, fields=fields, values={}, counts={}, general=general,
    )
    analysis.duration_ms = (time.perf_counter() - started) * 1000.0
    return analysis


def run_preview(analysis: Analysis, registry: MappingRegistry, payload: Any) -> None:
    """Evaluate the analysed mapping over `payload`: the sample's values in the source
    tree, the output, and the fields that fail on it (call it once per analysis)."""
    started = time.perf_counter()
    if analysis.sources and analysis.bound is not None:
        _evaluate(analysis, analysis.bound, registry, payload)
    analysis.duration_ms += (time.perf_counter() - started) * 1000.0


def _issue_text(issue: Issue) -> str:
    where = f"line {issue.line}: " if issue.line else ""
    return f"{where}{issue.message}"


def _field_views(targets: list[SchemaNode], spec: MappingSpec | None,
                 data: Mapping[str, Any]) -> dict[str, FieldView]:
    from workbench.mapper.schema import SchemaNode
    from workbench.mapper.spec import parent_path

    fields = data.get("fields", {})
    views: dict[str, FieldView] = {}

    def add(node: SchemaNode, parent: SchemaNode | None) -> None:
        needed = node.required and not node.mapped and (parent is None or bool(parent.mapped))
        views[node.path] = FieldView(node, raw_field(fields, node.path),
                                     unmapped_required=needed)
        for child in node.children:
            add(child, node)

    for root in targets:
        add(root, None)
    if spec is not None:
        for rule in spec.walk():
            parent = parent_path(rule.path)
            if rule.path in views or (parent and parent not in views):
                continue
            node = SchemaNode(rule.path, rule.path, "?", None, False, "value", mapped=True)
            targets.append(node)
            views[rule.path] = FieldView(node, raw_field(fields, rule.path), extra=True)
    return views


def _evaluate(analysis: Analysis, bound: Bound, registry: MappingRegistry,
              payload: Any) -> None:
    from workbench.mapper.evaluate import evaluate
    from workbench.mapper.spec import normalize_path

    names = list(bound.sources)
    try:
        values = source_values(names, payload)
    except MapperSessionError as exc:
        analysis.general.append(f"sample: {exc.message}")
        return
    for root in analysis.sources:
        _walk_values(root, values.get(root.name), bound.sources.get(root.name), analysis)
    try:
        result = evaluate(
            bound, values, mappings=registry.funcs, raw_mappings=registry.raws
        )
    except WorkbenchError as exc:
        analysis.general.append(f"sample: {exc.message}")
        return
    except Exception as exc:  # the interpreter must not take the screen down
        analysis.general.append(f"preview: {type(exc).__name__}: {exc}")
        return
    for failed in result.errors:
        view = analysis.fields.get(normalize_path(failed.path))
        message = failed.error or "failed"
        if view is None:
            analysis.general.append(f"{failed.path}: {message}")
        elif not view.errors:  # a field the check flagged fails for that reason
            view.errors.append(message)
    shown = result.result if result.result is not None else result.raw
    if isinstance(shown, BaseModel):
        shown = shown.model_dump(mode="json")
    analysis.output = to_jsonable_python(shown, fallback=repr)
    analysis.ok = result.ok


def _walk_values(node: SchemaNode, value: Any, tp: Any, analysis: Analysis) -> None:
    if tp is not None and is_model(tp) and isinstance(value, Mapping):
        try:
            value = tp.model_validate(value)
        except Exception:  # shown as it is; the preview reports the sample's problem
            pass
    analysis.values[node.path] = value
    if node.kind == "list" and isinstance(value, list | tuple):
        analysis.counts[node.path] = len(value)
        value = value[0] if value else None
    for child in node.children:
        _walk_values(child, _member(value, child.name), None, analysis)


def _member(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    if isinstance(value, BaseModel):
        return getattr(value, name, None)
    return None


def raw_field(fields: Mapping[str, Any], path: str) -> Any:
    """The entry of target path `path` (`a.b`, `lines[].sku`) in a parsed `[fields]`
    table, or None when the file does not map it."""
    node: Any = fields
    parts = path.split(".")
    for i, part in enumerate(parts):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
        if i == len(parts) - 1:
            return node
        if isinstance(node, Mapping) and ("fields" in node and _is_rule(node)):
            node = node["fields"]
    return None


def _is_rule(value: Any) -> bool:
    return isinstance(value, Mapping) and any(
        k in value for k in ("expr", "each", "const", "mapping")
    )


def output_value(output: Any, path: str) -> Any:
    """The value of target path `path` in a preview's output (a list's element fields:
    its first element's); `NO_VALUE` when the output has none."""
    node = output
    for part in path.split("."):
        each = part.endswith("[]")
        key = part[:-2] if each else part
        if not isinstance(node, Mapping) or key not in node:
            return NO_VALUE
        node = node[key]
        if each:
            if not isinstance(node, list) or not node:
                return NO_VALUE
            node = node[0]
    return node


# ---------------------------------------------------------------------------- the editor


def is_value_rule(raw: Any) -> bool:
    """A rule whose value is its `expr` with options (`default`, `convert`, ...)."""
    return (isinstance(raw, Mapping) and "expr" in raw and "each" not in raw
            and "fields" not in raw and "const" not in raw)


def editor_text(raw: Any) -> tuple[str, str]:
    """What the expression editor shows for a field's entry, and a hint about it.

    An expression shows as itself; a rule with `expr` and options shows its `expr` (the
    options stay); any other rule shows as an inline table, `{ each = "src.items", ... }`.
    """
    if raw is None:
        return "", "not mapped: type an expression over the sources"
    if isinstance(raw, str):
        return raw, ""
    if is_value_rule(raw):
        options = ", ".join(f"{k} = {_toml(v)}" for k, v in raw.items() if k != "expr")
        return str(raw["expr"]), f"options kept: {options}" if options else ""
    if isinstance(raw, Mapping):
        shown = {k: v for k, v in raw.items() if k != "fields"}
        hint = "a rule: edit it as a table, or type an expression to replace it"
        if "fields" in raw:
            hint = f"{hint}; its {len(raw['fields'])} fields are in the tree"
        return _inline(shown), hint
    return _toml(raw), "a constant: edit it as { const = ... }, or type an expression"


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return _inline(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _inline(values: Mapping[str, Any]) -> str:
    body = ", ".join(f"{k} = {_toml(v)}" for k, v in values.items())
    return f"{{ {body} }}" if body else "{}"


def edits_for(path: str, text: str, raw: Any) -> list[FieldEdit]:
    """The edits that make field `path` what the editor holds (see `editor_text`): an
    empty text unmaps it, `{ ... }` sets the rule (keeping its element fields), anything
    else is an expression.

    Raises:
        MapperSessionError: a table that does not parse.
    """
    from workbench.mapper.edit import FieldEdit

    text = text.strip()
    if not text:
        return [FieldEdit(path, None)] if raw is not None else []
    if text.startswith("{"):
        try:
            rule = tomllib.loads(f"rule = {text}")["rule"]
        except tomllib.TOMLDecodeError as exc:
            raise MapperSessionError(
                f"{text!r} is not a TOML inline table: {exc}. Write it like "
                '{ each = "src.items", expr = "item.sku" }'
            ) from None
        if isinstance(raw, Mapping) and "fields" in raw and "fields" not in rule and not (
            {"const", "mapping"} & set(rule)
        ) and ("each" in rule) == ("each" in raw):
            rule["fields"] = raw["fields"]
        return [FieldEdit(path, rule)]
    if raw is None or isinstance(raw, str) or is_value_rule(raw):
        return [FieldEdit(path, text)]
    # a list rule, a constant or a sub-mapping call replaced by an expression
    return [FieldEdit(path, {"expr": text})]


def brief(raw: Any, width: int = 40) -> str:
    """A field's entry in a few characters, for the target tree."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, Mapping):
        if "const" in raw:
            text = f"= {_toml(raw['const'])}"
        elif "each" in raw:
            text = f"each {raw['each']}"
            if "reduce" in raw:
                text += f" → {raw['reduce']}"
            elif "pick" in raw:
                text += f" → {raw['pick']}"
        elif "mapping" in raw:
            text = f"{raw['mapping']}({raw.get('expr', '')})"
        elif "expr" in raw:
            text = str(raw["expr"])
            if "default" in raw:
                text += f" ?? {_toml(raw['default'])}"
        else:
            text = "{…}"
    else:
        text = f"= {_toml(raw)}"
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------- completion


def expression_names(bound: Bound | None) -> list[str]:
    """Names an expression may call or read besides the sources: inputs, `uses`, other
    mappings, the helpers and the safe builtins."""
    names: list[str] = []
    if bound is not None:
        names.extend(bound.inputs)
        names.extend(bound.uses)
        names.extend(n for n, _ in bound.spec.mappings)
    names.extend(HELPERS)
    names.extend(SAFE_BUILTINS)
    return list(dict.fromkeys(names))


def completions(analysis: Analysis | None, target_path: str, text: str) -> tuple[str, list[str]]:
    """What can complete the word at the end of `text`: (the word, full candidates).

    `src.cu` → ("src.cu", ["src.customer"]); `round(it` → ("it", ["item", ...]) inside an
    `each` rule.
    """
    match = _TOKEN.search(text)
    word = match.group(0) if match else ""
    if analysis is None or not word:
        return word, []
    scope = analysis.scope(target_path)
    if "." not in word:
        names = [*scope, *expression_names(analysis.bound)]
        return word, [n for n in dict.fromkeys(names) if n.startswith(word) and n != word]
    head, _, last = word.rpartition(".")
    parts = head.split(".")
    node = scope.get(parts[0])
    for part in parts[1:]:
        node = next((c for c in node.children if c.name == part), None) if node else None
    if node is None or node.kind == "list":
        return word, []
    return word, [f"{head}.{c.name}" for c in node.children if c.name.startswith(last)
                  and c.name != last]


# ---------------------------------------------------------------------------- linking


def link_expression(analysis: Analysis, source_path: str, target_path: str) -> str:
    """The expression that maps target field `target_path` from source field
    `source_path`: the path itself, or through the element variable of the `each` rule
    around the target (`src.items[].sku` under `lines` (each src.items) → `item.sku`).

    Raises:
        MapperSessionError: the source is a field of list elements and no `each` rule
            over that list encloses the target.
    """
    if "[]" not in source_path:
        return source_path
    head, _, rest = source_path.rpartition("[]")
    scope = analysis.scope(target_path)
    for var, node in scope.items():
        if node.path == f"{head}[]":
            return f"{var}{rest}"
    raise MapperSessionError(
        f"{source_path} is a field of each element of {head}: link it to a field under an "
        f"each rule over {head} (e.g. lines[].sku), or link {head} itself"
    )


# ---------------------------------------------------------------------------- samples


def example_payload(sources: Sequence[SchemaNode]) -> Any:
    """A payload made of the types' examples and defaults (one element per list)."""
    values = {root.name: _example(root) for root in sources}
    if len(values) == 1:
        return next(iter(values.values()))
    return values


def _example(node: SchemaNode) -> Any:
    if node.kind == "object":
        return {c.name: _example(c) for c in node.children}
    if node.kind == "list":
        if node.children:
            return [{c.name: _example(c) for c in node.children}]
        return []
    if node.example is None and not node.required:
        return None
    return to_jsonable_python(node.example, fallback=str)


def collect_samples(runtime: Runtime, bound: Bound | None,
                    sources: Sequence[SchemaNode]) -> list[Sample]:
    """The samples for a mapping: captured events whose payload fits the source type
    (newest first), the saved events in `events/` that fit, and an example built from the
    types. Reads the capture store: run it in a thread."""
    samples: list[Sample] = []
    if bound is not None and len(bound.sources) == 1:
        tp = next(iter(bound.sources.values()))
        if is_model(tp):
            samples.extend(_captured(runtime, tp))
    samples.extend(_saved(runtime, bound))
    if sources:
        samples.append(Sample("example", "example · from the types", example_payload(sources)))
    return samples


def _fits(bound: Bound, payload: Any) -> bool:
    try:
        values = source_values(list(bound.sources), payload)
        for name, tp in bound.sources.items():
            if is_model(tp):
                tp.model_validate(values[name])
    except Exception:
        return False
    return True


def _captured(runtime: Runtime, tp: type[BaseModel]) -> list[Sample]:
    store = runtime.capture
    if store is None:
        return []
    wanted = qualified(tp)
    artifacts = []
    for name, state in runtime.artifacts.items():
        for key in state.artifact.handlers:
            try:
                payload_t = runtime.payload_type(name, key)
            except Exception:  # an artifact whose handler cannot be inspected
                continue
            if payload_t is tp or (payload_t is not None and qualified(payload_t) == wanted):
                artifacts.append(name)
                break
    found: list[tuple[float, Sample]] = []
    for artifact in artifacts:
        try:
            records = store.query(artifact=artifact, limit=MAX_SCANNED)
        except WorkbenchError:
            continue
        for record in records:
            try:
                payload = record.event.json()
                tp.model_validate(payload)
            except Exception:  # not this handler's payload, or not JSON
                continue
            when = time.strftime("%H:%M:%S", time.localtime(record.time))
            label = f"captured · {artifact} · {record.id[:8]} · {when}"
            found.append((record.time, Sample(f"capture:{record.id}", label, payload)))
            if len(found) >= MAX_CAPTURED * len(artifacts):
                break
    found.sort(key=lambda item: item[0], reverse=True)
    return [sample for _, sample in found[:MAX_CAPTURED]]


def _saved(runtime: Runtime, bound: Bound | None) -> list[Sample]:
    try:
        folder = runtime.settings.folder("events")
    except Exception:
        return []
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*.json")):
        try:
            raw = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        payload = raw.get("data") if isinstance(raw, dict) and "specversion" in raw else raw
        if bound is not None and not _fits(bound, payload):
            continue
        rel = path.relative_to(folder).as_posix()
        out.append(Sample(f"file:{rel}", f"events/{rel}", payload))
    return out


def typed_sample(text: str) -> Sample:
    """A sample typed in as JSON.

    Raises:
        MapperSessionError: the text is not JSON.
    """
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise MapperSessionError(f"the sample is not JSON: {exc}") from None
    return Sample("typed", "typed in", payload)


def sample_text(sample: Sample) -> str:
    return json.dumps(sample.payload, indent=2, ensure_ascii=False, default=str) + "\n"


# ---------------------------------------------------------------------------- auto-map


def proposals(analysis: Analysis) -> list[Proposal]:
    """Auto-map proposals for the unmapped target fields of the analysed text."""
    from workbench.mapper.schema import automap

    bound = analysis.bound
    if bound is None or not analysis.sources or not is_model(bound.target):
        return []
    return automap(bound.sources, bound.target, analysis.spec)


def set_field(path: str, value: str | None) -> list[FieldEdit]:
    """The edit that maps `path` by the expression `value` (None: unmaps it)."""
    from workbench.mapper.edit import FieldEdit

    return [FieldEdit(path, value)]


def proposal_edits(items: Iterable[Proposal]) -> list[FieldEdit]:
    from workbench.mapper.edit import FieldEdit

    return [FieldEdit(p.path, p.rule) for p in items]
