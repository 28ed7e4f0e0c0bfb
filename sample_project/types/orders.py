"""The order model shared by the API, the file import and the restock report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Item(BaseModel):
    sku: str = Field(min_length=1, examples=["TEA-01"])
    quantity: int = Field(gt=0, examples=[2])
    unit_price: float = Field(ge=0, examples=[4.5])


class Order(BaseModel):
    customer: str = Field(min_length=1, examples=["ada@example.com"])
    items: list[Item] = Field(min_length=1)
    note: str | None = None


class Receipt(BaseModel):
    order_id: str
    customer: str
    total: float
    currency: str
    items: int
