"""Property tests: for random source objects (and random rules), the compiled mapping gives
the same result as the direct interpreter, which evaluates every expression with `eval`
against the same inputs — or both fail on the same field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.mapper.compiled import CompiledMapping
from workbench.mapper.errors import MappingRunError
from workbench.mapper.evaluate import _Failed, evaluate
from workbench.mapper.registry import MappingRegistry
from workbench.mapper.spec import normalize_path

from .conftest import BASE_FILES, HEAD, load_registry, write_files

# The autouse fixtures of the suite hold no state an example could leak into another.
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

PLACE = """
    [mapping]
    source = "project.types.orders:Address"
    target = "project.types.billing:Place"
    [fields]
    street = "src.street.strip()"
    town = { expr = "src.zip", default = "none" }
"""

FULL = HEAD + """
    uses = ["project.functions.pricing:order_total"]

    [inputs]
    rate = 1.5

    [fields]
    number = "'INV-' + src.id"
    customer = "src.customer.strip().title()"
    total = "order_total(src) * rate"
    count = { each = "src.items", where = "item.quantity > 0", reduce = "count" }
    note = { expr = "src.email.lower()", default = "-" }
    first_sku = { each = "src.items", expr = "item.sku", sort = "(item.unit_price, item.sku)", \
pick = "first" }
    tags = { each = "src.items", expr = "join(item.tags, '/')", where = "item.tags", limit = 3 }
    place = { mapping = "to_place", expr = "src.address" }
    state = { expr = "src.status", convert = "enum" }
    amount = { expr = "src.amount_text", convert = "decimal", format = "0.01" }

    [fields.lines]
    each = "src.items"
    where = "item.quantity != 0"
    sort = "item.sku"
    desc = true
    limit = 4
    [fields.lines.fields]
    sku = "item.sku.upper()"
    amount = "abs(item.quantity * item.unit_price)"
