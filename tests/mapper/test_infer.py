"""Types from a sample: JSON and CSV, nested models, unified lists, optional fields, aliases;
the written module imports and validates the sample."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from workbench.mapper.errors import InferError
from workbench.mapper.infer import (
    class_name,
    csv_rows,
    infer_models,
    python_name,
    render_module,
    singular,
    write_models,
)

SAMPLE: list[dict[str, Any]] = [
    {
        "orderId": "A1", "placedAt": "2024-05-01T10:00:00Z", "day": "2024-05-01",
        "customer": {"name": "Ada", "email": None},
        "items": [{"sku": "x", "qty": 1, "price": 1}, {"sku": "y", "qty": 2, "price": 2.5,
                                                       "tags": ["a"]}],
        "paid": True, "class": 3, "first-name": "Ada",
    },
    {
        "orderId": "A2", "placedAt": "2024-05-02T11:00:00", "day": "2024-05-02",
        "customer": {"name": "Bo"}, "items": [], "paid": False, "class": "x",
        "first-name": "Bo", "extra": {"note": "n"},
    },
]


def load_module(path: Path) -> ModuleType:
    name = f"inferred_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def fields(models: list[Any], name: str) -> dict[str, tuple[str, bool, str]]:
    model = next(m for m in models if m.name == name)
    return {f.name: (f.type, f.optional, f.key) for f in model.fields}


def test_infers_nested_models_unified_lists_and_optionals() -> None:
    models = infer_models(SAMPLE, "Order")
    assert [m.name for m in models] == ["Customer", "Item", "Extra", "Order"]
    order = fields(models, "Order")
    assert order["order_id"] == ("str", False, "orderId")
    assert order["placed_at"] == ("datetime", False, "placedAt")
    assert order["day"] == ("date", False, "day")
    assert order["customer"] == ("Customer", False, "customer")
    assert order["items"] == ("list[Item]", False, "items")
    assert order["paid"] == ("bool", False, "paid")
    assert order["class_"] == ("int | str", False, "class")
    assert order["first_name"] == ("str", False, "first-name")
    assert order["extra"] == ("Extra", True, "extra")
    assert fields(models, "Customer")["email"] == ("Any", True, "email")
    item = fields(models, "Item")
    assert item["price"] == ("float", False, "price")  # 1 and 2.5 unify to float
    assert item["tags"] == ("list[str]", True, "tags")


def test_the_module_imports_and_validates_the_sample(tmp_path: Path) -> None:
    path, text, _models = write_models(tmp_path / "types", "orders", SAMPLE, "Order",
                                       source="order.json")
    assert path == tmp_path / "types" / "orders.py"
    assert text.startswith('"""Order, inferred from order.json by `iwb map infer`."""')
    module = load_module(path)
    for raw in SAMPLE:
        order = module.Order.model_validate(raw)
        assert order.model_dump(by_alias=True, exclude_none=True)["orderId"] == raw["orderId"]
    assert module.Order.model_fields["order_id"].examples == ["A1"]
    assert module.Order(order_id="Z", placed_at="2024-01-01T00:00:00", day="2024-01-01",
                        customer={"name": "c"}, items=[], paid=True, class_=1,
                        first_name="f").order_id == "Z"


def test_appends_to_an_existing_module_and_refuses_clashes(tmp_path: Path) -> None:
    types = tmp_path / "types"
    types.mkdir()
    (types / "shop.py").write_text(
        '"""Shop."""\n\nfrom __future__ import annotations\n\nfrom pydantic import BaseModel\n\n\n'
        "class Item(BaseModel):\n    code: str\n"
    )
    path, text, models = write_models(types, "shop", SAMPLE[0], "Order", source="o.json")
    assert [m.name for m in models] == ["Customer", "OrderItem", "Order"]  # Item was taken
    assert "class Item(BaseModel):\n    code: str" in text
    assert "from pydantic import ConfigDict, Field" in text
    module = load_module(path)
    assert module.Order.model_validate(SAMPLE[0]).items[0].sku == "x"
    with pytest.raises(InferError, match="a class 'Order' already exists"):
        write_models(types, "shop", SAMPLE[0], "Order", source="o.json")


def test_csv_header_and_rows() -> None:
    rows = csv_rows("id;name;price;when;ok;code\n1;Ada;1.5;2024-01-01;true;007\n"
                    "2;;2;2024-01-02;false;010\n")
    assert rows[0] == {"id": 1, "name": "Ada", "price": 1.5, "when": "2024-01-01", "ok": True,
                       "code": "007"}
    models = infer_models(rows, "Row")
    row = fields(models, "Row")
    assert row["id"] == ("int", False, "id") and row["price"] == ("float", False, "price")
    assert row["name"] == ("str", True, "name") and row["when"] == ("date", False, "when")
    assert row["code"] == ("str", False, "code")
    header_only = infer_models(csv_rows("a,b\n"), "Empty")
    assert fields(header_only, "Empty")["a"] == ("Any", True, "a")


@pytest.mark.parametrize("sample", [[1, 2], "text", []])
def test_a_sample_without_objects_is_refused(sample: Any) -> None:
    with pytest.raises(InferError, match="needs"):
        infer_models(sample, "X")


def test_names() -> None:
    assert python_name("orderId") == "order_id"
    assert python_name("HTTPStatus") == "http_status"
    assert python_name("first-name") == "first_name"
    assert python_name("2fa") == "f_2fa"
    assert python_name("from") == "from_"
    assert class_name("line_items") == "LineItems" and class_name("orderLine") == "OrderLine"
    assert singular("categories") == "categories"[:-3] + "y"
    assert singular("boxes") == "box" and singular("items") == "item"
    assert singular("address") == "address"


def test_rendering_is_valid_python() -> None:
    text = render_module(infer_models(json.loads(json.dumps(SAMPLE)), "Order"), "s.json")
    compile(text, "<inferred>", "exec")
