"""The static check: each problem with its line, its field path, and its level."""

from __future__ import annotations

import pytest

from workbench.mapper.errors import Issue

from .conftest import HEAD, Project

REQUIRED = """
    number = "src.id"
    customer = "src.customer"
"""


def issues(project: Project, fields: str, *, head: str = HEAD,
           extra: dict[str, str] | None = None) -> list[Issue]:
    text = head + "\n    [fields]\n" + fields
    _root, registry = project({"mappings/m.toml": text, **(extra or {})})
    return registry.issues(["m"])


def only(found: list[Issue], level: str = "error") -> list[str]:
    return [i.text() for i in found if i.level == level]


def test_a_clean_mapping_has_no_issue(project: Project) -> None:
    assert issues(project, REQUIRED) == []


def test_unmapped_required_fields(project: Project) -> None:
    found = only(issues(project, 'number = "src.id"\n'))
    assert found == ["mappings/m.toml:5: field 'customer': required field 'customer' (str) of "
                     "Invoice is not mapped"]
    nested = only(issues(project, REQUIRED + '[fields.place]\nstreet = "src.id"\n'))
    assert any("field 'place.town': required field 'town'" in t for t in nested), nested
    elements = only(issues(project, REQUIRED + 'lines = { each = "src.items", fields = '
                                               '{ sku = "item.sku" } }\n'))
    assert any("field 'lines[].amount': required field 'amount'" in t for t in elements)


def test_fields_the_target_does_not_have(project: Project) -> None:
    found = only(issues(project, REQUIRED + 'totl = "1.0"\n'))
    assert found == ["mappings/m.toml:9: field 'totl': Invoice has no field 'totl'; did you mean "
                     "total? (fields: number, customer, lines, total, count, place, issued, "
                     "state, amount, note, tags, first_sku)"]


@pytest.mark.parametrize(("rule", "message"), [
    ('note = "src.custmer"', "unknown source path 'src.custmer': Order has no field 'custmer'"),
    ('note = "src.address.town"', "unknown source path 'src.address.town': Address has no "
                                  "field 'town'"),
    ('tags = { each = "src.items", expr = "item.name" }', "'item.name': Item has no field"),
    ('tags = { each = "src.items", where = "item.qty > 1", expr = "item.sku" }',
     "'item.qty': Item has no field 'qty'"),
    ('note = "src.items.sku"', "list[Item] is a list and has no attribute 'sku'"),
    ('note = "src.customer.uper()"', "a str has no attribute 'uper'"),
    ('note = "src[\'id\']"', "Order is a model: use .field"),
    ('note = "[i.skew for i in src.items][0]"', "Item has no field 'skew'"),
])
def test_unknown_source_paths(project: Project, rule: str, message: str) -> None:
    found = only(issues(project, REQUIRED + rule + "\n"))
    assert len(found) == 1 and message in found[0], found
    assert found[0].startswith("mappings/m.toml:9: field ")


@pytest.mark.parametrize(("rule", "level", "message"), [
    ('note = "len(src.items)"', "error", "the value is an int, the field is a str"),
    ('total = "src.items"', "error", "the value is a list (list[Item]), the field is a float"),
    ('tags = "src.customer"', "error", "the field is a list (list[str]), the value is a str"),
    ('place = "src.address"', "error", "the value is an Address, the field is a Place"),
    ('count = "src.amount_text"', "warning", "only numeric text passes; convert = 'int'"),
    ('issued = "src.placed"', "warning", "only ISO text passes"),
    ('count = "src.items[0].unit_price"', "warning", "a fractional part fails"),
    ('state = "src.status"', "warning", "the field is the enum State"),
    ('note = "src.email.lower()"', "warning", "'src.email' may be None (str | None)"),
    ('tags = { each = "src.items", expr = "item.quantity" }', "error",
     "list elements: the value is an int, the field is a str"),
    ('first_sku = { each = "src.items", expr = "item.sku" }', "error",
     "each makes a list, but the field is a str | None"),
    ('tags = { each = "src.customer", expr = "item" }', "error", "each needs a list"),
    ('note = { expr = "src.status", convert = "enum" }', "error", "needs an enum field"),
    ('total = { expr = "src.amount_text", convert = "float" }', None, ""),
    ('note = { expr = "src.email.lower()", default = "" }', None, ""),
    ('note = "str(len(src.items))"', None, ""),
    ('total = "sum(i.quantity * i.unit_price for i in src.items)"', None, ""),
])
def test_types(project: Project, rule: str, level: str | None, message: str) -> None:
    found = issues(project, REQUIRED + rule + "\n")
    if level is None:
        assert found == [], [i.text() for i in found]
        return
    texts = only(found, level)
    assert any(message in t for t in texts), [i.text() for i in found]


