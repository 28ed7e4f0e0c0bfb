"""The static check of a mapping against its types.

Reports, each with file:line and the target field path:

- errors (the mapping is not loaded; the last good version keeps serving): a bad
  expression (syntax, a statement, an unknown name, a refused node), a target field the
  target type does not have, a required target field left unmapped, a source path the
  source types do not have (`item.price` when Item has no `price`), a value that validation
  always rejects (a list for a str field, an int for a str field, another model class), an
  unknown or mis-called sub-mapping, `convert = "enum"` on a field that is not an enum;
- warnings (it depends on the data): text into a number or date field without `convert`,
  a float into an int field, a path through an optional value without a `default`.

The check follows attribute chains through pydantic models, lists (`each` binds the
element type), dicts and the obvious builtins; where it cannot tell a type it says nothing.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.mapper import expr as exprs
from workbench.mapper.errors import Issue, Level
from workbench.mapper.helpers import HELPER_RESULTS, HELPERS, SAFE_BUILTINS
from workbench.mapper.resolve import Bound
from workbench.mapper.spec import UNSET, Expr, FieldRule
from workbench.mapper.typeinfo import (
    CONVERT_TYPES,
    NONE_TYPE,
    UNKNOWN,
    a,
    attribute_type,
    compatibility,
    fields_of,
    get_type_hints_safe,
    is_enum,
    is_model,
    list_item,
    method_result,
    subscript_type,
    transforms_input,
    type_name,
    unwrap_optional,
)


@dataclass(frozen=True, slots=True)
class SubInfo:
    """What a mapping knows of another mapping it calls."""

    name: str
    sources: tuple[tuple[str, Any], ...]
    target: Any


def base_scope(bound: Bound) -> dict[str, Any]:
    """Name → static type of every name an expression of this mapping may use, besides
    element variables."""
    scope: dict[str, Any] = {}
    scope.update({name: UNKNOWN for name in SAFE_BUILTINS})
    scope.update({name: UNKNOWN for name in HELPERS})
    scope.update({name: UNKNOWN for name in bound.uses})
    scope.update({name: UNKNOWN for name, _ in bound.spec.mappings})
    scope.update(bound.input_types)
    scope.update(bound.sources)
    return scope


def own_names(bound: Bound) -> list[str]:
    """Names worth suggesting on a typo: the mapping's own, not the helpers."""
    return [*bound.sources, *bound.inputs, *bound.uses, *(n for n, _ in bound.spec.mappings)]


def check_mapping(bound: Bound, subs: Mapping[str, SubInfo]) -> list[Issue]:
    """Every problem of a bound mapping (errors and warnings), in file order."""
    checker = _Checker(bound, subs)
    checker.run()
    return sorted(checker.issues, key=lambda i: (i.line or 0, i.level != "error"))


