"""The expression checker refuses statements, imports, dunders and unknown names; None-safe
rewriting; placement of expressions in their file."""

from __future__ import annotations

import ast

import pytest

from workbench.mapper import expr as exprs
from workbench.mapper.helpers import HELPERS, SAFE_BUILTINS

SCOPE = {"src", "rate", *HELPERS, *SAFE_BUILTINS}


def problems(text: str) -> list[str]:
    try:
        tree = exprs.parse(text)
    except exprs.ExprSyntaxError as exc:
        return [exc.problem.message]
    return [p.message for p in exprs.check(tree, SCOPE)]


@pytest.mark.parametrize("text", [
    "src.customer.lower()",
    "src.items[0].sku if src.items else None",
    "[i.sku for i in src.items if i.quantity > 0]",
    "{i.sku: i.quantity for i in src.items}",
    "sum(i.quantity * rate for i in src.items)",
    "sorted(src.items, key=lambda i: (i.sku, -i.quantity))[:3]",
    "f'{src.customer!r:>10} #{len(src.items)}'",
    "to_date(src.placed, '%d/%m/%Y')",
    "(src.a,\n src.b)",
    "src.x  # a comment",
    "src.format.upper()",
])
def test_accepts_expressions(text: str) -> None:
    assert problems(text) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("import os", "an import is not an expression"),
    ("from os import path", "an import is not an expression"),
    ("x = 1", "an assignment is not an expression"),
    ("for i in src: pass", "a loop is not an expression"),
    ("src.a; src.b", "several statements is not an expression"),
    ("(y := 1)", "walrus"),
    ("src.__class__", "the attribute '__class__' is not allowed"),
    ("src.__class__.__mro__[1].__subclasses__()", "'__class__' is not allowed"),
    ("'{0.__class__}'.format(src)", "calling .format() is not allowed (use an f-string)"),
    ("'{x}'.format_map(src)", "calling .format_map() is not allowed"),
    ("(i for i in []).gi_frame.f_globals", "'gi_frame' is not allowed"),
    ("__import__('os')", "the name '__import__' is reserved"),
    ("_secret", "the name '_secret' is reserved"),
    ("open('/etc/passwd')", "unknown name 'open'"),
    ("eval('1')", "unknown name 'eval'"),
    ("getattr(src, 'x')", "unknown name 'getattr'"),
    ("srcc.x", "unknown name 'srcc'; did you mean src"),
    ("[_ for _ in src]", "reserved"),
    ("", "the expression is empty"),
    ("src.x +", "syntax error"),
    ("await src", "await"),
])
def test_refuses(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_comprehension_and_lambda_names_stay_local() -> None:
    assert problems("[x for x in src] + [x]") == [
        "unknown name 'x' (names come from the sources, [inputs], `uses`, sub-mappings, "
        "the element variable and the helpers)"
    ]
    assert problems("(lambda y: y)(1) + y") != []


def test_problem_positions_are_relative_to_the_text() -> None:
    tree = exprs.parse("src.a +\n  nope")
    (problem,) = exprs.check(tree, SCOPE)
    assert (problem.line, problem.col) == (2, 2)


def run(text: str, **names: object) -> object:
    tree = exprs.none_safe(exprs.parse(text))
    node = ast.Expression(body=tree)
    ast.fix_missing_locations(node)
    return eval(compile(node, "<t>", "eval"), {"__builtins__": SAFE_BUILTINS, **names})


class Obj:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def test_none_safe_chains() -> None:
    assert run("src.a.b.c", src=Obj(a=None)) is None
    assert run("src.a.b.c", src=None) is None
    assert run("src.a.b.c", src=Obj(a=Obj(b=Obj(c=3)))) == 3
    assert run("src.a['k'].upper()", src=Obj(a={"k": "x"})) == "X"
    assert run("src.a['k'].upper()", src=Obj(a=None)) is None
    assert run("src.items[0].sku", src=Obj(items=None)) is None
    assert run("len(src.items or [])", src=Obj(items=None)) == 0


def test_none_safe_does_not_call_twice() -> None:
    calls: list[int] = []

    def f() -> Obj:
        calls.append(1)
        return Obj(x=Obj(y=1))

    assert run("f().x.y", f=f) == 1
    assert calls == [1]


def test_locate_finds_the_expression_inside_its_quotes() -> None:
    text = 'a = 1\nitem = "item.sku"\nb = { expr = \'item.x\' }\nc = """\nsrc.a +\n  src.b"""\n'
    at = exprs.locate(text, 2, "item.sku")
    assert (at.line, at.col, at.exact) == (2, 8, True)
    at = exprs.locate(text, 3, "item.x")
    assert (at.line, at.col, at.exact) == (3, 14, True)
    at = exprs.locate(text, 4, "src.a +\n  src.b")
    assert (at.line, at.col, at.exact) == (5, 0, True)
    at = exprs.locate('q = "a \\"b\\""\n', 1, 'a "b"')
    assert not at.exact and at.line == 1


def test_place_moves_nodes_to_file_positions() -> None:
    tree = exprs.place(exprs.parse("src.a +\n  src.b"), exprs.Placement(5, 0, True, 7))
    assert isinstance(tree, ast.BinOp)
    assert (tree.lineno, tree.col_offset, tree.end_lineno, tree.end_col_offset) == (5, 0, 6, 7)
    tree = exprs.place(exprs.parse("src.a"), exprs.Placement(3, 10, True, 20))
    assert (tree.lineno, tree.col_offset, tree.end_col_offset) == (3, 10, 15)
