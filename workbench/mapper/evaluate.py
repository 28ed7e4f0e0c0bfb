"""A direct interpreter of mapping files, field by field, with `eval`.

It gives the same results as the compiled code (the tests hold the two to it) but keeps
going past a failing field: each field gets its value or its error, which is what a live
preview over a captured event shows. It is slow; handlers use the compiled mapping.
"""

from __future__ import annotations

import ast
import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from workbench.mapper import expr as exprs
from workbench.mapper import helpers
from workbench.mapper.compiled import coerce, loc_path, short
from workbench.mapper.resolve import Bound
from workbench.mapper.spec import UNSET, Expr, FieldRule
from workbench.mapper.typeinfo import (
    UNKNOWN,
    fields_of,
    input_key,
    is_model,
    list_item,
    unwrap_optional,
)


@dataclass(slots=True)
class FieldResult:
    """The value of one target field, or why there is none."""

    path: str
    line: int
    value: Any = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "value": short(self.value)
                if self.error is None else None, "error": self.error}


@dataclass(slots=True)
class Evaluation:
    """What a mapping makes of one input."""

    raw: dict[str, Any] | None
    """The target as a dict (failed fields left out)."""
    fields: list[FieldResult] = field(default_factory=list)
    result: Any = None
    """The validated target (None when a field failed or validation did)."""
    validation: list[FieldResult] = field(default_factory=list)
    """Fields the target model rejected."""

    @property
    def errors(self) -> list[FieldResult]:
        return [f for f in self.fields if f.error is not None] + self.validation

    @property
    def ok(self) -> bool:
        return not self.errors


