"""Source and target trees of a mapping's types, and auto-map proposals.

A tree node is one field: its path, type, whether it is required, an example value, and
its children (a model's fields; a list's element fields under `name[]`). Source paths
are expressions (`src.items[].sku`, the element part read through an `each`); target paths
are field paths (`lines[].sku`) as mapping files and `workbench.mapper.edit` use them.

`automap()` proposes rules for unmapped target fields: a source field whose name matches
(ignoring case, `_`, `-` and camelCase humps: `unitPrice` = `unit_price` = `UnitPrice`)
and whose type fits — a nested model from a matching source model (field by field), a list
of models from a matching source list (an `each` rule with element fields), a value with a
`convert` when only text-to-number or the like stands between them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic_core import PydanticUndefined

from workbench.mapper.spec import MappingSpec
from workbench.mapper.typeinfo import (
    compatibility,
    dict_value,
    fields_of,
    is_enum,
    is_model,
    list_item,
    strip_annotated,
    type_name,
    unwrap_optional,
)

MAX_DEPTH = 8
"""How deep trees go (models that contain themselves stop here)."""


@dataclass(slots=True)
class SchemaNode:
    """One field of a source or target tree."""

    name: str
    path: str
    type: str
    """Display type: `str`, `int | None`, `list[Item]`, `Address`."""
    annotation: Any
    required: bool
    kind: str
    """`object` (a model), `list`, or `value`."""
    example: Any = None
    description: str = ""
    children: list[SchemaNode] = field(default_factory=list)
    mapped: bool | None = None
    """Target trees: whether the mapping has a rule for the field (None for sources)."""

    def walk(self) -> Iterator[SchemaNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "type": self.type,
            "required": self.required, "kind": self.kind, "example": _jsonable(self.example),
            "description": self.description, "mapped": self.mapped,
            "children": [c.to_dict() for c in self.children],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime | time | Decimal):
        return str(value)
    if is_enum(type(value)):
        return value.value
    return value


def _example(info: Any, annotation: Any) -> Any:
    examples = getattr(info, "examples", None)
    if examples:
        return examples[0]
    default = getattr(info, "default", PydanticUndefined)
    if default is not PydanticUndefined and default is not None:
        return default
    inner, _ = unwrap_optional(strip_annotated(annotation))
    if is_enum(inner):
        return next(iter(inner)).value
    return {
        str: "text", int: 0, float: 0.0, bool: False, Decimal: "0.00",
        date: "2024-01-31", datetime: "2024-01-31T12:00:00", time: "12:00:00",
    }.get(inner)


def _node(name: str, path: str, annotation: Any, info: Any, sep: str, depth: int,
          mapped: set[str] | None, target_path: str) -> SchemaNode:
    inner, optional = unwrap_optional(strip_annotated(annotation))
    required = bool(info.is_required()) if info is not None else not optional
    node = SchemaNode(
        name=name, path=path, type=type_name(annotation), annotation=annotation,
        required=required, kind="value", example=_example(info, annotation),
        description=getattr(info, "description", None) or "",
        mapped=(target_path in mapped) if mapped is not None else None,
    )
    if depth >= MAX_DEPTH:
        return node
    item = list_item(inner)
    if is_model(inner):
        node.kind = "object"
        node.example = None
        node.children = _children(inner, path, sep, depth + 1, mapped, target_path)
    elif item is not None:
        node.kind = "list"
        element, _ = unwrap_optional(strip_annotated(item))
        if is_model(element):
            node.example = None
            node.children = _children(element, f"{path}[]", sep, depth + 1, mapped,
                                      f"{target_path}[]")
    return node


def _children(model: Any, prefix: str, sep: str, depth: int, mapped: set[str] | None,
              target_prefix: str) -> list[SchemaNode]:
    out = []
    for name, info in fields_of(model).items():
        path = f"{prefix}{sep}{name}" if prefix else name
        tpath = f"{target_prefix}.{name}" if target_prefix else name
        out.append(_node(name, path, info.annotation, info, sep, depth, mapped, tpath))
    return out


def source_tree(name: str, tp: Any) -> SchemaNode:
    """The tree of one source: its root is the source name (`src`)."""
    root = SchemaNode(name=name, path=name, type=type_name(tp), annotation=tp, required=True,
                      kind="object" if is_model(tp) else "value")
    if is_model(tp):
        root.children = _children(tp, name, ".", 1, None, "")
    return root


def source_trees(sources: Mapping[str, Any]) -> list[SchemaNode]:
    """One tree per source of a mapping."""
    return [source_tree(name, tp) for name, tp in sources.items()]


def target_tree(target: Any, spec: MappingSpec | None = None) -> list[SchemaNode]:
    """The target model's fields; with a spec, each node says whether it is mapped (a
    field under a mapped model-valued or sub-mapped field counts as mapped)."""
    if not is_model(target):
        return []
    mapped: set[str] = set()
    whole: set[str] = set()
    if spec is not None:
        for rule in spec.walk():
            mapped.add(rule.path)
            if rule.fields is None and rule.kind != "object":
                whole.add(rule.path)
    nodes = _children(target, "", ".", 1, mapped, "")
    if spec is not None:
        for node in nodes:
            _inherit(node, whole, False)
    return nodes


def _inherit(node: SchemaNode, whole: set[str], parent_whole: bool) -> None:
    """A field below one mapped as a whole (by an expression, a constant or a
    sub-mapping) is mapped too."""
    if parent_whole:
        node.mapped = True
    here = parent_whole or node.path in whole
    for child in node.children:
        _inherit(child, whole, here)


def unmapped_required(target: Any, spec: MappingSpec) -> list[SchemaNode]:
    """Required target fields the mapping does not reach."""
    return [n for root in target_tree(target, spec) for n in root.walk()
            if n.required and not n.mapped]


# ---------------------------------------------------------------------------- auto-map


def normalize(name: str) -> str:
    """`unitPrice`, `unit_price`, `Unit-Price` → `unitprice`."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True, slots=True)
