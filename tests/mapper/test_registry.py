"""The registry: cache by content, keep the last good version, the `mapping()` proxy."""

from __future__ import annotations

import pytest

from workbench.mapper import load_mappings, mapping
from workbench.mapper.errors import MappingError, MappingNotFoundError
from workbench.mapper.registry import set_current

from .conftest import HEAD, Project

TEXT = HEAD + """
    [fields]
    number = "'INV-' + src.id"
    customer = "src.customer"
"""
ORDER = {"id": "1", "customer": "Ada"}


def test_unchanged_files_are_not_compiled_again(project: Project) -> None:
    root, registry = project({"mappings/m.toml": TEXT})
    first = registry.get("m")
    assert registry.recompiled == ["m"]
    registry.load()
    assert registry.get("m") is first and registry.recompiled == []
    path = root / "mappings/m.toml"
    path.write_text(path.read_text().replace("INV-", "N-"))
    registry.load()
    assert registry.get("m") is not first and registry.recompiled == ["m"]
    assert registry.get("m").func(ORDER).number == "N-1"


def test_a_failing_edit_keeps_the_last_good_version(project: Project) -> None:
    root, registry = project({"mappings/m.toml": TEXT})
    good = registry.get("m")
    path = root / "mappings/m.toml"
    path.write_text(path.read_text().replace('"src.customer"', '"src.customer +"'))
    (error,) = registry.load()
    assert error.file == "mappings/m.toml" and error.line == 7 and error.field == "customer"
    assert registry.get("m") is good and registry.function("m")(ORDER).customer == "Ada"
    (row,) = registry.describe()
    assert (row["ok"], row["serving"], row["stale"]) == (False, True, True)


def test_a_mapping_that_never_loaded_says_why(project: Project) -> None:
    _root, registry = project({"mappings/m.toml": TEXT.replace("src.id", "src.idd")})
    with pytest.raises(MappingError, match=r"mapping 'm' has not loaded: mappings/m.toml:6: "
                                           r"field 'number': unknown source path 'src.idd'"):
        registry.function("m")
    with pytest.raises(MappingNotFoundError, match=r"No mapping 'x' in mappings/. Mappings: m"):
        registry.get("x")


def test_deleted_files_leave_the_registry(project: Project) -> None:
    root, registry = project({"mappings/m.toml": TEXT, "mappings/n.toml": TEXT})
    assert registry.names() == ["m", "n"]
    (root / "mappings/n.toml").unlink()
    registry.load()
    assert registry.names() == ["m"] and "n" not in registry.funcs


def test_the_proxy_resolves_at_call_time(project: Project) -> None:
    root, registry = project({"mappings/m.toml": TEXT})
    to_invoice = mapping("m")
    assert repr(to_invoice) == "mapping('m')"
    assert to_invoice(ORDER).number == "INV-1"
    assert to_invoice.raw(ORDER) == {"number": "INV-1", "customer": "Ada"}
    assert to_invoice.compiled is registry.get("m")
    path = root / "mappings/m.toml"
    path.write_text(path.read_text().replace("INV-", "X-"))
    registry.load()
    assert to_invoice(ORDER).number == "X-1"
    set_current(None)
    with pytest.raises(MappingNotFoundError, match="No mappings are loaded in this process"):
        to_invoice(ORDER)


def test_load_mappings_outside_a_runtime(project: Project) -> None:
    root, _registry = project({"mappings/m.toml": TEXT})
    set_current(None)
    registry = load_mappings(root)
    assert registry.issues() == [] and mapping("m")(ORDER).customer == "Ada"


def test_sub_mappings_are_relinked_when_they_change(project: Project) -> None:
    place = """
        [mapping]
        source = "project.types.orders:Address"
        target = "project.types.billing:Place"
        [fields]
        street = "src.street"
        town = "src.city"
    """
    text = TEXT + 'place = { mapping = "to_place", expr = "src.address" }\n'
    root, registry = project({"mappings/m.toml": text, "mappings/to_place.toml": place})
    outer = registry.get("m")
    order = {**ORDER, "address": {"street": "s", "city": "oslo"}}
    assert outer.func(order).place.town == "oslo"
    path = root / "mappings/to_place.toml"
    path.write_text(path.read_text().replace('"src.city"', '"src.city.upper()"'))
    registry.load()
    assert registry.get("m") is outer  # the caller did not change ...
    assert outer.func(order).place.town == "OSLO"  # ... but calls the new version


def test_preview_compiles_unsaved_text_without_changing_what_serves(project: Project) -> None:
    _root, registry = project({"mappings/m.toml": TEXT})
    compiled, issues = registry.preview("m", TEXT.replace("INV-", "P-"))
    assert issues == [] and compiled is not None and compiled.func(ORDER).number == "P-1"
    assert registry.get("m").func(ORDER).number == "INV-1"
    broken, issues = registry.preview("m", TEXT.replace("src.id", "src.nope"))
    assert broken is None and "unknown source path 'src.nope'" in issues[0].message


def test_a_module_that_fails_to_import_is_reported(project: Project) -> None:
    text = HEAD.replace("billing:Invoice", "broken:Thing") + "\n    [fields]\n"
    root, registry = project({"mappings/m.toml": text})
    (root / "types/broken.py").write_text("raise RuntimeError('boom')\n")
    registry.load()
    (issue,) = registry.issues()
    assert "project.types.broken' failed to import: RuntimeError: boom" in issue.message


def test_the_interpreter_reports_every_failing_field(project: Project) -> None:
    from workbench.mapper.evaluate import evaluate

    text = TEXT + """
        note = "src.email.upper()"
        count = "int(src.customer)"
        lines = { each = "src.items", fields = { sku = "item.sku", amount = "1 / item.quantity" } }
    """
    _root, registry = project({"mappings/m.toml": text})
    entry = registry.entries["m"]
    assert entry.bound is not None and entry.ok
    order = {**ORDER, "items": [{"sku": "a", "quantity": 0, "unit_price": 1}]}
    result = evaluate(entry.bound, {"src": order})
    assert not result.ok and result.result is None
    values = {f.path: (f.value, f.error) for f in result.fields}
    assert values["number"] == ("INV-1", None)
    assert values["note"][1] == "AttributeError: 'NoneType' object has no attribute 'upper'"
    assert values["count"][1] is not None and "invalid literal" in values["count"][1]
    assert values["lines[].amount"][1] == "ZeroDivisionError: division by zero"
    assert [f.line for f in result.errors] == [9, 10, 11]
