"""Compile a mapping to a Python function.

A mapping becomes one module with two functions, built as an AST and compiled with the
mapping file as file name:

    def order_to_invoice(src, *, currency=_in['currency']):
        if src.__class__ is not _S_src:
            src = _coerce(_S_src, src, 'src', 'order_to_invoice')
        try:
            return _validate({
                'customer': src.customer.lower(),
                'lines': [{'sku': item.sku} for item in (src.items or ()) if item.quantity > 0],
                ...
            })
        except _MappingRunError as _exc:
            _note(_exc)
            raise
        except _Exception as _exc:
            raise _fail(_exc) from _exc

    def _raw(src, *, currency=...):      # the same, returning the dict unvalidated

The target dict is validated once, by the target model's validator (faster than building
nested models one by one). Each expression's nodes carry the line and column of the
expression in the TOML file, so a traceback shows the mapping file and line; generated
scaffolding carries the line of its option (`each`, `convert`, `default`, ...).

`render()` prints the module (`iwb map export`); it is the same AST, laid out for reading.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import types
from collections.abc import Mapping
from typing import Any

from workbench.mapper import compiled as runtime
from workbench.mapper import expr as exprs
from workbench.mapper import helpers
from workbench.mapper.check import SubInfo
from workbench.mapper.compiled import CompiledMapping, Site
from workbench.mapper.errors import MappingRunError
from workbench.mapper.resolve import Bound
from workbench.mapper.spec import UNSET, Expr, FieldRule
from workbench.mapper.typeinfo import (
    UNKNOWN,
    fields_of,
    input_key,
    is_model,
    list_item,
    qualified,
    unwrap_optional,
)

_CONVERTERS = {
    "int": helpers.to_int, "float": helpers.to_float, "decimal": helpers.to_decimal,
    "str": helpers.to_str, "bool": helpers.to_bool, "date": helpers.to_date,
    "datetime": helpers.to_datetime, "time": helpers.to_time, "enum": helpers.to_enum,
}
_REDUCE = {
    "sum": helpers.reduce_sum, "count": len, "min": helpers.reduce_min,
    "max": helpers.reduce_max, "avg": helpers.avg, "join": helpers.join,
}
_LITERALS = (str, int, float, bool, type(None))


def compile_mapping(bound: Bound, subs: Mapping[str, SubInfo]) -> CompiledMapping:
    """Build and compile the code of a checked mapping.

    Args:
        bound: the mapping with its types and imports resolved (and checked: the compiler
            assumes `check_mapping` found no error).
        subs: the other mappings it may call (their source counts).
    """
    builder = _Builder(bound, subs)
    module = builder.module()
    code = compile(module, str(bound.spec.path), "exec")
    namespace = builder.namespace
    exec(code, namespace)
    func = namespace[bound.spec.name]
    raw = namespace["_raw"]
    source = render(module, builder.comments)
    digest = hashlib.sha256(bound.spec.text.encode()).hexdigest()[:16]
    result = CompiledMapping(
        name=bound.spec.name, spec=bound.spec, func=func, raw=raw, source=source,
        target=bound.target, sources=dict(bound.sources), inputs=dict(bound.inputs),
        sites=builder.sites, namespace=namespace, calls=dict(builder.calls), digest=digest,
        identity=bound.identity(),
    )
    namespace["_fail"] = result.fail
    namespace["_note"] = result.note
    return result


def _name(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


def _store(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store())


def _call(func: str | ast.expr, *args: ast.expr, **kwargs: ast.expr) -> ast.Call:
    return ast.Call(
        func=_name(func) if isinstance(func, str) else func,
        args=list(args),
        keywords=[ast.keyword(arg=k, value=v) for k, v in kwargs.items()],
    )


def _is_none(value: ast.expr) -> ast.Compare:
    return ast.Compare(left=value, ops=[ast.Is()], comparators=[ast.Constant(None)])


def _lambda(var: str, body: ast.expr) -> ast.Lambda:
    args = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=var)], vararg=None, kwonlyargs=[], kw_defaults=[],
        kwarg=None, defaults=[],
    )
    return ast.Lambda(args=args, body=body)


class _Builder:
    def __init__(self, bound: Bound, subs: Mapping[str, SubInfo]) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.subs = subs
        self.sites: list[Site] = []
        self.calls: dict[str, str] = {}
        self.comments: dict[int, str] = {}
        self.counter = 0
        self.bindings: list[tuple[str, str]] = []
        self.namespace: dict[str, Any] = {
            "__name__": f"iwb.mappings.{self.spec.name}",
            "__builtins__": helpers.code_builtins(),
        }
        ns = self.namespace
        ns.update(helpers.HELPERS)
        for name, obj in bound.uses.items():
            ns[name] = obj
            about = obj.__name__ if isinstance(obj, types.ModuleType) else qualified(obj)
            self.bindings.append((name, about))
        for name, _line in self.spec.mappings:
            ns[name] = runtime.unlinked(name)
            self.calls[name] = name
            self.bindings.append((name, f"the mapping {name!r} (validated result)"))
        internal = {
            "_coerce": runtime.coerce, "_opt": runtime.optional_call,
            "_MappingRunError": MappingRunError, "_Exception": Exception,
            "_sorted": sorted, "_next": next, "_islice": helpers.islice,
            "_last": helpers.last, "_index": helpers.pick_index,
            "_in": dict(bound.inputs),
        }
        internal.update({f"_to_{k}": v for k, v in _CONVERTERS.items()})
        internal.update({f"_reduce_{k}": v for k, v in _REDUCE.items()})
        ns.update(internal)
        for name, tp in bound.sources.items():
            if is_model(tp):
                ns[f"_S_{name}"] = tp
                self.bindings.append((f"_S_{name}", f"{qualified(tp)} (source {name!r})"))
        if is_model(bound.target):
            ns["_validate"] = bound.target.__pydantic_validator__.validate_python
            self.bindings.append(
                ("_validate", f"{qualified(bound.target)}.__pydantic_validator__"
                              ".validate_python")
            )
        if bound.inputs:
            self.bindings.append(("_in", f"the [inputs]: {bound.inputs!r}"))

    # ------------------------------------------------------------------ helpers

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def inject(self, prefix: str, value: Any, about: str) -> ast.Name:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        self.namespace[name] = value
        self.bindings.append((name, about))
        return _name(name)

    def site(self, line: int, path: str, option: str, variables: tuple[str, ...]) -> None:
        self.sites.append(Site(line, 0, line, 0, path, option, "", variables))

    def scaffold(self, node: ast.expr, line: int, path: str, option: str,
                 variables: tuple[str, ...]) -> ast.expr:
        exprs.stamp(node, line)
        self.site(line, path, option, variables)
        return node

    def user(
        self, rule: FieldRule, option: str, expr: Expr, variables: tuple[str, ...],
        *, nullsafe: bool = False,
    ) -> ast.expr:
        tree = exprs.parse(expr.text)
        if nullsafe:
            tree = exprs.none_safe(tree)
        where = exprs.locate(self.spec.text, expr.line, expr.text)
        exprs.place(tree, where)
        self.sites.append(Site(
            tree.lineno, tree.col_offset, tree.end_lineno or tree.lineno,
            tree.end_col_offset if tree.end_col_offset is not None else tree.col_offset,
            rule.path, option, expr.text, variables,
        ))
        return tree

    def const(self, value: Any, line: int) -> ast.expr:
        if isinstance(value, _LITERALS):
            node: ast.expr = ast.Constant(value)
        elif isinstance(value, list):
            node = ast.List(elts=[self.const(v, line) for v in value], ctx=ast.Load())
        elif isinstance(value, dict):
            node = ast.Dict(
                keys=[ast.Constant(str(k)) for k in value],
                values=[self.const(v, line) for v in value.values()],
            )
        else:  # dates, times, Decimals: immutable values bound by name
            node = self.inject("k", value, repr(value))
        exprs.stamp(node, line)
        return node

    # ------------------------------------------------------------------ module

    def module(self) -> ast.Module:
        spec, bound = self.spec, self.bound
        line = spec.target_line
        target_dict = self.fields(spec.fields, bound.target, ())
        self.comments[id(target_dict)] = "target"
        self.sites.append(Site(line, 0, line, 0, "", "validate", "", ()))
        public_value: ast.expr = (
            _call("_validate", target_dict) if is_model(bound.target) else target_dict
        )
        raw_value = copy.deepcopy(target_dict)
        for a, b in zip(ast.walk(target_dict), ast.walk(raw_value), strict=True):
            if id(a) in self.comments:
                self.comments[id(b)] = self.comments[id(a)]
        doc = ast.Expr(ast.Constant(self.docstring()))
        public = self.function(spec.name, public_value)
        raw = self.function("_raw", raw_value)
        module = ast.Module(body=[doc, public, raw], type_ignores=[])
        exprs.stamp(module, spec.mapping_line)
        ast.fix_missing_locations(module)
        return module

    def docstring(self) -> str:
        spec = self.spec
        sources = ", ".join(f"{s.name}: {s.ref}" for s in spec.sources)
        lines = [
            f"Mapping {spec.name!r}: {sources} -> {spec.target}.",
            "",
            f"Generated by iwb from {spec.file}; change that file, not this code.",
            "Names bound when the mapping loads (not imported here):",
        ]
        for name, about in self.bindings:
            lines.append(f"    {name:<14} {about}")
        lines.append("    to_int, join, ...   workbench.mapper.helpers (also _to_*, _reduce_*)")
        lines.append("    _coerce, _fail, _note  workbench.mapper.compiled (source coercion, "
                     "errors that name the field)")
        return "\n".join(lines) + "\n"

    def function(self, name: str, value: ast.expr) -> ast.FunctionDef:
        spec, bound = self.spec, self.bound
        params = [ast.arg(arg=s.name) for s in spec.sources]
        kwonly = [ast.arg(arg=i.name) for i in spec.inputs if i.name in bound.inputs]
        defaults: list[ast.expr | None] = [
            ast.Subscript(value=_name("_in"), slice=ast.Constant(a.arg), ctx=ast.Load())
            for a in kwonly
        ]
        args = ast.arguments(
            posonlyargs=[], args=params, vararg=None, kwonlyargs=kwonly,
            kw_defaults=defaults, kwarg=None, defaults=[],
        )
        body: list[ast.stmt] = []
        for source in spec.sources:
            tp = bound.sources.get(source.name)
            if not is_model(tp):
                continue
            check = ast.If(
                test=ast.Compare(
                    left=ast.Attribute(value=_name(source.name), attr="__class__",
                                       ctx=ast.Load()),
                    ops=[ast.IsNot()], comparators=[_name(f"_S_{source.name}")],
                ),
                body=[ast.Assign(
                    targets=[_store(source.name)],
                    value=_call("_coerce", _name(f"_S_{source.name}"), _name(source.name),
                                ast.Constant(source.name), ast.Constant(spec.name)),
                )],
                orelse=[],
            )
            exprs.stamp(check, source.line)
            body.append(check)
        handlers = [
            ast.ExceptHandler(
                type=_name("_MappingRunError"), name="_exc",
                body=[ast.Expr(_call("_note", _name("_exc"))), ast.Raise(exc=None, cause=None)],
            ),
            ast.ExceptHandler(
                type=_name("_Exception"), name="_exc",
                body=[ast.Raise(exc=_call("_fail", _name("_exc")), cause=_name("_exc"))],
            ),
        ]
        try_ = ast.Try(body=[ast.Return(value=value)], handlers=handlers, orelse=[],
                       finalbody=[])
        for handler in handlers:
            exprs.stamp(handler, spec.target_line)
        body.append(try_)
        func = ast.FunctionDef(
            name=name, args=args, body=body, decorator_list=[], returns=None,
            type_comment=None,
        )
        exprs.stamp(func, spec.target_line)
        return func

    # ------------------------------------------------------------------ fields

    def fields(self, rules: tuple[FieldRule, ...] | None, model: Any,
               variables: tuple[str, ...]) -> ast.Dict:
        info = fields_of(model) if is_model(model) else {}
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        for rule in rules or ():
            field = info.get(rule.name)
            key = input_key(rule.name, field) if field is not None else rule.name
            field_type = field.annotation if field is not None else UNKNOWN
            value = self.rule(rule, field_type, variables)
            keys.append(exprs.stamp(ast.Constant(key), rule.line))
            values.append(value)
            self.comments[id(value)] = f"{self.spec.file}:{rule.line}"
        node = ast.Dict(keys=keys, values=values)
        return node

    def rule(self, rule: FieldRule, field_type: Any, variables: tuple[str, ...]) -> ast.expr:
        self.site(rule.line, rule.path, "field", variables)
        if rule.kind == "const":
            return self.const(rule.const, rule.line)
        if rule.kind == "object":
            inner, _ = unwrap_optional(field_type)
            node: ast.expr = self.fields(rule.fields, inner, variables)
            exprs.stamp(node, rule.line)
            return node
        if rule.kind == "each":
            return self.each(rule, field_type, variables)
        return self.value(rule, field_type, variables)

    def value(self, rule: FieldRule, field_type: Any, variables: tuple[str, ...]) -> ast.expr:
        nullsafe = rule.default is not UNSET
        base = (
            self.user(rule, "expr", rule.expr, variables, nullsafe=nullsafe)
            if rule.expr is not None else None
        )
        node: ast.expr
        if rule.mapping is not None:
            node = self.sub_call(rule, base, variables)
        elif rule.fields is not None:
            assert base is not None
            inner, _ = unwrap_optional(field_type)
            body = self.fields(rule.fields, inner, (*variables, rule.var))
            fn = _lambda(rule.var, ast.IfExp(
                test=_is_none(_name(rule.var)), body=ast.Constant(None), orelse=body
            ))
            node = self.scaffold(_call(fn, base), rule.line_of("fields"), rule.path, "fields",
                                 (*variables, rule.var))
        else:
            assert base is not None
            node = base
        node = self.convert(rule, node, field_type, variables)
        return self.default(rule, node, variables)

    def sub_call(self, rule: FieldRule, base: ast.expr | None,
                 variables: tuple[str, ...]) -> ast.expr:
        assert rule.mapping is not None
        fn = f"_raw_{rule.mapping}"
        self.namespace.setdefault(fn, runtime.unlinked(rule.mapping))
        self.calls[fn] = rule.mapping
        self.bindings.append((fn, f"the mapping {rule.mapping!r} (unvalidated result)"))
        info = self.subs.get(rule.mapping)
        wanted = len(info.sources) if info is not None else 1
        if base is None:
            node: ast.expr = _call(fn, *[_name(s.name) for s in self.spec.sources])
        elif wanted > 1 and isinstance(base, ast.Tuple):
            node = _call(fn, *base.elts)
        elif wanted > 1:
            node = _call(fn, ast.Starred(value=base, ctx=ast.Load()))
        else:
            node = _call("_opt", _name(fn), base)
        return self.scaffold(node, rule.line_of("mapping"), rule.path, "mapping", variables)

    def convert(self, rule: FieldRule, node: ast.expr, field_type: Any,
                variables: tuple[str, ...]) -> ast.expr:
        if rule.convert is None:
            return node
        line = rule.line_of("convert")
        if rule.convert == "enum":
            enum, _ = unwrap_optional(field_type)
            name = self.inject("E", enum, qualified(enum))
            call = _call("_to_enum", name, node)
        else:
            extra = [ast.Constant(rule.format)] if rule.format else []
            call = _call(f"_to_{rule.convert}", node, *extra)
        return self.scaffold(call, line, rule.path, "convert", variables)

    def default(self, rule: FieldRule, node: ast.expr, variables: tuple[str, ...]) -> ast.expr:
        if rule.default is UNSET:
            return node
        line = rule.line_of("default")
        temp = self.temp()
        test = _is_none(ast.NamedExpr(target=_store(temp), value=node))
        result = ast.IfExp(test=test, body=self.const(rule.default, line), orelse=_name(temp))
        return self.scaffold(result, line, rule.path, "default", variables)

    def each(self, rule: FieldRule, field_type: Any, variables: tuple[str, ...]) -> ast.expr:
        assert rule.each is not None
        var = rule.var
        inner_vars = (*variables, var)
        each_line = rule.line_of("each")
        base = self.user(rule, "each", rule.each, variables)
        guard: str | None = None
        seq: ast.expr
        if rule.default is not UNSET:
            guard = self.temp()
            seq = _name(guard)
        else:
            seq = ast.BoolOp(op=ast.Or(), values=[base, ast.Tuple(elts=[], ctx=ast.Load())])
            exprs.stamp(seq, each_line)
        where = self.user(rule, "where", rule.where, inner_vars) if rule.where else None
        reduced = rule.pick is not None or rule.reduce is not None
        target_list, _ = unwrap_optional(field_type)
        elem_type = field_type if reduced else (list_item(target_list) or UNKNOWN)

        def generator(iterable: ast.expr, cond: ast.expr | None) -> ast.comprehension:
            return ast.comprehension(target=_store(var), iter=iterable,
                                     ifs=[cond] if cond is not None else [], is_async=0)

        pending = where
        if rule.sort is not None:
            key = self.user(rule, "sort", rule.sort, inner_vars)
            source = ast.GeneratorExp(elt=_name(var), generators=[generator(seq, where)]) \
                if where is not None else seq
            pending = None
            kwargs: dict[str, ast.expr] = {"key": _lambda(var, key)}
            if rule.desc:
                kwargs["reverse"] = ast.Constant(True)
            seq = self.scaffold(_call("_sorted", source, **kwargs), rule.line_of("sort"),
                                rule.path, "sort", inner_vars)
            if rule.limit is not None:
                seq = self.scaffold(
                    ast.Subscript(value=seq, slice=ast.Slice(upper=ast.Constant(rule.limit)),
                                  ctx=ast.Load()),
                    rule.line_of("limit"), rule.path, "limit", inner_vars,
                )
        elif rule.limit is not None:
            source = ast.GeneratorExp(elt=_name(var), generators=[generator(seq, where)]) \
                if where is not None else seq
            pending = None
            seq = self.scaffold(_call("_islice", source, ast.Constant(rule.limit)),
                                rule.line_of("limit"), rule.path, "limit", inner_vars)
        element: ast.expr
        if rule.expr is not None:
            element = self.user(rule, "expr", rule.expr, inner_vars)
        elif rule.fields is not None:
            elem_model, _ = unwrap_optional(elem_type)
            element = self.fields(rule.fields, elem_model, inner_vars)
            exprs.stamp(element, rule.line_of("fields"))
        else:
            element = exprs.stamp(_name(var), each_line)
        if rule.mapping is not None:
            fn = f"_raw_{rule.mapping}"
            self.namespace.setdefault(fn, runtime.unlinked(rule.mapping))
            self.calls[fn] = rule.mapping
            self.bindings.append((fn, f"the mapping {rule.mapping!r} (unvalidated result)"))
            element = self.scaffold(_call("_opt", _name(fn), element), rule.line_of("mapping"),
                                    rule.path, "mapping", inner_vars)
        element = self.convert(rule, element, elem_type, inner_vars)
        comp = generator(seq, pending)
        result: ast.expr
        if rule.pick == "first":
            result = _call("_next", ast.GeneratorExp(elt=element, generators=[comp]),
                           ast.Constant(None))
        else:
            listed = ast.ListComp(elt=element, generators=[comp])
            if rule.pick == "last":
                result = _call("_last", listed)
            elif rule.pick is not None:
                result = _call("_index", listed, ast.Constant(rule.pick))
            elif rule.reduce == "join":
                result = _call("_reduce_join", listed, ast.Constant(rule.sep))
            elif rule.reduce is not None:
                result = _call(f"_reduce_{rule.reduce}", listed)
            else:
                result = listed
        line = rule.line_of("pick" if rule.pick is not None else
                            "reduce" if rule.reduce is not None else "each")
        result = self.scaffold(result, line, rule.path, "each", inner_vars)
        if reduced:
            result = self.default(rule, result, variables)
        if guard is not None:
            test = _is_none(ast.NamedExpr(target=_store(guard), value=base))
            result = self.scaffold(
                ast.IfExp(test=test, body=self.const(rule.default, rule.line_of("default")),
                          orelse=result),
                rule.line_of("default"), rule.path, "default", variables,
            )
        return result


# ---------------------------------------------------------------------------- rendering

_WIDTH = 100


def render(module: ast.Module, comments: Mapping[int, str]) -> str:
    """The module as readable Python source (the same AST that is compiled)."""
    blocks: list[str] = []
    for stmt in module.body:
        out: list[str] = []
        _stmt(stmt, 0, out, comments)
        blocks.append("\n".join(out).rstrip("\n"))
    return "\n\n\n".join(blocks) + "\n"  # two blank lines between top-level blocks


def _stmt(node: ast.stmt, depth: int, out: list[str], comments: Mapping[int, str]) -> None:
    pad = "    " * depth
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(
        node.value.value, str
    ):
        text = node.value.value
        out.append(f'{pad}"""{text.rstrip()}\n{pad}"""' if "\n" in text else f'{pad}"""{text}"""')
        return
    if isinstance(node, ast.FunctionDef):
        out.append(f"{pad}def {node.name}({ast.unparse(node.args)}):")
        for stmt in node.body:
            _stmt(stmt, depth + 1, out, comments)
        return
    if isinstance(node, ast.If):
        out.append(f"{pad}if {ast.unparse(node.test)}:")
        for stmt in node.body:
            _stmt(stmt, depth + 1, out, comments)
        return
    if isinstance(node, ast.Try):
        out.append(f"{pad}try:")
        for stmt in node.body:
            _stmt(stmt, depth + 1, out, comments)
        for handler in node.handlers:
            head = f"except {ast.unparse(handler.type)}" if handler.type else "except"
            out.append(f"{pad}{head}{' as ' + handler.name if handler.name else ''}:")
            for stmt in handler.body:
                _stmt(stmt, depth + 1, out, comments)
        return
    if isinstance(node, ast.Return) and node.value is not None:
        out.append(f"{pad}return {_expr(node.value, depth, comments)}")
        return
    out.append(f"{pad}{ast.unparse(node)}")


def _expr(node: ast.expr, depth: int, comments: Mapping[int, str]) -> str:
    flat = ast.unparse(node)
    pad = "    " * depth
    inner = "    " * (depth + 1)
    if isinstance(node, ast.Dict) and node.keys and (
        len(flat) + len(pad) > _WIDTH or len(node.keys) > 2 or id(node) in comments
    ):
        lines = ["{"]
        for key, value in zip(node.keys, node.values, strict=True):
            head = f"{ast.unparse(key)}: " if key is not None else "**"
            text = _expr(value, depth + 1, comments)
            note = comments.get(id(value))
            entry = f"{inner}{head}{text},"
            if note and "\n" not in text and len(entry) + len(note) + 4 <= _WIDTH:
                entry += f"  # {note}"
            elif note:
                lines.append(f"{inner}# {note}")
            lines.append(entry)
        lines.append(f"{pad}}}")
        return "\n".join(lines)
    if len(flat) + len(pad) <= _WIDTH and not _has_block(node, comments):
        return flat
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        return f"{ast.unparse(node.func)}({_expr(node.args[0], depth, comments)})"
    if isinstance(node, ast.ListComp | ast.GeneratorExp):
        open_, close = ("[", "]") if isinstance(node, ast.ListComp) else ("(", ")")
        parts = [open_, f"{inner}{_expr(node.elt, depth + 1, comments)}"]
        for gen in node.generators:
            parts.append(f"{inner}for {ast.unparse(gen.target)} in {ast.unparse(gen.iter)}")
            parts.extend(f"{inner}if {ast.unparse(cond)}" for cond in gen.ifs)
        parts.append(f"{pad}{close}")
        return "\n".join(parts)
    return flat


def _has_block(node: ast.expr, comments: Mapping[int, str]) -> bool:
    return any(isinstance(n, ast.Dict) and id(n) in comments for n in ast.walk(node))
