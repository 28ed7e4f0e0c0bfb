"""The mapping file format: parsing with lines, problems, and editing that keeps comments."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from workbench.mapper.edit import (
    EditError,
    FieldEdit,
    delete_field,
    get_field,
    new_mapping_text,
    set_expression,
    set_option,
    set_rule,
    write_mapping,
)
from workbench.mapper.spec import UNSET, normalize_path, parse_text

TEXT = textwrap.dedent('''
    # Orders become invoices.
    [mapping]
    source = "project.types.orders:Order"   # the payload
    target = "project.types.billing:Invoice"
    uses = ["project.functions.pricing:order_total", "project.functions.pricing:shout as yell"]

    [inputs]
    currency = { config = "orders_api.currency", default = "EUR" }
    rate = 0.2

    [fields]
    # the invoice number
    number = "'INV-' + src.id"        # keep this comment
    total = { expr = "order_total(src)", convert = "decimal", format = "0.01" }
    count = 3

    [fields.place]
    street = "src.address.street"

    [fields.lines]
    each = "src.items"
    as = "it"
    where = "it.quantity > 0"
    [fields.lines.fields]
    sku = "it.sku"
    amount = """
    it.quantity *
      it.unit_price"""
''').lstrip()


def parse(text: str = TEXT):  # type: ignore[no-untyped-def]
    return parse_text(text, Path("/p/mappings/order_to_invoice.toml"), root=Path("/p"))


def test_parses_every_part_with_its_line() -> None:
    spec, issues = parse()
    assert issues == [] and spec is not None
    assert spec.name == "order_to_invoice" and spec.file == "mappings/order_to_invoice.toml"
    assert [(s.name, s.ref, s.line) for s in spec.sources] == [
        ("src", "project.types.orders:Order", 3)
    ]
    assert spec.target_line == 4
    assert [(u.name, u.line) for u in spec.uses] == [("order_total", 5), ("yell", 5)]
    assert [(i.name, i.config, i.default, i.value) for i in spec.inputs] == [
        ("currency", "orders_api.currency", "EUR", UNSET), ("rate", None, UNSET, 0.2)
    ]
    rules = {r.path: r for r in spec.walk()}
    assert list(rules) == ["number", "total", "count", "place", "place.street", "lines",
                           "lines[].sku", "lines[].amount"]
    assert (rules["number"].line, rules["number"].kind) == (13, "expr")
    assert rules["total"].convert == "decimal" and rules["total"].line_of("format") == 14
    assert rules["count"].const == 3 and rules["place"].kind == "object"
    lines = rules["lines"]
    assert (lines.kind, lines.var, lines.line, lines.line_of("where")) == ("each", "it", 20, 23)
    assert rules["lines[].amount"].expr is not None
    assert rules["lines[].amount"].expr.text == "it.quantity *\n  it.unit_price"
    assert spec.rule("lines[4].sku") is rules["lines[].sku"]
    assert normalize_path("a[1].b[22].c") == "a[].b[].c"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("[mapping]\ntarget = 'a:B'\n", 1, "no source"),
    ("[mapping]\nsource = 'a:B'\n", 1, "no target"),
    ("[mapping]\nsource = 'a:B'\ntarget = 'a:C'\ncolour = 1\n", 4, "unknown key 'colour'"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields]\nx = { expr = 'a', frmo = 1 }\n", 5,
     "unknown option 'frmo'"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields]\nx = { expr = 'a', where = 'b' }\n", 5,
     "where applies to lists"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields]\nx = { each = 'a', pick = 'middle' }\n",
     5, "pick must be"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields]\nx = { expr = 'a', convert = 'money' }\n",
     5, "convert must be one of"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields]\nx = { each = 'a', reduce = 'sum', "
     "pick = 'first' }\n", 5, "pick and reduce"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[inputs]\nr = { value = 1, config = 'a.b' }\n", 5,
     "exactly one of"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[fields\n", 4, "not valid TOML"),
    ("[mapping]\nsource='a:B'\ntarget='a:C'\n[other]\n", 4, "unknown table [other]"),
])
def test_problems_have_lines(text: str, line: int, message: str) -> None:
    _spec, issues = parse(text)
    assert any(i.line == line and message in i.message for i in issues), issues


def test_a_bad_file_name_is_reported() -> None:
    _spec, issues = parse_text("[mapping]\nsource='a:B'\ntarget='a:C'\n", Path("2-x.toml"))
    assert any("must be a Python identifier" in i.message for i in issues)


def test_set_expression_keeps_comments_and_order() -> None:
    text = set_expression(TEXT, "number", "'N-' + src.id")
    assert "number = \"'N-' + src.id\"        # keep this comment" in text
    assert "# the invoice number" in text and text.index("number =") < text.index("total =")
    text = set_expression(text, "total", "src.total")  # a rule keeps its options
    assert 'total = { expr = "src.total", convert = "decimal", format = "0.01" }' in text
    text = set_expression(text, "lines[].sku", 'it.sku.strip("x")')
    assert "sku = 'it.sku.strip(\"x\")'" in text
    text = set_expression(text, "billing.zip", "src.address.zip")  # a new nested table
    spec, issues = parse(text)
    assert issues == [] and spec is not None
    assert spec.rule("billing.zip") is not None and spec.rule("billing.zip").line > 20
    assert text.startswith("# Orders become invoices.\n")


def test_set_option_and_rule_and_delete() -> None:
    text = set_option(TEXT, "number", "default", "n/a")
    assert """number = { expr = "'INV-' + src.id", default = "n/a" }""" in text
    text = set_option(text, "number", "default", None)
    assert "default" not in text.split("number =")[1].split("\n")[0]
    text = set_rule(text, "tags", {"each": "src.items", "expr": "item.sku"})
    assert 'tags = { each = "src.items", expr = "item.sku" }' in text
    text = delete_field(text, "place.street")
    assert "[fields.place]" not in text
    text = delete_field(text, "lines[].amount")
    assert "amount" not in text and "sku = \"it.sku\"" in text
    spec, issues = parse(text)
    assert issues == [] and spec is not None
    assert spec.rule("tags") is not None and spec.rule("place") is None


def test_edits_refuse_paths_they_cannot_follow() -> None:
    with pytest.raises(EditError, match="not a list rule"):
        set_expression(TEXT, "place[].x", "1")
    with pytest.raises(EditError, match="does not exist"):
        set_expression(TEXT, "other[].x", "1")
    with pytest.raises(EditError, match="not a field path"):
        set_expression(TEXT, "a..b", "1")


def test_field_edits_undo() -> None:
    new, undo = FieldEdit("number", "src.id").apply(TEXT)
    assert get_field(new, "number") == "src.id"
    back, redo = undo.apply(new)
    assert get_field(back, "number") == "'INV-' + src.id"
    assert redo == FieldEdit("number", "src.id")
    added, undo = FieldEdit("extra", "1").apply(TEXT)
    assert get_field(added, "extra") == "1" and undo.value is None
    assert get_field(undo.apply(added)[0], "extra") is None
    changed, undo = FieldEdit("count", "4").apply(TEXT)
    assert get_field(undo.apply(changed)[0], "count") == {"const": 3}


def test_new_mapping_text_parses(tmp_path: Path) -> None:
    text = new_mapping_text("a.b:C", "a.b:D", uses=["x:y"], description="C to D",
                            fields={"x": "src.x"})
    path = tmp_path / "mappings" / "c_to_d.toml"
    write_mapping(path, text)
    spec, issues = parse_text(path.read_text(), path)
    assert issues == [] and spec is not None and spec.rule("x") is not None
    assert [p.name for p in path.parent.iterdir()] == ["c_to_d.toml"]