class _Checker:
    def __init__(self, bound: Bound, subs: Mapping[str, SubInfo]) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.subs = subs
        self.issues: list[Issue] = []
        self.scope = base_scope(bound)
        self.hints = own_names(bound)
        self.lenient = False
        """The field being checked has a validator that may convert its input."""

    def issue(self, level: Level, message: str, line: int | None, path: str | None) -> None:
        self.issues.append(Issue(level, message, self.spec.file, line, path, self.spec.name))

    def fit_issue(self, problem: tuple[Level, str], line: int, path: str,
                  prefix: str = "") -> None:
        """A type mismatch: an error, unless a validator of the target may convert it."""
        level, message = problem
        if level == "error" and self.lenient:
            level, message = "warning", f"{message} (unless its validator converts it)"
        self.issue(level, f"{prefix}{message}", line, path)

    # ------------------------------------------------------------------ structure

    def run(self) -> None:
        for name, line in self.spec.mappings:
            self.sub(name, line, None)
        target = self.bound.target
        self.fields(self.spec.fields, target, {}, self.spec.fields_line, "")

    def sub(self, name: str, line: int, path: str | None) -> SubInfo | None:
        if name == self.spec.name:
            self.issue("error", f"mapping {name!r} calls itself; a mapping cannot be recursive",
                       line, path)
            return None
        info = self.subs.get(name)
        if info is None:
            known = ", ".join(sorted(n for n in self.subs if n != self.spec.name)) or "(none)"
            self.issue("error", f"unknown mapping {name!r}; mappings of the project: {known}",
                       line, path)
        return info

    def fields(
        self, rules: Iterable[FieldRule], model: Any, env: dict[str, Any], line: int,
        where: str,
    ) -> None:
        rules = list(rules)
        model_fields = fields_of(model) if is_model(model) else None
        saved = self.lenient
        for rule in rules:
            field_type: Any = UNKNOWN
            self.lenient = transforms_input(model, rule.name)
            if model_fields is not None:
                info = model_fields.get(rule.name)
                if info is None:
                    by_alias = [n for n, f in model_fields.items() if f.alias == rule.name]
                    close = by_alias or difflib.get_close_matches(rule.name, list(model_fields),
                                                                  n=3, cutoff=0.6)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    self.issue("error", f"{model.__name__} has no field {rule.name!r}{hint} "
                               f"(fields: {', '.join(model_fields)})", rule.line, rule.path)
                else:
                    field_type = info.annotation
            self.rule(rule, field_type, env)
        self.lenient = saved
        if model_fields is not None:
            mapped = {r.name for r in rules}
            for name, info in model_fields.items():
                if info.is_required() and name not in mapped:
                    path = f"{where}.{name}" if where else name
                    self.issue(
                        "warning" if transforms_input(model) else "error",
                        f"required field {name!r} ({type_name(info.annotation)}) of "
                        f"{model.__name__} is not mapped",
                        line, path,
                    )

    def rule(self, rule: FieldRule, field_type: Any, env: dict[str, Any]) -> None:
        nullsafe = rule.default is not UNSET
        value: Any
        if rule.kind == "const":
            value = NONE_TYPE if rule.const is None else type(rule.const)
        elif rule.kind == "object":
            inner, _ = unwrap_optional(field_type)
            if inner is not UNKNOWN and not is_model(inner) and inner is not dict and (
                list_item(inner) is not None or inner in CONVERT_TYPES.values()
            ):
                self.issue("error", f"a table lists a model's fields, but the field is "
                           f"{a(type_name(field_type))}", rule.line, rule.path)
            self.fields(rule.fields or (), inner, env, rule.line, rule.path)
            return
        elif rule.kind == "each":
            value = self.each(rule, field_type, env)
        else:
            value = UNKNOWN
            if rule.expr is not None:
                value = self.expression(rule, "expr", rule.expr, env, nullsafe=nullsafe)
            elif rule.mapping is not None:
                value = self.bound.sources.get("src", UNKNOWN) if len(self.bound.sources) == 1 \
                    else UNKNOWN
            if rule.mapping is not None:
                value = self.call_sub(rule, rule.mapping, value, rule.expr, env)
            elif rule.fields is not None:
                inner, _ = unwrap_optional(value)
                sub_env = {**env, rule.var: inner}
                target_inner, _ = unwrap_optional(field_type)
                self.fields(rule.fields, target_inner, sub_env, rule.line_of("fields"),
                            rule.path)
                return
        if rule.kind != "each":
            value = self.converted(rule, value, field_type)
        if rule.default is not UNSET:
            default_t = NONE_TYPE if rule.default is None else type(rule.default)
            problem = compatibility(default_t, field_type)
            if problem is not None:
                self.fit_issue(problem, rule.line_of("default"), rule.path,
                               f"default {rule.default!r}: ")
            value, _ = unwrap_optional(value)
        self.fit(rule, value, field_type)

    def converted(self, rule: FieldRule, value: Any, field_type: Any) -> Any:
        if rule.convert is None:
            return value
        _, optional = unwrap_optional(value)
        if rule.convert == "enum":
            inner, _ = unwrap_optional(field_type)
            if inner is UNKNOWN:
                return UNKNOWN
            if not is_enum(inner):
                self.issue("error", f"convert = \"enum\" needs an enum field; the field is "
                           f"{a(type_name(field_type))}", rule.line_of("convert"), rule.path)
                return UNKNOWN
            result: Any = inner
        else:
            result = CONVERT_TYPES[rule.convert]
        return result | None if optional else result

    def fit(self, rule: FieldRule, value: Any, field_type: Any) -> None:
        problem = compatibility(value, field_type, coerce_numbers_to_str=self._coerces())
        if problem is not None:
            self.fit_issue(problem, rule.line, rule.path)

    def _coerces(self) -> bool:
        target = self.bound.target
        return bool(is_model(target) and target.model_config.get("coerce_numbers_to_str"))

    def each(self, rule: FieldRule, field_type: Any, env: dict[str, Any]) -> Any:
        assert rule.each is not None
        base = self.expression(rule, "each", rule.each, env, nullsafe=False)
        base_inner, _ = unwrap_optional(base)
        elem = list_item(base_inner) if base_inner is not UNKNOWN else UNKNOWN
        if elem is None:
            if base_inner is not UNKNOWN and not is_model(base_inner) and base_inner is not dict:
                self.issue("error", f"each needs a list, but {rule.each.text.strip()!r} is "
                           f"{a(type_name(base))}", rule.line_of("each"), rule.path)
            elem = UNKNOWN
        inner_env = {**env, rule.var: elem}
        if rule.var in self.scope and rule.var not in env:
            self.issue("error", f"as = {rule.var!r} hides the {rule.var!r} of the mapping; "
                       "choose another element name", rule.line_of("as"), rule.path)
        if rule.where is not None:
            self.expression(rule, "where", rule.where, inner_env, nullsafe=False)
        if rule.sort is not None:
            self.expression(rule, "sort", rule.sort, inner_env, nullsafe=False)
        target_list, _ = unwrap_optional(field_type)
        reduced = rule.pick is not None or rule.reduce is not None
        target_elem = field_type if reduced else list_item(target_list)
        if target_elem is None:
            if target_list is not UNKNOWN:
                self.issue("error", f"each makes a list, but the field is "
                           f"{a(type_name(field_type))}; add pick = \"first\" or a reduce",
                           rule.line_of("each"), rule.path)
            target_elem = UNKNOWN
        value: Any = elem
        if rule.expr is not None:
            value = self.expression(rule, "expr", rule.expr, inner_env, nullsafe=False)
        if rule.mapping is not None:
            value = self.call_sub(rule, rule.mapping, value, rule.expr, inner_env)
        elif rule.fields is not None:
            elem_model, _ = unwrap_optional(target_elem)
            self.fields(rule.fields, elem_model, inner_env, rule.line_of("fields"),
                        f"{rule.path}[]")
            value = elem_model
        value = self.converted(rule, value, target_elem)
        if rule.pick is not None:
            return value | None if value not in (UNKNOWN, NONE_TYPE) else value
        if rule.reduce is not None:
            if rule.reduce == "count":
                return int
            if rule.reduce == "join":
                return str
            if rule.reduce == "avg":
                return UNKNOWN
            return value
        if rule.fields is None and value is not UNKNOWN and target_elem is not UNKNOWN:
            problem = compatibility(value, target_elem)
            if problem is not None:
                self.fit_issue(problem, rule.line, rule.path, "list elements: ")
            return UNKNOWN
        return list[value] if value is not UNKNOWN else list

    def call_sub(
        self, rule: FieldRule, name: str, value: Any, arg: Expr | None, env: dict[str, Any]
    ) -> Any:
        info = self.sub(name, rule.line_of("mapping"), rule.path)
        if info is None:
            return UNKNOWN
        wanted = len(info.sources)
        given = 1
        if arg is not None:
            try:
                tree = exprs.parse(arg.text)
            except exprs.ExprSyntaxError:
                return info.target
            if isinstance(tree, ast.Tuple) and wanted > 1:
                given = len(tree.elts)
        elif rule.kind != "each":
            given = len(self.bound.sources)
        if given != wanted:
            names = ", ".join(n for n, _ in info.sources)
            self.issue("error", f"mapping {name!r} takes {wanted} source(s) ({names}); give "
                       f"them as expr = \"(a, b)\"" if wanted > 1 else
                       f"mapping {name!r} takes one source; expr must give one value",
                       rule.line_of("mapping"), rule.path)
        elif wanted == 1 and value is not UNKNOWN:
            (_, source_t), = info.sources
            inner, _ = unwrap_optional(value)
            if is_model(source_t) and is_model(inner) and not issubclass(inner, source_t):
                self.issue("warning", f"mapping {name!r} reads a {source_t.__name__}; this "
                           f"value is {a(inner.__name__)} (converted by its fields)",
                           rule.line_of("mapping"), rule.path)
        return info.target

    # ------------------------------------------------------------------ expressions

    def expression(
        self, rule: FieldRule, option: str, expr: Expr, env: dict[str, Any], *, nullsafe: bool
    ) -> Any:
        line = expr.line
        place = exprs.locate(self.spec.text, line, expr.text)
        try:
            tree = exprs.parse(expr.text)
        except exprs.ExprSyntaxError as exc:
            self.issue("error", f"{option}: {exc.problem.message}",
                       _line(place, exc.problem.line), rule.path)
            return UNKNOWN
        scope = {**self.scope, **env}
        problems = exprs.check(tree, scope, hints=[*self.hints, *env])
        for problem in problems:
            self.issue("error", f"{option} {expr.text.strip()!r}: {problem.message}",
                       _line(place, problem.line), rule.path)
        if problems:
            return UNKNOWN
        infer = _Infer(self, rule, option, place, scope, nullsafe)
        return infer.type_of(tree)