def test_bad_expressions_are_errors_with_their_line(project: Project) -> None:
    found = only(issues(project, REQUIRED + 'note = "import os"\ntags = "[x.__dict__]"\n'))
    assert found[0].startswith("mappings/m.toml:9: field 'note': expr: an import")
    assert found[1].startswith("mappings/m.toml:10: field 'tags': expr '[x.__dict__]': the "
                               "attribute '__dict__' is not allowed")


def test_multi_line_expression_problems_point_at_their_line(project: Project) -> None:
    found = only(issues(project, REQUIRED + 'note = """\nsrc.customer +\n  nope"""\n'))
    assert found == ["mappings/m.toml:11: field 'note': expr 'src.customer +\\n  nope': unknown "
                     "name 'nope' (names come from the sources, [inputs], `uses`, "
                     "sub-mappings, the element variable and the helpers)"]


def test_unknown_types_and_imports(project: Project) -> None:
    head = """
        [mapping]
        source = "project.types.orders:Ordr"
        target = "project.types.nothere:Invoice"
        uses = ["project.functions.pricing:nope", "os.path"]
    """
    found = only(issues(project, REQUIRED, head=head))
    assert any(":2:" in t and "has no 'Ordr'" in t for t in found), found
    assert any(":3:" in t and "module 'project.types.nothere' not found" in t for t in found)
    assert any(":4:" in t and "has no 'nope'" in t for t in found), found


def test_sub_mapping_problems(project: Project) -> None:
    found = only(issues(project, REQUIRED + 'place = { mapping = "nothing", expr = "src" }\n'))
    assert any("unknown mapping 'nothing'" in t for t in found), found
    selfish = only(issues(project, REQUIRED + 'place = { mapping = "m", expr = "src" }\n'))
    assert any("mapping 'm' calls itself" in t for t in selfish), selfish


def test_cycles_between_mappings_are_reported(project: Project) -> None:
    a = HEAD + """
        [fields]
        number = "src.id"
        customer = "src.customer"
        place = { mapping = "b", expr = "src" }
    """
    b = """
        [mapping]
        source = "project.types.orders:Order"
        target = "project.types.billing:Place"
        mappings = ["a"]
        [fields]
        street = "a(src).number"
        town = "src.customer"
    """
    _root, registry = project({"mappings/a.toml": a, "mappings/b.toml": b})
    texts = [i.text() for i in registry.issues() if i.level == "error"]
    assert any(t.startswith("mappings/a.toml:8: ") and "cycle: a → b → a" in t for t in texts)
    assert any(t.startswith("mappings/b.toml:4: ") and "cycle: a → b → a" in t for t in texts)
    assert registry.funcs == {}


def test_validators_that_convert_input_turn_type_errors_into_warnings(project: Project) -> None:
    types = """
        from pydantic import BaseModel, field_validator

        class Out(BaseModel):
            label: str
            size: str

            @field_validator("label", mode="before")
            @classmethod
            def _text(cls, value: object) -> str:
                return str(value)
    """
    text = """
        [mapping]
        source = "project.types.orders:Order"
        target = "project.types.out:Out"
        [fields]
        label = "len(src.items)"
        size = "len(src.items)"
    """
    _root, registry = project({"types/out.py": types, "mappings/m.toml": text})
    found = {i.field: i for i in registry.issues(["m"])}
    assert found["label"].level == "warning" and "unless its validator" in found["label"].message
    assert found["size"].level == "error"
