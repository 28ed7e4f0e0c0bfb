"""The compiler, feature by feature: each mapping is compiled, run, and its result checked
(and, for every test, the exported source is compiled and run too: the same result)."""

from __future__ import annotations

import traceback
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from workbench.mapper.compiled import CompiledMapping
from workbench.mapper.errors import MappingRunError

from .conftest import HEAD, Project

ORDER: dict[str, Any] = {
    "id": "A7",
    "customer": "Ada",
    "email": "ada@example.com",
    "items": [
        {"sku": "tea", "quantity": 2, "unit_price": 4.5, "tags": ["hot"]},
        {"sku": "cup", "quantity": 0, "unit_price": 3.0},
        {"sku": "jam", "quantity": 1, "unit_price": 2.25, "tags": ["sweet", "jar"]},
    ],
    "address": {"street": "1 Main St", "city": "Oslo"},
    "placed": "24/12/2024",
    "status": "paid",
    "amount_text": "12.50",
}

BASICS = """
    number = "'INV-' + src.id"
    customer = "src.customer"
"""


def build(project: Project, fields: str, *, head: str = HEAD, extra: dict[str, str] | None = None,
          name: str = "m") -> CompiledMapping:
    text = head + "\n    [fields]\n" + BASICS + fields
    _root, registry = project({f"mappings/{name}.toml": text, **(extra or {})})
    issues = [i.text() for i in registry.issues() if i.level == "error"]
    assert not issues, issues
    return registry.get(name)


def line_of(compiled: CompiledMapping, text: str) -> int:
    """The 1-based line of the mapping file that holds `text`."""
    lines = compiled.spec.text.splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def same_as_export(compiled: CompiledMapping, *args: Any, **kwargs: Any) -> Any:
    """Run the mapping and its exported source; both must agree."""
    result = compiled.func(*args, **kwargs)
    namespace = dict(compiled.namespace)
    exec(compile(compiled.source, "<export>", "exec"), namespace)
    again = namespace[compiled.name](*args, **kwargs)
    assert again == result
    return result


def test_expressions_and_constants(project: Project) -> None:
    m = build(project, """
        note = "f'{src.customer} <{src.email}>'"
        count = 3
        tags = ["a", "b"]
        state = { const = "paid" }
    """)
    inv = same_as_export(m, ORDER)
    assert (inv.number, inv.customer, inv.note, inv.count) == ("INV-A7", "Ada",
                                                               "Ada <ada@example.com>", 3)
    assert inv.tags == ["a", "b"] and inv.state.value == "paid"
    assert m.raw(ORDER)["number"] == "INV-A7"


def test_nested_object_from_a_table(project: Project) -> None:
    m = build(project, """
        [fields.place]
        street = "src.address.street"
        town = "src.address.city.upper()"
    """)
    inv = same_as_export(m, ORDER)
    assert inv.place is not None and (inv.place.street, inv.place.town) == ("1 Main St", "OSLO")


def test_nested_object_bound_to_a_value_is_none_when_the_value_is(project: Project) -> None:
    m = build(project, """
        [fields.place]
        expr = "src.address"
        as = "a"
        fields = { street = "a.street", town = "a.city" }
    """)
    assert same_as_export(m, ORDER).place.town == "Oslo"
    assert same_as_export(m, {**ORDER, "address": None}).place is None


def test_each_with_filter_sort_desc_limit_and_element_fields(project: Project) -> None:
    m = build(project, """
        [fields.lines]
        each = "src.items"
        where = "item.quantity > 0"
        sort = "item.unit_price"
        desc = true
        limit = 5
        [fields.lines.fields]
        sku = "item.sku"
        amount = "item.quantity * item.unit_price"
    """)
    inv = same_as_export(m, ORDER)
    assert [(x.sku, x.amount) for x in inv.lines] == [("tea", 9.0), ("jam", 2.25)]
    limited = build(project, """
        lines = { each = "src.items", limit = 2, fields = { sku = "item.sku", amount = "0" } }
    """)
    assert [x.sku for x in same_as_export(limited, ORDER).lines] == ["tea", "cup"]


def test_each_with_an_element_expression_and_a_named_element(project: Project) -> None:
    m = build(project, """
        tags = { each = "src.items", as = "it", expr = "it.sku.upper()", where = "it.tags" }
    """)
    assert same_as_export(m, ORDER).tags == ["TEA", "JAM"]


def test_nested_each_inside_each(project: Project) -> None:
    m = build(project, """
        tags = { each = "src.items", expr = "','.join(t for t in item.tags)", where = "item.tags" }
    """)
    assert same_as_export(m, ORDER).tags == ["hot", "sweet,jar"]