""".replace("\\\n", "")

text_st = st.text(alphabet="abcXYZ _-@.", max_size=8)
item_st = st.fixed_dictionaries({
    "sku": st.text(alphabet="abcd", min_size=1, max_size=3),
    "quantity": st.integers(-3, 20),
    "unit_price": st.floats(-100, 100, allow_nan=False, allow_infinity=False).map(
        lambda f: round(f, 2)),
    "tags": st.lists(st.sampled_from(["hot", "sweet", "jar", ""]), max_size=3),
})
order_st = st.fixed_dictionaries({
    "id": st.text(alphabet="A0123456789", min_size=1, max_size=5),
    "customer": text_st,
    "email": st.none() | st.sampled_from(["ada@x.org", "bo", "@x", ""]),
    "items": st.lists(item_st, max_size=7),
    "address": st.none() | st.fixed_dictionaries({
        "street": text_st, "city": text_st,
        "zip": st.none() | st.sampled_from(["0150", "N1"]),
    }),
    "status": st.sampled_from(["open", "paid", "OPEN", "Paid", "void"]),
    "amount_text": st.sampled_from(["12.50", "0", "-3.333", "x", "1e3", " 7 "]),
})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> MappingRegistry:
    root: Path = tmp_path_factory.mktemp("property")
    write_files(root, {**BASE_FILES, "mappings/to_place.toml": PLACE,
                       "mappings/full.toml": FULL})
    registry = load_registry(root)
    assert not [i for i in registry.issues() if i.level == "error"], registry.issues()
    return registry


def compiled_outcome(compiled: CompiledMapping, order: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", compiled.func(order).model_dump()
    except MappingRunError as exc:
        return "error", normalize_path(exc.field or "")


def reference_outcome(registry: MappingRegistry, compiled: CompiledMapping,
                      order: dict[str, Any]) -> tuple[str, Any]:
    entry = registry.entries.get(compiled.name)
    bound = entry.bound if entry is not None and entry.compiled is compiled else None
    if bound is None:
        from workbench.mapper.resolve import bind

        bound, _ = bind(compiled.spec, None)
    try:
        result = evaluate(bound, {"src": order}, mappings=registry.funcs,
                          raw_mappings=registry.raws, keep_going=False)
    except _Failed as failed:
        return "error", normalize_path(failed.path)
    except MappingRunError as exc:  # from a sub-mapping
        return "error", normalize_path(exc.field or "")
    if result.validation:
        return "error", normalize_path(result.validation[0].path)
    return "ok", result.result.model_dump()


@SETTINGS
@given(order=order_st)
def test_a_full_mapping_agrees_with_the_reference(registry: MappingRegistry,
                                                  order: dict[str, Any]) -> None:
    compiled = registry.get("full")
    assert compiled_outcome(compiled, order) == reference_outcome(registry, compiled, order)


where_st = st.sampled_from([None, "item.quantity > 0", "item.unit_price < 50", "item.tags",
                            "item.sku != 'a'"])
sort_st = st.sampled_from([None, "item.sku", "item.unit_price", "(item.quantity, item.sku)",
                           "-item.quantity"])
element_st = st.sampled_from(['expr = "item.sku"', 'expr = "item.quantity * 2"',
                              'expr = "len(item.tags)"', 'expr = "item.unit_price"'])
ending_st = st.sampled_from([
    ("tags", 'expr = "item.sku"', ""),
    ("first_sku", 'expr = "item.sku"', 'pick = "first"'),
    ("first_sku", 'expr = "item.sku"', 'pick = "last"'),
    ("first_sku", 'expr = "item.sku"', "pick = 1"),
    ("first_sku", 'expr = "item.sku"', 'pick = -1, default = "none"'),
    ("first_sku", 'expr = "item.sku"', 'reduce = "join", sep = ";"'),
    ("total", 'expr = "item.unit_price"', 'reduce = "sum"'),
    ("total", 'expr = "item.unit_price"', 'reduce = "min", default = 0.0'),
    ("total", 'expr = "item.unit_price"', 'reduce = "max", default = 0.0'),
    ("total", 'expr = "item.quantity"', 'reduce = "avg", default = -1.0'),
    ("count", 'expr = "item.quantity"', 'reduce = "count"'),
])


def each_rule(where: str | None, sort: str | None, desc: bool, limit: int | None,
              ending: tuple[str, str, str]) -> str:
    field, element, tail = ending
    options = ['each = "src.items"']
    if where:
        options.append(f'where = "{where}"')
    if sort:
        options.append(f'sort = "{sort}"')
        if desc:
            options.append("desc = true")
    if limit is not None:
        options.append(f"limit = {limit}")
    options.append(element)
    if tail:
        options.append(tail)
    return f"{field} = {{ {', '.join(options)} }}"


@SETTINGS
@given(order=order_st, where=where_st, sort=sort_st, desc=st.booleans(),
       limit=st.none() | st.integers(0, 4), ending=ending_st)
def test_random_list_rules_agree_with_the_reference(
    registry: MappingRegistry, order: dict[str, Any], where: str | None, sort: str | None,
    desc: bool, limit: int | None, ending: tuple[str, str, str],
) -> None:
    rule = each_rule(where, sort, desc, limit, ending)
    text = HEAD + '\n[fields]\nnumber = "src.id"\ncustomer = "src.customer"\n' + rule + "\n"
    compiled, issues = registry.preview("generated", text)
    assert compiled is not None, [i.text() for i in issues]
    assert compiled_outcome(compiled, order) == reference_outcome(registry, compiled, order)


terms = st.sampled_from(["item.quantity", "item.unit_price", "len(item.tags)", "2", "0.5",
                         "len(item.sku)", "-item.quantity"])
operators = st.sampled_from(["+", "-", "*", "/", "//", "%"])
expressions = st.recursive(
    terms,
    lambda inner: st.tuples(inner, operators, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    | inner.map(lambda e: f"abs({e})")
    | st.tuples(inner, inner).map(lambda t: f"max({t[0]}, {t[1]})")
    | st.tuples(inner, inner).map(lambda t: f"({t[0]} if item.tags else {t[1]})"),
    max_leaves=6,
)


@SETTINGS
@given(order=order_st, expression=expressions)
def test_random_element_expressions_agree_with_the_reference(
    registry: MappingRegistry, order: dict[str, Any], expression: str
) -> None:
    text = HEAD + (
        '\n[fields]\nnumber = "src.id"\ncustomer = "src.customer"\n'
        f'lines = {{ each = "src.items", fields = {{ sku = "item.sku", amount = "{expression}" '
        "} }\n"
    )
    compiled, issues = registry.preview("generated", text)
    assert compiled is not None, [i.text() for i in issues]
    assert compiled_outcome(compiled, order) == reference_outcome(registry, compiled, order)