class Proposal:
    """A rule proposed for a target field."""

    path: str
    rule: str | dict[str, Any]
    """An expression, or a rule table (`{"each": ..., "fields": {...}}`)."""
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rule": self.rule, "reason": self.reason}


def automap(
    sources: Mapping[str, Any], target: Any, spec: MappingSpec | None = None
) -> list[Proposal]:
    """Proposals for the target fields the spec does not map yet."""
    if not is_model(target):
        return []
    mapped = {r.path for r in spec.walk()} if spec is not None else set()
    scope = [(name, tp) for name, tp in sources.items()]
    out: list[Proposal] = []
    for path, rule, reason in _match(target, scope, "", mapped, 0, {"src", *sources}):
        out.append(Proposal(path, rule, reason))
    return out


def _candidates(fname: str, scope: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    want = normalize(fname)
    found: list[tuple[str, Any]] = []
    for prefix, tp in scope:
        if normalize(prefix) == want and prefix not in ("src",):
            found.append((prefix, tp))
        inner, _ = unwrap_optional(strip_annotated(tp))
        if is_model(inner):
            for sname, sinfo in fields_of(inner).items():
                if normalize(sname) == want or (sinfo.alias and normalize(sinfo.alias) == want):
                    found.append((f"{prefix}.{sname}", sinfo.annotation))
    return found


def _match(
    model: Any, scope: list[tuple[str, Any]], prefix: str, mapped: set[str], depth: int,
    taken: set[str],
) -> Iterator[tuple[str, str | dict[str, Any], str]]:
    if depth > MAX_DEPTH:
        return
    for fname, info in fields_of(model).items():
        path = f"{prefix}.{fname}" if prefix else fname
        if path in mapped:
            continue
        target_t = info.annotation
        t_inner, _ = unwrap_optional(strip_annotated(target_t))
        for expr, source_t in _candidates(fname, scope):
            s_inner, _ = unwrap_optional(strip_annotated(source_t))
            proposal = _propose(path, expr, source_t, s_inner, target_t, t_inner, mapped, depth,
                                taken)
            if proposal is not None:
                yield from proposal
                break


def _propose(
    path: str, expr: str, source_t: Any, s_inner: Any, target_t: Any, t_inner: Any,
    mapped: set[str], depth: int, taken: set[str],
) -> list[tuple[str, str | dict[str, Any], str]] | None:
    reason = f"name match: {expr} ({type_name(source_t)})"
    if is_model(t_inner) and is_model(s_inner) and not issubclass(s_inner, t_inner):
        parts = list(_match(t_inner, [(expr, s_inner)], path, mapped, depth + 1, taken))
        return parts or None
    t_item, s_item = list_item(t_inner), list_item(s_inner)
    if t_item is not None and s_item is not None:
        t_elem, _ = unwrap_optional(strip_annotated(t_item))
        s_elem, _ = unwrap_optional(strip_annotated(s_item))
        if is_model(t_elem) and is_model(s_elem) and not issubclass(s_elem, t_elem):
            var = _element_name(expr, taken)
            inner = list(_match(t_elem, [(var, s_elem)], "", set(), depth + 1, taken | {var}))
            if not inner:
                return None
            fields = {p: r for p, r, _ in inner if isinstance(r, str) and "." not in p}
            nested = _nest({p: r for p, r, _ in inner if p not in fields})
            rule: dict[str, Any] = {"each": expr}
            if var != "item":
                rule["as"] = var
            rule["fields"] = {**fields, **nested}
            return [(path, rule, f"{reason}, each element field by field")]
    problem = compatibility(source_t, target_t)
    if problem is None:
        return [(path, expr, reason)]
    if problem[0] == "warning" and t_inner in _CONVERT:
        return [(path, {"expr": expr, "convert": _CONVERT[t_inner]},
                 f"{reason}, converted to {type_name(t_inner)}")]
    if problem[0] == "warning" and is_enum(t_inner):
        return [(path, {"expr": expr, "convert": "enum"}, f"{reason}, converted to the enum")]
    if t_inner is str and s_inner in (int, float, Decimal, bool):
        return [(path, {"expr": expr, "convert": "str"}, f"{reason}, as text")]
    return None


_CONVERT: dict[Any, str] = {
    int: "int", float: "float", Decimal: "decimal", bool: "bool", date: "date",
    datetime: "datetime", time: "time",
}


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": x} → {"a": {"b": x}} (element fields of nested element models)."""
    out: dict[str, Any] = {}
    for path, rule in flat.items():
        node = out
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = rule
    return out


def _element_name(expr: str, taken: set[str]) -> str:
    from workbench.mapper.infer import python_name, singular

    base = python_name(singular(expr.rsplit(".", 1)[-1]))
    name = base if base and base not in taken and base != expr.rsplit(".", 1)[-1] else "item"
    n = 2
    while name in taken:
        name = f"{base}{n}"
        n += 1
    return name


def apply_proposals(text: str, proposals: list[Proposal]) -> str:
    """The mapping text with the proposals written in (see `workbench.mapper.edit`)."""
    from workbench.mapper.edit import set_expression, set_rule

    for proposal in proposals:
        if isinstance(proposal.rule, str):
            text = set_expression(text, proposal.path, proposal.rule)
        else:
            text = set_rule(text, proposal.path, proposal.rule)
    return text


def value_kind(tp: Any) -> str:
    """`object`, `list`, `dict` or `value`, for tree icons."""
    inner, _ = unwrap_optional(strip_annotated(tp))
    if is_model(inner):
        return "object"
    if list_item(inner) is not None:
        return "list"
    if dict_value(inner) is not None:
        return "dict"
    return "value"