@pytest.mark.parametrize(("rule", "expected"), [
    ('{ each = "src.items", expr = "item.sku", pick = "first" }', "tea"),
    ('{ each = "src.items", expr = "item.sku", pick = "last" }', "jam"),
    ('{ each = "src.items", expr = "item.sku", pick = 1 }', "cup"),
    ('{ each = "src.items", expr = "item.sku", pick = 7 }', None),
    ('{ each = "src.items", expr = "item.sku", sort = "item.sku", pick = "first" }', "cup"),
    ('{ each = "src.items", expr = "item.sku", reduce = "join", sep = "+" }', "tea+cup+jam"),
    ('{ each = "src.items", where = "item.quantity == 9", expr = "item.sku", pick = "first",'
     ' default = "none" }', "none"),
])
def test_array_to_one_value_by_pick(project: Project, rule: str, expected: Any) -> None:
    m = build(project, f"first_sku = {rule}\n")
    assert same_as_export(m, ORDER).first_sku == expected


@pytest.mark.parametrize(("reduce", "expected"), [
    ("sum", 3.0), ("count", 3), ("min", 0.0), ("max", 2.0), ("avg", 1.0),
])
def test_array_to_one_value_by_reduce(project: Project, reduce: str, expected: Any) -> None:
    m = build(project, f'total = {{ each = "src.items", expr = "item.quantity", '
                       f'reduce = "{reduce}" }}\n')
    assert same_as_export(m, ORDER).total == expected


def test_reduce_of_an_empty_list(project: Project) -> None:
    m = build(project, """
        total = { each = "src.items", expr = "item.unit_price", reduce = "max", default = -1.0 }
        count = { each = "src.items", reduce = "count" }
    """)
    inv = same_as_export(m, {**ORDER, "items": []})
    assert (inv.total, inv.count) == (-1.0, 0)


def test_conversions(project: Project) -> None:
    m = build(project, """
        issued = { expr = "src.placed", convert = "date", format = "%d/%m/%Y" }
        amount = { expr = "src.amount_text", convert = "decimal", format = "0.1" }
        state = { expr = "src.status.upper()", convert = "enum" }
        count = { expr = "src.amount_text.split('.')[0]", convert = "int" }
        note = { expr = "src.items[0].unit_price", convert = "str" }
        tags = { each = "src.items", expr = "item.quantity", convert = "str" }
    """)
    inv = same_as_export(m, ORDER)
    assert inv.issued == date(2024, 12, 24)
    assert inv.amount == Decimal("12.5")
    assert inv.state.value == "paid" and inv.count == 12 and inv.note == "4.5"
    assert inv.tags == ["2", "0", "1"]


def test_conversion_error_names_file_line_field_and_value(project: Project) -> None:
    m = build(project, """
        issued = { expr = "src.placed", convert = "date", format = "%d/%m/%Y" }
    """)
    with pytest.raises(MappingRunError) as info:
        m.func({**ORDER, "placed": "2024-13-45"})
    err = info.value
    assert err.field == "issued" and err.value == "2024-13-45"
    line = line_of(m, "issued =")
    assert err.file == "mappings/m.toml" and err.line == line
    assert f"mappings/m.toml:{line}" in err.message and "'2024-13-45'" in err.message
    assert "cannot convert" in err.message


def test_enum_conversion_error_lists_the_allowed_values(project: Project) -> None:
    m = build(project, 'state = { expr = "src.status", convert = "enum" }\n')
    with pytest.raises(MappingRunError, match=r"field 'state'.*'void'.*'open', 'paid'"):
        m.func({**ORDER, "status": "void"})


def test_defaults_and_none_safe_paths(project: Project) -> None:
    m = build(project, """
        note = { expr = "src.address.zip.strip()", default = "-" }
        first_sku = { expr = "src.note", default = "n/a" }
        [fields.place]
        street = { expr = "src.address.street", default = "unknown" }
        town = { expr = "src.address.city", default = "unknown" }
    """)
    inv = same_as_export(m, {**ORDER, "address": None})
    assert (inv.note, inv.first_sku) == ("-", "n/a")
    assert inv.place is not None and inv.place.street == "unknown"
    full = same_as_export(m, {**ORDER, "address": {"street": "s", "city": "c", "zip": " 0150 "}})
    assert full.note == "0150" and full.place.town == "c"


def test_each_over_none_is_empty_or_the_default(project: Project) -> None:
    m = build(project, """
        tags = { each = "src.email and src.email.split('@')", expr = "item" }
        lines = { each = "src.email and []", default = [{ sku = "none", amount = 0 }], \
fields = { sku = "item", amount = "0" } }
    """.replace("\\\n", ""))
    inv = same_as_export(m, {**ORDER, "email": None})
    assert inv.tags == [] and [x.sku for x in inv.lines] == ["none"]


