"""Mapping expressions: parse, check, make None-safe, and place at their TOML position.

An expression is one Python expression, checked on its AST:

- statements, imports, `await`, `yield` and the walrus `:=` are refused;
- no name starts with `_`, and no attribute is a dunder (`x.__class__`) or one of the
  frame/code attributes that reach interpreter internals (`gi_frame`, `f_globals`, ...);
- every free name is in the scope the caller gives: the sources, the `[inputs]`, the
  `uses` imports, sub-mappings, the element variable of an `each`, the helpers of
  `workbench.mapper.helpers` and a small set of builtins (no `open`, `getattr`, `eval`).

This is hygiene for hand-written project code, not a sandbox for untrusted input.
"""

from __future__ import annotations

import ast
import copy
import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

NodeT = TypeVar("NodeT", bound=ast.AST)

BLOCKED_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "ag_frame", "ag_code",
    "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next",
    "func_globals", "mro",
})
"""Attributes refused besides dunders: they reach frames, code and globals."""

BLOCKED_CALLS = frozenset({"format", "format_map"})
"""Methods refused: `str.format` can walk attributes from its format string
(`"{0.__class__}"`); f-strings do the same job. (Reading a field named `format` is fine.)"""

_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict,
    ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Compare,
    ast.Call, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice, ast.comprehension, ast.keyword,
    ast.arguments, ast.arg, ast.expr_context, ast.boolop, ast.operator, ast.unaryop,
    ast.cmpop,
)

_REFUSED = {
    ast.NamedExpr: "the walrus operator := is not allowed in a mapping expression",
    ast.Await: "await is not allowed in a mapping expression",
    ast.Yield: "yield is not allowed in a mapping expression",
    ast.YieldFrom: "yield is not allowed in a mapping expression",
}


@dataclass(frozen=True, slots=True)
class ExprProblem:
    """A problem of one expression; `line`/`col` are relative to the expression text
    (1-based line, 0-based column)."""

    message: str
    line: int = 1
    col: int = 0