class _Failed(Exception):
    def __init__(self, path: str, line: int, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.path = path
        self.line = line
        self.exc = exc


def evaluate(
    bound: Bound,
    sources: Mapping[str, Any],
    *,
    inputs: Mapping[str, Any] | None = None,
    mappings: Mapping[str, Callable[..., Any]] | None = None,
    raw_mappings: Mapping[str, Callable[..., Any]] | None = None,
    keep_going: bool = True,
) -> Evaluation:
    """Evaluate a (checked) mapping over named source values.

    Args:
        bound: the resolved mapping.
        sources: source name → value (a model, or a dict that is validated into it).
        inputs: overrides of `[inputs]`.
        mappings: name → validated function of other mappings (for expression calls).
        raw_mappings: name → raw function of other mappings (for `mapping = ...` rules).
        keep_going: record a failing field and go on; False raises the first failure.
    """
    spec = bound.spec
    env: dict[str, Any] = {"__builtins__": helpers.code_builtins()}
    env.update(helpers.HELPERS)
    env.update(bound.uses)
    env.update(mappings or {})
    env.update(bound.inputs)
    env.update(inputs or {})
    for name, tp in bound.sources.items():
        value = sources[name]
        env[name] = coerce(tp, value, name, spec.name) if is_model(tp) else value
    run = _Run(bound, env, dict(raw_mappings or {}), keep_going)
    raw = run.fields(spec.fields, bound.target, env, "")
    evaluation = Evaluation(raw=raw, fields=run.results)
    if run.results and any(r.error for r in run.results):
        return evaluation
    if is_model(bound.target):
        try:
            evaluation.result = bound.target.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                path = loc_path(bound.target, err.get("loc", ()))
                rule = spec.nearest_rule(path)
                evaluation.validation.append(FieldResult(
                    path, rule.line if rule else spec.fields_line, err.get("input"),
                    str(err.get("msg")),
                ))
    else:
        evaluation.result = raw
    return evaluation


class _Run:
    def __init__(self, bound: Bound, env: dict[str, Any], raws: dict[str, Callable[..., Any]],
                 keep_going: bool) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.env = env
        self.raws = raws
        self.keep_going = keep_going
        self.results: list[FieldResult] = []
        self.code: dict[tuple[str, bool], Any] = {}

    def eval(self, expr: Expr, env: dict[str, Any], *, nullsafe: bool = False) -> Any:
        key = (expr.text, nullsafe)
        code = self.code.get(key)
        if code is None:
            tree = exprs.parse(expr.text)
            if nullsafe:
                tree = exprs.none_safe(tree)
            node = ast.Expression(body=tree)
            ast.fix_missing_locations(node)
            code = self.code[key] = compile(node, str(self.spec.path), "eval")
        return eval(code, env)

    def fields(self, rules: tuple[FieldRule, ...] | None, model: Any, env: dict[str, Any],
               prefix: str) -> dict[str, Any]:
        info = fields_of(model) if is_model(model) else {}
        out: dict[str, Any] = {}
        for rule in rules or ():
            spec_field = info.get(rule.name)
            key = input_key(rule.name, spec_field) if spec_field else rule.name
            field_type = spec_field.annotation if spec_field else UNKNOWN
            top = not prefix
            try:
                value = self.rule(rule, field_type, env)
            except _Failed as failed:
                if not top or not self.keep_going:
                    raise
                self.results.append(FieldResult(
                    failed.path, failed.line, None, f"{type(failed.exc).__name__}: {failed.exc}"
                ))
                continue
            except Exception as exc:
                if top and self.keep_going:
                    self.results.append(FieldResult(rule.path, rule.line, None,
                                                    f"{type(exc).__name__}: {exc}"))
                    continue
                raise _Failed(rule.path, rule.line, exc) from exc
            out[key] = value
            if top:
                self.results.append(FieldResult(rule.path, rule.line, value))
        return out

    def rule(self, rule: FieldRule, field_type: Any, env: dict[str, Any]) -> Any:
        if rule.kind == "const":
            return copy.deepcopy(rule.const)
        if rule.kind == "object":
            inner, _ = unwrap_optional(field_type)
            return self.fields(rule.fields, inner, env, rule.path)
        if rule.kind == "each":
            return self.each(rule, field_type, env)
        nullsafe = rule.default is not UNSET
        base = self.eval(rule.expr, env, nullsafe=nullsafe) if rule.expr else None
        if rule.mapping is not None:
            value = self.sub(rule, base, rule.expr is not None, env)
        elif rule.fields is not None:
            inner, _ = unwrap_optional(field_type)
            value = None if base is None else self.fields(
                rule.fields, inner, {**env, rule.var: base}, rule.path
            )
        else:
            value = base
        value = self.convert(rule, value, field_type)
        return self.default(rule, value)

    def sub(self, rule: FieldRule, value: Any, given: bool, env: dict[str, Any]) -> Any:
        assert rule.mapping is not None
        func = self.raws[rule.mapping]
        if not given:
            return func(*(env[s.name] for s in self.spec.sources))
        tree = exprs.parse(rule.expr.text) if rule.expr else None
        if isinstance(tree, ast.Tuple) and isinstance(value, tuple) and len(value) > 1:
            return func(*value)
        return None if value is None else func(value)

    def convert(self, rule: FieldRule, value: Any, field_type: Any) -> Any:
        if rule.convert is None:
            return value
        if rule.convert == "enum":
            enum, _ = unwrap_optional(field_type)
            return helpers.to_enum(enum, value)
        converters: dict[str, Callable[..., Any]] = {
            "int": helpers.to_int, "float": helpers.to_float, "decimal": helpers.to_decimal,
            "str": helpers.to_str, "bool": helpers.to_bool, "date": helpers.to_date,
            "datetime": helpers.to_datetime, "time": helpers.to_time,
        }
        func = converters[rule.convert]
        return func(value, rule.format) if rule.format else func(value)

    def default(self, rule: FieldRule, value: Any) -> Any:
        if rule.default is UNSET or value is not None:
            return value
        return copy.deepcopy(rule.default)

    def each(self, rule: FieldRule, field_type: Any, env: dict[str, Any]) -> Any:
        assert rule.each is not None
        base = self.eval(rule.each, env)
        if base is None and rule.default is not UNSET:
            return copy.deepcopy(rule.default)
        var = rule.var
        # lazy like the compiled code: `pick = "first"` stops at the first element
        items: Iterator[Any] = iter(base or ())
        if rule.where is not None:
            where = rule.where
            items = (x for x in items if self.eval(where, {**env, var: x}))
        if rule.sort is not None:
            sort = rule.sort
            ordered = sorted(items, key=lambda x: self.eval(sort, {**env, var: x}),
                             reverse=rule.desc)
            items = iter(ordered if rule.limit is None else ordered[: rule.limit])
        elif rule.limit is not None:
            items = itertools.islice(items, rule.limit)
        reduced = rule.pick is not None or rule.reduce is not None
        target_list, _ = unwrap_optional(field_type)
        elem_type = field_type if reduced else (list_item(target_list) or UNKNOWN)

        def element(x: Any) -> Any:
            inner = {**env, var: x}
            if rule.expr is not None:
                value = self.eval(rule.expr, inner)
            elif rule.fields is not None:
                model, _ = unwrap_optional(elem_type)
                value = self.fields(rule.fields, model, inner, f"{rule.path}[]")
            else:
                value = x
            if rule.mapping is not None:
                value = None if value is None else self.raws[rule.mapping](value)
            return self.convert(rule, value, elem_type)

        if rule.pick == "first":
            result = next((element(x) for x in items), None)
        else:
            values = [element(x) for x in items]
            if rule.pick == "last":
                result = values[-1] if values else None
            elif rule.pick is not None:
                assert isinstance(rule.pick, int)
                result = helpers.pick_index(values, rule.pick)
            elif rule.reduce == "join":
                result = helpers.join(values, rule.sep)
            elif rule.reduce == "count":
                result = len(values)
            elif rule.reduce is not None:
                result = {
                    "sum": helpers.reduce_sum, "min": helpers.reduce_min,
                    "max": helpers.reduce_max, "avg": helpers.avg,
                }[rule.reduce](values)
            else:
                return values
        return self.default(rule, result) if reduced else result