def test_inputs_constants_and_configurables(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = HEAD + """
        [inputs]
        prefix = { config = "billing.prefix" }
        rate = { config = "billing.rate", type = "float", default = 0.5 }
        suffix = "!"

        [fields]
        number = "prefix + src.id + suffix"
        customer = "src.customer"
        total = "rate * 2"
    """
    _root, registry = project({"mappings/m.toml": text,
                               "Config.toml": "[billing]\nprefix = 'B-'\n"})
    assert not registry.issues(), [i.text() for i in registry.issues()]
    m = registry.get("m")
    inv = m.func(ORDER)
    assert (inv.number, inv.total) == ("B-A7!", 1.0)
    # inputs can be overridden per call
    assert m.func(ORDER, prefix="X-").number == "X-A7!"
    monkeypatch.setenv("IWB_BILLING__RATE", "2")
    _root, registry = project({"mappings/m.toml": text,
                               "Config.toml": "[billing]\nprefix = 'B-'\n"})
    assert registry.get("m").func(ORDER).total == 4.0


def test_missing_configurable_input_is_an_error_at_its_line(project: Project) -> None:
    text = HEAD + """
        [inputs]
        prefix = { config = "billing.prefix" }

        [fields]
        number = "prefix"
        customer = "src.customer"
    """
    _root, registry = project({"mappings/m.toml": text})
    (issue,) = registry.issues()
    assert issue.level == "error" and issue.line == 6  # the input's line
    assert "prefix" in issue.message and "IWB_BILLING__PREFIX" in issue.message


def test_functions_from_uses(project: Project) -> None:
    head = HEAD + """
        uses = ["project.functions.pricing:order_total", "project.functions.pricing:shout as yell"]
    """
    m = build(project, 'total = "order_total(src)"\nnote = "yell(src.customer)"\n', head=head)
    inv = same_as_export(m, ORDER)
    assert (inv.total, inv.note) == (11.25, "ADA!")


def test_sub_mappings_by_rule_and_by_call(project: Project) -> None:
    place = """
        [mapping]
        source = "project.types.orders:Address"
        target = "project.types.billing:Place"
        [fields]
        street = "src.street"
        town = "src.city.title()"
    """
    line = """
        [mapping]
        source = "project.types.orders:Item"
        target = "project.types.billing:Line"
        [fields]
        sku = "src.sku"
        amount = "src.quantity * src.unit_price"
    """
    head = HEAD + 'mappings = ["to_place"]\n'
    m = build(project, """
        place = { mapping = "to_place", expr = "src.address" }
        lines = { each = "src.items", mapping = "to_line" }
        note = "to_place(src.address).town"
    """, head=head, extra={"mappings/to_place.toml": place, "mappings/to_line.toml": line})
    inv = same_as_export(m, ORDER)
    assert inv.place is not None and inv.place.town == "Oslo" and inv.note == "Oslo"
    assert [(x.sku, x.amount) for x in inv.lines] == [("tea", 9.0), ("cup", 0.0),
                                                       ("jam", 2.25)]


def test_several_sources(project: Project) -> None:
    head = """
        [mapping]
        target = "project.types.billing:Invoice"
        [mapping.sources]
        order = "project.types.orders:Order"
        who = "project.types.orders:Customer"
    """
    text = head + """
        [fields]
        number = "order.id"
        customer = "who.name + (' (VIP)' if who.vip else '')"
        count = "len(order.items)"
    """
    _root, registry = project({"mappings/m.toml": text})
    m = registry.get("m")
    inv = m.func(ORDER, {"name": "Ada", "vip": True})
    assert (inv.customer, inv.count) == ("Ada (VIP)", 3)
    assert m.func(who={"name": "Bo"}, order=ORDER).customer == "Bo"


def test_dict_source_and_target(project: Project) -> None:
    text = """
        [mapping]
        source = "dict"
        target = "dict"
        [fields]
        id = "src['id']"
        nested = { deep = "src['customer'].lower()" }
        skus = { each = "src['items']", expr = "item['sku']" }
    """
    _root, registry = project({"mappings/m.toml": text})
    assert registry.get("m").func(ORDER) == {"id": "A7", "nested": {"deep": "ada"},
                                             "skus": ["tea", "cup", "jam"]}


def test_target_aliases_are_filled_by_field_name(project: Project) -> None:
    types = """
        from pydantic import BaseModel, Field

        class Out(BaseModel):
            order_id: str = Field(alias="orderId")
            first_name: str = Field(alias="first-name")
    """
    text = """
        [mapping]
        source = "project.types.orders:Order"
        target = "project.types.out:Out"
        [fields]
        order_id = "src.id"
        first_name = "src.customer"
    """
    _root, registry = project({"types/out.py": types, "mappings/m.toml": text})
    out = registry.get("m").func(ORDER)
    assert out.model_dump(by_alias=True) == {"orderId": "A7", "first-name": "Ada"}


def test_sources_are_coerced_from_dicts_json_and_other_models(project: Project) -> None:
    m = build(project, "")
    assert m.func(ORDER).number == "INV-A7"
    import json

    assert m.func(json.dumps(ORDER)).number == "INV-A7"
    with pytest.raises(MappingRunError, match=r"source 'src' is not a valid Order: id"):
        m.func({"customer": "x"})


def test_errors_in_expressions_point_at_the_mapping_file_and_line(project: Project) -> None:
    m = build(project, """
        [fields.lines]
        each = "src.items"
        [fields.lines.fields]
        sku = "item.sku"
        amount = "item.unit_price / item.quantity"
    """)
    with pytest.raises(MappingRunError) as info:
        m.func(ORDER)
    err = info.value
    line = line_of(m, "amount =")
    assert err.field == "lines[].amount" and err.line == line
    assert "ZeroDivisionError" in err.message and "sku='cup'" in err.message
    frames = traceback.extract_tb(err.__traceback__)
    inner = frames[-1]
    assert Path(inner.filename).name == "m.toml" and inner.lineno == line
    assert inner.line is not None and 'amount = "item.unit_price / item.quantity"' in inner.line
    source_line = m.spec.text.splitlines()[line - 1]
    start = source_line.index("item.unit_price")
    # the carets cover the expression inside the quotes
    assert (inner.colno, inner.end_colno) == (start, start + len("item.unit_price / item.quantity"))
    text = "".join(traceback.format_exception(err))
    assert f'm.toml", line {line}, in <listcomp>' in text


def test_validation_errors_name_each_field_path_line_and_value(project: Project) -> None:
    m = build(project, """
        total = "src.customer"
        [fields.lines]
        each = "src.items"
        [fields.lines.fields]
        sku = "item.tags or None"
        amount = "item.unit_price"
    """)
    with pytest.raises(MappingRunError) as info:
        m.func(ORDER)
    err = info.value
    fields = {p["field"]: p for p in err.problems}
    assert set(fields) == {"total", "lines[0].sku", "lines[1].sku", "lines[2].sku"}
    total_line = line_of(m, "total =")
    assert fields["total"]["line"] == total_line and fields["total"]["value"] == "'Ada'"
    assert fields["lines[1].sku"]["line"] == line_of(m, "sku =")
    assert f"mappings/m.toml:{total_line}: field 'total'" in err.message


def test_sub_mapping_errors_say_where_they_were_called(project: Project) -> None:
    place = """
        [mapping]
        source = "project.types.orders:Address"
        target = "project.types.billing:Place"
        [fields]
        street = "src.street"
        town = "src.city[10]"
    """
    m = build(project, 'place = { mapping = "to_place", expr = "src.address" }\n',
              extra={"mappings/to_place.toml": place})
    with pytest.raises(MappingRunError) as info:
        m.func(ORDER)
    assert info.value.file == "mappings/to_place.toml" and info.value.field == "town"
    notes = "".join(getattr(info.value, "__notes__", []))
    line = line_of(m, "place =")
    assert f"called from mappings/m.toml:{line} (field 'place' of mapping 'm')" in notes


def test_export_is_readable_python(project: Project) -> None:
    m = build(project, """
        [fields.lines]
        each = "src.items"
        where = "item.quantity > 0"
        [fields.lines.fields]
        sku = "item.sku"
        amount = "item.quantity * item.unit_price"
    """)
    source = m.source
    assert "def m(src):" in source and "def _raw(src):" in source
    assert f"'number': 'INV-' + src.id,  # mappings/m.toml:{line_of(m, 'number =')}" in source
    assert "for item in src.items or ()" in source and "if item.quantity > 0" in source
    compile(source, "<export>", "exec")


def test_dates_to_text_and_text_to_datetimes(project: Project) -> None:
    m = build(project, """
        note = { expr = "to_date(src.placed, '%d/%m/%Y')", convert = "str", format = "%Y%m%d" }
        first_sku = "to_str(to_datetime('2024-05-01T10:30:00Z'))"
        issued = { expr = "to_datetime(src.placed, '%d/%m/%Y')", convert = "date" }
    """)
    inv = same_as_export(m, ORDER)
    assert inv.note == "20241224" and inv.issued == date(2024, 12, 24)
    assert inv.first_sku == "2024-05-01T10:30:00+00:00"