class ExprSyntaxError(Exception):
    """The text is not a single Python expression."""

    def __init__(self, problem: ExprProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def parse(text: str) -> ast.expr:
    """Parse one expression.

    Raises:
        ExprSyntaxError: not an expression (a statement, an import, a syntax error).
    """
    source = text.strip()
    if not source:
        raise ExprSyntaxError(ExprProblem("the expression is empty"))
    try:
        tree = ast.parse(_wrap(text), mode="eval")
    except SyntaxError as exc:
        raise ExprSyntaxError(_explain(text, exc)) from None
    return tree.body


def _wrap(text: str) -> str:
    # Parenthesised, so an expression may span lines in a multi-line TOML string; the
    # opening parenthesis sits on its own line 0 so positions stay those of the text.
    return "(\n" + text + "\n)"


def _explain(text: str, exc: SyntaxError) -> ExprProblem:
    try:
        module = ast.parse(text.strip(), mode="exec")
    except SyntaxError:
        last = text.count("\n") + 1
        line = min(max((exc.lineno or 2) - 1, 1), last)  # the closing wrapper is past the end
        col = max((exc.offset or 1) - 1, 0) if (exc.lineno or 2) - 1 <= last else 0
        return ExprProblem(f"syntax error: {exc.msg}", line, col)
    kinds = {
        ast.Import: "an import", ast.ImportFrom: "an import", ast.Assign: "an assignment",
        ast.AugAssign: "an assignment", ast.AnnAssign: "an assignment",
        ast.FunctionDef: "a function definition", ast.ClassDef: "a class definition",
        ast.For: "a loop", ast.While: "a loop", ast.If: "an if statement",
        ast.With: "a with statement", ast.Try: "a try statement", ast.Delete: "a del",
        ast.Return: "a return", ast.Raise: "a raise", ast.Global: "a global statement",
    }
    first = module.body[0] if module.body else None
    what = kinds.get(type(first), "a statement") if first is not None else "a statement"
    if len(module.body) > 1 and all(isinstance(s, ast.Expr) for s in module.body):
        what = "several statements"
    return ExprProblem(
        f"{what} is not an expression: a mapping field holds one Python expression "
        "(use a conditional `a if c else b`, a comprehension, or a function from `uses`)",
        getattr(first, "lineno", 1),
        getattr(first, "col_offset", 0),
    )


def _pos(node: ast.AST) -> tuple[int, int]:
    return max(getattr(node, "lineno", 2) - 1, 1), getattr(node, "col_offset", 0)


def check(tree: ast.expr, scope: Iterable[str], *, hints: Iterable[str] = ()) -> list[ExprProblem]:
    """Check an expression's nodes and names.

    Args:
        tree: from `parse`.
        scope: every name the expression may use (helpers and builtins included).
        hints: names worth suggesting on a typo (the scope's own names, say).
    """
    known = set(scope)
    problems: list[ExprProblem] = []
    _Checker(known, problems, list(hints) or sorted(known)).visit_root(tree)
    return problems


class _Checker:
    def __init__(self, known: set[str], problems: list[ExprProblem], hints: list[str]) -> None:
        self.known = known
        self.problems = problems
        self.hints = hints

    def visit_root(self, tree: ast.expr) -> None:
        self.visit(tree, frozenset())

    def report(self, node: ast.AST, message: str) -> None:
        line, col = _pos(node)
        self.problems.append(ExprProblem(message, line, col))

    def visit(self, node: ast.AST, local: frozenset[str]) -> None:
        for kind, message in _REFUSED.items():
            if isinstance(node, kind):
                self.report(node, message)
                return
        if not isinstance(node, _ALLOWED):
            self.report(node, f"{type(node).__name__} is not allowed in a mapping expression")
            return
        if isinstance(node, ast.Name):
            self.name(node, local)
            return
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__") or node.attr in BLOCKED_ATTRIBUTES:
                self.report(node, f"the attribute {node.attr!r} is not allowed")
            self.visit(node.value, local)
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
            node.func.attr in BLOCKED_CALLS
        ):
            self.report(node, f"calling .{node.func.attr}() is not allowed (use an f-string)")
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            self.comprehension(node, local)
            return
        if isinstance(node, ast.Lambda):
            args = node.args
            names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
            if args.vararg:
                names.add(args.vararg.arg)
            if args.kwarg:
                names.add(args.kwarg.arg)
            for default in (*args.defaults, *[d for d in args.kw_defaults if d is not None]):
                self.visit(default, local)
            for name in names:
                self.binding(node, name)
            self.visit(node.body, local | names)
            return
        for child in ast.iter_child_nodes(node):
            self.visit(child, local)

    def binding(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            self.report(node, f"the name {name!r} is reserved (names starting with _ are)")

    def comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
        local: frozenset[str],
    ) -> None:
        bound = set(local)
        for gen in node.generators:
            self.visit(gen.iter, frozenset(bound))
            for target in ast.walk(gen.target):
                if isinstance(target, ast.Name):
                    self.binding(target, target.id)
                    bound.add(target.id)
                elif not isinstance(target, ast.Tuple | ast.List | ast.Starred | ast.expr_context):
                    self.report(target, "a comprehension may only bind names")
            for cond in gen.ifs:
                self.visit(cond, frozenset(bound))
        inner = frozenset(bound)
        if isinstance(node, ast.DictComp):
            self.visit(node.key, inner)
            self.visit(node.value, inner)
        else:
            self.visit(node.elt, inner)

    def name(self, node: ast.Name, local: frozenset[str]) -> None:
        name = node.id
        if name.startswith("_"):
            self.report(node, f"the name {name!r} is reserved (names starting with _ are)")
            return
        if name in local or name in self.known:
            return
        close = difflib.get_close_matches(name, self.hints, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        self.report(
            node,
            f"unknown name {name!r}{hint} (names come from the sources, [inputs], `uses`, "
            "sub-mappings, the element variable and the helpers)",
        )


def free_names(tree: ast.expr) -> set[str]:
    """Names the expression reads from outside (not bound by its comprehensions/lambdas)."""
    found: set[str] = set()

    def visit(node: ast.AST, local: frozenset[str]) -> None:
        if isinstance(node, ast.Name):
            if node.id not in local:
                found.add(node.id)
            return
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            bound = set(local)
            for gen in node.generators:
                visit(gen.iter, frozenset(bound))
                bound |= {t.id for t in ast.walk(gen.target) if isinstance(t, ast.Name)}
                for cond in gen.ifs:
                    visit(cond, frozenset(bound))
            inner = frozenset(bound)
            if isinstance(node, ast.DictComp):
                visit(node.key, inner)
                visit(node.value, inner)
            else:
                visit(node.elt, inner)
            return
        if isinstance(node, ast.Lambda):
            a = node.args
            names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
            names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
            visit(node.body, local | names)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, local)

    visit(tree, frozenset())
    return found


