"""Invoices, made from orders by the data mapping mappings/order_to_invoice.toml."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InvoiceLine(BaseModel):
    sku: str = Field(min_length=1, examples=["TEA-01"])
    quantity: int = Field(gt=0, examples=[2])
    unit_price: float = Field(ge=0, examples=[4.5])
    amount: float = Field(ge=0, examples=[9.0])


class Invoice(BaseModel):
    customer: str = Field(min_length=1, examples=["ada@example.com"])
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    lines: list[InvoiceLine] = Field(min_length=1)
    total: float = Field(ge=0, examples=[9.0])
    items: int = Field(ge=1, examples=[2])
    note: str = ""