def _line(place: exprs.Placement, rel_line: int) -> int:
    return place.line + rel_line - 1 if place.exact else place.line


class _Infer:
    """Static types of expression nodes, reporting unknown source paths."""

    def __init__(
        self, checker: _Checker, rule: FieldRule, option: str, place: exprs.Placement,
        scope: dict[str, Any], nullsafe: bool,
    ) -> None:
        self.checker = checker
        self.rule = rule
        self.option = option
        self.place = place
        self.scope = scope
        self.nullsafe = nullsafe
        self.reported: set[str] = set()

    def report(self, level: Level, node: ast.AST, message: str) -> None:
        if message in self.reported:
            return
        self.reported.add(message)
        rel = max(getattr(node, "lineno", 2) - 1, 1)
        self.checker.issue(level, message, _line(self.place, rel), self.rule.path)

    def type_of(self, node: ast.expr, local: dict[str, Any] | None = None) -> Any:
        env = self.scope if local is None else {**self.scope, **local}
        return self._t(node, env)

    def _t(self, node: ast.expr, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return NONE_TYPE if node.value is None else type(node.value)
        if isinstance(node, ast.Name):
            return env.get(node.id, UNKNOWN)
        if isinstance(node, ast.Attribute):
            return self._attribute(node, env)
        if isinstance(node, ast.Subscript):
            base = self._t(node.value, env)
            self._t(node.slice, env) if not isinstance(node.slice, ast.Slice) else None
            inner, optional = unwrap_optional(base)
            if optional and not self.nullsafe and inner is not UNKNOWN:
                self._maybe_none(node.value, base)
            try:
                return subscript_type(inner, isinstance(node.slice, ast.Slice))
            except LookupError as exc:
                self.report("error", node, f"{ast.unparse(node)!r}: {exc}")
                return UNKNOWN
        if isinstance(node, ast.Call):
            return self._call(node, env)
        if isinstance(node, ast.JoinedStr):
            for value in node.values:
                self._t(value, env)
            return str
        if isinstance(node, ast.FormattedValue):
            self._t(node.value, env)
            return str
        if isinstance(node, ast.BinOp):
            return self._binop(node, env)
        if isinstance(node, ast.UnaryOp):
            operand = self._t(node.operand, env)
            return bool if isinstance(node.op, ast.Not) else operand
        if isinstance(node, ast.Compare):
            self._t(node.left, env)
            for comp in node.comparators:
                self._t(comp, env)
            return bool
        if isinstance(node, ast.BoolOp):
            kinds = {repr(self._t(v, env)) for v in node.values}
            return UNKNOWN if len(kinds) != 1 else self._t(node.values[0], env)
        if isinstance(node, ast.IfExp):
            self._t(node.test, env)
            a, b = self._t(node.body, env), self._t(node.orelse, env)
            if a == b:
                return a
            if b is NONE_TYPE and a is not UNKNOWN:
                return a | None
            if a is NONE_TYPE and b is not UNKNOWN:
                return b | None
            return UNKNOWN
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            return self._comprehension(node, env)
        if isinstance(node, ast.List):
            elts = [self._t(e, env) for e in node.elts]
            if elts and len({repr(k) for k in elts}) == 1 and elts[0] is not UNKNOWN:
                return list[elts[0]]  # type: ignore[valid-type]
            return list
        if isinstance(node, ast.Lambda):
            return UNKNOWN
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._t(child, env)
        return dict if isinstance(node, ast.Dict) else UNKNOWN

    def _maybe_none(self, node: ast.expr, tp: Any) -> None:
        if self.option in ("where", "sort"):
            return
        self.report(
            "warning", node,
            f"{ast.unparse(node)!r} may be None ({type_name(tp)}); then {self.option} fails: "
            "add default = ... to the rule (it makes the expression None-safe)",
        )

    def _attribute(self, node: ast.Attribute, env: dict[str, Any]) -> Any:
        base = self._t(node.value, env)
        if base is UNKNOWN:
            return UNKNOWN
        inner, optional = unwrap_optional(base)
        if optional and not self.nullsafe:
            self._maybe_none(node.value, base)
        try:
            return attribute_type(inner, node.attr)
        except LookupError as exc:
            self.report("error", node, f"unknown source path {ast.unparse(node)!r}: {exc}")
            return UNKNOWN

    def _call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        args = [self._t(a, env) for a in node.args]
        for kw in node.keywords:
            self._t(kw.value, env)
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = self._t(func.value, env)
            if owner is UNKNOWN:
                return UNKNOWN
            inner, optional = unwrap_optional(owner)
            if optional and not self.nullsafe:
                self._maybe_none(func.value, owner)
            try:
                attribute_type(inner, func.attr)
            except LookupError as exc:
                self.report("error", func, f"{ast.unparse(func)!r}: {exc}")
                return UNKNOWN
            return method_result(inner, func.attr)
        if not isinstance(func, ast.Name):
            return UNKNOWN
        name = func.id
        bound = self.checker.bound
        if name in {n for n, _ in bound.spec.mappings}:
            info = self.checker.subs.get(name)
            if info is None:
                return UNKNOWN
            if len(node.args) != len(info.sources) and not node.keywords:
                self.report("error", node, f"mapping {name!r} takes {len(info.sources)} "
                            f"source(s), given {len(node.args)}")
            return info.target
        if name in bound.uses:
            obj = bound.uses[name]
            if isinstance(obj, type):
                return obj
            return get_type_hints_safe(obj).get("return", UNKNOWN)
        if name not in HELPERS and name not in SAFE_BUILTINS:
            return UNKNOWN  # an element variable or an input that holds a callable
        if name == "to_enum" and node.args and isinstance(node.args[0], ast.Name):
            enum = bound.uses.get(node.args[0].id)
            return enum if is_enum(enum) else UNKNOWN
        if name in ("first", "last") and args:
            item = list_item(unwrap_optional(args[0])[0])
            return item | None if item not in (None, UNKNOWN) else UNKNOWN
        if name in ("abs", "round") and args and len(node.args) == 1:
            return int if name == "round" else args[0]
        return HELPER_RESULTS.get(name, UNKNOWN)

    def _binop(self, node: ast.BinOp, env: dict[str, Any]) -> Any:
        left, right = self._t(node.left, env), self._t(node.right, env)
        if UNKNOWN in (left, right):
            return UNKNOWN
        if left is str and right is str and isinstance(node.op, ast.Add):
            return str
        if left is str and isinstance(node.op, ast.Mod):
            return str
        numbers = (int, float, bool)
        if left in numbers and right in numbers:
            if isinstance(node.op, ast.Div) or float in (left, right):
                return float
            return int
        return UNKNOWN

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
        env: dict[str, Any],
    ) -> Any:
        local = dict(env)
        for gen in node.generators:
            iterable = self._t(gen.iter, local)
            elem = list_item(unwrap_optional(iterable)[0]) if iterable is not UNKNOWN else None
            for target in ast.walk(gen.target):
                if isinstance(target, ast.Name):
                    local[target.id] = elem if (
                        elem is not None and isinstance(gen.target, ast.Name)
                    ) else UNKNOWN
            for cond in gen.ifs:
                self._t(cond, local)
        if isinstance(node, ast.DictComp):
            self._t(node.key, local)
            self._t(node.value, local)
            return dict
        elt = self._t(node.elt, local)
        if isinstance(node, ast.ListComp) and elt is not UNKNOWN:
            return list[elt]  # type: ignore[valid-type]
        return UNKNOWN if not isinstance(node, ast.ListComp) else list