def chains(tree: ast.expr) -> Iterator[tuple[ast.expr, list[ast.expr]]]:
    """Every maximal access chain `a.b[0].c`: yields (the whole chain, its steps from the
    root name outwards). Used by the static check to follow source paths."""

    def steps_of(node: ast.expr) -> list[ast.expr] | None:
        out: list[ast.expr] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute | ast.Subscript):
            out.append(cur)
            cur = cur.value
        if not isinstance(cur, ast.Name):
            return None
        out.append(cur)
        out.reverse()
        return out

    def visit(node: ast.AST, inside_chain: bool) -> Iterator[tuple[ast.expr, list[ast.expr]]]:
        if isinstance(node, ast.Attribute | ast.Subscript) and not inside_chain:
            steps = steps_of(node)
            if steps is not None:
                yield node, steps
        for child in ast.iter_child_nodes(node):
            child_in_chain = isinstance(node, ast.Attribute | ast.Subscript) and (
                child is node.value
            )
            yield from visit(child, child_in_chain)

    yield from visit(tree, False)


# ---------------------------------------------------------------------------- None-safety


def _pure(node: ast.expr) -> bool:
    """Cheap to evaluate twice and free of side effects (names, constants, attribute and
    constant-index chains)."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.Attribute):
        return _pure(node.value)
    if isinstance(node, ast.Subscript):
        return _pure(node.value) and _pure(node.slice)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return False


def none_safe(tree: ast.expr) -> ast.expr:
    """Rewrite access chains so a None along the way gives None instead of an error:
    `src.address.street` → `None if src is None else None if src.address is None else
    src.address.street`. A method call at the end of a chain is guarded too
    (`src.note.strip()`); what follows a call is not (it would run the call twice)."""
    return _NoneSafe().visit(tree)  # type: ignore[no-any-return]


class _NoneSafe(ast.NodeTransformer):
    def _guard(self, node: ast.expr, subject: ast.expr) -> ast.expr:
        prefixes: list[ast.expr] = []
        cur: ast.expr = subject
        while True:
            prefixes.append(cur)
            if isinstance(cur, ast.Attribute):
                cur = cur.value
            elif isinstance(cur, ast.Subscript) and _pure(cur.slice):
                cur = cur.value
            else:
                break
        if not _pure(prefixes[-1]) or isinstance(prefixes[-1], ast.Constant):
            prefixes.pop()
        result: ast.expr = node
        for prefix in prefixes:  # innermost check last, so the root is tested first
            test = ast.Compare(
                left=_clone(prefix), ops=[ast.Is()], comparators=[ast.Constant(None)]
            )
            result = ast.IfExp(test=test, body=ast.Constant(None), orelse=result)
            ast.copy_location(result, node)
            ast.copy_location(test, node)
        return result

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if _pure(node.value):
            return self._guard(node, node.value)
        node.value = self.visit(node.value)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        if _pure(node.value) and _pure(node.slice):
            return self._guard(node, node.value)
        node.value = self.visit(node.value)
        node.slice = self.visit(node.slice)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        node.args = [self.visit(a) for a in node.args]
        for kw in node.keywords:
            kw.value = self.visit(kw.value)
        func = node.func
        if isinstance(func, ast.Attribute) and _pure(func.value) and not isinstance(
            func.value, ast.Name
        ):
            return self._guard(node, func.value)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return self._guard(node, func.value)
        node.func = self.visit(func)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.expr:
        node.body = self.visit(node.body)
        return node


def _clone(node: ast.expr) -> ast.expr:
    return copy.deepcopy(node)


# ---------------------------------------------------------------------------- placement


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an expression's text sits in its file: the byte column of its first
    character on `line`. `exact` is False when the TOML string had escapes and the text
    was not found; then every node gets the whole `line`."""

    line: int
    col: int
    exact: bool
    line_bytes: int
    """Length of `line` in UTF-8 bytes (for the fallback span)."""


