"""Source and target trees, and auto-map proposals by name and type."""

from __future__ import annotations

import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from workbench.mapper.schema import (
    apply_proposals,
    automap,
    normalize,
    source_trees,
    target_tree,
    unmapped_required,
)
from workbench.mapper.spec import parse_text


class Part(BaseModel):
    partNo: str = Field(examples=["P-1"])
    Qty: str
    unit_price: float


class Shipping(BaseModel):
    street: str
    City: str


class PurchaseOrder(BaseModel):
    order_id: str = Field(examples=["PO-9"], description="The order number")
    placed: str
    total_amount: str
    shipping: Shipping | None = None
    parts: list[Part] = []
    notes: list[str] = []
    priority: int = 1


class Line(BaseModel):
    part_no: str
    qty: int
    unit_price: Decimal


class Address(BaseModel):
    street: str
    city: str
    country: str = "NO"


class Invoice(BaseModel):
    OrderId: str
    placed: datetime.date
    total_amount: float
    shipping: Address
    parts: list[Line]
    notes: list[str] = []
    priority: str = "1"
    unrelated: str


def test_source_tree_paths_types_and_examples() -> None:
    (root,) = source_trees({"src": PurchaseOrder})
    nodes = {n.path: n for n in root.walk()}
    assert nodes["src.order_id"].example == "PO-9"
    assert nodes["src.order_id"].description == "The order number"
    assert nodes["src.shipping"].type == "Shipping | None" and not nodes["src.shipping"].required
    assert nodes["src.shipping"].kind == "object"
    assert nodes["src.parts"].kind == "list" and nodes["src.parts[].partNo"].example == "P-1"
    assert nodes["src.parts[].unit_price"].example == 0.0
    assert nodes["src.priority"].example == 1 and not nodes["src.priority"].required
    assert root.to_dict()["children"][0]["path"] == "src.order_id"


def test_target_tree_marks_required_and_mapped() -> None:
    text = """
[mapping]
source = "x:PurchaseOrder"
target = "x:Invoice"
[fields]
OrderId = "src.order_id"
shipping = "src.shipping"
[fields.parts]
each = "src.parts"
[fields.parts.fields]
part_no = "item.partNo"
"""
    spec, issues = parse_text(text, __import__("pathlib").Path("m.toml"))
    assert spec is not None and issues == []
    nodes = {n.path: n for root in target_tree(Invoice, spec) for n in root.walk()}
    assert nodes["OrderId"].mapped and nodes["OrderId"].required
    assert nodes["shipping.city"].mapped  # under a field mapped as a whole
    assert nodes["parts[].part_no"].mapped and not nodes["parts[].qty"].mapped
    assert not nodes["notes"].required and not nodes["notes"].mapped
    missing = [n.path for n in unmapped_required(Invoice, spec)]
    assert missing == ["placed", "total_amount", "parts[].qty", "parts[].unit_price",
                       "unrelated"]


def test_normalize_ignores_case_underscores_and_humps() -> None:
    assert normalize("unitPrice") == normalize("unit_price") == normalize("Unit-Price")
    assert normalize("OrderId") == normalize("order_id")


def test_automap_by_name_and_type() -> None:
    proposals = {p.path: p for p in automap({"src": PurchaseOrder}, Invoice)}
    assert proposals["OrderId"].rule == "src.order_id"
    assert proposals["placed"].rule == {"expr": "src.placed", "convert": "date"}
    assert proposals["total_amount"].rule == {"expr": "src.total_amount", "convert": "float"}
    assert proposals["shipping.street"].rule == "src.shipping.street"
    assert proposals["shipping.city"].rule == "src.shipping.City"
    assert proposals["parts"].rule == {
        "each": "src.parts", "as": "part",
        "fields": {
            "part_no": "part.partNo",
            "qty": {"expr": "part.Qty", "convert": "int"},
            "unit_price": "part.unit_price",
        },
    }
    assert proposals["notes"].rule == "src.notes"
    assert proposals["priority"].rule == {"expr": "src.priority", "convert": "str"}
    assert "unrelated" not in proposals and "shipping.country" not in proposals
    assert "name match: src.order_id (str)" in proposals["OrderId"].reason


def test_automap_skips_mapped_fields_and_writes_a_valid_mapping() -> None:
    text = '[mapping]\nsource = "x:PurchaseOrder"\ntarget = "x:Invoice"\n\n[fields]\n' \
           'OrderId = "src.order_id.upper()"  # keep\n'
    path = __import__("pathlib").Path("m.toml")
    spec, _ = parse_text(text, path)
    proposals = automap({"src": PurchaseOrder}, Invoice, spec)
    assert "OrderId" not in {p.path for p in proposals}
    written = apply_proposals(text, proposals)
    assert 'OrderId = "src.order_id.upper()"  # keep' in written
    again, issues = parse_text(written, path)
    assert issues == [] and again is not None
    assert again.rule("parts[].qty") is not None and again.rule("shipping.city") is not None