def locate(file_text: str, key_line: int, text: str) -> Placement:
    """Find the expression `text` (as decoded from TOML) in the file, starting at the line
    of its key."""
    lines = file_text.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: key_line - 1])
    line_text = lines[key_line - 1] if 0 < key_line <= len(lines) else ""
    fallback = Placement(key_line, 0, False, len(line_text.rstrip("\r\n").encode()))
    if not text:
        return fallback
    limit = start + len(line_text) + len(text) + 8
    pos = file_text.find(text, start)
    while 0 <= pos <= limit:
        before = file_text[pos - 1] if pos > 0 else ""
        if before in ("'", '"') or (before == "\n" and file_text[max(0, pos - 4):pos - 1] in (
            '"""', "'''"
        )):
            line_no = file_text.count("\n", 0, pos) + 1
            line_start = file_text.rfind("\n", 0, pos) + 1
            col = len(file_text[line_start:pos].encode())
            return Placement(line_no, col, True, fallback.line_bytes)
        pos = file_text.find(text, pos + 1)
    return fallback


def place(tree: ast.expr, where: Placement) -> ast.expr:
    """Give every node of a parsed expression its position in the mapping file, so a
    traceback through it shows the file, the line and (with carets) the part that failed."""
    for node in ast.walk(tree):
        if "lineno" not in node._attributes:
            continue
        if not where.exact:
            _set_position(node, where.line, 0, where.line, where.line_bytes)
            continue
        rel_line = max(getattr(node, "lineno", 2) - 1, 1)
        rel_end = max((getattr(node, "end_lineno", None) or rel_line + 1) - 1, rel_line)
        col = getattr(node, "col_offset", 0)
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col
        _set_position(
            node,
            where.line + rel_line - 1,
            col + (where.col if rel_line == 1 else 0),
            where.line + rel_end - 1,
            end_col + (where.col if rel_end == 1 else 0),
        )
    return tree


def _set_position(node: ast.AST, line: int, col: int, end_line: int, end_col: int) -> None:
    # setattr: the position attributes exist on expression and statement nodes only
    setattr(node, "lineno", line)  # noqa: B010
    setattr(node, "col_offset", col)  # noqa: B010
    setattr(node, "end_lineno", end_line)  # noqa: B010
    setattr(node, "end_col_offset", end_col)  # noqa: B010


def stamp(node: NodeT, line: int, col: int = 0, end_col: int = 0) -> NodeT:
    """Give a generated node (and its generated children without a position) a position."""
    for child in ast.walk(node):
        if "lineno" in child._attributes and not hasattr(child, "lineno"):
            _set_position(child, line, col, line, end_col)
    return node
